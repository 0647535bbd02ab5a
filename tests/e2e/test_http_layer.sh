#!/usr/bin/env bash
# The shared HTTP layer (src/backends/http.c) seen through the rest: backend,
# against `rclone serve restic` on loopback:
#   - --limit-upload / --limit-download (KiB/s, all connections together):
#     12 MiB in three or four packs, moved in parallel, at 2048 KiB/s take at
#     least 5 s (a limit per connection would let them through in about 2 s)
#   - the User-Agent is crestic/<version>
#   - request bodies are sent from the caller's memory: a backup to rest:
#     needs no more memory than one to a local directory that takes whole
#     packs from memory as rest: does (CRESTIC_LOCAL_NO_STREAM; by default the
#     local backend streams packs and needs less)
#   - TLS: --cacert (and RESTIC_CACERT), --insecure-tls, a wrong CA refused
#     with a clear message, --tls-client-cert (and RESTIC_TLS_CLIENT_CERT)
#     against a server that requires client certificates; restic 0.14 with
#     the same flags for comparison
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic
need_server_tool "rclone" rclone version

export RESTIC_PASSWORD=http-layer-password
export RCLONE_CONFIG=/dev/null

# timed CMD...: like run, and sets SECS to the elapsed seconds (one decimal)
timed() {
    local t0 t1
    t0=$(date +%s%N)
    run "$@"
    t1=$(date +%s%N)
    SECS=$(( (t1 - t0) / 1000000000 )).$(( (t1 - t0) / 100000000 % 10 ))
}
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }

# serve PORTVAR LOG ARGS...: rclone serve restic on a free port
serve() {
    local var=$1 log=$2 port
    shift 2
    port=$(free_port)
    rclone serve restic --addr "127.0.0.1:$port" "$@" >"$log" 2>&1 &
    bg_register $!
    wait_tcp "$port" || { fail "rclone serve restic did not start"; cat "$log"; finish; }
    printf -v "$var" '%s' "$port"
}

mkdir -p "$T/data"
serve PORT "$T/rclone.log" --user u --pass p-Secret "$T/data"
REPO=rest:http://u:p-Secret@127.0.0.1:$PORT/limits

mkdir -p "$T/src"
head -c 2097152 /dev/urandom >"$T/src/random.bin"
manifest --no-atime "$T/src" >"$T/m.src"
mkdir -p "$T/src12"
head -c 12582912 /dev/urandom >"$T/src12/random.bin"
manifest --no-atime "$T/src12" >"$T/m.src12"

# ---------------------------------------------------------------------------
section "--limit-upload and --limit-download"
expect_exit 0 cr -r "$REPO" init
timed cr -r "$REPO" --pack-size 4 --limit-upload 2048 backup "$T/src12"
if [ "$RC" -eq 0 ] && at_least "$SECS" 5; then pass "12 MiB uploaded at 2048 KiB/s: ${SECS} s (at least 5)"
else fail "12 MiB uploaded at 2048 KiB/s takes at least 5 s" "rc=$RC, $SECS s"; show "$ERR"; fi
expect_true "the upload made several packs" bash -c "[ \$(ls '$T/data/limits/data/'??/ | wc -l) -ge 3 ]"
timed cr -r "$REPO" --limit-download 2048 restore latest --target "$T/r1"
if [ "$RC" -eq 0 ] && at_least "$SECS" 5; then pass "12 MiB downloaded at 2048 KiB/s: ${SECS} s (at least 5)"
else fail "12 MiB downloaded at 2048 KiB/s takes at least 5 s" "rc=$RC, $SECS s"; show "$ERR"; fi
manifest --no-atime "$T/r1$T/src12" >"$T/m.r1"
expect_same "$T/m.src12" "$T/m.r1" "the rate-limited restore equals the source"
expect_exit 0 cr -r "$REPO" check --read-data

# ---------------------------------------------------------------------------
section "User-Agent"
UPORT=$(free_port)
"$PY" - "$UPORT" "$T/agents" >"$T/ua.log" 2>&1 <<'EOF' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        with open(sys.argv[2], "a") as f:
            f.write(self.headers.get("User-Agent", "") + "\n")
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()
    do_GET = do_HEAD = do_POST = answer
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
bg_register $!
wait_tcp "$UPORT" || fail "the User-Agent server did not start"
run cr -r "rest:http://127.0.0.1:$UPORT/repo" snapshots
VERSION=$("$CRESTIC" version | awk '{print $2}')
expect_grep "$T/agents" "^crestic/$VERSION\$" "requests carry User-Agent crestic/$VERSION"

# ---------------------------------------------------------------------------
section "request bodies are not copied"
# Three packs' worth of data; a copy of each body in flight would add at
# least a pack (16 MiB) to the peak.
mkdir -p "$T/big"
head -c 41943040 /dev/urandom >"$T/big/random.bin"
maxrss() { "$PY" -c 'import resource, subprocess, sys
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if rc == 0 else -1)' "$@"; }
cr -r "$T/local-repo" init >/dev/null 2>&1
cr -r "$REPO-big" init >/dev/null 2>&1
if is_sanitized; then
    skip "peak memory under ASan includes its quarantine (checked on the optimised build: ctest label smoke)"
