#!/usr/bin/env bash
# Error handling, exit codes, password and repository sources, usage errors,
# `version`.
#
# Exit codes are today's restic's (0.17+): 10 repository missing, 11 lock
# failed, 12 wrong password, 130 interrupted, 1 anything else (also usage
# errors: unknown command or flag).  restic 0.14 exits 1 for the first three,
# so it is run alongside only to confirm the messages (and 130).
#
# usage: bash tests/e2e/test_errors.sh path/to/crestic
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic

R=$(copy_repo v1)
P=$FIXTURE_PASSWORD
printf '%s\n' "$P" >"$T/pw"
printf 'wrong\n' >"$T/pw-bad"
printf '%s\n' "$R" >"$T/repofile"
S=$T/s; mkdir -p "$S"

# reference outputs: `snapshots` and `snapshots --json` of repos/v1
run env RESTIC_PASSWORD=$P "$RESTIC" --cache-dir "$T/cache-restic" -r "$R" snapshots
cp "$OUT" "$S/table.ref"
run env RESTIC_PASSWORD=$P "$RESTIC" --cache-dir "$T/cache-restic" -r "$R" snapshots -q
cp "$OUT" "$S/table-q.ref"
[ -s "$S/table.ref" ] || fail "restic 0.14 cannot list repos/v1 (harness problem)"

# restic_msg ARGS... : restic 0.14's stderr for the same invocation (env as given)
restic_err() { run "$RESTIC" --cache-dir "$T/cache-restic" "$@"; cp "$ERR" "$S/restic.err"; }

# ---------------------------------------------------------------------------
section "wrong password: exit 12, message on stderr, nothing on stdout"
RESTIC_PASSWORD=wrong expect_exit 12 cr -r "$R" snapshots
expect_empty "$OUT" "wrong password: stdout empty"
expect_grep "$ERR" '^Fatal: wrong password or no key found$' "wrong password: 'Fatal: wrong password or no key found'"
RESTIC_PASSWORD=wrong restic_err -r "$R" snapshots
expect_grep "$S/restic.err" '^Fatal: wrong password or no key found$' "restic 0.14 prints the same message (its exit code: 1)"
RESTIC_PASSWORD=wrong expect_exit 12 cr -r "$R" snapshots --json
expect_empty "$OUT" "wrong password with --json: stdout empty"
expect_exit 12 cr -r "$R" --password-file "$T/pw-bad" cat config
RESTIC_PASSWORD=wrong expect_exit 12 cr -r "$(copy_repo v2)" ls latest

# ---------------------------------------------------------------------------
section "missing repository: exit 10"
RESTIC_PASSWORD=$P expect_exit 10 cr -r "$T/does-not-exist" snapshots
expect_empty "$OUT" "missing repository: stdout empty"
expect_grep "$ERR" 'Is there a repository at the following location\?' "missing repository: asks 'Is there a repository at the following location?'"
expect_grep "$ERR" "^$T/does-not-exist\$" "missing repository: names the location"
RESTIC_PASSWORD=$P restic_err -r "$T/does-not-exist" snapshots
expect_grep "$S/restic.err" 'Is there a repository at the following location\?' "restic 0.14 says the same (its exit code: 1)"
mkdir -p "$T/empty-dir"
RESTIC_PASSWORD=$P expect_exit 10 cr -r "$T/empty-dir" snapshots
RESTIC_PASSWORD=$P expect_exit 10 cr -r "$T/does-not-exist" restore latest --target "$T/x"
expect_true "missing repository: restore wrote nothing" test ! -e "$T/x"

# no repository given at all (restic: "Fatal: Please specify repository location (-r or --repository-file)")
RESTIC_PASSWORD=$P expect_exit 1 cr snapshots
expect_grep "$ERR" 'repository' "no repository given: message mentions the repository"

