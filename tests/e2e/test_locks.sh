#!/usr/bin/env bash
# Locks: a foreign lock blocks exclusive commands (exit 11, holder named),
# --no-lock bypasses, unlock removes stale locks, our own locks never stay.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
export RESTIC_PASSWORD=fixture-password

sample=$(ls "$FIXTURES/samples/" | grep '^lock-' | head -1)
add_sample_lock() { mkdir -p "$1/locks" && cp "$FIXTURES/samples/$sample" "$1/locks/${sample#lock-}"; }

section "a stale non-exclusive lock of another process"
repo=$(copy_repo v2)
add_sample_lock "$repo"
expect_exit 11 "$CRESTIC" -r "$repo" check
expect_grep "$ERR" 'repository is already locked by PID 29071 on vm by root' "holder named"
expect_grep "$ERR" 'the `unlock` command can be used to remove stale locks' "unlock suggested"
expect_exit 0 "$CRESTIC" -r "$repo" --no-lock check
expect_exit 0 "$CRESTIC" -r "$repo" snapshots
expect_true "no lock of ours left behind" test "$(ls "$repo/locks" | wc -l)" = 1

section "unlock removes stale locks"
expect_exit 0 "$CRESTIC" -r "$repo" unlock
expect_grep "$OUT" '^successfully removed locks$' "restic's message"
expect_true "lock removed" test "$(ls "$repo/locks" | wc -l)" = 0
expect_exit 0 "$CRESTIC" -r "$repo" check

section "unlock --remove-all removes live locks too"
repo=$(copy_repo v1)
add_sample_lock "$repo"
expect_exit 0 "$CRESTIC" -r "$repo" unlock --remove-all
expect_true "all locks removed" test "$(ls "$repo/locks" | wc -l)" = 0

section "restic sees no crestic lock after a command"
repo=$(copy_repo v2-two-snapshots)
expect_exit 0 "$CRESTIC" -r "$repo" check
expect_true "restic can take an exclusive lock right after" "$RESTIC" -r "$repo" check --no-cache

finish
