#!/usr/bin/env bash
# crestic repair snapshots (today's restic; 0.14 lacks it): after
# `repair index` + `repair snapshots --forget` + `prune`, restic 0.14's check
# --read-data passes on repositories that lost data packs, subtrees or root
# trees; restic's messages; --dry-run writes nothing.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic

checked() {
    run rs -r "$1" check --read-data
    if [ $RC = 0 ] && grep -q 'no errors were found' "$OUT"; then pass "$2: restic check --read-data"; else fail "$2: restic check --read-data" "rc $RC"; show "$OUT"; show "$ERR"; fi
}
nsnap() { find "$1/snapshots" -type f | wc -l; }
# packs holding tree blobs, from restic's view of the index
tree_packs() {
    local id
    for id in $(rs -r "$1" list index); do rs -r "$1" cat index "$id"; echo; done | "$PY" -c '
import json, sys
for line in sys.stdin:
    line = line.strip()
    if not line: continue
    for p in json.loads(line)["packs"]:
        if any(b["type"] == "tree" for b in p["blobs"]): print(p["id"])' | sort -u
}
rm_packs() { local p; for p in "$@"; do rm -f "$1"/data/*/"$p"; done; }

section "a lost data pack (upstream repo-data-missing)"
export RESTIC_PASSWORD=geheim
repo=$(unpack_upstream repo-data-missing)
rs -r "$repo" ls -l latest | tail -n +2 | awk '{print $1, $NF}' >"$T/before.ls"
expect_exit 0 cr -r "$repo" repair index
files_before=$(find "$repo" -type f | sort | md5sum)
run cr -r "$repo" repair snapshots --dry-run
expect_true "dry run: exit 0" test "$RC" = 0
expect_grep "$OUT" '^snapshot d6f984f6 of \[/home/thinkpad/data\] at 2020-07-09 11:33:27\.348934779 \+0200 \+0200 by alex@thinkpad$' "dry run: snapshot line"
expect_grep "$OUT" '^  file "/home/thinkpad/data/test": removed missing content$' "dry run: removed missing content"
expect_grep "$OUT" '^would save new snapshot$' "dry run: would save"
expect_grep "$OUT" '^would modify 1 snapshots$' "dry run: summary"
expect_true "dry run: repository untouched" test "$(find "$repo" -type f | sort | md5sum)" = "$files_before"
run cr -r "$repo" repair snapshots --forget
expect_true "repair --forget: exit 0" test "$RC" = 0
expect_grep "$OUT" '^saved new snapshot [0-9a-f]{8}$' "repair --forget: saved"
expect_grep "$OUT" '^removed old snapshot d6f984f6$' "repair --forget: removed old"
expect_grep "$OUT" '^modified 1 snapshots$' "repair --forget: summary"
expect_exit 0 cr -r "$repo" prune
checked "$repo" "repo-data-missing repaired"
rs -r "$repo" ls -l latest | tail -n +2 | awk '{print $1, $NF}' >"$T/after.ls"
expect_same "$T/before.ls" "$T/after.ls" "repo-data-missing: same entries after the repair"
run cr -r "$repo" repair snapshots
expect_grep "$OUT" '^no snapshots were modified$' "second repair: nothing to do"

section "lost subtrees (tree packs gone below rewritten roots)"
export RESTIC_PASSWORD=fixture-password
repo=$(copy_repo v2-two-snapshots)
old_trees=$(tree_packs "$repo")
expect_exit 0 cr -r "$repo" rewrite --forget --exclude /src/big.bin
for p in $old_trees; do rm -f "$repo"/data/*/"$p"; done
expect_exit 0 cr -r "$repo" repair index
run cr -r "$repo" repair snapshots --forget
expect_true "subtrees: exit 0" test "$RC" = 0
expect_grep "$OUT" '^  dir "/src/sub": replaced with empty directory$' "subtrees: replaced with empty directory"
expect_grep "$OUT" '^modified 2 snapshots$' "subtrees: summary"
expect_exit 0 cr -r "$repo" prune
checked "$repo" "subtrees repaired"
run rs -r "$repo" ls latest
expect_grep "$OUT" '^/src/sub$' "subtrees: /src/sub still listed"
expect_true "subtrees: nothing below /src/sub" test "$(grep -c '^/src/sub/' "$OUT")" = 0

section "lost root trees"
for p in $(tree_packs "$repo"); do rm -f "$repo"/data/*/"$p"; done
expect_exit 0 cr -r "$repo" repair index
run cr -r "$repo" repair snapshots
expect_true "roots: exit 0" test "$RC" = 0
expect_grep "$OUT" '^  dir "/": not readable$' "roots: not readable"
expect_grep "$OUT" '^removed empty snapshot [0-9a-f]{8}$' "roots: removed empty snapshot"
expect_true "roots: no snapshots left" test "$(nsnap "$repo")" = 0
expect_exit 0 cr -r "$repo" prune
checked "$repo" "roots repaired"
finish
