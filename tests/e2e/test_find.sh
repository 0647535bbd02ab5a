#!/usr/bin/env bash
# crestic find vs restic 0.14.  restic's order of snapshots varies from run
# to run (it loads them concurrently), so output is compared exactly per
# snapshot (-s ID) and as a set of lines over all snapshots.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic

compare() { # repo password desc mode(exact|set) find-args...
    local repo=$1 pw=$2 desc=$3 mode=$4; shift 4
    RESTIC_PASSWORD=$pw rs -r "$repo" --no-lock find "$@" >"$T/rs.out" 2>&1; local rrc=$?
    RESTIC_PASSWORD=$pw run "$CRESTIC" -r "$repo" --no-lock find "$@"
    cat "$OUT" "$ERR" >"$T/cr.out"
    if [ "$mode" = set ]; then sort -o "$T/rs.out" "$T/rs.out"; sort -o "$T/cr.out" "$T/cr.out"; fi
    expect_same "$T/rs.out" "$T/cr.out" "$desc: find $*"
    [ "$rrc" = "$RC" ] && pass "$desc: find $*: exit $RC" || fail "$desc: find $*: exit" "restic $rrc crestic $RC"
}

search_all() { # repo password desc
    local repo=$1 pw=$2 desc=$3 id
    local ids; ids=$(RESTIC_PASSWORD=$pw rs -r "$repo" --no-lock snapshots --json | "$PY" -c 'import json,sys; print(" ".join(s["short_id"] for s in json.load(sys.stdin)))')
    local blob; blob=$(RESTIC_PASSWORD=$pw rs -r "$repo" --no-lock list blobs | awk '$1=="data"{print substr($2,1,8); exit}')
    for id in $ids; do
        for args in '*' '*.txt' '-i README*' '-l *' 'sub' '/src' '--json *' '--json -i *.TXT' 'nomatch' '--json nomatch'; do
            compare "$repo" "$pw" "$desc" exact -s "$id" $args
        done
        compare "$repo" "$pw" "$desc" exact -s "$id" --blob "$blob"
        compare "$repo" "$pw" "$desc" exact -s "$id" --json --blob "$blob"
    done
    compare "$repo" "$pw" "$desc" set '*'
    compare "$repo" "$pw" "$desc" set --blob "$blob"
}

search_all "$(copy_repo v2-two-snapshots)" fixture-password v2-two-snapshots
search_all "$(copy_repo v1)" fixture-password v1
search_all "$(unpack_upstream small-repo)" geheim small-repo
RESTIC_PASSWORD=fixture-password expect_exit 1 "$CRESTIC" -r "$(copy_repo v2)" --no-lock find
finish