# ---------------------------------------------------------------------------
section "password sources"
# each must open the repository and print exactly restic's table
check_table() { # DESC   (after a cr run)
    cp "$OUT" "$S/table.got"
    expect_same "$S/table.ref" "$S/table.got" "$1: same table as restic"
}
RESTIC_PASSWORD=$P expect_exit 0 cr -r "$R" snapshots && check_table "RESTIC_PASSWORD"
RESTIC_PASSWORD_FILE=$T/pw expect_exit 0 cr -r "$R" snapshots && check_table "RESTIC_PASSWORD_FILE"
expect_exit 0 cr -r "$R" --password-file "$T/pw" snapshots && check_table "--password-file"
expect_exit 0 cr -r "$R" -p "$T/pw" snapshots && check_table "-p"
expect_exit 0 cr -r "$R" --password-command "cat $T/pw" snapshots && check_table "--password-command"
RESTIC_PASSWORD_COMMAND="cat $T/pw" expect_exit 0 cr -r "$R" snapshots && check_table "RESTIC_PASSWORD_COMMAND"
expect_exit 0 cr -r "$R" --password-command "printf %s $P" snapshots && check_table "--password-command without trailing newline"
# precedence (restic 0.14): command/file flags beat RESTIC_PASSWORD, the flag beats the env file
RESTIC_PASSWORD=wrong expect_exit 0 cr -r "$R" --password-file "$T/pw" snapshots && check_table "--password-file wins over RESTIC_PASSWORD"
RESTIC_PASSWORD_FILE=$T/pw-bad expect_exit 0 cr -r "$R" --password-file "$T/pw" snapshots && check_table "--password-file wins over RESTIC_PASSWORD_FILE"
RESTIC_PASSWORD=wrong expect_exit 0 cr -r "$R" --password-command "cat $T/pw" snapshots && check_table "--password-command wins over RESTIC_PASSWORD"
# file and command together are refused ("Password file and command are mutually exclusive options")
expect_exit 1 cr -r "$R" --password-file "$T/pw" --password-command "cat $T/pw" snapshots
expect_grep "$ERR" 'mutually exclusive' "password file + command: 'mutually exclusive'"
RESTIC_PASSWORD_FILE=$T/pw RESTIC_PASSWORD_COMMAND="cat $T/pw" expect_exit 1 cr -r "$R" snapshots
# failing / empty / missing sources
expect_exit 1 cr -r "$R" --password-command false snapshots
expect_grep "$ERR" . "failing password command: message on stderr"
expect_exit 1 cr -r "$R" --password-command "true" snapshots
expect_grep "$ERR" 'empty password' "empty password from a command: 'empty password'"
expect_exit 1 cr -r "$R" --password-file "$T/no-such-file" snapshots
expect_grep "$ERR" 'does not exist|no such file|No such file' "missing password file: message"
# from stdin when it is not a terminal (restic reads one line)
RC=0; printf '%s\n' "$P" | "$CRESTIC" -r "$R" snapshots -q >"$OUT" 2>"$ERR" || RC=$?
cp "$OUT" "$S/table.got"
if sanitizer_report "$ERR"; then fail "password from stdin: sanitizer report"; show_sanitizer "$ERR"
elif [ "$RC" = 0 ]; then pass "password from stdin: exit 0"; else fail "password from stdin: exit 0 expected, got $RC"; show "$ERR"; fi
expect_same "$S/table-q.ref" "$S/table.got" "password from stdin: same table as restic -q"
RC=0; printf '%s\n' wrong | "$CRESTIC" -r "$R" snapshots >"$OUT" 2>"$ERR" || RC=$?
expect_true "wrong password from stdin: exit 12 (got $RC)" [ "$RC" = 12 ]
if sanitizer_report "$ERR"; then fail "wrong password from stdin: sanitizer report"; show_sanitizer "$ERR"; fi