else
LOCAL_KB=$(CRESTIC_LOCAL_NO_STREAM=1 RESTIC_CACHE_DIR=$T/cache-crestic maxrss "$CRESTIC" -r "$T/local-repo" backup "$T/big")
REST_KB=$(RESTIC_CACHE_DIR=$T/cache-crestic maxrss "$CRESTIC" -r "$REPO-big" backup "$T/big")
if [ "$LOCAL_KB" -gt 0 ] && [ "$REST_KB" -gt 0 ] && [ "$REST_KB" -le $((LOCAL_KB + 12288)) ]; then
    pass "backup of 40 MiB: peak memory to rest: ${REST_KB} KiB, to a local directory ${LOCAL_KB} KiB"
else
    fail "backup to rest: needs no more memory than to a local directory (+12 MiB)" "rest ${REST_KB} KiB, local ${LOCAL_KB} KiB"
fi
fi

# ---------------------------------------------------------------------------
section "TLS: --cacert, --insecure-tls, a wrong CA"
tls_cert "$T/tls"
tls_cert "$T/other"
mkdir -p "$T/tls-data"
serve TPORT "$T/rclone-tls.log" --cert "$T/tls/cert.pem" --key "$T/tls/key.pem" "$T/tls-data"
TREPO=rest:https://127.0.0.1:$TPORT/repo
expect_exit 0 cr --cacert "$T/tls/cert.pem" -r "$TREPO" init
expect_exit 0 cr --cacert "$T/tls/cert.pem" -r "$TREPO" backup "$T/src"
expect_exit 0 env RESTIC_CACERT="$T/tls/cert.pem" RESTIC_CACHE_DIR="$T/cache-crestic" "$CRESTIC" -r "$TREPO" snapshots
expect_grep "$OUT" "$T/src" "RESTIC_CACERT: the snapshot is listed"
expect_exit 0 cr --insecure-tls -r "$TREPO" check --read-data
timed cr --cacert "$T/other/cert.pem" -r "$TREPO" snapshots
if [ "$RC" -eq 1 ] && at_least 5 "$SECS"; then pass "a wrong CA: exit 1 at once (${SECS} s)"
else fail "a wrong CA: exit 1 at once" "rc=$RC, $SECS s"; show "$ERR"; fi
expect_grep "$ERR" "certificate" "a wrong CA: the error is about the certificate"
run rs --cacert "$T/other/cert.pem" -r "$TREPO" snapshots
expect_true "restic 0.14 refuses the wrong CA too" test "$RC" -ne 0

# ---------------------------------------------------------------------------
section "TLS client certificates"
# A CA for clients; a client certificate it signed (certificate and key in
# one PEM file, as --tls-client-cert takes it) and one it did not.
CA=$T/client-ca
mkdir -p "$CA"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=crestic-test-client-ca \
    -keyout "$CA/ca.key" -out "$CA/ca.pem" >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -subj /CN=crestic-client -keyout "$CA/client.key" -out "$CA/client.csr" >/dev/null 2>&1
openssl x509 -req -in "$CA/client.csr" -CA "$CA/ca.pem" -CAkey "$CA/ca.key" -CAcreateserial -days 2 \
    -out "$CA/client.crt" >/dev/null 2>&1
cat "$CA/client.crt" "$CA/client.key" >"$CA/client.pem"
cat "$T/other/cert.pem" "$T/other/key.pem" >"$CA/rogue.pem"
chmod 600 "$CA"/*.pem "$CA"/*.key
mkdir -p "$T/mtls-data"
serve MPORT "$T/rclone-mtls.log" --cert "$T/tls/cert.pem" --key "$T/tls/key.pem" --client-ca "$CA/ca.pem" "$T/mtls-data"
MREPO=rest:https://127.0.0.1:$MPORT/repo
expect_exit 0 cr --cacert "$T/tls/cert.pem" --tls-client-cert "$CA/client.pem" -r "$MREPO" init
expect_exit 0 cr --cacert "$T/tls/cert.pem" --tls-client-cert "$CA/client.pem" -r "$MREPO" backup "$T/src"
expect_exit 0 env RESTIC_CACERT="$T/tls/cert.pem" RESTIC_TLS_CLIENT_CERT="$CA/client.pem" \
    RESTIC_CACHE_DIR="$T/cache-crestic" "$CRESTIC" -r "$MREPO" restore latest --target "$T/r-mtls"
manifest --no-atime "$T/r-mtls$T/src" >"$T/m.r-mtls"
expect_same "$T/m.src" "$T/m.r-mtls" "restore with a client certificate (RESTIC_TLS_CLIENT_CERT) equals the source"
expect_exit 0 rs --cacert "$T/tls/cert.pem" --tls-client-cert "$CA/client.pem" -r "$MREPO" check --read-data
for case in "no client certificate:" "a certificate the server's CA did not sign:$CA/rogue.pem"; do
    desc=${case%%:*} cert=${case#*:}
    timed cr --cacert "$T/tls/cert.pem" ${cert:+--tls-client-cert "$cert"} -r "$MREPO" snapshots
    if [ "$RC" -eq 1 ] && at_least 5 "$SECS"; then pass "$desc: exit 1 at once (${SECS} s)"
    else fail "$desc: exit 1 at once" "rc=$RC, $SECS s"; show "$ERR"; fi
    expect_grep "$ERR" "client certificate" "$desc: the error points at the client certificate"
done
expect_exit 1 cr --cacert "$T/tls/cert.pem" --tls-client-cert "$T/none.pem" -r "$MREPO" snapshots
expect_grep "$ERR" "certificate" "a missing client certificate file: a clear error"

finish
