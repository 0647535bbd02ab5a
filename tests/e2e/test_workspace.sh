#!/usr/bin/env bash
# Workspace backups (restic-backup / restic-restore and the module's start
# and stop scripts, module/scripts): a simulated workspace lifecycle on a
# local repository and on a REST server (rclone serve restic): fresh start
# ("no backup"), backup, restore into a wiped home, the first backup after a
# restore reading (almost) nothing, a second workspace cloning the first,
# interval backups (a failure logged and retried), retention per workspace
# across host names, stop-time backups with a deadline and on SIGTERM
# (partial snapshots that check accepts and that restore what they hold),
# the local lock, and every restore failure with its own exit code and
# message and no empty restore.  Outputs and exit codes of the stable cases
# are pinned in golden/workspace (UPDATE_GOLDEN=1 rewrites them).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

GOLDEN=$E2E_DIR/golden/workspace
MODULE=$REPO_ROOT/module/scripts
BIN=$T/bin
mkdir -p "$BIN"
ln -s "$CRESTIC" "$BIN/crestic"
ln -s "$CRESTIC" "$BIN/restic-backup"
ln -s "$CRESTIC" "$BIN/restic-restore"
export RESTIC_PASSWORD=ws-password RESTIC_CACHE_DIR=$T/cache

# ws NAME: the agent's environment of workspace NAME (home, data dir, ids)
ws() {
    W=$T/$1
    mkdir -p "$W/home" "$W/data" "$W/bin"
    export CODER_SCRIPT_DATA_DIR=$W/data CODER_SCRIPT_BIN_DIR=$W/bin
    export RESTIC_WORKSPACE_ID=id-$1 RESTIC_WORKSPACE_OWNER=alice RESTIC_WORKSPACE_NAME=$1
}
# conf KEY=VALUE...: the backup settings of the current workspace
conf() {
    {
        printf "BACKUP_PATHS='[\"%s\"]'\n" "$W/home"
        printf "EXCLUDE_PATTERNS='[\"**/node_modules\"]'\n"
        printf "BACKUP_TAGS='[\"team tag\"]'\n"
        printf "DIRECTORY='%s'\n" "$W/home"
        printf "RETENTION_LAST='3'\nRETENTION_DAILY='0'\nRETENTION_WEEKLY='0'\nRETENTION_MONTHLY='0'\n"
        printf "AUTO_FORGET='true'\nAUTO_PRUNE='false'\n"
        local kv
        for kv in "$@"; do printf "%s='%s'\n" "${kv%%=*}" "${kv#*=}"; done
    } >"$W/data/restic-backup.conf"
}
backup() { "$BIN/restic-backup" "$@"; }
restore() { "$BIN/restic-restore" "$@"; }

# content manifest of a tree: path, type, size, mode, mtime, content hash
# (the home directory's own mtime, excluded node_modules and a data dir
# .data left out)
tree_list() {
    (cd "$1" && find . -mindepth 1 \( -path ./node_modules -o -path ./.data \) -prune -o -printf '%p %y %s %m %T@\n' |
        LC_ALL=C sort &&
        find . \( -path ./node_modules -o -path ./.data \) -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0r md5sum)
}
make_files() { # DIR
    mkdir -p "$1/dir with space/sub" "$1/node_modules/pkg" "$1/.config"
    printf 'hello\n' >"$1/dir with space/a b.txt"
    seq 1 50000 >"$1/dir with space/sub/numbers.txt"
    head -c 1500000 /dev/urandom >"$1/random.bin"
    printf 'x\n' >"$1/node_modules/pkg/index.js"
    printf 'conf\n' >"$1/.config/settings"
    ln -s "dir with space" "$1/link"
}
norm() {
    sed -e "s#$T#<T>#g" -e 's/\b[0-9a-f]\{8\}\b/<id>/g' -e 's/127\.0\.0\.1:[0-9]*/127.0.0.1:<port>/g' \
        -e 's/port [0-9]* after [0-9]* ms/port <port> after <n> ms/g' -e 's/ in [0-9.]* s$/ in <n> s/' \
        -e '/, retrying in /d' -e 's/giving up after [0-9]* s/giving up after <n> s/' "$1"
}
# golden NAME: the last run's exit code, stdout and stderr against golden/workspace/NAME
golden() {
    { echo "exit $RC"; echo "--- stdout"; norm "$OUT"; echo "--- stderr"; norm "$ERR"; } >"$T/golden.$1"
    if [ "${UPDATE_GOLDEN:-0}" = 1 ]; then mkdir -p "$GOLDEN" && cp "$T/golden.$1" "$GOLDEN/$1"; fi
    expect_same "$GOLDEN/$1" "$T/golden.$1" "golden: $1"
}
snap_count() { # TAG -> number of snapshots carrying TAG
    "$CRESTIC" snapshots --json --tag "$1" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin) or []))'
}
stat_of() { sed -n "s/^$1=//p" "$T/stats"; }
# no_restore_happened: the failed restore wrote nothing and blocks backups
no_restore_happened() { # DESC
    expect_true "$1: home untouched" test "$(ls -A "$W/home")" = sentinel
    expect_true "$1: failure marker left" test -f "$W/data/restic-restore.failed"
    expect_exit 15 backup
    expect_grep "$ERR" 'last restore of this workspace failed' "$1: backup refused after the failed restore"
}