section "repository sources"
RESTIC_PASSWORD=$P expect_exit 0 cr --repository-file "$T/repofile" snapshots && check_table "--repository-file"
RESTIC_PASSWORD=$P RESTIC_REPOSITORY_FILE=$T/repofile expect_exit 0 cr snapshots && check_table "RESTIC_REPOSITORY_FILE"
RESTIC_PASSWORD=$P RESTIC_REPOSITORY=$R expect_exit 0 cr snapshots && check_table "RESTIC_REPOSITORY"
RESTIC_PASSWORD=$P RESTIC_REPOSITORY=$T/does-not-exist expect_exit 0 cr -r "$R" snapshots && check_table "-r wins over RESTIC_REPOSITORY"
RESTIC_PASSWORD=$P expect_exit 0 cr snapshots --repo "$R" && check_table "--repo after the command"
RESTIC_PASSWORD=$P expect_exit 0 cr snapshots --password-file "$T/pw" -r "$R" && check_table "global flags after the command"
# both kinds at once are refused ("Options -r and --repository-file are mutually exclusive, please specify only one")
RESTIC_PASSWORD=$P expect_exit 1 cr -r "$R" --repository-file "$T/repofile" snapshots
expect_grep "$ERR" 'mutually exclusive' "-r + --repository-file: 'mutually exclusive'"
RESTIC_PASSWORD=$P expect_exit 1 cr --repository-file "$T/no-such-file" snapshots
expect_grep "$ERR" 'does not exist|no such file|No such file' "missing repository file: message"

# ---------------------------------------------------------------------------
section "usage errors: exit 1, message on stderr, nothing on stdout"
RESTIC_PASSWORD=$P expect_exit 1 cr -r "$R" frobnicate
expect_grep "$ERR" 'unknown command "frobnicate"' "unknown command: 'unknown command \"frobnicate\"'"
expect_empty "$OUT" "unknown command: stdout empty"
RESTIC_PASSWORD=$P restic_err -r "$R" frobnicate
expect_grep "$S/restic.err" 'unknown command "frobnicate"' "restic 0.14: same message"
RESTIC_PASSWORD=$P expect_exit 1 cr -r "$R" snapshots --frobnicate
expect_grep "$ERR" 'unknown flag: --frobnicate' "unknown flag after the command: 'unknown flag: --frobnicate'"
expect_empty "$OUT" "unknown flag: stdout empty"
RESTIC_PASSWORD=$P expect_exit 1 cr -r "$R" --frobnicate snapshots
expect_grep "$ERR" 'unknown flag: --frobnicate' "unknown global flag: 'unknown flag: --frobnicate'"
RESTIC_PASSWORD=$P expect_exit 1 cr -r "$R" snapshots -Z
expect_grep "$ERR" "unknown shorthand flag: 'Z'" "unknown short flag: \"unknown shorthand flag: 'Z' in -Z\""
RESTIC_PASSWORD=$P expect_exit 1 cr -r "$R" snapshots --tag
expect_grep "$ERR" 'flag needs an argument' "flag without its value: 'flag needs an argument: --tag'"
RESTIC_PASSWORD=$P expect_exit 1 cr -r "$R" snapshots --latest notanumber
expect_grep "$ERR" 'latest' "non-numeric --latest: message names the flag"
RESTIC_PASSWORD=$P restic_err -r "$R" snapshots --frobnicate
expect_grep "$S/restic.err" 'unknown flag: --frobnicate' "restic 0.14: same unknown-flag message"

section "help and version"
expect_exit 0 cr version
# pinned: first line "crestic X.Y.Z restic-compatible ..." (the word may be
# in parentheses: "crestic 0.1.0 (restic-compatible) compiled with ...")
expect_grep "$OUT" "^crestic [0-9]+\.[0-9]+\.[0-9]+([-.+][0-9A-Za-z.]*)? \(?restic-compatible\)?( |\$)" "version: 'crestic X.Y.Z restic-compatible ...'"
ver=$(sed -n 's/^project(crestic VERSION \([0-9.]*\).*/\1/p' "$REPO_ROOT/CMakeLists.txt")
if [ -n "$ver" ]; then
    expect_grep "$OUT" "^crestic $ver " "version: the number is the CMake project version ($ver)"
fi
expect_empty "$ERR" "version: stderr empty"
expect_exit 0 cr --help
expect_grep "$OUT" 'Usage' "--help: usage on stdout"
expect_exit 0 cr help
expect_grep "$OUT" 'snapshots' "help: lists the commands"
expect_exit 0 cr help snapshots
expect_grep "$OUT" '--group-by' "help snapshots: lists its flags"
expect_exit 0 cr snapshots --help
expect_grep "$OUT" '--compact' "snapshots --help: lists its flags"

