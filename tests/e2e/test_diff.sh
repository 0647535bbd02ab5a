#!/usr/bin/env bash
# crestic diff vs restic 0.14: identical text, --metadata and --json output
# for every ordered pair of snapshots in the multi-snapshot repositories.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic

diff_pairs() { # repo password desc
    local repo=$1 pw=$2 desc=$3 a b
    local ids; ids=$(RESTIC_PASSWORD=$pw rs -r "$repo" --no-lock snapshots --json | "$PY" -c 'import json,sys; print(" ".join(s["short_id"] for s in json.load(sys.stdin)))')
    for a in $ids; do for b in $ids; do
        [ "$a" = "$b" ] && continue
        for flags in "" --metadata --json; do
            RESTIC_PASSWORD=$pw ref rs -r "$repo" --no-lock diff $flags "$a" "$b"
            cat "$OUT" "$ERR" >"$T/rs.out"
            RESTIC_PASSWORD=$pw run "$CRESTIC" -r "$repo" --no-lock diff $flags "$a" "$b"
            cat "$OUT" "$ERR" >"$T/cr.out"
            expect_same "$T/rs.out" "$T/cr.out" "$desc: diff $flags $a $b"
        done
    done; done
}

diff_pairs "$(copy_repo v2-two-snapshots)" fixture-password v2-two-snapshots
for name in small-repo repo-same-timestamps repo-layout-default; do
    diff_pairs "$(unpack_upstream "$name")" geheim "$name"
done
repo=$(copy_repo v2)
RESTIC_PASSWORD=fixture-password expect_exit 1 "$CRESTIC" -r "$repo" --no-lock diff latest
expect_grep "$ERR" 'specify two snapshot IDs' "one argument refused"
finish
