#!/usr/bin/env bash
# rclone: backend: crestic starts `rclone serve restic --stdio REMOTE` itself
# and speaks the REST protocol to it over HTTP/2 on its stdin/stdout, as
# restic does.  The remote is a local directory (rclone's local backend).
#   - crestic init / backup / snapshots / restore / check --read-data /
#     forget --prune on rclone:DIR; no rclone process is left behind
#   - interop with restic 0.14's rclone: backend on the same directory, both ways
#   - the options rclone.program/args/connections/timeout
#   - rclone missing, exiting at once, never answering: a quick, clear error
#     and restic's exit code; its stderr passes through
#   - Ctrl-C (SIGINT to crestic alone, rclone runs in its own process group):
#     exit 130 and rclone is ended; rclone killed mid-backup: exit 1, no hang
#   - the backend conformance suite on rclone:
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic
need_server_tool "rclone" rclone version

export RESTIC_PASSWORD=rclone-test-password
export RCLONE_CONFIG=/dev/null # no "config file not found" notice on every start

# rclone_left DIR: the rclone processes still serving DIR (none expected)
rclone_left() { pgrep -f "serve restic --stdio.* $1\$" || true; }
expect_no_rclone() { # DIR DESC
    local left
    left=$(rclone_left "$1")
    if [ -z "$left" ]; then pass "$2"; else fail "$2" "still running: $left"; fi
}

# timed CMD...: like run, and sets SECS to the elapsed whole seconds
timed() {
    local t0 t1
    t0=$(date +%s%N)
    run "$@"
    t1=$(date +%s%N)
    SECS=$(( (t1 - t0) / 1000000000 ))
}

small_source_tree

# ---------------------------------------------------------------------------
section "crestic on rclone:"
CR_DIR=$T/cr-repo
CR_REPO=rclone:$CR_DIR
expect_exit 0 cr -r "$CR_REPO" init
expect_grep "$OUT" "created restic repository .* at rclone:$CR_DIR" "init names the rclone: location"
expect_true "the repository lies in the directory rclone serves" test -f "$CR_DIR/config"
expect_exit 0 cr -r "$CR_REPO" snapshots
expect_empty "$OUT" "snapshots of an empty repository: nothing listed"
expect_exit 1 cr -r "$CR_REPO" init
expect_grep "$ERR" "config file already exists" "second init: config file already exists"

expect_exit 0 cr -r "$CR_REPO" backup "$T/src"
expect_exit 0 cr -r "$CR_REPO" snapshots --json
expect_true "snapshots lists one snapshot" \
    "$PY" -c 'import json,sys; sys.exit(len(json.load(open(sys.argv[1])))!=1)' "$OUT"
expect_exit 0 cr -r "$CR_REPO" restore latest --target "$T/r-cr"
manifest --no-atime "$T/r-cr$T/src" >"$T/m.r-cr"
expect_same "$T/m.src" "$T/m.r-cr" "crestic restore from rclone: equals the source"
expect_exit 0 cr -r "$CR_REPO" check --read-data
expect_true "packs are stored under data/XX/" bash -c "ls '$CR_DIR/data/'??/* >/dev/null"
expect_true "locks were removed again" bash -c "[ -z \"\$(ls -A '$CR_DIR/locks' 2>/dev/null)\" ]"
expect_no_rclone "$CR_DIR" "no rclone process is left after the commands"

printf 'changed\n' >>"$T/src/hello.txt"
manifest --no-atime "$T/src" >"$T/m.src2"
expect_exit 0 cr -r "$CR_REPO" -o rclone.connections=2 backup "$T/src"
expect_exit 0 cr -r "$CR_REPO" forget --keep-last 1 --prune
expect_exit 0 cr -r "$CR_REPO" snapshots --json
expect_true "forget --prune: one snapshot left" \
    "$PY" -c 'import json,sys; sys.exit(len(json.load(open(sys.argv[1])))!=1)' "$OUT"
expect_exit 0 cr -r "$CR_REPO" check --read-data

section "restic 0.14's rclone: backend reads what crestic wrote"
expect_exit 0 rs -r "$CR_REPO" check --read-data
expect_exit 0 rs -r "$CR_REPO" restore latest --target "$T/r-rs"
manifest --no-atime "$T/r-rs$T/src" >"$T/m.r-rs"
expect_same "$T/m.src2" "$T/m.r-rs" "restic restore of crestic's snapshot equals the source"

