#!/usr/bin/env bash
# The read-only commands beyond what test_snapshots.sh / test_ls_cat_list.sh
# compare with restic 0.14:
#
#  * byte identity where restic 0.14 can be the reference: `dump` tar and zip
#    streams (every header byte, PAX records, padding), a dumped file.
#  * behaviour of today's restic (0.17–0.19) that 0.14 lacks, checked against
#    what it must be: `ls --ncdu` (pinned in golden/cmds), `ls --sort/--reverse/
#    --human-readable`, the ls --json members today's restic adds
#    (message_type, inode), `cat tree snapshot:subfolder`, `list packs
#    SNAPSHOT`, `dump --target` and `snapshot:subfolder`, `version --json`,
#    `key list --json` with full IDs.  `cat index` is restic 0.14's byte for
#    byte (the stored document, which ends in a newline, printed with Println).
#  * crestic's extensions: unique ID prefixes for every `cat` type and
#    `cat snapshot latest`.
#
# usage: bash tests/e2e/test_cmds_extra.sh path/to/crestic
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic

S=$T/s
GOLDEN=$E2E_DIR/golden/cmds
mkdir -p "$S"
P=$FIXTURE_PASSWORD

# cmp_rs LABEL ARGS...: restic 0.14 and crestic on the same command line,
# stdout byte for byte (the reference run is cached by `ref`).
cmp_rs() {
    local label=$1; shift
    ref "$RESTIC" --no-lock "$@"
    cp "$OUT" "$S/$label.restic"
    if [ "$RC" -ne 0 ]; then fail "$label: restic failed (exit $RC): harness problem"; show "$ERR"; return 1; fi
    expect_exit 0 cr --no-lock "$@" || return 1
    cp "$OUT" "$S/$label.crestic"
    expect_same "$S/$label.restic" "$S/$label.crestic" "$label: byte for byte as restic 0.14"
}

# ---------------------------------------------------------------------------
section "dump: tar and zip streams byte for byte"
export RESTIC_PASSWORD=$P
for name in $(fixture_repo_names); do
    R=$(copy_repo "$name")
    cmp_rs "$name-tar-src" -r "$R" dump latest /src
    cmp_rs "$name-tar-root" -r "$R" dump latest /
    cmp_rs "$name-tar-sub" -r "$R" dump latest /src/sub
    cmp_rs "$name-zip-src" -r "$R" dump -a zip latest /src
    cmp_rs "$name-file" -r "$R" dump latest /src/big.bin
done
export RESTIC_PASSWORD=$UPSTREAM_PASSWORD
for name in small-repo repo-restore-permissions-test repo-mixed copy-unstable-json; do
    U=$(unpack_upstream "$name")
    for id in $(snapshot_ids "$U" "$UPSTREAM_PASSWORD"); do
        cmp_rs "$name-${id:0:8}-tar" -r "$U" dump "$id" /
        cmp_rs "$name-${id:0:8}-zip" -r "$U" dump --archive zip "$id" /
    done
done
export RESTIC_PASSWORD=$P

R=$(copy_repo v2 "$T/repos/v2x")
section "dump: --target, snapshot:subfolder, errors"
expect_exit 0 cr -r "$R" dump latest /src/sub
cp "$OUT" "$S/sub.tar"
expect_exit 0 cr -r "$R" dump --target "$S/target.tar" latest /src/sub
expect_same "$S/sub.tar" "$S/target.tar" "dump --target writes what stdout would get"
expect_exit 0 cr -r "$R" dump latest:/src sub
expect_true "dump latest:/src sub: member names relative to the subfolder" "$PY" -c '
import sys, tarfile
names=[m.name for m in tarfile.open(sys.argv[1])]
sys.exit(0 if names==["sub/deeper","sub/deeper/deep.bin","sub/hardlink.bin","sub/nested.txt"] else 1)' "$OUT"
expect_exit 0 cr -r "$R" dump latest:/src/sub nested.txt
printf 'nested file\n' >"$S/nested.want"
expect_same "$S/nested.want" "$OUT" "dump latest:/src/sub nested.txt prints the file"
expect_exit 1 cr -r "$R" dump latest /src/nope
expect_grep "$ERR" 'cannot dump file: path "/src/nope" not found in snapshot' "missing path: restic's message"
expect_exit 1 cr -r "$R" dump latest /src/link-to-small
expect_grep "$ERR" '"/src/link-to-small" should be a file, but is a "symlink"' "symlink: restic's message"
expect_exit 1 cr -r "$R" dump -a rar latest /src
expect_grep "$ERR" 'unknown archive format "rar"' "unknown archive format"
expect_exit 1 cr -r "$R" dump latest
expect_grep "$ERR" 'no file and no snapshot ID specified' "dump without a file"

