# Shared helpers for the end-to-end tests (tests/e2e/test_*.sh).
#
# Usage, at the top of a test script:
#
#     source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
#
# The first argument of the script is the crestic binary (ctest passes the
# absolute path; by hand: `bash tests/e2e/test_x.sh build/crestic`, from the
# repository root or from tests/).  Without an argument $CRESTIC, then
# build/crestic are tried.
#
# What it provides:
#   $CRESTIC $RESTIC $PY          binaries (absolute); $PY = python3 to use
#   $REPO_ROOT $TESTS_DIR $FIXTURES $TOOLS $E2E_DIR
#   $T                            a fresh temp dir, removed on exit
#                                 (kept when CRESTIC_KEEP_TMP=1)
#   cr ARGS... / rs ARGS...       run crestic / restic with a private cache dir
#   copy_repo NAME                copy tests/fixtures/repos/NAME to $T, echo path
#                                 (with cheap key files, see below)
#   cheapen_keys REPO PASSWORD... cheap key files for a repository made by init
#   unpack_upstream NAME          unpack tests/fixtures/upstream/NAME.tar.gz,
#                                 echo the repository path ($T/up/NAME/repo)
#                                 (with cheap key files, as copy_repo)
#   upstream_repo_names           names of the upstream tarballs holding a repo
#   fixture_repo_names            names under tests/fixtures/repos
#   run CMD...                    run, stdout -> $OUT, stderr -> $ERR, rc -> $RC
#   ref CMD...                    like run, cached across runs (restic references)
#   refcache_get KEY DEST / refcache_put KEY SRC   the same cache for files
#   expect_exit CODE CMD...       run CMD (like run), record pass/fail on its exit code
#   expect_same FILE1 FILE2 [DESC]  record pass/fail, unified diff on failure
#   expect_json REF CAND DESC [OPTS]  field-by-field JSON comparison (tools/jsoncmp.py)
#   expect_true DESC CMD...       pass when CMD exits 0
#   expect_grep FILE REGEX DESC   pass when grep -E finds REGEX in FILE
#   expect_empty FILE DESC        pass when FILE is empty
#   pass DESC / fail DESC [DETAIL...] / skip DESC
#   section TEXT                  print a heading
#   need_restic                   skip the whole script when restic is absent
#                                 (a failure when CI=true: CI must never skip)
#   finish                        print "N passed, N failed" and exit
#   Test servers (backend tests):
#   $NPM_DIR                      node_modules of the npm test servers (.deps/npm)
#   free_port                     an unused TCP port on 127.0.0.1
#   wait_tcp PORT [SECONDS]       until 127.0.0.1:PORT accepts (default 10 s)
#   tls_cert DIR                  self-signed cert for 127.0.0.1/localhost:
#                                 DIR/cert.pem DIR/key.pem
#   small_source_tree [BYTES]     $T/src for the backend tests (nested folders, an
#                                 empty file and folder, a random file of BYTES,
#                                 default 3 MiB, a symlink) and its manifest in $T/m.src
#   need_server_tool DESC CMD     skip the script (fail under CI=true) when
#                                 CMD is not runnable
#
# Environment that could leak into the programs (RESTIC_*) is cleared, TZ is
# UTC and LC_ALL is C, so outputs that contain local times are comparable.

set -u
set -o pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TESTS_DIR=$(dirname "$E2E_DIR")
REPO_ROOT=$(dirname "$TESTS_DIR")
FIXTURES=$TESTS_DIR/fixtures
TOOLS=$TESTS_DIR/tools
TEST_NAME=$(basename "${BASH_SOURCE[1]:-$0}" .sh)

# ---- binaries ---------------------------------------------------------------
_crestic_arg=${1:-${CRESTIC:-}}
if [ -z "$_crestic_arg" ]; then
    if [ -n "${CRESTIC_BUILD:-}" ] && [ -e "$CRESTIC_BUILD/crestic" ]; then
        _crestic_arg=$CRESTIC_BUILD/crestic
    else
        _crestic_arg=$REPO_ROOT/build/crestic
    fi
