#!/usr/bin/env bash
# crestic stats vs restic 0.14: the same --json numbers in every mode, for
# every fixture and upstream repository, all snapshots and single ones.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic

compare_modes() { # repo password desc [snapshot args...]
    local repo=$1 pw=$2 desc=$3; shift 3
    for mode in restore-size files-by-contents blobs-per-file raw-data; do
        RESTIC_PASSWORD=$pw rs -r "$repo" --no-lock stats --mode "$mode" --json "$@" >"$T/rs.json" 2>"$T/rs.err"; local rrc=$?
        RESTIC_PASSWORD=$pw run "$CRESTIC" -r "$repo" --no-lock stats --mode "$mode" --json "$@"
        if [ "$rrc" != "$RC" ]; then fail "$desc $mode: exit" "restic $rrc, crestic $RC: $(head -c 300 "$ERR")"; continue; fi
        [ "$rrc" = 0 ] || { pass "$desc $mode: both fail ($RC)"; continue; }
        expect_same "$T/rs.json" "$OUT" "$desc $mode $*: same JSON as restic"
    done
}

for name in $(fixture_repo_names); do
    repo=$(copy_repo "$name")
    compare_modes "$repo" fixture-password "$name"
    compare_modes "$repo" fixture-password "$name" latest
done
for name in $(upstream_repo_names); do
    repo=$(unpack_upstream "$name")
    compare_modes "$repo" geheim "$name"
done

section "text output"
repo=$(copy_repo v2-two-snapshots)
RESTIC_PASSWORD=fixture-password rs -r "$repo" --no-lock stats --mode raw-data >"$T/rs.txt" 2>/dev/null
RESTIC_PASSWORD=fixture-password expect_exit 0 "$CRESTIC" -r "$repo" --no-lock stats --mode raw-data
expect_same "$T/rs.txt" "$OUT" "raw-data text as restic"
RESTIC_PASSWORD=fixture-password expect_exit 1 "$CRESTIC" -r "$repo" --no-lock stats --mode nonsense
expect_grep "$ERR" 'unknown counting mode' "bad mode refused"
finish
