#!/usr/bin/env bash
# migrate upgrade_repo_v2: a v1 repository becomes v2, restic reads and
# checks it, its snapshots restore as before; a second run is refused.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic
export RESTIC_PASSWORD=fixture-password
repo=$(copy_repo v1)
expect_exit 0 "$CRESTIC" -r "$repo" migrate
expect_grep "$OUT" '^  upgrade_repo_v2' "offered for a v1 repository"
rs -r "$repo" ls -l latest >"$T/before.ls" 2>/dev/null
expect_exit 0 "$CRESTIC" -r "$repo" migrate upgrade_repo_v2
expect_grep "$OUT" '^migration upgrade_repo_v2: success$' "success reported"
rs -r "$repo" cat config >"$T/config.json" 2>/dev/null
expect_grep "$T/config.json" '"version": 2' "restic sees version 2"
expect_true "restic check --read-data passes" rs -r "$repo" check --read-data
rs -r "$repo" ls -l latest >"$T/after.ls" 2>/dev/null
expect_same "$T/before.ls" "$T/after.ls" "the snapshot is unchanged"
expect_exit 0 "$CRESTIC" -r "$repo" migrate upgrade_repo_v2
expect_grep "$ERR" 'cannot be applied: check failed' "second run refused"
expect_exit 0 "$CRESTIC" -r "$repo" migrate
expect_grep "$OUT" 'no migrations found' "nothing left to offer"
section "a damaged repository is not migrated"
repo=$(unpack_upstream repo-data-missing)
RESTIC_PASSWORD=geheim expect_exit 1 "$CRESTIC" -r "$repo" migrate upgrade_repo_v2
expect_grep "$ERR" 'repository contains errors' "refused with the check's verdict"
finish