# ===========================================================================
section "local repository: fresh workspace"
export RESTIC_REPOSITORY=$T/repo
ws one
conf
run restore
expect_true "no repository: exit 10" test "$RC" = 10
golden restore-no-repository
expect_exit 15 backup
run "$CRESTIC" init
run restore
golden restore-no-backup
expect_true "no backup yet: marker cleared" test ! -e "$W/data/restic-restore.failed"

section "backup, restore into a wiped home"
make_files "$W/home"
run backup --tag stop-backup
expect_true "backup: exit 0" test "$RC" = 0
head -n 10 "$OUT" >"$T/head.out"; cp "$T/head.out" "$OUT"; : >"$ERR"
golden backup-header
expect_true "stop backup tagged" test "$(snap_count workspace-id:id-one,stop-backup,"team tag")" = 1
tree_list "$W/home" >"$T/before.list"
rm -rf "$W/home" && mkdir -p "$W/home"
run restore
golden restore-found
tree_list "$W/home" >"$T/after.list"
expect_same "$T/before.list" "$T/after.list" "restored home equals the backed-up one (names with spaces, modes, mtimes, contents)"
expect_true "restore record written" test -s "$W/data/restic-restore.record"

section "the first backup after a restore reads (almost) nothing"
printf 'one more line\n' >>"$W/home/dir with space/a b.txt"
CRESTIC_STATS_FILE=$T/stats run backup
expect_true "backup after restore: exit 0" test "$RC" = 0
changed=$(stat -c %s "$W/home/dir with space/a b.txt")
expect_true "bytes read = the changed file only ($(stat_of bytes_read) = $changed)" test "$(stat_of bytes_read)" = "$changed"
expect_true "one file changed, the rest unmodified" test "$(stat_of files_changed)" = 1 -a "$(stat_of files_unmodified)" = 3
expect_true "record dropped after a complete backup" test ! -e "$W/data/restic-restore.record"
first_id=$("$CRESTIC" snapshots --json --latest 1 --tag workspace-id:id-one | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])')
tree_list "$W/home" >"$T/one.list"

section "a second workspace clones the first by snapshot ID"
ws two
conf "SNAPSHOT_ID=${first_id:0:8}" "RESTORE_TARGET=$T/two/clone"
run restore
expect_true "clone: exit 0" test "$RC" = 0
expect_grep "$OUT" "^Restoring specific snapshot: ${first_id:0:8}$" "clone: names the snapshot"
tree_list "$T/two/clone$T/one/home" >"$T/clone.list"
expect_same "$T/one.list" "$T/clone.list" "clone equals the first workspace"
conf
make_files "$W/home"
run backup
expect_true "second workspace backs up its own home" test "$RC" = 0 -a "$(snap_count workspace-id:id-two)" = 1
conf "SNAPSHOT_ID=${first_id:0:8}" "RESTORE_TARGET=$T/two/again"
run restore
expect_grep "$OUT" "^This workspace has backups of its own: restoring its latest, not ${first_id:0:8}$" \
    "a clone's next start restores its own latest, not the source again"
tree_list "$T/two/again$W/home" >"$T/again.list"; tree_list "$W/home" >"$T/two.list"
expect_same "$T/two.list" "$T/again.list" "the clone's own backup restored"
conf