# ---------------------------------------------------------------------------
section "ls: today's restic additions"
expect_exit 0 cr -r "$R" ls --ncdu latest
expect_same "$GOLDEN/ls-ncdu-v2.txt" "$OUT" "ls --ncdu (pinned output)"
expect_true "ls --ncdu output is one JSON document" "$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$OUT"
expect_exit 0 cr -r "$R" ls --ncdu latest /src/sub
expect_same "$GOLDEN/ls-ncdu-v2-sub.txt" "$OUT" "ls --ncdu with a directory filter (pinned output)"
expect_exit 1 cr -r "$R" ls --ncdu --json latest
expect_grep "$ERR" "only either '--json' or '--ncdu' can be specified" "--ncdu with --json refused"
expect_exit 1 cr -r "$R" ls --ncdu --sort size latest
expect_grep "$ERR" -- "--sort and --ncdu are mutually exclusive" "--ncdu with --sort refused"

expect_exit 0 cr -r "$R" ls -l --sort size latest
tail -n +2 "$OUT" >"$S/by-size"
expect_true "ls --sort size: sizes ascending, ties by path" "$PY" -c '
import sys
rows=[l.split(None,6) for l in open(sys.argv[1],"rb").read().splitlines()]
keys=[(int(r[3]), r[6].split(b" -> ")[0]) for r in rows]
sys.exit(0 if keys==sorted(keys) and len(keys)==19 else 1)' "$S/by-size"
expect_exit 0 cr -r "$R" ls --sort size --reverse latest
tail -n +2 "$OUT" >"$S/by-size-rev"
"$PY" -c '
import sys
rows=[l.split(None,6)[6].split(b" -> ")[0] for l in open(sys.argv[1],"rb").read().splitlines()]
sys.stdout.buffer.write(b"".join(r+b"\n" for r in reversed(rows)))' "$S/by-size" >"$S/by-size-paths-rev"
expect_same "$S/by-size-paths-rev" "$S/by-size-rev" "ls --sort size --reverse is the reverse order"
expect_exit 0 cr -r "$R" ls --sort extension latest
expect_true "ls --sort extension: extension order (Go filepath.Ext), ties by path" "$PY" -c '
import sys
paths=open(sys.argv[1],"rb").read().splitlines()[1:]
def ext(p):
    base=p.rsplit(b"/",1)[-1]; i=base.rfind(b".")
    return base[i:] if i>=0 else b""
sys.exit(0 if sorted(paths, key=lambda p: (ext(p), p))==paths and len(paths)==19 else 1)' "$OUT"
expect_exit 0 cr -r "$R" ls -l --human-readable latest /src/big.bin
expect_grep "$OUT" '^-rw-r--r--     0     0 13\.286 MiB 2021-06-15 12:00:00 /src/big\.bin$' "ls --human-readable size"
expect_exit 1 cr -r "$R" ls --sort bogus latest
expect_grep "$ERR" 'invalid sort mode "bogus"' "bad --sort value"

expect_exit 0 cr -r "$R" ls --json latest
expect_true "ls --json: message_type on every line, inode on nodes" "$PY" -c '
import json, sys
lines=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ok = lines[0]["message_type"]=="snapshot" and lines[0]["struct_type"]=="snapshot"
ok = ok and all(l["message_type"]=="node" and l["struct_type"]=="node" and l["inode"]>0 for l in lines[1:])
sys.exit(0 if ok and len(lines)==20 else 1)' "$OUT"
expect_exit 0 cr -r "$R" ls latest
expect_grep "$OUT" '^snapshot 47d9408e of \[/tmp/restic-fixture/src\] at 2023-01-01 11:00:00 \+0000 UTC by root@fixture-host filtered by \[\]:$' "ls header in today's form"
expect_exit 0 cr -q -r "$R" ls latest /src
expect_true "ls -q drops the header line" test "$(head -n 1 "$OUT")" = /src

