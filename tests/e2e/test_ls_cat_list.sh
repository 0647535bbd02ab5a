#!/usr/bin/env bash
# ls, cat, list, dump and `key list` against restic 0.14.
#
#  ls     --json (one JSON document per line, parsed and compared), -l and
#         plain (byte for byte, TZ=UTC), --recursive, with and without a
#         directory filter (paths inside the snapshot: /src/sub).
#  cat    config, masterkey, snapshot (full and short ID), key, lock: JSON
#         parsed and compared; index: the decrypted (decompressed) document
#         byte for byte; pack and blob: by SHA-256 / bytes; `cat tree
#         SNAP[:PATH]` (newer syntax) against 0.14's `cat blob` of that tree.
#  list   keys, snapshots, index, packs, locks, blobs: as sorted sets (restic
#         0.14 prints one `list blobs` line per index entry, duplicates and
#         superseded index files included: only the set is compared).
#  dump   a file (bytes), a folder and "/" as tar (member list with every
#         header field + content hashes, tests/tools/tarlist.py), a folder
#         as zip.
#  key list --json: compared field by field, in any order; the table with
#         its rows in any order (restic lists keys in directory order).
#
# usage: bash tests/e2e/test_ls_cat_list.sh path/to/crestic
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic

S=$T/s
mkdir -p "$S"

# both LABEL REPO PASSWORD ARGS... -> $S/LABEL.{restic,crestic}; restic must
# succeed, crestic must exit 0 too.
both() {
    local label=$1 repo=$2 pw=$3; shift 3
    ref env RESTIC_PASSWORD="$pw" "$RESTIC" --cache-dir "$T/cache-restic" -r "$repo" "$@"
    cp "$OUT" "$S/$label.restic"
    if [ "$RC" -ne 0 ]; then
        fail "$label: restic 0.14 failed (exit $RC): harness problem"; show "$ERR"
        : >"$S/$label.crestic"
        return 1
    fi
    if [ ! -s "$S/$label.restic" ]; then
        fail "$label: restic printed nothing: the comparison would be vacuous"
        return 1
    fi
    RESTIC_PASSWORD=$pw expect_exit 0 cr -r "$repo" "$@"
    local rc=$?
    cp "$OUT" "$S/$label.crestic"
    return $rc
}

same_bytes() { # LABEL DESC
    expect_same "$S/$1.restic" "$S/$1.crestic" "$2"
}
# same_ls LABEL DESC: plain/long ls output.  The node lines must be
# identical; the header line may be restic 0.14's
#   snapshot 47d9408e of [/p] filtered by [/d] at 2023-01-01 11:00:00 +0000 UTC):
# or today's restic's (0.17+)
#   snapshot 47d9408e of [/p] at 2023-01-01 11:00:00 +0000 UTC by user@host filtered by [/d]:
same_ls() {
    local r=$S/$1.restic c=$S/$1.crestic
    tail -n +2 "$r" >"$r.body"; tail -n +2 "$c" >"$c.body"
    expect_same "$r.body" "$c.body" "$2"
    local h1 h2 h1new h2norm
    h1=$(head -n 1 "$r"); h2=$(head -n 1 "$c")
    h1new=$(printf '%s\n' "$h1" | sed -E 's/^(snapshot [0-9a-f]{8} of \[.*\]) filtered by (\[.*\]) at (.*)\):$/\1 at \3 by @ filtered by \2:/')
    h2norm=$(printf '%s\n' "$h2" | sed -E 's/ by [^ ]*@[^ ]* filtered by / by @ filtered by /')
    if [ "$h1" = "$h2" ] || [ "$h1new" = "$h2norm" ]; then pass "$2: header line"
    else fail "$2: header line" "restic 0.14: $h1" "crestic:     $h2"; fi
}
same_sorted() { # LABEL DESC   (as sets of lines)
    sort -u "$S/$1.restic" >"$S/$1.restic.sorted"
    sort -u "$S/$1.crestic" >"$S/$1.crestic.sorted"
    expect_same "$S/$1.restic.sorted" "$S/$1.crestic.sorted" "$2"
}
same_json() { # LABEL DESC [jsoncmp options]
    local l=$1 d=$2; shift 2
    expect_json "$S/$l.restic" "$S/$l.crestic" "$d" "$@"
}
same_hash() { # LABEL DESC
    local a b
    a=$(sha256sum <"$S/$1.restic" | cut -c1-64); b=$(sha256sum <"$S/$1.crestic" | cut -c1-64)
    if [ "$a" = "$b" ]; then pass "$2"; else fail "$2" "sha256 restic $a" "sha256 crestic $b" "sizes: $(stat -c %s "$S/$1.restic") vs $(stat -c %s "$S/$1.crestic")"; fi
}
same_archive() { # LABEL DESC [--zip]
    local l=$1 d=$2; shift 2
    "$PY" "$TOOLS/tarlist.py" "$@" "$S/$l.restic" >"$S/$l.restic.list" 2>&1 ||
        { fail "$d: restic's archive unreadable (harness problem)"; show "$S/$l.restic.list"; return; }
    if ! "$PY" "$TOOLS/tarlist.py" "$@" "$S/$l.crestic" >"$S/$l.crestic.list" 2>&1; then
        fail "$d: crestic's archive is not readable"; show "$S/$l.crestic.list"; return
    fi
    expect_same "$S/$l.restic.list" "$S/$l.crestic.list" "$d"
}