section "retention per workspace, whatever the host name"
ws one
conf
for h in host-a host-b host-c host-d; do
    printf '%s\n' "$h" >"$W/home/host.txt"
    RESTIC_HOST=$h run backup
done
expect_true "workspace one keeps RETENTION_LAST=3 across 4 host names" test "$(snap_count workspace-id:id-one)" = 3
expect_true "workspace two untouched" test "$(snap_count workspace-id:id-two)" = 1
RESTIC_HOST=host-e CRESTIC_STATS_FILE=$T/stats run backup
expect_grep "$OUT" "^using parent snapshot " "new host name: parent is still the workspace's latest"
expect_true "new host name: nothing read again" test "$(stat_of bytes_read)" = 0
rm -f "$W/home/random.bin"
conf "AUTO_PRUNE=true"
run backup
expect_grep "$OUT" '^Pruning unreferenced data...$' "AUTO_PRUNE: announced"
expect_grep "$OUT" '^removing [0-9]+ old packs$' "AUTO_PRUNE: unused packs removed"
expect_exit 0 "$CRESTIC" check
conf

# ===========================================================================
section "restore failures: own exit code and message, never an empty restore"
ws fail
conf
touch "$W/home/sentinel"
RESTIC_PASSWORD=wrong run restore
golden restore-wrong-password
no_restore_happened "wrong password"
RESTIC_REPOSITORY=$T/nothing-here run restore
golden restore-no-repository-2
no_restore_happened "no repository"
run restore --snapshot deadbeef
golden restore-snapshot-not-found
no_restore_happened "unknown snapshot"
if [ -x "$RESTIC" ]; then
# restic 0.14 `key passwd` holds an exclusive lock while it waits on a FIFO
mkfifo "$T/newpw.fifo"
"$RESTIC" --cache-dir "$T/cache-restic" -r "$T/repo" key passwd --new-password-file "$T/newpw.fifo" >"$T/holder.log" 2>&1 &
holder=$!
bg_register $holder
for _ in $(seq 100); do [ -n "$(ls "$T/repo/locks")" ] && break; sleep 0.1; done
run restore
expect_true "locked: exit 11" test "$RC" = 11
expect_grep "$ERR" '^Error: the repository is locked' "locked: says so"
no_restore_happened "locked"
kill $holder 2>/dev/null; wait $holder 2>/dev/null
rm -f "$T/repo/locks/"*
else
    [ "${CI:-}" = true ] && fail "restic 0.14 is needed for the lock case (scripts/install-deps.sh)"
    skip "locked repository (restic 0.14 not installed)"
fi
run restore
expect_true "a restore that works clears the block" test "$RC" = 0 -a ! -e "$W/data/restic-restore.failed"

# ===========================================================================
section "stop-time backups that always finish"
ws one
conf
mkdir -p "$W/home/large"
for i in $(seq 1 80); do head -c 1048576 /dev/urandom >"$W/home/large/f$i"; done
# a slow disk (CRESTIC_TEST_READ_BPS per reader): reading all would take 4 s
# (the time is measured around the whole process, start-up included)
export CRESTIC_TEST_READ_BPS=10000000
start=$(date +%s%N)
CRESTIC_STATS_FILE=$T/stats run backup --tag stop-backup --deadline 3
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect_true "deadline 3 s: exit 3 (partial)" test "$RC" = 3
expect_true "deadline 3 s: done in time (${ms} ms)" test "$ms" -lt 3000
expect_grep "$OUT" '^Backup incomplete: [0-9]+ files not read in time' "deadline: says what is missing"
expect_true "deadline: snapshot tagged partial" test "$(snap_count workspace-id:id-one,partial)" = 1
expect_exit 0 "$CRESTIC" check --read-data
"$CRESTIC" restore latest --tag partial --target "$T/partial" >/dev/null
got=$(find "$T/partial$W/home/large" -type f 2>/dev/null | wc -l)
expect_true "partial snapshot holds some of the new files ($got of 80, $(stat_of files_deferred) deferred)" test "$got" -lt 80 -a "$got" -gt 0
bad=0
for f in "$T/partial$W/home/large/"*; do cmp -s "$f" "$W/home/large/${f##*/}" || bad=1; done
expect_true "what the partial snapshot holds restores correctly" test $bad = 0
expect_true "older files are in the partial snapshot too" test -f "$T/partial$W/home/dir with space/a b.txt"

