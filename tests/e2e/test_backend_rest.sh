#!/usr/bin/env bash
# REST backend (spec §23.4) against a real server: `rclone serve restic` on
# 127.0.0.1 with HTTP Basic auth (tests/../shared test-servers recipe).
#   - crestic init / backup / snapshots / restore / check --read-data on rest:
#   - interop with restic 0.14 on the same server, both directions
#   - credentials from RESTIC_REST_USERNAME / RESTIC_REST_PASSWORD
#   - wrong credentials: quick, clear failure that does not show the password
#   - server gone: clean failure within CRESTIC_HTTP_RETRY_MAX_SECONDS
#   - transient 500/503 and dropped connections (tests/tools/faultproxy.py):
#     retried, the commands still succeed
#   - the backend conformance suite, plain and through faultproxy
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic

if ! command -v rclone >/dev/null 2>&1; then
    if [ "${CI:-}" = true ]; then fail "rclone is not installed: run scripts/install-deps.sh"; finish; fi
    skip "$TEST_NAME: rclone not found (apt-get install rclone)"
    finish
fi

export RESTIC_PASSWORD=rest-test-password
REST_USER=rest
REST_PASS='s3cr3t-Pw'

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_http PORT: until anything answers HTTP on the port (5 s at most)
wait_http() {
    local i
    for i in $(seq 50); do
        curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
        sleep 0.1
    done
    return 1
}

SERVER_PID=
start_server() {
    PORT=$(free_port)
    mkdir -p "$T/rest-data"
    rclone serve restic --addr "127.0.0.1:$PORT" --user "$REST_USER" --pass "$REST_PASS" \
        --config /dev/null "$T/rest-data" >"$T/rclone.log" 2>&1 &
    SERVER_PID=$!
    bg_register "$SERVER_PID"
    wait_http "$PORT" || { fail "rclone serve restic did not start"; cat "$T/rclone.log"; finish; }
}
stop_server() {
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
}

start_server
BASE=http://$REST_USER:$REST_PASS@127.0.0.1:$PORT

# A small tree: nested folders, an empty file, a 3 MiB random file (several
# packs' worth of chunks), a symlink.
small_source_tree

# ---------------------------------------------------------------------------
section "crestic on rest:"
CR_REPO=rest:$BASE/crestic-repo/
expect_exit 0 cr -r "$CR_REPO" init
expect_exit 0 cr -r "$CR_REPO" snapshots
expect_empty "$OUT" "snapshots of an empty repository: nothing listed"
expect_exit 0 cr -r "$CR_REPO" check
expect_exit 1 cr -r "$CR_REPO" init
expect_grep "$ERR" "config file already exists" "second init: config file already exists"

expect_exit 0 cr -r "$CR_REPO" backup "$T/src"
expect_exit 0 cr -r "$CR_REPO" snapshots --json
expect_true "snapshots lists one snapshot" \
    "$PY" -c 'import json,sys; sys.exit(len(json.load(open(sys.argv[1])))!=1)' "$OUT"
expect_exit 0 cr -r "$CR_REPO" restore latest --target "$T/r-cr"
manifest --no-atime "$T/r-cr$T/src" >"$T/m.r-cr"
expect_same "$T/m.src" "$T/m.r-cr" "crestic restore from rest: equals the source"
expect_exit 0 cr -r "$CR_REPO" check --read-data
expect_true "locks were removed again (DELETE)" \
    bash -c "[ -d '$T/rest-data/crestic-repo/locks' ] && [ -z \"\$(ls -A '$T/rest-data/crestic-repo/locks' 2>/dev/null)\" ]"

# The packs lie under data/XX/ on the server's disk, never data/XX/ in URLs.
expect_true "server stores packs under data/XX/" \
    bash -c "ls '$T/rest-data/crestic-repo/data/'??/* >/dev/null"

section "restic 0.14 reads what crestic wrote"
expect_exit 0 rs -r "$CR_REPO" check --read-data
expect_exit 0 rs -r "$CR_REPO" restore latest --target "$T/r-rs"
manifest --no-atime "$T/r-rs$T/src" >"$T/m.r-rs"
expect_same "$T/m.src" "$T/m.r-rs" "restic restore of crestic's snapshot equals the source"