fi
case $_crestic_arg in
    /*) CRESTIC=$_crestic_arg ;;
    *)  if [ -e "$PWD/$_crestic_arg" ]; then CRESTIC=$PWD/$_crestic_arg
        else CRESTIC=$REPO_ROOT/$_crestic_arg; fi ;;   # e.g. build/crestic from tests/
esac
RESTIC=${RESTIC:-$(command -v restic 2>/dev/null || true)}
# Debian's interpreter: tools that need python3-cryptography etc. find the
# apt-installed modules there (a pyenv/venv python3 on PATH would not).
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(command -v python3); fi
export CRESTIC RESTIC PY

# ---- environment ------------------------------------------------------------
for _v in $(env | sed -n 's/^\(RESTIC_[A-Z_]*\)=.*/\1/p'); do unset "$_v"; done
unset _v
export TZ=UTC LC_ALL=C
unset LANG LANGUAGE

_tmpbase=${CRESTIC_TEST_TMPDIR:-${TMPDIR:-/tmp}}
T=$(mktemp -d "$_tmpbase/crestic-e2e-$TEST_NAME.XXXXXX") || { echo "cannot create temp dir"; exit 1; }
export T
mkdir -p "$T/home"
export HOME=$T/home XDG_CACHE_HOME=$T/home/.cache

_cleanup() {
    local rc=$?
    # stop background helpers started through bg_start
    local p
    for p in ${_BG_PIDS:-}; do kill "$p" 2>/dev/null; done
    if [ "${CRESTIC_KEEP_TMP:-0}" = 1 ]; then
        echo "(temp dir kept: $T)"
    else
        chmod -R u+rwX "$T" 2>/dev/null
        rm -rf "$T"
    fi
    exit $rc
}
trap _cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- counters and reporting -------------------------------------------------
N_PASS=0
N_FAIL=0
N_SKIP=0
FAILED_NAMES=()

section() { printf '\n=== %s\n' "$*"; }
pass() { N_PASS=$((N_PASS + 1)); printf 'ok   %s\n' "$1"; }
fail() {
    N_FAIL=$((N_FAIL + 1)); FAILED_NAMES+=("$1")
    printf 'FAIL %s\n' "$1"
    shift
    local l
    for l in "$@"; do printf '     %s\n' "$l"; done
}
skip() { N_SKIP=$((N_SKIP + 1)); printf 'skip %s\n' "$*"; }

# show the head of a file, indented (for failure details)
show() { # FILE [LINES]
    [ -s "$1" ] || return 0
    head -n "${2:-20}" "$1" | cut -c1-300 | sed 's/^/     | /'
}

finish() {
    echo
    if [ $N_FAIL -gt 0 ]; then
        echo "failed in $TEST_NAME:"
        printf '  %s\n' "${FAILED_NAMES[@]}"
    fi
    if [ $N_SKIP -gt 0 ]; then
        echo "$N_PASS passed, $N_FAIL failed, $N_SKIP skipped"
    else
        echo "$N_PASS passed, $N_FAIL failed"
    fi
    [ $N_FAIL -eq 0 ]
    exit $?
}

need_restic() {
    if [ -z "$RESTIC" ] || ! "$RESTIC" version >/dev/null 2>&1; then
        if [ "${CI:-}" = true ]; then
            fail "restic (the reference, 0.14) is not installed: run scripts/install-deps.sh"
            finish
        fi
        skip "$TEST_NAME: restic not found; every comparison here needs it (install: scripts/install-deps.sh)"
        finish
    fi
}

# ---- running programs -------------------------------------------------------
# Each program gets its own cache dir: a cache written by one must not hide
# a bug of the other.
cr() { RESTIC_CACHE_DIR=$T/cache-crestic "$CRESTIC" "$@"; }
rs() { RESTIC_CACHE_DIR=$T/cache-restic "$RESTIC" "$@"; }