# SIGTERM: rewrite the big files so that there is a lot to read again
for i in $(seq 1 80); do head -c 1048576 /dev/urandom >"$W/home/large/f$i"; done
"$BIN/restic-backup" --tag stop-backup >"$T/term.out" 2>&1 &
pid=$!
sleep 1
start=$(date +%s%N)
kill -TERM $pid
wait $pid; rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect_true "SIGTERM: exit 3 (partial)" test $rc = 3
expect_true "SIGTERM: done soon after the signal (${ms} ms)" test "$ms" -lt 2000
expect_true "SIGTERM: a second partial snapshot" test "$(snap_count workspace-id:id-one,partial)" = 2
expect_exit 0 "$CRESTIC" check
unset CRESTIC_TEST_READ_BPS

CRESTIC_STATS_FILE=$T/stats run backup
expect_true "next backup completes it: exit 0" test "$RC" = 0 -a "$(stat_of files_deferred)" = 0
expect_true "retention dropped the superseded partial snapshots" test "$(snap_count workspace-id:id-one,partial)" = 0
rm -rf "$T/full"
"$CRESTIC" restore latest --tag workspace-id:id-one --target "$T/full" >/dev/null
tree_list "$W/home" >"$T/home.list"; tree_list "$T/full$W/home" >"$T/full.list"
expect_same "$T/home.list" "$T/full.list" "the completing backup holds the whole workspace"

section "backups of a workspace never overlap (local lock)"
flock "$W/data/restic-backup.lock" sleep 2 &
locker=$!
bg_register $locker
sleep 0.2
run backup --deadline 1
expect_true "busy: exit 11 at the deadline" test "$RC" = 11
expect_grep "$OUT" '^Waiting for another backup of this workspace to finish' "busy: waits first"
expect_grep "$ERR" 'another backup of this workspace is still running' "busy: says why"
wait $locker 2>/dev/null    # (its child sleep holds the lock, not flock itself)
# a stop backup with a deadline asks a running (interval) backup to wind down
for i in $(seq 1 80); do head -c 1048576 /dev/urandom >"$W/home/large/f$i"; done
export CRESTIC_TEST_READ_BPS=10000000
"$BIN/restic-backup" --tag interval-backup >"$T/interval.out" 2>&1 &
ipid=$!
sleep 1
start=$(date +%s%N)
run backup --tag stop-backup --deadline 4
ms=$(( ($(date +%s%N) - start) / 1000000 ))
wait $ipid; irc=$?
unset CRESTIC_TEST_READ_BPS
expect_true "the running backup wound down with a partial snapshot (exit $irc)" test $irc = 3
expect_true "the stop backup then ran within its deadline (exit $RC, ${ms} ms)" test "$ms" -lt 4000 -a \( "$RC" = 0 -o "$RC" = 3 \)

# ===========================================================================
section "module scripts: start, interval backups, stop (local repository)"
ws mod
export CRESTIC_SOURCE=$CRESTIC BACKUP_PATHS="[\"$W/home\"]" DIRECTORY=$W/home RETENTION_LAST=50
export BACKUP_TAGS='["it'"'"'s mine"]'            # a quote survives main.tf -> start.sh -> config
export BACKUP_INTERVAL_SECONDS=1 AUTO_FORGET=true
run bash "$MODULE/start.sh"
expect_true "start: exit 0" test "$RC" = 0
expect_grep "$OUT" '^Repository already initialized$' "start: existing repository left alone"
expect_grep "$OUT" '^No previous backup found$' "start: fresh workspace"
make_files "$W/home"
for _ in $(seq 100); do [ "$(grep -c '^Scheduled backup completed' "$W/data/interval-backup.log" 2>/dev/null)" -ge 1 ] && break; sleep 0.1; done
mv "$T/repo" "$T/repo.away"                     # storage gone for a while
for _ in $(seq 100); do grep -q '^Scheduled backup failed (exit 10)' "$W/data/interval-backup.log" && break; sleep 0.1; done
mv "$T/repo.away" "$T/repo"
n0=$(grep -c '^Scheduled backup completed' "$W/data/interval-backup.log")
for _ in $(seq 100); do [ "$(grep -c '^Scheduled backup completed' "$W/data/interval-backup.log")" -gt "$n0" ] && break; sleep 0.1; done
expect_grep "$W/data/interval-backup.log" '^Scheduled backup failed \(exit 10\); retrying' "interval: a failure is logged"
expect_true "interval: retried and completed after the failure" test "$(grep -c '^Scheduled backup completed' "$W/data/interval-backup.log")" -gt "$n0"
CUSTOM_STOP_SCRIPT="echo user stop script ran" STOP_DEADLINE=30 run bash "$MODULE/stop.sh"
expect_true "stop: exit 0" test "$RC" = 0
expect_grep "$OUT" '^user stop script ran$' "stop: custom stop script first"
expect_true "stop: the interval loop is gone" test ! -e "$W/data/interval-backup.pid"
expect_true "the configured tag with a quote and a space" test "$(snap_count workspace-id:id-mod,"it's mine",stop-backup)" = 1
expect_true "interval and stop backups tagged" test "$(snap_count workspace-id:id-mod,interval-backup)" -ge 2 -a "$(snap_count workspace-id:id-mod,stop-backup)" = 1
tree_list "$W/home" >"$T/mod.list"
rm -rf "$W/home" && mkdir -p "$W/home"
BACKUP_INTERVAL_SECONDS=0 run bash "$MODULE/start.sh"
tree_list "$W/home" >"$T/mod2.list"
expect_same "$T/mod.list" "$T/mod2.list" "start in a wiped home restores it"

