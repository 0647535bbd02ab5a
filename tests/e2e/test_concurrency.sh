#!/usr/bin/env bash
# Two crestic backups at the same time into one repository both succeed
# (shared locks); a forget started while a backup holds its lock fails with
# exit 11 and changes nothing.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic
export RESTIC_PASSWORD=concurrency-pw
repo=$T/repo
expect_exit 0 "$CRESTIC" init -r "$repo"

mkdir -p "$T/a" "$T/b"
for i in $(seq 1 40); do head -c 300000 /dev/urandom >"$T/a/f$i"; head -c 300000 /dev/urandom >"$T/b/f$i"; done

section "two backups at once"
"$CRESTIC" -r "$repo" backup --host one "$T/a" >"$T/a.out" 2>&1 & pa=$!
"$CRESTIC" -r "$repo" backup --host two "$T/b" >"$T/b.out" 2>&1 & pb=$!
bg_register $pa; bg_register $pb
wait $pa; ra=$?; wait $pb; rb=$?
[ $ra = 0 ] && pass "first backup succeeded" || { fail "first backup: exit $ra"; show "$T/a.out"; }
[ $rb = 0 ] && pass "second backup succeeded" || { fail "second backup: exit $rb"; show "$T/b.out"; }
expect_true "restic check --read-data passes" rs -r "$repo" check --read-data
n=$(rs -r "$repo" snapshots --json | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')
expect_true "two snapshots" test "$n" = 2
expect_true "no lock left" test -z "$(ls "$repo/locks" 2>/dev/null)"

section "forget while a backup holds its lock"
mkfifo "$T/stdin.fifo"
"$CRESTIC" -r "$repo" backup --stdin --stdin-filename held.txt <"$T/stdin.fifo" >"$T/held.out" 2>&1 & ph=$!
bg_register $ph
exec 9>"$T/stdin.fifo"                 # the backup waits for input with its lock held
for _ in $(seq 100); do [ -n "$(ls "$repo/locks" 2>/dev/null)" ] && break; sleep 0.1; done
expect_true "the backup holds a lock" test -n "$(ls "$repo/locks" 2>/dev/null)"
ls "$repo/snapshots" | sort >"$T/before"
expect_exit 11 "$CRESTIC" -r "$repo" forget --keep-last 1
expect_grep "$ERR" 'locked' "forget names the lock"
ls "$repo/snapshots" | sort >"$T/after"
expect_same "$T/before" "$T/after" "forget changed nothing"
echo "held data" >&9
exec 9>&-
wait $ph; rh=$?
[ $rh = 0 ] && pass "the held backup finished" || { fail "held backup: exit $rh"; show "$T/held.out"; }
expect_exit 0 "$CRESTIC" -r "$repo" forget --keep-last 1 --host one
expect_true "restic check passes at the end" rs -r "$repo" check
finish
