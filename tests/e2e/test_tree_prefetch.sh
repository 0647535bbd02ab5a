#!/usr/bin/env bash
# Tree prefetch (src/repo/treecache.c): over a remote backend, walking a
# snapshot of 300 folders fetches the tree pack in a few requests instead of
# one per tree, and restores the same tree.  Counted on the server's side:
# rclone serve restic -vv logs every request.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_server_tool "rclone" rclone version

export RESTIC_PASSWORD=prefetch-test
for i in $(seq 1 300); do mkdir -p "$T/src/d$i/e"; echo "$i" >"$T/src/d$i/e/f"; done
manifest --no-atime "$T/src" >"$T/m.src"

PORT=$(free_port)
rclone serve restic --addr "127.0.0.1:$PORT" --config /dev/null -vv "$T/data" >"$T/rclone.log" 2>&1 &
bg_register $!
wait_tcp "$PORT" || { fail "rclone serve restic did not start"; finish; }
R=rest:http://127.0.0.1:$PORT/repo
expect_exit 0 cr -r "$R" init
expect_exit 0 cr -r "$R" backup "$T/src"

pack_gets() { grep -cE 'GET .*/data/' "$T/rclone.log"; }
for mode in off on; do
    : >"$T/rclone.log"
    if [ $mode = off ]; then export CRESTIC_TREE_PREFETCH=0; else unset CRESTIC_TREE_PREFETCH; fi
    expect_exit 0 cr -r "$R" restore latest --target "$T/out-$mode"
    manifest --no-atime "$T/out-$mode$T/src" >"$T/m.$mode"
    expect_same "$T/m.src" "$T/m.$mode" "restore with prefetch $mode equals the source"
    eval "GETS_$mode=$(pack_gets)"
done
unset CRESTIC_TREE_PREFETCH
expect_true "prefetch off: one pack read per tree at least ($GETS_off)" test "$GETS_off" -gt 300
expect_true "prefetch on (the default for remote backends): a few pack reads ($GETS_on)" test "$GETS_on" -le 5

: >"$T/rclone.log"
expect_exit 0 cr -r "$R" ls latest
expect_true "ls of 300 folders: a few pack reads ($(pack_gets))" test "$(pack_gets)" -le 3
finish