OUT=$T/last.out
ERR=$T/last.err
RC=0
# run CMD... : stdin from /dev/null, outputs into $OUT / $ERR, code into $RC
run() {
    RC=0
    "$@" >"$OUT" 2>"$ERR" </dev/null || RC=$?
    return 0
}

# ref CMD... : like run, for a command whose result depends only on the
# fixtures and its arguments (a restic 0.14 reference run).  With
# CRESTIC_E2E_REFCACHE=<dir> (scripts/test.sh sets it, fresh per invocation,
# so the ASan pass reuses the first pass's restic results) the result is
# cached under a key made of the test name, TZ and the command line with $T
# replaced by a constant.  Outputs that contain $T must not use ref.
ref() {
    if [ -z "${CRESTIC_E2E_REFCACHE:-}" ]; then run "$@"; return 0; fi
    local key
    key=$(_refkey "${RESTIC_PASSWORD:-}" "${@//$T/@T@}")
    local c=$CRESTIC_E2E_REFCACHE/$key
    if [ -f "$c.rc" ]; then
        cp "$c.out" "$OUT"; cp "$c.err" "$ERR"; RC=$(cat "$c.rc")
        return 0
    fi
    run "$@"
    mkdir -p "$CRESTIC_E2E_REFCACHE"
    cp "$OUT" "$c.out.tmp$$" && cp "$ERR" "$c.err.tmp$$" &&
        mv "$c.out.tmp$$" "$c.out" && mv "$c.err.tmp$$" "$c.err" && echo "$RC" >"$c.rc"
    return 0
}
_refkey() { printf '%s\0' "$TEST_NAME" "${TZ:-}" "$@" | sha256sum | cut -c1-40; }
# refcache_get KEYSTRING DEST: copy a cached file to DEST (0 when found)
refcache_get() {
    [ -n "${CRESTIC_E2E_REFCACHE:-}" ] || return 1
    local c; c=$CRESTIC_E2E_REFCACHE/$(_refkey "${1//$T/@T@}").file
    [ -f "$c" ] && cp "$c" "$2"
}
# refcache_put KEYSTRING SRC
refcache_put() {
    [ -n "${CRESTIC_E2E_REFCACHE:-}" ] || return 0
    local c; c=$CRESTIC_E2E_REFCACHE/$(_refkey "${1//$T/@T@}").file
    mkdir -p "$CRESTIC_E2E_REFCACHE"
    cp "$2" "$c.tmp$$" && mv "$c.tmp$$" "$c"
}