# ---------------------------------------------------------------------------
section "cat: tree, prefixes, latest, index newline"
expect_exit 0 cr -r "$R" cat tree latest:/src/sub
cp "$OUT" "$S/tree-sub"
expect_true "cat tree latest:/src/sub is a tree blob (nodes deeper, hardlink.bin, nested.txt)" "$PY" -c '
import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if [n["name"] for n in d["nodes"]]==["deeper","hardlink.bin","nested.txt"] else 1)' "$S/tree-sub"
tid=$(sha256sum "$S/tree-sub" | cut -c1-64)
expect_exit 0 cr -r "$R" cat blob "$tid"
expect_same "$S/tree-sub" "$OUT" "cat blob <id of that tree> gives the same bytes"
expect_exit 0 cr -r "$R" cat blob "${tid:0:10}"
expect_same "$S/tree-sub" "$OUT" "cat blob with an ID prefix"
for t in key index lock; do
    dir=$t; [ $t = key ] && dir=keys; [ $t = lock ] && dir=locks
    [ $t = lock ] && cp "$FIXTURES"/samples/lock-* "$R/locks/$(basename "$FIXTURES"/samples/lock-* | sed 's/^lock-//')"
    id=$(ls "$R/$dir" | head -n 1)
    expect_exit 0 cr --no-lock -r "$R" cat $t "$id"; cp "$OUT" "$S/cat-$t-full"
    expect_exit 0 cr --no-lock -r "$R" cat $t "${id:0:8}"
    expect_same "$S/cat-$t-full" "$OUT" "cat $t with an ID prefix"
done
rm -f "$R"/locks/*
idx=$(ls "$R/index" | head -n 1)
expect_exit 0 cr -r "$R" cat index "$idx"
expect_true "cat index ends as restic 0.14's: the document's newline, then Println's" "$PY" -c '
import sys; d=open(sys.argv[1],"rb").read(); sys.exit(0 if d.endswith(b"}\n\n") else 1)' "$OUT"
expect_exit 0 cr -r "$R" cat snapshot latest
cp "$OUT" "$S/snap-latest"
expect_exit 0 cr -r "$R" cat snapshot 47d9408e
expect_same "$S/snap-latest" "$OUT" "cat snapshot latest"
expect_exit 1 cr -r "$R" cat blob 00000000
expect_grep "$ERR" 'blob not found' "cat blob unknown: blob not found"
expect_exit 1 cr -r "$R" cat frob
expect_grep "$ERR" 'invalid type "frob"' "cat unknown type"
expect_exit 1 cr -r "$R" cat key
expect_grep "$ERR" 'ID not specified' "cat key without ID"

# ---------------------------------------------------------------------------
section "list packs SNAPSHOT, list locks"
R2=$(copy_repo v2-two-snapshots "$T/repos/two")
expect_exit 0 cr -r "$R2" list packs; sort "$OUT" >"$S/all-packs"
expect_exit 0 cr -r "$R2" list packs 595d1c1a; cp "$OUT" "$S/packs-1"
expect_exit 0 cr -r "$R2" list packs c4395036; cp "$OUT" "$S/packs-2"
expect_true "list packs SNAPSHOT: sorted" cmp -s "$S/packs-1" <(sort "$S/packs-1")
sort -u "$S/packs-1" "$S/packs-2" >"$S/union"
expect_same "$S/all-packs" "$S/union" "both snapshots' packs together are all packs"
expect_exit 0 cr -r "$R" list packs latest; sort "$OUT" >"$S/v2-snap-packs"
expect_exit 0 cr -r "$R" list packs; sort "$OUT" >"$S/v2-packs"
expect_same "$S/v2-packs" "$S/v2-snap-packs" "a single-snapshot repository needs all its packs"
expect_exit 0 cr -r "$R" list locks
expect_empty "$OUT" "list locks takes no lock of its own"
expect_exit 1 cr -r "$R" list frob
expect_grep "$ERR" 'invalid type' "list unknown type"

# ---------------------------------------------------------------------------
section "version, key"
expect_exit 0 cr version
expect_grep "$OUT" '^crestic [0-9][^ ]* \(restic-compatible\) compiled with .* on [a-z0-9]+/[a-z0-9]+$' "version line"
expect_exit 0 cr version --json
expect_true "version --json: restic's members" "$PY" -c '
import json,sys; d=json.load(open(sys.argv[1]))
sys.exit(0 if list(d)==["message_type","version","go_version","go_os","go_arch"] and d["message_type"]=="version" else 1)' "$OUT"
expect_exit 0 cr -r "$R" key list --json
expect_true "key list --json: full IDs (today's restic)" "$PY" -c '
import json,sys; d=json.load(open(sys.argv[1]))
sys.exit(0 if sorted(k["id"] for k in d)==sys.argv[2:] and sum(k["current"] for k in d)==1 else 1)' "$OUT" $(ls "$R/keys" | sort)
expect_exit 0 cr key
expect_grep "$OUT" 'Available Commands' "key without a subcommand prints its help"

# ---------------------------------------------------------------------------
section "locks are released on every path"
expect_exit 1 cr -r "$R" dump latest /src/nope
expect_exit 1 cr -r "$R" ls latest:/nope
expect_exit 1 cr -r "$R" cat blob 00000000
expect_true "no lock file left behind" test -z "$(ls "$R/locks")"

finish
