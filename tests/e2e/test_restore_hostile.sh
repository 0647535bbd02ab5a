#!/usr/bin/env bash
# Restore repositories with hostile or damaged content (crafted by
# tests/tools/craft_repo.py) and check that
#   - nothing is written outside --target (names "..", ".", "", "a/b", NUL,
#     a symlink and a directory of the same name, symlinks already in the
#     target, hard links next to symlinks, 2100-deep nesting),
#   - everything that is intact is restored, byte for byte,
#   - every problem gets a clear message, the exit code is 1, and nothing
#     crashes (no exit code >= 128),
#   - --delete is disabled when a listing had refused names, --dry-run
#     writes nothing, --json reports errors as JSON on stderr.
#
# usage: bash tests/e2e/test_restore_hostile.sh path/to/crestic
set -u
CRESTIC=$(readlink -f "${1:?usage: $0 path/to/crestic}")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CRAFT=$HERE/../tools/craft_repo.py
if ! python3 -c 'import cryptography.hazmat.primitives.poly1305' 2>/dev/null; then
    echo "SKIP: python3-cryptography is needed to craft the repositories"
    exit 0
fi

T=$(mktemp -d /tmp/crestic-hostile.XXXXXX)
trap 'chmod -R u+rwX "$T" 2>/dev/null; rm -rf "$T"' EXIT
BOX=$T/box                 # everything a restore could reach by escaping
OUTSIDE=$BOX/outside       # where hostile symlinks point
mkdir -p "$OUTSIDE" "$BOX/targets" "$T/repos"
echo "do not touch" >"$BOX/sentinel"
export RESTIC_PASSWORD=hostile
export RESTIC_CACHE_DIR=$T/cache

PASS=0 FAILS=()
pass() { PASS=$((PASS + 1)); echo "ok   $*"; }
fail() { FAILS+=("$*"); echo "FAIL $*"; }
show() { sed 's/^/     | /' "$1" | head -n 30; }

# run ARGS...: crestic with output in $OUT/$ERR and the exit code in $RC
OUT=$T/stdout ERR=$T/stderr RC=0
run() {
    "$CRESTIC" "$@" >"$OUT" 2>"$ERR"
    RC=$?
}

# the box (minus the target being restored to) as a listing; the mtime of
# targets/ itself changes when the target is created
box_state() {
    (cd "$BOX" && find . -path "./targets/$1" -prune -o -printf '%p %y %s %T@ %l\n' | grep -v '^\./targets d ' | sort)
}

# restore LABEL REPO TARGETNAME EXPECTED_RC [args...]
restore() {
    local label=$1 repo=$2 name=$3 want=$4; shift 4
    box_state "$name" >"$T/box.before"
    run -r "$repo" restore --target "$BOX/targets/$name" "$@"
    box_state "$name" >"$T/box.after"
    if [ "$RC" -ge 128 ]; then fail "$label: crashed (exit $RC)"; show "$ERR"
    elif [ "$RC" = "$want" ]; then pass "$label: exit $RC"
    else fail "$label: exit $RC, want $want"; show "$ERR"; fi
    if cmp -s "$T/box.before" "$T/box.after"; then pass "$label: nothing changed outside the target"
    else fail "$label: something changed outside the target"; diff "$T/box.before" "$T/box.after" | head -20 | sed 's/^/     | /'; fi
    if [ -z "$(ls -A "$OUTSIDE")" ]; then pass "$label: symlink destination untouched"
    else fail "$label: files appeared in the symlink destination"; ls -la "$OUTSIDE" | sed 's/^/     | /'; fi
}

expect_err() { # PATTERN DESCRIPTION
    if grep -qF -- "$1" "$ERR"; then pass "message: $2"; else fail "message missing: $2 ($1)"; show "$ERR"; fi
}

