#!/usr/bin/env bash
# crestic tag vs restic 0.14: the same tags (in the same order), `original`
# set once, trees untouched, the same messages and exit codes.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic
export RESTIC_PASSWORD=fixture-password

state() { # repo -> time, tags, original, tree per snapshot
    rs -r "$1" snapshots --json | "$PY" -c '
import json, sys
for s in sorted(json.load(sys.stdin), key=lambda s: s["time"]):
    print(s["time"], s.get("tags"), s.get("original", "")[:8], s["tree"][:8])'
}

rsrepo=$(copy_repo v2-two-snapshots)
crrepo=$T/cr-v2; cp -a "$rsrepo" "$crrepo"
first_id() { rs -r "$1" snapshots --json | "$PY" -c 'import json,sys; print(min(json.load(sys.stdin), key=lambda s: s["time"])["id"][:8])'; }
step() { # args for both; @FIRST stands for each repository's oldest snapshot
    local rsargs=() crargs=() a
    for a in "$@"; do
        if [ "$a" = @FIRST ]; then rsargs+=("$(first_id "$rsrepo")"); crargs+=("$(first_id "$crrepo")")
        else rsargs+=("$a"); crargs+=("$a"); fi
    done
    rs -r "$rsrepo" tag "${rsargs[@]}" >"$T/rs.out" 2>&1; local rrc=$?
    run "$CRESTIC" -r "$crrepo" tag "${crargs[@]}"
    if [ "$rrc" = "$RC" ]; then pass "tag $*: exit $RC as restic"; else fail "tag $*: exit" "restic $rrc, crestic $RC"; fi
    state "$rsrepo" >"$T/rs.state"; state "$crrepo" >"$T/cr.state"
    expect_same "$T/rs.state" "$T/cr.state" "tag $*: same snapshots as restic"
    grep -E 'modified|no snapshots|Fatal' "$T/rs.out" | sort >"$T/rs.msg"
    cat "$OUT" "$ERR" | grep -E 'modified|no snapshots|Fatal' | sort >"$T/cr.msg"
    expect_same "$T/rs.msg" "$T/cr.msg" "tag $*: same message"
}
step --add x --remove base
step --set a --set b,c --tag second
step --remove c --add c --add d
step --set "" --host fixture-host
step --add z @FIRST
step --remove x @FIRST ffffffff
step --add x --set y
step
finish