# ---------------------------------------------------------------------------
section "ls"
# every snapshot of every fixture repository: --json and -l
for name in $(fixture_repo_names); do
    R=$(copy_repo "$name")
    P=$FIXTURE_PASSWORD
    for id in $(snapshot_ids "$R" "$P"); do
        s=${id:0:8}
        both "ls-json-$name-$s" "$R" "$P" ls --json "$s" && same_json "ls-json-$name-$s" "$name: ls --json $s" --ndjson --allow-extra message_type --allow-extra inode
        both "ls-l-$name-$s" "$R" "$P" ls -l "$s" && same_ls "ls-l-$name-$s" "$name: ls -l $s"
    done
done
# variants (each restic run costs ~1 s of scrypt: one repository only)
R=$(copy_repo v2-two-snapshots "$T/repos/ls-extra")
P=$FIXTURE_PASSWORD
both ls-plain "$R" "$P" ls latest && same_ls ls-plain "ls latest"
both ls-sub "$R" "$P" ls latest /src/sub && same_ls ls-sub "ls latest /src/sub"
both ls-subslash "$R" "$P" ls latest /src/sub/ && same_ls ls-subslash "ls latest /src/sub/"
both ls-rec "$R" "$P" ls --recursive latest /src/sub && same_ls ls-rec "ls --recursive latest /src/sub"
both ls-lrec "$R" "$P" ls -l --recursive latest /src/sub && same_ls ls-lrec "ls -l --recursive latest /src/sub"
both ls-jsonsub "$R" "$P" ls --json latest /src/sub && same_json ls-jsonsub "ls --json latest /src/sub" --ndjson --allow-extra message_type --allow-extra inode
both ls-jsonrec "$R" "$P" ls --json --recursive 595d1c1a /src/sub && same_json ls-jsonrec "ls --json --recursive 595d1c1a /src/sub" --ndjson --allow-extra message_type --allow-extra inode
both ls-two "$R" "$P" ls latest /src/sub /src/small.txt && same_ls ls-two "ls latest /src/sub /src/small.txt"
both ls-file "$R" "$P" ls -l latest /src/sub/nested.txt && same_ls ls-file "ls -l of one file"
both ls-host "$R" "$P" ls --host fixture-host --tag first latest && same_ls ls-host "ls --host --tag latest (filters pick the older snapshot)"
TZ=Asia/Kolkata both ls-tz "$R" "$P" ls -l latest && same_ls ls-tz "ls -l in TZ=Asia/Kolkata"
# no match: restic 0.14 prints only the header
both ls-nomatch "$R" "$P" ls latest /src/nope && same_ls ls-nomatch "ls with a path that matches nothing"
# relative path filters are refused (restic 0.14: "All path filters must be absolute, starting with a forward slash '/'")
RESTIC_PASSWORD=$P expect_exit 1 cr -r "$R" ls latest src/sub
expect_grep "$ERR" 'absolute' "ls with a relative path: error says paths must be absolute"

for name in small-repo copy-unstable-json repo-restore-permissions-test repo-layout-default repo-mixed; do
    U=$(unpack_upstream "$name")
    for id in $(snapshot_ids "$U" "$UPSTREAM_PASSWORD"); do
        s=${id:0:8}
        both "ls-json-$name-$s" "$U" "$UPSTREAM_PASSWORD" ls --json "$s" && same_json "ls-json-$name-$s" "$name: ls --json $s" --ndjson --allow-extra message_type --allow-extra inode
        both "ls-l-$name-$s" "$U" "$UPSTREAM_PASSWORD" ls -l "$s" && same_ls "ls-l-$name-$s" "$name: ls -l $s"
    done