# every "sha256 path" line of REPO/expected.txt must hold in DIR
expect_files() {
    local repo=$1 dir=$2 n=0 bad=0
    while read -r sum rel; do
        n=$((n + 1))
        got=$(sha256sum "$dir/$rel" 2>/dev/null | cut -d' ' -f1)
        [ "$got" = "$sum" ] || { bad=$((bad + 1)); echo "     | $rel: ${got:-missing}"; }
    done <"$repo/expected.txt"
    if [ $bad = 0 ]; then pass "$(basename "$repo"): all $n intact files restored exactly"
    else fail "$(basename "$repo"): $bad of $n intact files wrong"; fi
}

expect() { # DESCRIPTION COMMAND...
    local d=$1; shift
    if "$@"; then pass "$d"; else fail "$d"; fi
}

craft() {
    python3 "$CRAFT" "$T/repos/$1" "$1" "$OUTSIDE" || { fail "craft $1"; return 1; }
}

echo "=== names: .. . '' a/b NUL ../escape"
craft names
restore "names" "$T/repos/names" names 1 latest
D=$BOX/targets/names
expect_err 'invalid child node name ".."' '".." refused'
expect_err 'invalid child node name "."' '"." refused'
expect_err 'invalid child node name ""' 'empty name refused'
expect_err 'invalid child node name "a/b"' '"a/b" refused'
expect_err 'invalid child node name "../escape"' '"../escape" refused'
expect_err 'invalid child node name "x\x00y"' 'NUL in a name refused'
expect_err 'ignoring error for /sub: invalid child node name ".."' '".." in a subdirectory refused, with its location'
expect_err 'Fatal: There were 7 errors' 'error count'
expect "names: good files restored" test -s "$D/good.txt" -a -s "$D/sub/inner.txt" -a -s "$D/zz-last.txt"
expect "names: nothing named pwned or escape anywhere" test -z "$(find "$BOX" \( -name pwned -o -name escape \) -print)"
expect "names: only the good entries in the target" \
    test "$(cd "$D" && find . | sort | tr '\n' ' ')" = ". ./good.txt ./sub ./sub/inner.txt ./zz-last.txt "

echo "=== names again, with --delete: refused names switch deletion off"
echo keep >"$D/extra.txt"
restore "names --delete" "$T/repos/names" names 1 latest --delete
expect "names --delete: extra file kept (listing not trusted)" test -f "$D/extra.txt"

echo "=== names with --json"
restore "names --json" "$T/repos/names" names-json 1 latest --json
if python3 - "$ERR" <<'EOF'
import json, sys
errs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
e = [x for x in errs if x.get("message_type") == "error"]
assert len(e) == 7, e
assert all(x["during"] == "restore" and "item" in x and x["error"]["message"] for x in e), e
assert any(x["error"]["message"] == 'invalid child node name ".."' for x in e)
assert errs[-1]["message_type"] == "exit_error" and errs[-1]["code"] == 1, errs[-1]
EOF
then pass "--json: errors are JSON lines on stderr, then exit_error"; else fail "--json error lines"; show "$ERR"; fi
if tail -n 1 "$OUT" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["message_type"]=="summary" and d["files_restored"]==4, d'
then pass "--json: summary on stdout"; else fail "--json summary"; show "$OUT"; fi

echo "=== names with --dry-run"
restore "names --dry-run" "$T/repos/names" names-dry 1 latest --dry-run
expect "dry-run: target not created" test ! -e "$BOX/targets/names-dry"

echo "=== symlinks: a symlink and a directory of one name; symlinks already in the target"
craft symlinks
restore "symlinks/first" "$T/repos/symlinks" sym 1 latest --path /first
D=$BOX/targets/sym
expect_err 'duplicate child node name "evil", skipped' 'duplicate "evil" refused'
expect_err 'duplicate child node name "abs", skipped' 'duplicate "abs" refused'
expect "symlinks: evil is the symlink, nothing went through it" test -L "$D/evil" -a ! -e "$OUTSIDE/pwned"
expect "symlinks: dangling symlink restored" test -L "$D/dangling"
expect "symlinks: good file restored" test -s "$D/good.txt"
restore "symlinks/second on top" "$T/repos/symlinks" sym 0 latest --path /second
expect "symlinks: link-dir is now a real directory" test -d "$D/link-dir" -a ! -L "$D/link-dir" -a -f "$D/link-dir/pwned"
expect "symlinks: link-file is now a regular file" test -f "$D/link-file" -a ! -L "$D/link-file"
expect "symlinks: the old link destination was not created" test ! -e "$OUTSIDE/victim"
restore "symlinks/first with --overwrite never" "$T/repos/symlinks" sym 1 latest --path /first --overwrite never
expect "symlinks: never keeps the directory" test -d "$D/link-dir" -a ! -L "$D/link-dir"