section "crestic reads what restic 0.14 wrote"
RS_REPO=rest:$BASE/restic-repo
expect_exit 0 rs -r "$RS_REPO" init
expect_exit 0 rs -r "$RS_REPO" backup "$T/src"
expect_exit 0 rs -r "$RS_REPO" backup "$T/src/sub"
expect_exit 0 cr -r "$RS_REPO" snapshots --json
"$PY" -c 'import json,sys; print("\n".join(sorted(s["id"] for s in json.load(open(sys.argv[1])))))' "$OUT" >"$T/ids.cr"
rs -r "$RS_REPO" snapshots --json 2>/dev/null |
    "$PY" -c 'import json,sys; print("\n".join(sorted(s["id"] for s in json.load(sys.stdin))))' >"$T/ids.rs"
expect_same "$T/ids.rs" "$T/ids.cr" "crestic lists restic's snapshots"
expect_exit 0 cr -r "$RS_REPO" check --read-data
expect_exit 0 cr -r "$RS_REPO" restore latest --path "$T/src" --target "$T/r-cr2"
manifest --no-atime "$T/r-cr2$T/src" >"$T/m.r-cr2"
expect_same "$T/m.src" "$T/m.r-cr2" "crestic restore of restic's snapshot equals the source"
expect_exit 0 cr -r "$RS_REPO" backup "$T/src"
expect_exit 0 rs -r "$RS_REPO" check --read-data

section "credentials"
expect_exit 0 env RESTIC_REST_USERNAME=$REST_USER RESTIC_REST_PASSWORD=$REST_PASS \
    "$CRESTIC" --cache-dir "$T/cache-env" -r "rest:http://127.0.0.1:$PORT/crestic-repo/" snapshots
BAD_REPO=rest:http://$REST_USER:wrong-Pw-123@127.0.0.1:$PORT/crestic-repo/
t0=$(date +%s)
run cr -r "$BAD_REPO" snapshots
t1=$(date +%s)
if [ "$RC" -ne 0 ] && [ $((t1 - t0)) -le 5 ]; then pass "wrong password: non-zero exit ($RC) within 5 s"
else fail "wrong password: non-zero exit within 5 s" "rc=$RC, $((t1 - t0)) s"; cat "$ERR"; fi
expect_grep "$ERR" "401" "wrong password: the error names the status 401"
expect_grep "$ERR" "127\.0\.0\.1:$PORT/crestic-repo" "wrong password: the error names the URL"
expect_true "wrong password: not shown in the error" bash -c "! grep -q 'wrong-Pw-123' '$ERR'"
run cr -r "rest:http://127.0.0.1:$PORT/crestic-repo/" snapshots
expect_grep "$ERR" "401" "no credentials at all: 401"

# ---------------------------------------------------------------------------
if [ -f "$TOOLS/faultproxy.py" ]; then
    section "transient faults through tests/tools/faultproxy.py"
    PPORT=$(free_port)
    "$PY" "$TOOLS/faultproxy.py" --listen "$PPORT" --target "$PORT" --every 6 >"$T/proxy.log" 2>&1 &
    bg_register $!
    wait_http "$PPORT" || fail "faultproxy did not start"
    PX_REPO=rest:http://$REST_USER:$REST_PASS@127.0.0.1:$PPORT/proxied-repo
    export CRESTIC_HTTP_RETRY_MAX_SECONDS=60
    expect_exit 0 cr -r "$PX_REPO" init
    expect_exit 0 cr -r "$PX_REPO" backup "$T/src"
    expect_exit 0 cr -r "$PX_REPO" restore latest --target "$T/r-px"
    manifest --no-atime "$T/r-px$T/src" >"$T/m.r-px"
    expect_same "$T/m.src" "$T/m.r-px" "restore through the faulty proxy equals the source"
    expect_exit 0 cr -r "$PX_REPO" check --read-data
    for kind in 500 503 drop truncate; do
        expect_true "the proxy injected '$kind' faults" grep -q "^fault $kind " "$T/proxy.log"
    done
    expect_exit 0 rs -r "rest:$BASE/proxied-repo" check --read-data
    unset CRESTIC_HTTP_RETRY_MAX_SECONDS

    section "stalled requests are aborted and retried"
    SPORT=$(free_port)
    "$PY" "$TOOLS/faultproxy.py" --listen "$SPORT" --target "$PORT" --every 6 --kinds stall >"$T/stall.log" 2>&1 &
    bg_register $!
    wait_http "$SPORT" || fail "faultproxy (stall) did not start"
    t0=$(date +%s)
    CRESTIC_HTTP_STALL_SECONDS=1 run cr -r "rest:http://$REST_USER:$REST_PASS@127.0.0.1:$SPORT/crestic-repo/" snapshots
    t1=$(date +%s)
    if [ "$RC" -eq 0 ] && [ $((t1 - t0)) -le 20 ]; then pass "stalled requests: snapshots still succeeds ($((t1 - t0)) s)"
    else fail "stalled requests: snapshots still succeeds" "rc=$RC, $((t1 - t0)) s"; cat "$ERR"; fi
    expect_true "the proxy did stall requests" grep -q "^fault stall " "$T/stall.log"
    expect_grep "$ERR" "retrying in" "stalled requests: retried"
