#!/usr/bin/env bash
# crestic backup against restic 0.14 as the peer:
#  * a generated tree with every node type and awkward names
#    (tests/tools/gen_tree.py): crestic backup -> restic check --read-data
#    -> restic restore gives back the same tree (tests/tools/manifest.py);
#  * tree identity: restic backing up the unchanged tree on top of crestic's
#    snapshot gets the same root tree and reads nothing, and the reverse
#    (crestic on top of restic's snapshot: every file unmodified, no blobs);
#  * root tree layout for absolute targets, several targets, name clashes;
#  * excludes (--exclude, --iexclude, --exclude-file, --exclude-caches,
#    --exclude-if-present, --exclude-larger-than): same file list as
#    `restic backup --dry-run -vv` and the same tree as restic's backup;
#  * --stdin, --files-from(-verbatim, -raw), --tag, --host, --time, --parent,
#    --force, --skip-if-unchanged, --dry-run, --json messages.
#
# usage: bash tests/e2e/test_backup_roundtrip.sh path/to/crestic
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic

export RESTIC_PASSWORD=test-password
GEN=$TOOLS/gen_tree.py

# tree ID of the newest snapshot (optionally with a tag)
latest_tree() { # REPO [TAG]
    rs -r "$1" --no-lock snapshots --json ${2:+--tag "$2"} | "$PY" -c 'import json,sys
s=json.load(sys.stdin); s.sort(key=lambda x:x["time"]); print(s[-1]["tree"])'
}
latest_id() { # REPO [TAG]
    rs -r "$1" --no-lock snapshots --json ${2:+--tag "$2"} | "$PY" -c 'import json,sys
s=json.load(sys.stdin); s.sort(key=lambda x:x["time"]); print(s[-1]["id"])'
}
# a field of the last JSON summary line in a file
summary_field() { # FILE FIELD
    "$PY" -c 'import json,sys
for l in open(sys.argv[1], encoding="utf-8", errors="replace"):
    l=l.strip()
    if l.startswith("{"):
        m=json.loads(l)
        if m.get("message_type")=="summary": v=m.get(sys.argv[2])
print(v)' "$1" "$2"
}
# subtree ID of the node at a path below a snapshot's root tree
subtree_at() { # REPO SNAPSHOT-ID PATH
    local repo=$1 id=$2 path=$3 tree
    tree=$(rs -r "$repo" --no-lock cat snapshot "$id" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["tree"])')
    local IFS=/
    for comp in ${path#/}; do
        tree=$(rs -r "$repo" --no-lock cat blob "$tree" | "$PY" -c 'import json,sys
for n in json.load(sys.stdin)["nodes"]:
    if n["name"]==sys.argv[1]: print(n["subtree"])' "$comp")
    done
    echo "$tree"
}

REPO=$T/repo
rs init -r "$REPO" -q >/dev/null 2>&1 || { fail "restic init"; finish; }
cheapen_keys "$REPO" "$RESTIC_PASSWORD"   # many program runs follow
mkdir -p "$T/w"
"$PY" "$GEN" "$T/w/src" --big-mb 12 || { fail "gen_tree.py"; finish; }
cd "$T/w" || exit 1

section "round trip: crestic backup, restic check --read-data, restic restore"
expect_exit 0 cr -r "$REPO" backup src --tag first
expect_grep "$OUT" '^snapshot [0-9a-f]{8} saved$' "text output ends with 'snapshot X saved'"
expect_grep "$OUT" '^Files: +[0-9]+ new, +0 changed, +0 unmodified$' "Files: line"
expect_exit 0 rs -r "$REPO" check --read-data
expect_exit 0 rs -r "$REPO" restore latest --target "$T/restored"
manifest --no-atime --exclude special/socket src >"$T/m.src"
manifest --no-atime "$T/restored/src" >"$T/m.rst"
expect_same "$T/m.src" "$T/m.rst" "restic restore of crestic's snapshot equals the source tree"
CR_TREE=$(latest_tree "$REPO")

section "tree identity with restic 0.14"
expect_exit 0 rs -r "$REPO" backup src --json --tag second
cp "$OUT" "$T/rs.json"
expect_true "restic found crestic's snapshot as parent and read no file" \
    test "$(summary_field "$T/rs.json" files_new)$(summary_field "$T/rs.json" files_changed)" = "00"
expect_true "restic stored no new blob on top of crestic's snapshot" \
    test "$(summary_field "$T/rs.json" data_blobs)/$(summary_field "$T/rs.json" tree_blobs)" = "0/0"
RS_TREE=$(latest_tree "$REPO" second)
expect_true "restic's root tree equals crestic's ($CR_TREE)" test "$RS_TREE" = "$CR_TREE"
expect_exit 0 cr -r "$REPO" backup src --json --tag third
cp "$OUT" "$T/cr.json"
NFILES=$(summary_field "$T/rs.json" files_unmodified)
expect_true "crestic on top of restic's snapshot: all $NFILES files unmodified" \
    test "$(summary_field "$T/cr.json" files_unmodified)/$(summary_field "$T/cr.json" files_new)" = "$NFILES/0"
expect_true "crestic on top of restic's snapshot: no new blobs" \
    test "$(summary_field "$T/cr.json" data_blobs)/$(summary_field "$T/cr.json" tree_blobs)" = "0/0"
expect_true "crestic's unchanged snapshot has the same tree" test "$(latest_tree "$REPO" third)" = "$CR_TREE"
PARENT=$(rs -r "$REPO" --no-lock snapshots --json --tag third | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["parent"])')
expect_true "crestic used restic's snapshot as parent" test "$PARENT" = "$(latest_id "$REPO" second)"

section "a modified tree: changed files detected like restic"
echo "more" >>src/files/tiny.txt
touch -d '2001-01-01' src/files/readonly
echo "new file" >src/dirs/brand-new
expect_exit 0 cr -r "$REPO" backup src --json --tag fourth
cp "$OUT" "$T/cr4.json"
expect_true "crestic: 1 new file, 2 changed" \
    test "$(summary_field "$T/cr4.json" files_new)/$(summary_field "$T/cr4.json" files_changed)" = "1/2"
expect_exit 0 rs -r "$REPO" backup src --json --tag fifth
expect_true "restic on top of the modified snapshot: same tree, nothing read" \
    test "$(latest_tree "$REPO" fifth)/$(summary_field "$OUT" files_new)$(summary_field "$OUT" files_changed)" = "$(latest_tree "$REPO" fourth)/00"

section "absolute targets, several targets, name clashes"
mkdir -p "$T/w/a/x" "$T/w/x" "$T/w/b"
echo one >"$T/w/a/x/f"; echo two >"$T/w/x/g"; echo three >"$T/w/b/h"
expect_exit 0 cr -r "$REPO" backup "$T/w/a/x" "$T/w/b" --tag abs
CR_ID=$(latest_id "$REPO" abs)
expect_exit 0 rs -r "$REPO" backup "$T/w/a/x" "$T/w/b" --tag abs2
RS_ID=$(latest_id "$REPO" abs2)
expect_true "absolute targets: same subtree at $T/w (intermediate directories carry real metadata)" \
    test "$(subtree_at "$REPO" "$CR_ID" "$T/w/a")" = "$(subtree_at "$REPO" "$RS_ID" "$T/w/a")"
rs -r "$REPO" --no-lock cat snapshot "$CR_ID" >"$T/abs.json"
expect_true "snapshot paths: absolute, as given" "$PY" -c 'import json,sys
assert json.load(open(sys.argv[1]))["paths"]==[sys.argv[2]+"/a/x",sys.argv[2]+"/b"]' "$T/abs.json" "$T/w"
cd "$T/w/a" || exit 1
expect_exit 0 cr -r "$REPO" backup x ../x ../b --tag clash
expect_exit 0 rs -r "$REPO" backup x ../x ../b --tag clash2
expect_true "same top-level names from different roots: x, x-1 (same tree as restic)" \
    test "$(latest_tree "$REPO" clash)" = "$(latest_tree "$REPO" clash2)"
rs -r "$REPO" --no-lock ls "$(latest_id "$REPO" clash)" >"$T/clash.ls" 2>&1
expect_grep "$T/clash.ls" '^/x-1/g$' "/x-1/g listed"
cd "$T/w" || exit 1

section "excludes: same selection as restic"
touch src/dirs/CACHEDIR.TAG
printf 'Signature: 8a477f597d28d172789f06886806bc55 more' >src/files/CACHEDIR.TAG
echo skip >src/links/.nobackup
printf '*.bin\n# a comment\n\n   %s/src/names/with*   \n' "$T/w" >"$T/exfile"
printf 'CAMELCASE\n' >"$T/iexfile"
EXARGS=(--exclude-caches --exclude-if-present .nobackup --exclude-larger-than 2k --exclude-file "$T/exfile"
        --iexclude-file "$T/iexfile" --iexclude '*/DIRS/a/b' --exclude '/nowhere/*')
# -vv output -> sorted item paths.  Names with non-printable bytes are left
# out: restic 0.14 prints them raw, today's restic (and crestic) quoted.
selection() {
    "$PY" -c '
import re,sys
for l in sys.stdin.buffer.read().split(b"\n"):
    m = re.match(rb"^(?:new|modified) +(/.*?), saved in .*$", l)
    p = m and m.group(1)  # (a name with a newline breaks its line: not matched)
    if p and all(0x20 <= c < 0x7f for c in p):
        sys.stdout.buffer.write(p + b"\n")
' | LC_ALL=C sort
}
rs -r "$REPO" backup src --dry-run -vv --force "${EXARGS[@]}" 2>/dev/null | selection >"$T/sel.rs"
cr -r "$REPO" backup src --dry-run -vv --force "${EXARGS[@]}" 2>/dev/null | selection >"$T/sel.cr"
expect_same "$T/sel.rs" "$T/sel.cr" "--dry-run -vv lists the same items as restic 0.14 (plain names)"
expect_exit 0 cr -r "$REPO" backup src "${EXARGS[@]}" --tag ex
expect_exit 0 rs -r "$REPO" backup src "${EXARGS[@]}" --tag ex2
expect_true "excluded backup: same tree as restic's" test "$(latest_tree "$REPO" ex)" = "$(latest_tree "$REPO" ex2)"
(cd src && cr -r "$REPO" backup . --exclude special --exclude '*.bin' --tag dot >/dev/null 2>&1 &&
    rs -r "$REPO" backup . --exclude special --exclude '*.bin' --tag dot2 >/dev/null 2>&1)
expect_true "target '.': its entries are not explicit, excludes apply to them (same tree as restic)" \
    test "$(latest_tree "$REPO" dot)" = "$(latest_tree "$REPO" dot2)"
rs -r "$REPO" --no-lock cat snapshot "$(latest_id "$REPO" ex)" >"$T/ex.json"
expect_true "snapshot records the --exclude patterns (as restic)" "$PY" -c 'import json,sys
assert json.load(open(sys.argv[1]))["excludes"]==["/nowhere/*"]' "$T/ex.json"
rs -r "$REPO" --no-lock ls "$(latest_id "$REPO" ex)" >"$T/ex.ls"
expect_true "CACHEDIR.TAG with the signature excludes its directory's contents" \
    bash -c "grep -q '^/src/files/CACHEDIR.TAG\$' '$T/ex.ls' && ! grep -q '^/src/files/tiny.txt\$' '$T/ex.ls'"
expect_true "a tag file without signature does not exclude" grep -q '^/src/dirs/hard3$' "$T/ex.ls"
expect_true "--exclude-if-present keeps the tag file, drops the rest" \
    bash -c "grep -q '^/src/links/.nobackup\$' '$T/ex.ls' && ! grep -q '^/src/links/hard1\$' '$T/ex.ls'"

section "--one-file-system"
mkdir -p "$T/xfs/src/mnt" "$T/xfs/src/dir"
echo a >"$T/xfs/src/a"
if mount -t tmpfs crestic-test "$T/xfs/src/mnt" 2>/dev/null; then
    mkdir "$T/xfs/src/mnt/sub"; echo b >"$T/xfs/src/mnt/b"; echo c >"$T/xfs/src/mnt/sub/c"
    (cd "$T/xfs" && cr -r "$REPO" backup src -x --tag xfs >/dev/null 2>&1 && rs -r "$REPO" backup src -x --tag xfs2 >/dev/null 2>&1)
    expect_true "-x: same tree as restic (mount point kept, its contents not)" \
        test "$(latest_tree "$REPO" xfs)" = "$(latest_tree "$REPO" xfs2)"
    rs -r "$REPO" --no-lock ls "$(latest_id "$REPO" xfs)" >"$T/xfs.ls"
    expect_true "-x: /src/mnt listed, /src/mnt/b not" bash -c "grep -q '^/src/mnt\$' '$T/xfs.ls' && ! grep -q '^/src/mnt/b' '$T/xfs.ls'"
    umount "$T/xfs/src/mnt"
else
    skip "-x: cannot mount a tmpfs here"
fi

section "--stdin, --files-from, --tag, --host, --time"
run bash -c "echo hello stdin | RESTIC_CACHE_DIR=$T/cache-crestic '$CRESTIC' -r '$REPO' backup --stdin --stdin-filename in.txt --time '2021-02-03 04:05:06' --host h1 -q"
expect_true "--stdin exit 0" test "$RC" = 0
run bash -c "echo hello stdin | RESTIC_CACHE_DIR=$T/cache-restic '$RESTIC' -r '$REPO' backup --stdin --stdin-filename in.txt --time '2021-02-03 04:05:06' --host h1 -q"
rs -r "$REPO" --no-lock snapshots --json --host h1 >"$T/h1.json"
expect_true "--stdin: same tree as restic's, time and paths as given" "$PY" -c 'import json,sys
s=json.load(open(sys.argv[1]))
assert len(s)==2 and s[0]["tree"]==s[1]["tree"], s
assert all(x["time"]=="2021-02-03T04:05:06Z" and x["paths"]==["/in.txt"] for x in s), s' "$T/h1.json"
STDIN_ID=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["id"])' "$T/h1.json")
expect_exit 0 rs -r "$REPO" --no-lock dump "$STDIN_ID" /in.txt
echo "hello stdin" >"$T/expect.stdin"
expect_same "$T/expect.stdin" "$OUT" "dump of the --stdin file"
printf 'src/fil*\n# comment\n\n  src/dirs/a  \n' >"$T/ff"
printf 'src/links\n' >"$T/ffv"
printf 'src/names/with space\0' >"$T/ffr"
expect_exit 0 cr -r "$REPO" backup --files-from "$T/ff" --files-from-verbatim "$T/ffv" --files-from-raw "$T/ffr" --tag 'ff, two' --tag three -H h2
# restic 0.14 drops members it does not know (program_version) when printing
cr -r "$REPO" --no-lock cat snapshot "$(latest_id "$REPO" three)" >"$T/ff.json"
expect_true "--files-from*: paths and tags as restic records them" "$PY" -c 'import json,sys
s=json.load(open(sys.argv[1])); w=sys.argv[2]
assert s["paths"]==[w+"/src/files",w+"/src/dirs/a",w+"/src/links",w+"/src/names/with space"], s["paths"]
assert s["tags"]==["ff","two","three"], s["tags"]
assert s["hostname"]=="h2" and s["program_version"].startswith("crestic "), s' "$T/ff.json" "$T/w"

expect_exit 0 cr -r "$REPO" backup --stdin-from-command --stdin-filename cmd.out --tag cmd -- printf 'from a command'
expect_exit 0 rs -r "$REPO" --no-lock dump "$(latest_id "$REPO" cmd)" /cmd.out
expect_true "--stdin-from-command: the command's output stored" test "$(cat "$OUT")" = "from a command"
N0=$(ls "$REPO/snapshots" | wc -l)
expect_exit 1 cr -r "$REPO" backup --stdin-from-command -- false
expect_true "--stdin-from-command: a failing command saves no snapshot" test "$(ls "$REPO/snapshots" | wc -l)" = "$N0"

section "--parent, --force, --skip-if-unchanged, --dry-run"
FIRST=$(latest_id "$REPO" first)
expect_exit 0 cr -r "$REPO" backup src --parent "${FIRST:0:8}" --json
expect_true "--parent: the given snapshot is the parent" test "$("$PY" -c 'import json,sys
print([json.loads(l) for l in open(sys.argv[1]) if "summary" in l][0]["files_unmodified"]>0)' "$OUT")" = True
expect_exit 0 cr -r "$REPO" backup src --force --json
expect_true "--force: every file read again" test "$(summary_field "$OUT" files_unmodified)" = 0
N0=$(ls "$REPO/snapshots" | wc -l)
expect_exit 0 cr -r "$REPO" backup src --skip-if-unchanged
expect_grep "$OUT" '^skipped creating snapshot$' "--skip-if-unchanged: message"
expect_true "--skip-if-unchanged: no snapshot written" test "$(ls "$REPO/snapshots" | wc -l)" = "$N0"
echo changed >>src/files/tiny.txt
find "$REPO" -type f | sort >"$T/files.before"
expect_exit 0 cr -r "$REPO" backup src --dry-run -v
expect_grep "$OUT" '^Would add to the repository: ' "--dry-run: 'Would add to the repository'"
find "$REPO" -type f | sort >"$T/files.after"
expect_same "$T/files.before" "$T/files.after" "--dry-run writes nothing (no lock, pack, index or snapshot)"

section "--json messages"
expect_exit 0 env RESTIC_PROGRESS_FPS=50 RESTIC_CACHE_DIR="$T/cache-crestic" "$CRESTIC" -r "$REPO" backup src --json -v --force
expect_true "every stdout line is JSON with a known message_type; summary last" "$PY" -c '
import json,sys
lines=[json.loads(l) for l in open(sys.argv[1])]
types={m["message_type"] for m in lines}
assert types <= {"status","verbose_status","summary"}, types
s=lines[-1]; assert s["message_type"]=="summary"
for k in ("files_new","files_changed","files_unmodified","dirs_new","dirs_changed","dirs_unmodified","data_blobs",
          "tree_blobs","data_added","data_added_packed","total_files_processed","total_bytes_processed",
          "total_duration","backup_start","backup_end","snapshot_id"):
    assert k in s, k
assert len(s["snapshot_id"])==64
v=[m for m in lines if m["message_type"]=="verbose_status"]
assert v and all(set(m)>={"action","item","duration","data_size"} for m in v)
assert any(m["action"]=="scan_finished" for m in v)
st=[m for m in lines if m["message_type"]=="status"]
assert all("percent_done" in m for m in st)' "$OUT"
expect_empty "$ERR" "--json: nothing on stderr"
expect_exit 0 rs -r "$REPO" check

finish
