#!/usr/bin/env bash
# Demo on a fresh Debian 12 machine: install the dependencies, build crestic
# (Release), then use it on a repository written by restic 0.14
# (tests/fixtures/repos/v2, password "fixture-password"): list its snapshots
# and files, restore the latest snapshot into a temp dir and show the result.
# Then back up a small directory into a new repository, restore it, and let
# restic 0.14 check what crestic wrote.
# Exits non-zero when any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo: FAILED: $*" >&2; exit 1; }

step "dependencies (scripts/install-deps.sh)"
bash scripts/install-deps.sh </dev/null

BUILD=${DEMO_BUILD_DIR:-build}
step "build (Release) into $BUILD/"
cmake -B "$BUILD" -S . -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target crestic 2>&1 | grep -vE '^\[ *[0-9]+%\] (Building|Linking|Built)' || true
[ -x "$BUILD/crestic" ] || die "$BUILD/crestic was not built"
CRESTIC=$ROOT/$BUILD/crestic
"$CRESTIC" version

TMP=$(mktemp -d "${TMPDIR:-/tmp}/crestic-demo.XXXXXX")
trap 'chmod -R u+rwX "$TMP" 2>/dev/null; rm -rf "$TMP"' EXIT
export RESTIC_CACHE_DIR=$TMP/cache
unset RESTIC_REPOSITORY RESTIC_REPOSITORY_FILE RESTIC_PASSWORD_FILE RESTIC_PASSWORD_COMMAND

# work on a copy: the fixture stays untouched (locks are written while reading)
REPO=$TMP/repo
cp -a tests/fixtures/repos/v2 "$REPO"
chmod -R u+w "$REPO"
export RESTIC_REPOSITORY=$REPO RESTIC_PASSWORD=fixture-password

step "crestic snapshots   (repository written by restic 0.14)"
"$CRESTIC" snapshots || die "snapshots"

step "crestic ls -l latest"
"$CRESTIC" ls -l latest || die "ls"

step "crestic restore latest --target $TMP/restore"
"$CRESTIC" restore latest --target "$TMP/restore" || die "restore"
# record the restored metadata before anything reads the tree (reading moves atimes)
python3 tests/tools/manifest.py "$TMP/restore" >"$TMP/m.crestic" || die "manifest"

step "restored tree"
(cd "$TMP/restore" && find . -mindepth 1 | LC_ALL=C sort | while IFS= read -r p; do
    # type, mode, size, name (names with control characters shown escaped)
    stat -c '%A %8s  %N' "$p"
done)

# checks: the restored files have the contents the fixture's generator makes
[ -f "$TMP/restore/src/sub/nested.txt" ] || die "src/sub/nested.txt missing"
[ "$(cat "$TMP/restore/src/sub/nested.txt")" = "nested file" ] || die "src/sub/nested.txt has wrong contents"
[ "$(stat -c %s "$TMP/restore/src/big.bin")" -gt 1000000 ] || die "src/big.bin missing or short"
[ "$(stat -c %i "$TMP/restore/src/medium.bin")" = "$(stat -c %i "$TMP/restore/src/sub/hardlink.bin")" ] ||
    die "medium.bin and sub/hardlink.bin are not one hard-linked file"
if command -v restic >/dev/null 2>&1; then
    step "the same restore with restic 0.14, compared entry by entry"
    restic --no-cache restore latest --target "$TMP/restic-restore" -q || die "restic restore"
    python3 tests/tools/manifest.py "$TMP/restic-restore" >"$TMP/m.restic"
    if diff -u "$TMP/m.restic" "$TMP/m.crestic"; then
        echo "identical: $(wc -l <"$TMP/m.crestic") entries (contents, modes, owners, times, xattrs, hard links)"
    else
        die "crestic's restore differs from restic's"
    fi
fi

# ---------------------------------------------------------------------------
# backup demo
# ---------------------------------------------------------------------------
{
    step "crestic init + backup of a small directory, then restore"
    SRC=$TMP/data
    mkdir -p "$SRC/docs"
    printf 'hello from crestic\n' >"$SRC/hello.txt"
    head -c 3000000 /dev/urandom >"$SRC/random.bin"
    seq 1 100000 >"$SRC/docs/numbers.txt"
    ln -s hello.txt "$SRC/link"
    NEW=$TMP/new-repo
    export RESTIC_REPOSITORY=$NEW RESTIC_PASSWORD=demo-password
    "$CRESTIC" init || die "init"
    "$CRESTIC" backup "$SRC" || die "backup"
    "$CRESTIC" snapshots || die "snapshots of the new repository"
    "$CRESTIC" restore latest --target "$TMP/restore2" || die "restore of the backup"
    diff -r --no-dereference "$SRC" "$TMP/restore2$SRC" || die "restored backup differs from its source"
    echo "backup restored identically: $(find "$SRC" | wc -l) entries"
    if command -v restic >/dev/null 2>&1; then
        step "restic 0.14 reads crestic's repository"
        restic --no-cache check --read-data -q || die "restic check of crestic's repository"
        restic --no-cache snapshots || die "restic snapshots"
    fi
}

step "demo finished successfully"