section "crestic reads what restic 0.14's rclone: backend wrote"
RS_DIR=$T/rs-repo
RS_REPO=rclone:$RS_DIR
expect_exit 0 rs -r "$RS_REPO" init
expect_exit 0 rs -r "$RS_REPO" backup "$T/src"
expect_exit 0 cr -r "$RS_REPO" snapshots --json
"$PY" -c 'import json,sys; print("\n".join(sorted(s["id"] for s in json.load(open(sys.argv[1])))))' "$OUT" >"$T/ids.cr"
rs -r "$RS_REPO" snapshots --json 2>/dev/null |
    "$PY" -c 'import json,sys; print("\n".join(sorted(s["id"] for s in json.load(sys.stdin))))' >"$T/ids.rs"
expect_same "$T/ids.rs" "$T/ids.cr" "crestic lists restic's snapshots"
expect_exit 0 cr -r "$RS_REPO" check --read-data
expect_exit 0 cr -r "$RS_REPO" restore latest --target "$T/r-cr2"
manifest --no-atime "$T/r-cr2$T/src" >"$T/m.r-cr2"
expect_same "$T/m.src2" "$T/m.r-cr2" "crestic restore of restic's snapshot equals the source"
expect_exit 0 cr -r "$RS_REPO" backup "$T/src"
expect_exit 0 rs -r "$RS_REPO" check --read-data

# ---------------------------------------------------------------------------
section "options"
expect_exit 0 cr -r "$CR_REPO" -o rclone.program=rclone -o "rclone.args=serve restic --stdio" -o rclone.timeout=30s snapshots
expect_exit 1 cr -r "$CR_REPO" -o rclone.connections=0 snapshots
expect_grep "$ERR" "rclone.connections" "connections=0: refused, naming the option"
expect_exit 1 cr -r "$CR_REPO" -o rclone.timeout=soon snapshots
expect_grep "$ERR" "rclone.timeout" "a malformed timeout: refused, naming the option"
expect_exit 1 cr -r "$CR_REPO" -o rclone.nope=1 snapshots
expect_grep "$ERR" "rclone has no such option" "unknown rclone option refused"
expect_exit 1 cr -r "$CR_REPO" -o "rclone.args=serve restic 'unbalanced" snapshots
expect_grep "$ERR" "unbalanced quotes" "args with unbalanced quotes refused"

# ---------------------------------------------------------------------------
section "rclone missing, failing or silent"
timed cr -o rclone.program=/nonexistent/rclone -r "$CR_REPO" snapshots
if [ "$RC" -eq 1 ] && [ "$SECS" -le 5 ]; then pass "program missing: exit 1 (as restic) within 5 s"
else fail "program missing: exit 1 within 5 s" "rc=$RC, $SECS s"; show "$ERR"; fi
expect_grep "$ERR" "cannot run /nonexistent/rclone: No such file or directory" "program missing: the error names the program"
run rs -o rclone.program=/nonexistent/rclone -r "$CR_REPO" snapshots
expect_true "restic 0.14 exits 1 for a missing program too" test "$RC" -eq 1

timed cr -o rclone.program=false -r "$CR_REPO" snapshots
if [ "$RC" -eq 1 ] && [ "$SECS" -le 5 ]; then pass "rclone exits at once: exit 1 (as restic) within 5 s"
else fail "rclone exits at once: exit 1 within 5 s" "rc=$RC, $SECS s"; show "$ERR"; fi
expect_grep "$ERR" "rclone exited with status 1" "rclone exits at once: the error gives its exit status"
expect_true "rclone exits at once: no retries" bash -c "! grep -q 'retrying in' '$ERR'"
run rs -o rclone.program=false -r "$CR_REPO" snapshots
expect_true "restic 0.14 exits 1 when rclone exits at once" test "$RC" -eq 1

timed cr -o "rclone.args=serve restic --stdio --no-such-flag" -r "$CR_REPO" snapshots
expect_true "rclone refuses its arguments: exit 1" test "$RC" -eq 1
expect_grep "$ERR" "^rclone: .*unknown flag: --no-such-flag" "rclone's own stderr passes through, prefixed \"rclone: \" (as restic)"
expect_grep "$ERR" "rclone exited with status 1" "rclone refuses its arguments: the exit status is named"

# A program that never answers: the timeout ends the wait, the whole process
# group (the shell and its sleep) is ended.
timed cr -o "rclone.program=sh -c 'sleep 60; :'" -o rclone.args= -o rclone.timeout=2s -r "rclone:$T/never" snapshots
if [ "$RC" -eq 1 ] && [ "$SECS" -le 8 ]; then pass "rclone never answers: exit 1 after the 2 s timeout ($SECS s)"
else fail "rclone never answers: exit 1 after the 2 s timeout" "rc=$RC, $SECS s"; show "$ERR"; fi
expect_grep "$ERR" "did not answer within 2 s" "rclone never answers: the error names the timeout"
expect_true "rclone never answers: its process group was ended" bash -c "! pgrep -f \"sleep 6[0]; :\" >/dev/null"