echo "=== damaged: MAC failure, hash mismatch, other copy, garbled tree, missing tree, absurd sizes"
craft damaged
restore "damaged" "$T/repos/damaged" damaged 1 latest
D=$BOX/targets/damaged
expect_err 'ignoring error for /corrupt.bin: blob ' 'MAC failure names the file'
expect_err ': ciphertext verification failed' 'MAC failure named'
expect_err 'ignoring error for /lying.bin: blob ' 'hash mismatch names the file'
expect_err 'hash mismatch' 'hash mismatch named'
expect_err 'ignoring error for /garbled: ' 'garbled tree reported for its directory'
expect_err 'ignoring error for /missing-tree: tree blob ' 'missing tree reported'
expect_err 'ignoring error for /no-subtree: directory without subtree' 'directory without subtree'
expect_err 'ignoring error for /unknown-blob.bin: blob ' 'blob not in the index'
expect_err 'index entry too large' 'absurd index entry refused'
expect_err 'ignoring error for /huge-size.bin:' 'absurd file size reported'
expect_err 'ignoring error for /weird: filetype whatever not supported' 'unknown node type'
expect_files "$T/repos/damaged" "$D"
expect "damaged: partly restored file keeps its length" test "$(stat -c %s "$D/corrupt.bin")" = 17000
expect "damaged: the intact parts of corrupt.bin are there" \
    cmp -s <(head -c 5000 "$D/corrupt.bin") "$D/good.bin"
expect "damaged: a damaged file does not get the snapshot's mtime" \
    test "$(stat -c %Y "$D/corrupt.bin")" != "$(stat -c %Y "$D/good.bin")"
expect "damaged: no huge file was allocated" test "$(du -sk "$D" | cut -f1)" -lt 1024

echo "=== damaged again with --verify: verification only after an error-free restore"
restore "damaged --verify, intact selection" "$T/repos/damaged" damaged-verify 0 latest --verify --include /good.bin --include /copies.bin --include /sub
expect "verify: the intact selection is verified" grep -q 'finished verifying 3 files' "$OUT"
restore "damaged --verify, everything" "$T/repos/damaged" damaged-verify2 1 latest --verify
expect "verify: not run after restore errors (as restic)" test -z "$(grep verifying "$OUT")"

echo "=== truncated pack"
craft truncated
restore "truncated" "$T/repos/truncated" trunc 1 latest
expect_files "$T/repos/truncated" "$BOX/targets/trunc"
expect_err 'ignoring error for /f9.bin: blob ' 'blobs past the cut reported per file'
expect_err 'Fatal: There were 5 errors' 'one error per damaged file'

echo "=== hard links next to a symlink of the same name"
craft hardlinks
restore "hardlinks" "$T/repos/hardlinks" hl 1 latest
D=$BOX/targets/hl
expect_err 'duplicate child node name "out", skipped' 'duplicate "out" refused'
expect "hardlinks: one inode for first and sub/second" test "$(stat -c %i "$D/first")" = "$(stat -c %i "$D/sub/second")"
expect "hardlinks: out stays the symlink" test -L "$D/out"

echo "=== 2100 nested directories"
craft deep
restore "deep" "$T/repos/deep" deep 1 latest
expect_err 'nested too deeply' 'nesting limit reported'
expect_files "$T/repos/deep" "$BOX/targets/deep"

echo
if [ ${#FAILS[@]} -eq 0 ]; then
    echo "$PASS passed"
    exit 0
fi
echo "failed:"
printf '  %s\n' "${FAILS[@]}"
echo "$PASS passed, ${#FAILS[@]} failed"
exit 1