# ---------------------------------------------------------------------------
section "repository locked by another process: exit 11"
# restic 0.14 `key passwd` takes an exclusive lock, then blocks opening the
# new-password file when that is a FIFO nobody writes to.
L=$(copy_repo v1 "$T/repos/locked")
mkfifo "$T/newpw.fifo"
RESTIC_PASSWORD=$P "$RESTIC" --cache-dir "$T/cache-restic" -r "$L" key passwd --new-password-file "$T/newpw.fifo" >"$T/holder.log" 2>&1 &
holder=$!
bg_register $holder
for _ in $(seq 100); do [ -n "$(ls "$L/locks")" ] && break; sleep 0.1; done
if [ -z "$(ls "$L/locks")" ]; then
    fail "could not make restic hold an exclusive lock (harness problem)"; show "$T/holder.log"
else
    RESTIC_PASSWORD=$P expect_exit 11 cr -r "$L" snapshots
    expect_grep "$ERR" 'locked' "locked: message says the repository is locked"
    expect_empty "$OUT" "locked: stdout empty"
    RESTIC_PASSWORD=$P restic_err -r "$L" snapshots
    expect_grep "$S/restic.err" 'already locked exclusively' "restic 0.14: 'repository is already locked exclusively by PID ...' (its exit code: 1)"
    # --no-lock reads anyway
    RESTIC_PASSWORD=$P expect_exit 0 cr -r "$L" --no-lock snapshots && check_table "--no-lock ignores the lock"
fi
kill $holder 2>/dev/null; wait $holder 2>/dev/null

# ---------------------------------------------------------------------------
section "interrupted: SIGINT -> exit 130, lock removed"
# `cat pack` of the largest pack (MBs) into a pipe nobody reads blocks after
# 64 KiB with the repository locked (restic 0.14 locks for cat); then SIGINT.
interrupt_test() { # NAME BINARY
    local name=$1 bin=$2 I fifo pid rc
    I=$(copy_repo v2 "$T/repos/int-$name")
    fifo=$T/int-$name.fifo
    mkfifo "$fifo"
    exec 7<>"$fifo"                   # hold the pipe open, never read
    set -m                            # own process group: SIGINT not ignored
    local pack
    pack=$(find "$I/data" -type f -printf '%s %f\n' | sort -n | tail -n 1 | cut -d' ' -f2)
    RESTIC_PASSWORD=$P RESTIC_CACHE_DIR=$T/cache-$name "$bin" -r "$I" cat pack "$pack" >"$fifo" 2>"$T/int-$name.err" &
    pid=$!
    set +m
    bg_register $pid
    local locked=no
    for _ in $(seq 200); do [ -n "$(ls "$I/locks" 2>/dev/null)" ] && { locked=yes; break; }; sleep 0.1; done
    sleep 1
    if [ $locked = yes ]; then pass "$name: holds a lock while writing"; else fail "$name: no lock file while writing"; show "$T/int-$name.err"; fi
    kill -INT $pid 2>/dev/null
    for _ in $(seq 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
    if kill -0 $pid 2>/dev/null; then
        kill -KILL $pid 2>/dev/null
        fail "$name: still running 10 s after SIGINT"
    fi
    rc=0; wait $pid || rc=$?
    exec 7<&-
    RC=$rc
    if [ "$rc" = 130 ]; then pass "$name: exit 130 after SIGINT"; else fail "$name: exit 130 after SIGINT expected, got $rc"; show "$T/int-$name.err"; fi
    if sanitizer_report "$T/int-$name.err"; then fail "$name: sanitizer report"; show_sanitizer "$T/int-$name.err"; fi
    expect_true "$name: lock removed on interrupt" test -z "$(ls "$I/locks")"
}
interrupt_test restic "$RESTIC"
interrupt_test crestic "$CRESTIC"

finish
