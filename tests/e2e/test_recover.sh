#!/usr/bin/env bash
# crestic recover vs restic 0.14 on a repository whose snapshot file was
# deleted: the same messages, the same recovered snapshot (paths, tags, host,
# user) and tree (one directory per unreferenced root), identical listings,
# restic check --read-data, and a second run that finds nothing.  (The tree
# IDs differ: the directories carry the time of the run.)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic
export RESTIC_PASSWORD=fixture-password

norm() { sed -E 's/^saved new snapshot [0-9a-f]{8}$/saved new snapshot ID/' "$1"; }
recovered() { # REPO -> the snapshot document without time, then its tree without times
    local sn tree
    sn=$(rs -r "$1" snapshots --json --tag recovered | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
    rs -r "$1" cat snapshot "$sn" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); d.pop("time"); d.pop("tree"); print(json.dumps(d, sort_keys=True))'
    tree=$(rs -r "$1" cat snapshot "$sn" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["tree"])')
    rs -r "$1" cat blob "$tree" | "$PY" -c '
import json, sys
for n in json.load(sys.stdin)["nodes"]:
    for k in ("mtime", "atime", "ctime"): n.pop(k)
    print(json.dumps(n, sort_keys=True))'
    rs -r "$1" ls "$sn" | tail -n +2
}

rsrepo=$(copy_repo v2-two-snapshots "$T/rs")
rm "$rsrepo"/snapshots/595d1c1a*
crrepo=$T/cr; cp -a "$rsrepo" "$crrepo"

section "recover after a lost snapshot file"
rs -r "$rsrepo" recover >"$T/rs.out" 2>"$T/rs.err"; rsrc=$?
run cr -r "$crrepo" recover
expect_true "recover: exit $rsrc as restic" test "$RC" = "$rsrc"
norm "$T/rs.out" >"$T/rs.norm"; norm "$OUT" >"$T/cr.norm"
expect_same "$T/rs.norm" "$T/cr.norm" "recover: same output as restic"
recovered "$rsrepo" >"$T/rs.rec"; recovered "$crrepo" >"$T/cr.rec"
expect_same "$T/rs.rec" "$T/cr.rec" "recover: same snapshot, tree and listing as restic"
run rs -r "$crrepo" check --read-data
expect_true "recover: restic check --read-data" test "$RC" = 0

section "nothing left to recover"
rs -r "$rsrepo" recover >"$T/rs.out" 2>&1
run cr -r "$crrepo" recover
expect_same "$T/rs.out" "$OUT" "second recover: same output as restic"
expect_grep "$OUT" '^no snapshot to write\.$' "second recover: no snapshot to write"
expect_true "second recover: still two snapshots" test "$(find "$crrepo/snapshots" -type f | wc -l)" = 2

section "several roots (no snapshots at all)"
rs2=$(copy_repo v2-two-snapshots "$T/rs2")
rm "$rs2"/snapshots/*
cr2=$T/cr2; cp -a "$rs2" "$cr2"
rs -r "$rs2" recover >"$T/rs.out" 2>&1
run cr -r "$cr2" recover
norm "$T/rs.out" >"$T/rs.norm"; norm "$OUT" >"$T/cr.norm"
expect_same "$T/rs.norm" "$T/cr.norm" "two roots: same output as restic"
recovered "$rs2" >"$T/rs.rec"; recovered "$cr2" >"$T/cr.rec"
expect_same "$T/rs.rec" "$T/cr.rec" "two roots: same snapshot, tree and listing as restic"
finish