fi

if [ -f "$TOOLS/faultproxy.py" ]; then
    section "REST v1 server (names only; sizes by HEAD)"
    VPORT=$(free_port)
    "$PY" "$TOOLS/faultproxy.py" --listen "$VPORT" --target "$PORT" --every 0 --rest-v1 >"$T/v1.log" 2>&1 &
    bg_register $!
    wait_http "$VPORT" || fail "faultproxy (v1) did not start"
    V1_REPO=rest:http://$REST_USER:$REST_PASS@127.0.0.1:$VPORT/crestic-repo/
    expect_true "the v1 proxy answers lists as v1" bash -c \
        "curl -s -u '$REST_USER:$REST_PASS' -H 'Accept: application/vnd.x.restic.rest.v2' http://127.0.0.1:$VPORT/crestic-repo/keys/ | grep -q '^\[\"[0-9a-f]*\"'"
    expect_exit 0 cr -r "$V1_REPO" snapshots --json
    expect_true "v1: one snapshot listed" \
        "$PY" -c 'import json,sys; sys.exit(len(json.load(open(sys.argv[1])))!=1)' "$OUT"
    expect_exit 0 cr -r "$V1_REPO" check --read-data
fi

# ---------------------------------------------------------------------------
CONF=$(dirname "$CRESTIC")/crestic-conformance
if [ -x "$CONF" ]; then
    section "conformance suite on rest:"
    expect_exit 0 "$CONF" "rest:$BASE/conformance"
    show "$OUT" 200
    if [ -n "${PPORT:-}" ]; then
        section "conformance suite on rest: through faultproxy"
        CRESTIC_HTTP_RETRY_MAX_SECONDS=60 expect_exit 0 "$CONF" "rest:http://$REST_USER:$REST_PASS@127.0.0.1:$PPORT/conformance-px"
        show "$OUT" 200
    fi
else
    fail "crestic-conformance not built next to $CRESTIC"
fi

# ---------------------------------------------------------------------------
section "TLS: verification is on by default"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$T/tls.key" -out "$T/tls.crt" >/dev/null 2>&1
TPORT=$(free_port)
rclone serve restic --addr "127.0.0.1:$TPORT" --user "$REST_USER" --pass "$REST_PASS" --cert "$T/tls.crt" --key "$T/tls.key" \
    --config /dev/null "$T/rest-data" >"$T/rclone-tls.log" 2>&1 &
bg_register $!
for i in $(seq 50); do curl -s -o /dev/null --cacert "$T/tls.crt" "https://127.0.0.1:$TPORT/" && break; sleep 0.1; done
t0=$(date +%s)
run cr -r "rest:https://$REST_USER:$REST_PASS@127.0.0.1:$TPORT/crestic-repo/" snapshots
t1=$(date +%s)
if [ "$RC" -ne 0 ] && [ $((t1 - t0)) -le 5 ]; then pass "self-signed certificate: refused at once"
else fail "self-signed certificate: refused at once" "rc=$RC, $((t1 - t0)) s"; cat "$ERR"; fi
expect_grep "$ERR" "certificate" "self-signed certificate: the error says so"
expect_exit 0 rs --cacert "$T/tls.crt" -r "rest:https://$REST_USER:$REST_PASS@127.0.0.1:$TPORT/crestic-repo/" snapshots

# ---------------------------------------------------------------------------
section "server gone"
stop_server
t0=$(date +%s)
CRESTIC_HTTP_RETRY_MAX_SECONDS=3 run cr -r "$CR_REPO" snapshots
t1=$(date +%s)
if [ "$RC" -ne 0 ] && [ $((t1 - t0)) -le 10 ]; then pass "server stopped: non-zero exit ($RC) within the 3 s retry cap"
else fail "server stopped: non-zero exit within the 3 s retry cap" "rc=$RC, $((t1 - t0)) s"; cat "$ERR"; fi
expect_grep "$ERR" "giving up after" "server stopped: the error says retries ran out"
expect_grep "$ERR" "retrying in" "server stopped: retries were made"
expect_true "server stopped: the password is not shown" bash -c "! grep -q '$REST_PASS' '$ERR'"

finish
