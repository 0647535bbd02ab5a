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

section "--retry-lock takes a Go duration"
# (it used to take strtod numbers: "5", "1e3s" and "inf" passed)
expect_exit 11 "$CRESTIC" -r "$repo" --retry-lock 300ms check
expect_grep "$ERR" 'repository is already locked by PID 29071' "still locked after retrying"
expect_exit 11 "$CRESTIC" -r "$repo" --retry-lock -1s check
expect_grep "$ERR" 'repository is already locked by PID 29071' "a negative duration: no retries"
for d in 5 1e3s inf 2562048h 1d; do
    expect_exit 1 "$CRESTIC" -r "$repo" --retry-lock "$d" check
    expect_grep "$ERR" "^Fatal: invalid argument \"$d\" for \"--retry-lock\" flag: invalid duration" "refused: $d"
done

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

section "an exclusive lock that shows up just after ours: the second look stops the backup"
# The second look for conflicting locks runs in the background while a
# backup works (lock.h); it must still stop the backup before its index and
# snapshot are stored.  A live exclusive lock (key passwd, blocked on a
# FIFO for its new password) is moved aside while the backup takes its
# lock, and put back as soon as the backup's lock file appears.  That is
# how a backend that lists new files late looks: on a local disk the second
# look comes at once (lock.c), so the backup is given restic's 200 ms.
repo=$(copy_repo v2)
mkfifo "$T/newpw"
"$CRESTIC" -r "$repo" key passwd --new-password-file "$T/newpw" >/dev/null 2>&1 &
passwd_pid=$!
bg_register "$passwd_pid"
lock_names() { ls "$repo/locks" | grep -E '^[0-9a-f]{64}$'; }
for _ in $(seq 500); do lock_names >/dev/null && break; sleep 0.02; done
# blocked on the FIFO: its own second look is over (it would see the backup's lock)
for _ in $(seq 500); do grep -q wait_for_partner "/proc/$passwd_pid/wchan" 2>/dev/null && break; sleep 0.02; done
excl=$(lock_names)
expect_true "key passwd holds an exclusive lock" test -n "$excl"
mv "$repo/locks/$excl" "$T/excl"
# any file of the backup's, even its temporary name, comes after its first look
(while ! compgen -G "$repo/locks/*" >/dev/null; do :; done; mv "$T/excl" "$repo/locks/$excl") &
mover=$!
snaps_before=$(ls "$repo/snapshots" | wc -l)
expect_exit 11 env CRESTIC_LOCK_CHECK_DELAY_MS=200 "$CRESTIC" -r "$repo" backup "$TESTS_DIR/e2e"
wait "$mover"
expect_grep "$ERR" 'repository is already locked exclusively by PID' "holder named"
expect_true "no snapshot stored" test "$(ls "$repo/snapshots" | wc -l)" = "$snaps_before"
expect_true "only the exclusive lock is left" test "$(ls "$repo/locks")" = "$excl"
kill "$passwd_pid" 2>/dev/null; wait "$passwd_pid" 2>/dev/null
expect_true "the killed key passwd removed its lock" test "$(ls "$repo/locks" | wc -l)" = 0
expect_exit 0 "$CRESTIC" -r "$repo" check

section "without a conflict, a backup and a restore need no wait for the second look"
expect_exit 0 "$CRESTIC" -r "$repo" backup "$TESTS_DIR/e2e"
expect_exit 0 "$CRESTIC" -r "$repo" restore latest --target "$T/r"
expect_true "no lock of ours left behind" test "$(ls "$repo/locks" | wc -l)" = 0

finish