# ===========================================================================
section "REST server (rclone serve restic): the same lifecycle through the module"
need_server_tool "rclone" rclone version
PORT=$(free_port)
mkdir -p "$T/rest-data"
rclone serve restic --addr "127.0.0.1:$PORT" --config /dev/null "$T/rest-data" >"$T/rclone.log" 2>&1 &
bg_register $!
wait_tcp "$PORT" || fail "rclone serve restic did not start"
export RESTIC_REPOSITORY=rest:http://127.0.0.1:$PORT/
ws rest
export BACKUP_TAGS='[]'
# a data dir inside the home (as the default ~/.local/share/coder): never backed up
export CODER_SCRIPT_DATA_DIR=$W/home/.data
export BACKUP_PATHS="[\"$W/home\"]" DIRECTORY=$W/home BACKUP_INTERVAL_SECONDS=0
run bash "$MODULE/start.sh"
expect_true "REST start: exit 0" test "$RC" = 0
expect_grep "$OUT" '^Initializing repository...$' "REST: missing repository initialised"
expect_grep "$OUT" '^No previous backup found$' "REST: fresh workspace"
make_files "$W/home"
run bash "$MODULE/stop.sh"
expect_true "REST stop: exit 0" test "$RC" = 0
expect_true "the data dir inside the home is not in the snapshot" test -z "$("$CRESTIC" ls latest | grep '/\.data')"
tree_list "$W/home" >"$T/rest.list"
rm -rf "$W/home" && mkdir -p "$W/home"
mkdir -p "$W/home/.data"
run bash "$MODULE/start.sh"
expect_grep "$OUT" '^Restore completed successfully$' "REST: restored"
tree_list "$W/home" >"$T/rest2.list"
expect_same "$T/rest.list" "$T/rest2.list" "REST: start in a wiped home restores it"
CRESTIC_STATS_FILE=$T/stats run bash "$MODULE/stop.sh"
expect_true "REST: stop after restore reads nothing" test "$RC" = 0 -a "$(stat_of bytes_read)" = 0

section "unreachable storage: exit 13, no init, no restore"
DEAD=$(free_port)
ws rest-dead
conf
touch "$W/home/sentinel"
rm -f "$W/data/restic-restore.failed"
find "$W/home" -mindepth 1 ! -name sentinel -delete
CRESTIC_HTTP_RETRY_MAX_SECONDS=1 RESTIC_REPOSITORY=rest:http://127.0.0.1:$DEAD/ run restore
golden restore-unreachable
no_restore_happened "unreachable"
CRESTIC_HTTP_RETRY_MAX_SECONDS=1 RESTIC_REPOSITORY=rest:http://127.0.0.1:$DEAD/ run bash "$MODULE/start.sh"
expect_true "start with unreachable storage: exit 13 (from the restore)" test "$RC" = 13
expect_grep "$ERR" '^Error: the repository could not be checked \(exit 1\), not initializing it' "start: check failure reported"
expect_true "start with unreachable storage: no init attempted" test -z "$(grep '^Initializing' "$OUT")"

finish