_desc() { # a short printable form of a command
    local s="$*"
    s=${s//$T/\$T}
    s=${s//$CRESTIC/crestic}
    [ -n "$RESTIC" ] && s=${s//$RESTIC/restic}
    [ ${#s} -gt 160 ] && s="${s:0:157}..."
    printf '%s' "$s"
}

# sanitizer reports (ASan/UBSan/LSan builds) fail any check that ran a program
# the interesting part of a sanitizer report: from its first error line on
show_sanitizer() {
    sed -n '/ERROR: [A-Za-z]*Sanitizer\|runtime error: /,$p' "$1" | grep -vE '^ *$|^=+$' |
        head -n 40 | cut -c1-300 | sed 's/^/     | /'
}
sanitizer_report() { grep -qE 'ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error: |SUMMARY: UndefinedBehaviorSanitizer' "$1" 2>/dev/null; }

expect_exit() { # CODE CMD...
    local want=$1; shift
    run "$@"
    if sanitizer_report "$ERR"; then
        fail "exit $want: $(_desc "$@")" "sanitizer report (exit $RC):"
        show_sanitizer "$ERR"
        return 1
    fi
    if [ "$RC" = "$want" ]; then
        pass "exit $want: $(_desc "$@")"
    else
        fail "exit $want: $(_desc "$@")" "got exit $RC; stderr:"
        show "$ERR"
    fi
    [ "$RC" = "$want" ]
}

expect_same() { # FILE1 FILE2 [DESC]
    local desc=${3:-"same: $(_desc "$1") $(_desc "$2")"}
    if [ ! -e "$1" ] || [ ! -e "$2" ]; then
        fail "$desc" "missing file: $( [ -e "$1" ] || echo "$1") $( [ -e "$2" ] || echo "$2")"
        return 1
    fi
    if cmp -s "$1" "$2"; then
        pass "$desc"
        return 0
    fi
    fail "$desc" "diff (- first, + second):"
    diff -u "$1" "$2" | sed -n '3,60p' | cut -c1-300 | sed 's/^/     | /'
    return 1
}

# expect_json REF CAND DESC [jsoncmp options...]: field-by-field comparison
expect_json() {
    local ref=$1 cand=$2 desc=$3; shift 3
    if "$PY" "$TOOLS/jsoncmp.py" "$@" "$ref" "$cand" >"$T/jsoncmp.out" 2>&1; then
        pass "$desc"; return 0
    fi
    fail "$desc"
    show "$T/jsoncmp.out" 25
    return 1
}

expect_true() { # DESC CMD...
    local desc=$1; shift
    if "$@"; then pass "$desc"; return 0; fi
    fail "$desc"
    return 1
}

expect_grep() { # FILE REGEX DESC
    if grep -qE -- "$2" "$1"; then pass "$3"; return 0; fi
    fail "$3" "no line matches /$2/ in:"
    show "$1"
    return 1
}

expect_empty() { # FILE DESC
    if [ ! -s "$1" ]; then pass "$2"; return 0; fi
    fail "$2" "expected no output, got:"
    show "$1"
    return 1
}

# ---- fixtures ---------------------------------------------------------------
fixture_repo_names() {
    local d
    for d in "$FIXTURES"/repos/*/; do
        [ -f "$d/config" ] && basename "$d"
    done
}

# Upstream tarballs that contain a repository (backup-data and test.hl are
# source trees, not repositories).
upstream_repo_names() {
    local f n
    for f in "$FIXTURES"/upstream/*.tar.gz; do
        n=$(basename "$f" .tar.gz)
        case $n in backup-data|test.hl) continue ;; esac
        echo "$n"
    done
}

# The fixtures' key files have restic's default scrypt cost (N=32768, r=8,
# p=8; three of restic's upstream test repositories N=65536): up to a CPU
# second in every program run.  A copy (copy_repo, unpack_upstream) gets, for each key
# file, the one of tests/fixtures/cheap-keys with the original's name when
# there is one: the same master key, password and fields, scrypt N=128, r=1,
# p=1 (tests/tools/cheap_key.py makes them), stored under its own hash.  So
# key IDs differ from the fixture's.  REAL_KEYS=1 copy_repo ... keeps them.
_cheapen_keys() { # REPO
    local k cheap
    for k in "$1"/keys/*; do
        cheap=$FIXTURES/cheap-keys/$(basename "$k")
        [ -f "$cheap" ] || continue
        rm -f "$k"
        cp "$cheap" "$1/keys/$(sha256sum "$cheap" | cut -c1-64)"
    done
}

# cheapen_keys REPO PASSWORD...: every key file of REPO that opens with one
# of the passwords is replaced by a cheap one (tests/tools/cheap_key.py), for
# a repository made by init and then used by many program runs.  Costs about
# one program run (the old key is opened once).
cheapen_keys() {
    local repo=$1 k
    shift
    for k in "$repo"/keys/*; do
        "$PY" "$TOOLS/cheap_key.py" "$k" "$T/cheap-key.tmp" "$@" 2>/dev/null || continue
        rm -f "$k"
        mv "$T/cheap-key.tmp" "$repo/keys/$(sha256sum "$T/cheap-key.tmp" | cut -c1-64)"
    done
}

# copy_repo NAME [DEST] -> prints the path of a writable copy (cheap keys)
copy_repo() {
    local dest=${2:-$T/repos/$1}
    mkdir -p "$(dirname "$dest")"
    rm -rf "$dest"
    cp -a "$FIXTURES/repos/$1" "$dest" || return 1
    chmod -R u+w "$dest"
    # restic creates these even when empty; git drops empty dirs.  The
    # fixtures have no locks: drop any that a concurrently running program
    # left in the source tree, they would make the copy "locked".
    rm -rf "$dest/locks"
    mkdir -p "$dest/locks" "$dest/snapshots" "$dest/index" "$dest/keys"
    [ "${REAL_KEYS:-0}" = 1 ] || _cheapen_keys "$dest"
    echo "$dest"
}

# unpack_upstream NAME -> prints the repository path
unpack_upstream() {
    local d=$T/up/$1
    rm -rf "$d"; mkdir -p "$d"
    tar -xzf "$FIXTURES/upstream/$1.tar.gz" -C "$d" || return 1
    chmod -R u+w "$d"
    local r=$d
    [ -f "$d/repo/config" ] && r=$d/repo
    [ "${REAL_KEYS:-0}" = 1 ] || [ ! -d "$r/keys" ] || _cheapen_keys "$r"
    echo "$r"
}

FIXTURE_PASSWORD=fixture-password
UPSTREAM_PASSWORD=geheim

# snapshot IDs (full) of a repository, oldest first, as restic lists them
snapshot_ids() { # REPO PASSWORD
    RESTIC_PASSWORD=$2 rs -r "$1" --no-lock snapshots --json 2>/dev/null |
        "$PY" -c 'import json,sys
for s in json.load(sys.stdin) or []: print(s["id"])'
}

# manifest DIR [manifest options...] -> prints the manifest
manifest() { "$PY" "$TOOLS/manifest.py" "$@"; }

# ---- test servers -----------------------------------------------------------
NPM_DIR=$REPO_ROOT/.deps/npm/node_modules
export NPM_DIR
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_tcp() { # PORT [SECONDS]
    local i n=$(( ${2:-10} * 20 ))
    for i in $(seq "$n"); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}
tls_cert() { # DIR
    mkdir -p "$1"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
        -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        -keyout "$1/key.pem" -out "$1/cert.pem" >/dev/null 2>&1
}
small_source_tree() { # [RANDOM_BYTES]
    mkdir -p "$T/src/sub/deeper" "$T/src/empty-dir"
    printf 'hello\n' >"$T/src/hello.txt"
    : >"$T/src/empty"
    head -c "${1:-3145728}" /dev/urandom >"$T/src/sub/random.bin"
    seq 1 20000 >"$T/src/sub/deeper/numbers.txt"
    ln -s ../hello.txt "$T/src/sub/link"
    manifest --no-atime "$T/src" >"$T/m.src"
}

# Is $CRESTIC an ASan build?  (Its peak memory then includes ASan's
# quarantine and shadow memory: memory measurements mean nothing.)
is_sanitized() { grep -q __asan_init "$CRESTIC" 2>/dev/null; }
need_server_tool() { # DESC CMD...
    local desc=$1; shift
    "$@" >/dev/null 2>&1 && return 0
    if [ "${CI:-}" = true ]; then fail "$desc is missing: run scripts/install-deps.sh"; finish; fi
    skip "$TEST_NAME: $desc is missing (scripts/install-deps.sh installs it)"
    finish
}

# Background helpers killed on exit
_BG_PIDS=""
bg_register() { _BG_PIDS="$_BG_PIDS $1"; }

if [ ! -x "$CRESTIC" ]; then
    echo "note: crestic binary not found or not executable: $CRESTIC (every crestic check will fail)"
fi