done

# ---------------------------------------------------------------------------
section "cat"
for name in v1 v2 v2-pruned; do
    R=$(copy_repo "$name" "$T/repos/cat-$name")
    P=$FIXTURE_PASSWORD
    both "cat-config-$name" "$R" "$P" cat config && same_json "cat-config-$name" "$name: cat config"
    both "cat-masterkey-$name" "$R" "$P" cat masterkey && same_json "cat-masterkey-$name" "$name: cat masterkey"
    sid=$(snapshot_ids "$R" "$P" | tail -n 1)
    both "cat-snap-$name" "$R" "$P" cat snapshot "$sid" && same_json "cat-snap-$name" "$name: cat snapshot (full ID)"
    both "cat-snap8-$name" "$R" "$P" cat snapshot "${sid:0:8}" && same_json "cat-snap8-$name" "$name: cat snapshot (short ID)"
    for idx in $(ls "$R/index"); do
        both "cat-index-$name-${idx:0:8}" "$R" "$P" cat index "$idx" &&
            same_bytes "cat-index-$name-${idx:0:8}" "$name: cat index ${idx:0:8} (decrypted document, byte for byte)"
    done
    for key in $(ls "$R/keys"); do
        both "cat-key-$name-${key:0:8}" "$R" "$P" cat key "$key" && same_json "cat-key-$name-${key:0:8}" "$name: cat key ${key:0:8}"
    done
    pack=$(cd "$R/data" && ls */ | grep -E '^[0-9a-f]{64}$' | head -n 1)
    both "cat-pack-$name" "$R" "$P" cat pack "$pack" && same_hash "cat-pack-$name" "$name: cat pack (raw file)"
    if [ -s "$S/cat-pack-$name.crestic" ]; then
        h=$(sha256sum <"$S/cat-pack-$name.crestic" | cut -c1-64)
        expect_true "$name: cat pack output hashes to the pack ID" [ "$h" = "$pack" ]
    fi
    # blobs: the snapshot's tree (JSON bytes), a small and the largest data blob
    tree=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["tree"])' "$S/cat-snap-$name.restic" 2>/dev/null)
    if [ -n "$tree" ]; then
        both "cat-tree-$name" "$R" "$P" cat blob "$tree" && same_bytes "cat-tree-$name" "$name: cat blob <root tree> (tree JSON bytes)"
    fi
    ref env RESTIC_PASSWORD=$P "$RESTIC" --cache-dir "$T/cache-restic" -r "$R" cat index "$(ls "$R/index" | head -n 1)"
    read -r small big < <("$PY" -c 'import json,sys
d=json.load(open(sys.argv[1])); b=[x for p in d["packs"] for x in p["blobs"] if x["type"]=="data"]
b.sort(key=lambda x: x.get("uncompressed_length", x["length"]))
print(b[0]["id"], b[-1]["id"])' "$OUT" 2>/dev/null)
    if [ -n "${small:-}" ]; then
        both "cat-blob-small-$name" "$R" "$P" cat blob "$small" && same_bytes "cat-blob-small-$name" "$name: cat blob (small data blob)"
        both "cat-blob-big-$name" "$R" "$P" cat blob "$big" && same_hash "cat-blob-big-$name" "$name: cat blob (largest data blob)"
        if [ -s "$S/cat-blob-big-$name.crestic" ]; then
            h=$(sha256sum <"$S/cat-blob-big-$name.crestic" | cut -c1-64)
            expect_true "$name: cat blob output hashes to the blob ID" [ "$h" = "$big" ]
        fi
    else
        fail "$name: could not pick data blobs from the index (harness problem)"
    fi
done
# `cat tree SNAPSHOT[:PATH]` (restic >= 0.15 syntax; 0.14 says "invalid type"):
# the raw tree blob, compared with restic 0.14's `cat blob` of the same tree
R=$(copy_repo v2-two-snapshots "$T/repos/cat-tree")
P=$FIXTURE_PASSWORD
ref env RESTIC_PASSWORD=$P "$RESTIC" --cache-dir "$T/cache-restic" -r "$R" cat snapshot c4395036
root=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["tree"])' "$OUT" 2>/dev/null)
subtree_of() { # TREE-JSON-FILE NAME -> subtree id
    "$PY" -c 'import json,sys
for n in json.load(open(sys.argv[1]))["nodes"]:
    if n["name"] == sys.argv[2]: print(n["subtree"])' "$1" "$2" 2>/dev/null
}
both cat-tree-ref-root "$R" "$P" cat blob "$root"
src=$(subtree_of "$S/cat-tree-ref-root.restic" src)
both cat-tree-ref-src "$R" "$P" cat blob "$src"
sub=$(subtree_of "$S/cat-tree-ref-src.restic" sub)
both cat-tree-ref-sub "$R" "$P" cat blob "$sub"
if [ -n "$root" ] && [ -n "$src" ] && [ -n "$sub" ]; then
    for spec in "c4395036|root" "latest|root" "latest:/src|src" "c4395036:/src/sub|sub" "latest:src/sub|sub"; do
        what=${spec%%|*}; which=${spec##*|}
        RESTIC_PASSWORD=$P expect_exit 0 cr -r "$R" cat tree "$what"
        cp "$OUT" "$S/cat-tree.crestic"
        expect_same "$S/cat-tree-ref-$which.restic" "$S/cat-tree.crestic" "cat tree $what: the raw tree blob"
    done
    RESTIC_PASSWORD=$P expect_exit 1 cr -r "$R" cat tree latest:/src/no-such-dir
else
    fail "cat tree: could not find the reference tree IDs (harness problem)"
fi

# a lock file (tests/fixtures/samples: a stale non-exclusive lock of repos/v2)
R=$(copy_repo v2 "$T/repos/cat-lock")
lockfile=$(ls "$FIXTURES"/samples/lock-* | head -n 1)
lockid=${lockfile##*/lock-}
cp "$lockfile" "$R/locks/$lockid"
both cat-lock "$R" "$FIXTURE_PASSWORD" --no-lock cat lock "$lockid" && same_json cat-lock "cat lock"
both list-locks "$R" "$FIXTURE_PASSWORD" list locks && same_sorted list-locks "list locks (a stale lock present)"
expect_grep "$S/list-locks.crestic" "^$lockid\$" "list locks shows the lock file"
rm -f "$R/locks/$lockid"
# upstream: an old (2015) repository
U=$(unpack_upstream small-repo)
both cat-config-up "$U" "$UPSTREAM_PASSWORD" cat config && same_json cat-config-up "small-repo: cat config"
for idx in $(ls "$U/index"); do
    both "cat-index-up-${idx:0:8}" "$U" "$UPSTREAM_PASSWORD" cat index "$idx" &&
        same_bytes "cat-index-up-${idx:0:8}" "small-repo: cat index ${idx:0:8}"
done
# errors: unknown type, malformed ID, missing object
R=$(copy_repo v2 "$T/repos/cat-err")
RESTIC_PASSWORD=$FIXTURE_PASSWORD expect_exit 1 cr -r "$R" cat nonsense 0000
expect_grep "$ERR" 'invalid type|unknown type|nonsense' "cat with an unknown type: 'Fatal: invalid type'"
RESTIC_PASSWORD=$FIXTURE_PASSWORD expect_exit 1 cr -r "$R" cat index 1234
expect_grep "$ERR" . "cat index with a malformed ID: message on stderr"
RESTIC_PASSWORD=$FIXTURE_PASSWORD expect_exit 1 cr -r "$R" cat blob 0000000000000000000000000000000000000000000000000000000000000000
expect_grep "$ERR" 'not found' "cat blob unknown: 'blob not found'"

# ---------------------------------------------------------------------------
section "list"
for name in v1 v2 v2-pruned; do
    R=$T/repos/$name
    for what in keys snapshots index packs locks blobs; do
        if [ "$what" = locks ]; then
            # nothing to compare but both must print nothing
            RESTIC_PASSWORD=$FIXTURE_PASSWORD expect_exit 0 cr -r "$R" list locks
            expect_empty "$OUT" "$name: list locks (no locks): empty"
            continue
        fi
        both "list-$what-$name" "$R" "$FIXTURE_PASSWORD" list "$what" && same_sorted "list-$what-$name" "$name: list $what"
    done
done
for name in $(upstream_repo_names); do
    U=$(unpack_upstream "$name")
    for what in keys index packs blobs; do
        both "list-$what-$name" "$U" "$UPSTREAM_PASSWORD" list "$what" && same_sorted "list-$what-$name" "$name: list $what"
    done
done
R=$T/repos/v2
RESTIC_PASSWORD=$FIXTURE_PASSWORD expect_exit 1 cr -r "$R" list nonsense
expect_grep "$ERR" 'invalid type|unknown type|nonsense' "list with an unknown type: 'Fatal: invalid type'"

# ---------------------------------------------------------------------------
section "dump"
R=$(copy_repo v2 "$T/repos/dump")
P=$FIXTURE_PASSWORD
both dump-small "$R" "$P" dump latest /src/small.txt && same_bytes dump-small "dump a small file"
both dump-xname "$R" "$P" dump latest "/src/name with spaces & \"quotes\" \\ backslash <tag> ü€☃.txt" && same_bytes dump-xname "dump a file with special characters in its name"
both dump-big "$R" "$P" dump latest /src/big.bin && same_hash dump-big "dump big.bin (13 MB, many chunks)"
both dump-medium "$R" "$P" dump latest /src/medium.bin && same_hash dump-medium "dump medium.bin (hard-linked file)"
both dump-sub "$R" "$P" dump latest /src/sub && same_archive dump-sub "dump a folder (tar)"
both dump-src "$R" "$P" dump latest /src && same_archive dump-src "dump /src (tar: symlinks, xattrs, setuid/setgid/sticky, odd names)"
both dump-root "$R" "$P" dump latest / && same_archive dump-root "dump / (tar)"
both dump-zip "$R" "$P" dump -a zip latest /src/sub && same_archive dump-zip "dump a folder (zip)" --zip
both dump-zip-src "$R" "$P" dump --archive zip latest /src && same_archive dump-zip-src "dump /src (zip)" --zip
R2=$(copy_repo v2-two-snapshots "$T/repos/dump2")
both dump-old "$R2" "$P" dump 595d1c1a /src/small.txt && same_bytes dump-old "dump from an older snapshot by short ID"
both dump-tag "$R2" "$P" dump --tag second latest /src/sub/added.txt && same_bytes dump-tag "dump latest with --tag"
# errors: restic 0.14 exits 2 for these ("cannot dump file: path \"/src/nope\" not found in snapshot"),
# today's restic exits 1; either is accepted, with the message.
for spec in /src/nope /src/small.txt/x; do
    case $spec in
        /src/nope) msg='not found' ;;
        *) msg='should be a dir|not a dir' ;;
    esac
    run env RESTIC_PASSWORD=$P "$CRESTIC" -r "$R" dump latest "$spec"
    if sanitizer_report "$ERR"; then fail "dump latest $spec: sanitizer report"; show_sanitizer "$ERR"
    elif [ "$RC" = 1 ] || [ "$RC" = 2 ]; then pass "dump latest $spec: exit $RC"
    else fail "dump latest $spec: exit 1 or 2 expected, got $RC"; show "$ERR"; fi
    expect_empty "$OUT" "dump latest $spec: nothing on stdout"
    expect_grep "$ERR" "$msg" "dump latest $spec: message /$msg/"
