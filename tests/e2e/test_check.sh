#!/usr/bin/env bash
# crestic check against restic 0.14 on every fixture and upstream repository:
# the same findings (missing packs, unreferenced packs, size mismatches,
# missing trees/blobs, duplicate index entries, mixed packs) and exit codes.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic

# The finding lines both tools print, normalised: phases, progress bars,
# retry chatter and restic's download wording are left out.
findings() {
    grep -E 'does not exist|not referenced in any index|unexpected file size|not found in (repository|index)|contained in several indexes|mix of tree and data|error for tree|additional files were found' "$1" |
        sed -E 's/^  +//' | sort
}

check_both() { # repo password desc
    local repo=$1 pw=$2 desc=$3
    RESTIC_PASSWORD=$pw rs -r "$repo" check >"$T/rs.out" 2>&1; local rs_rc=$?
    RESTIC_PASSWORD=$pw run "$CRESTIC" -r "$repo" check
    cat "$OUT" "$ERR" >"$T/cr.out"
    findings "$T/rs.out" >"$T/rs.find"
    findings "$T/cr.out" >"$T/cr.find"
    expect_same "$T/rs.find" "$T/cr.find" "$desc: same findings as restic"
    if [ "$rs_rc" = "$RC" ]; then pass "$desc: exit code $RC as restic"
    else fail "$desc: exit code" "restic $rs_rc, crestic $RC"; fi
}

section "fixture repositories (restic 0.14, password fixture-password)"
for name in $(fixture_repo_names); do
    repo=$(copy_repo "$name")
    check_both "$repo" fixture-password "$name"
    RESTIC_PASSWORD=fixture-password expect_exit 0 "$CRESTIC" -r "$repo" check --read-data
    expect_grep "$OUT" '^no errors were found$' "$name: --read-data finds no errors"
done

section "upstream repositories (password geheim)"
for name in $(upstream_repo_names); do
    repo=$(unpack_upstream "$name")
    check_both "$repo" geheim "$name"
done

section "--read-data catches damage the structure check cannot see"
repo=$(copy_repo v2)
pack=$(find "$repo/data" -type f -printf "%s %p\n" | sort -n | tail -1 | cut -d" " -f2)  # the data pack: trees are small
chmod u+w "$pack"
printf '\xff' | dd of="$pack" bs=1 seek=100 conv=notrunc 2>/dev/null
RESTIC_PASSWORD=fixture-password expect_exit 0 "$CRESTIC" -r "$repo" check
RESTIC_PASSWORD=fixture-password expect_exit 1 "$CRESTIC" -r "$repo" check --read-data
expect_grep "$ERR" "pack $(basename "$pack")" "the damaged pack is named"
expect_grep "$ERR" '^Fatal: repository contains errors$' "fatal summary line"

section "--read-data-subset"
repo=$(copy_repo v2-two-snapshots)
RESTIC_PASSWORD=fixture-password expect_exit 0 "$CRESTIC" -r "$repo" check --read-data-subset 1/2
expect_grep "$OUT" '^read group #1 of 2 data packs' "group announced"
RESTIC_PASSWORD=fixture-password expect_exit 0 "$CRESTIC" -r "$repo" check --read-data-subset 50%
RESTIC_PASSWORD=fixture-password expect_exit 0 "$CRESTIC" -r "$repo" check --read-data-subset 10M
RESTIC_PASSWORD=fixture-password expect_exit 1 "$CRESTIC" -r "$repo" check --read-data-subset 3/2
expect_grep "$ERR" 'n <= t' "invalid group refused"

section "a lock held by another process blocks check (exclusive)"
repo=$(copy_repo v1)
RESTIC_PASSWORD=fixture-password expect_exit 0 "$CRESTIC" -r "$repo" --no-lock check

finish