# ---------------------------------------------------------------------------
section "Ctrl-C during a backup"
mkdir -p "$T/slow"
head -c 4194304 /dev/urandom >"$T/slow/data.bin"
# A slow upload (--limit-upload) keeps the backup busy; SIGINT goes to
# crestic alone, as a terminal's Ctrl-C reaches only its process group.
RESTIC_CACHE_DIR=$T/cache-crestic "$CRESTIC" -r "$CR_REPO" --limit-upload 256 backup "$T/slow" >"$T/int.out" 2>"$T/int.err" &
CPID=$!
bg_register "$CPID"
for i in $(seq 50); do [ -n "$(rclone_left "$CR_DIR")" ] && break; sleep 0.1; done
sleep 1.5
kill -INT "$CPID"
t0=$(date +%s)
wait "$CPID"
RC=$?
t1=$(date +%s)
if [ "$RC" -eq 130 ] && [ $((t1 - t0)) -le 10 ]; then pass "interrupted backup: exit 130 within 10 s"
else fail "interrupted backup: exit 130 within 10 s" "rc=$RC, $((t1 - t0)) s"; show "$T/int.err"; fi
expect_no_rclone "$CR_DIR" "interrupted backup: rclone was ended"
expect_exit 0 cr -r "$CR_REPO" unlock
expect_exit 0 cr -r "$CR_REPO" check

# ---------------------------------------------------------------------------
section "--limit-upload / --limit-download over the rclone connection"
# The 4 MiB of $T/slow at 1024 KiB/s: at least 3 s each way.
LIM_REPO=rclone:$T/lim-repo
expect_exit 0 cr -r "$LIM_REPO" init
timed cr -r "$LIM_REPO" --limit-upload 1024 backup "$T/slow"
if [ "$RC" -eq 0 ] && [ "$SECS" -ge 3 ]; then pass "4 MiB uploaded at 1024 KiB/s: $SECS s (at least 3)"
else fail "4 MiB uploaded at 1024 KiB/s takes at least 3 s" "rc=$RC, $SECS s"; show "$ERR"; fi
timed cr -r "$LIM_REPO" --limit-download 1024 restore latest --target "$T/r-lim"
if [ "$RC" -eq 0 ] && [ "$SECS" -ge 3 ]; then pass "4 MiB downloaded at 1024 KiB/s: $SECS s (at least 3)"
else fail "4 MiB downloaded at 1024 KiB/s takes at least 3 s" "rc=$RC, $SECS s"; show "$ERR"; fi
expect_true "the rate-limited restore equals the source" cmp "$T/slow/data.bin" "$T/r-lim$T/slow/data.bin"

# ---------------------------------------------------------------------------
section "rclone killed during a backup"
RESTIC_CACHE_DIR=$T/cache-crestic "$CRESTIC" -r "$CR_REPO" --limit-upload 256 backup "$T/slow" >"$T/kill.out" 2>"$T/kill.err" &
CPID=$!
bg_register "$CPID"
RPID=
for i in $(seq 50); do RPID=$(rclone_left "$CR_DIR"); [ -n "$RPID" ] && break; sleep 0.1; done
sleep 1.5
[ -n "$RPID" ] && kill -KILL $RPID
t0=$(date +%s)
wait "$CPID"
RC=$?
t1=$(date +%s)
if [ "$RC" -eq 1 ] && [ $((t1 - t0)) -le 10 ]; then pass "rclone killed: crestic exits 1 within 10 s, no hang"
else fail "rclone killed: crestic exits 1 within 10 s" "rc=$RC, $((t1 - t0)) s"; show "$T/kill.err"; fi
expect_grep "$T/kill.err" "connection to rclone lost: rclone was killed by signal 9" "rclone killed: the error says so"
expect_exit 0 cr -r "$CR_REPO" unlock
expect_exit 0 cr -r "$CR_REPO" check

# ---------------------------------------------------------------------------
CONF=$(dirname "$CRESTIC")/crestic-conformance
if [ -x "$CONF" ]; then
    section "conformance suite on rclone:"
    expect_exit 0 "$CONF" "rclone:$T/conformance"
    show "$OUT" 200
    expect_no_rclone "$T/conformance" "conformance: no rclone process left"
else
    fail "crestic-conformance not built next to $CRESTIC"
fi

finish