done

# ---------------------------------------------------------------------------
section "key list"
# restic 0.14 prints 8-character key IDs in --json, today's restic (and
# crestic) the full ID: crestic's must be full, then compare their prefixes.
full_ids_then_short() { # LABEL
    "$PY" - "$S/$1.crestic" <<'EOF'
import json, sys
keys = json.load(open(sys.argv[1]))
assert all(len(k["id"]) == 64 for k in keys), "key IDs are not full IDs"
for k in keys: k["id"] = k["id"][:8]
json.dump(keys, open(sys.argv[1], "w"))
EOF
}
key_json() { # LABEL DESC
    if full_ids_then_short "$1"; then pass "$2: full key IDs"; else fail "$2: full key IDs"; fi
    same_json "$1" "$2" --sort-by id
}
R=$(copy_repo v2 "$T/repos/keys")
both key-json "$R" "$FIXTURE_PASSWORD" key list --json && key_json key-json "key list --json (any order)"
both key-table "$R" "$FIXTURE_PASSWORD" key list && same_sorted key-table "key list table (rows in any order)"
both key-json2 "$R" fixture-password-2 key list --json && key_json key-json2 "key list --json opened with the second key (current flag moves)"
R=$(copy_repo v1 "$T/repos/keys1")
both key-json-v1 "$R" "$FIXTURE_PASSWORD" key list --json && key_json key-json-v1 "v1: key list --json"

finish
