#!/usr/bin/env bash
# Google Cloud Storage backend against the project's GCS JSON API server
# (tests/servers/gcsserver.py; no installable emulator exists, see
# shared/spec/test-servers.md), on 127.0.0.1:
#   - a service account (RSA key + key file made here, token_uri on the local
#     server): the server checks the RS256 JWT fully before issuing tokens
#   - init (bucket creation), backup, snapshots, restore, check --read-data,
#     forget --prune, list paging (CRESTIC_LIST_PAGE_SIZE; data/ holds >= 2 packs:
#     one of trees, one of data)
#   - resumable uploads of large packs (threshold lowered by env)
#   - token refresh: short-lived tokens, and a token that expires earlier than
#     announced (the client must recover from the 401)
#   - GOOGLE_ACCESS_TOKEN, and that it wins over the key file
#   - a JWT signed by the wrong key, a wrong static token: clear errors
#   - every Nth upload answering 503 (resumable chunks half kept): still works
#   - the backend conformance suite, plain, with 503s from the server and
#     through tests/tools/faultproxy.py (500/503, dropped connections, truncation)
# restic 0.14 is not run here: it cannot be pointed at a local GCS without a
# CONNECT proxy and certificates for Google's host names (test-servers.md).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_server_tool "python3-cryptography (for the GCS test server)" "$PY" -c 'import cryptography'
need_server_tool "openssl" openssl version

GCS=$TESTS_DIR/servers/gcsserver.py
export RESTIC_PASSWORD=gs-test-password
EMAIL=backup@crestic-test.iam.gserviceaccount.com
unset GOOGLE_ACCESS_TOKEN GOOGLE_APPLICATION_CREDENTIALS GOOGLE_PROJECT_ID

# ---- credentials ------------------------------------------------------------
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/sa-key.pem" 2>/dev/null
openssl pkey -in "$T/sa-key.pem" -pubout -out "$T/sa-pub.pem"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/other-key.pem" 2>/dev/null
# key_file KEY.pem PORT OUT: a service-account key file as Google hands out
key_file() {
    (umask 077; "$PY" - "$@" <<'EOF'
import json, sys
key, port, out = sys.argv[1:4]
doc = {"type": "service_account", "project_id": "crestic-test", "private_key_id": "0123abcd",
       "private_key": open(key).read(), "client_email": "backup@crestic-test.iam.gserviceaccount.com",
       "client_id": "1234567890", "auth_uri": "https://accounts.google.com/o/oauth2/auth",
       "token_uri": "http://127.0.0.1:%s/token" % port}
with open(out, "w") as f:
    json.dump(doc, f, indent=2)
EOF
    )
}

# start_gcs NAME [server options...]: sets PORT_<NAME>, EP_<NAME> (-o option)
start_gcs() {
    local name=$1; shift
    "$PY" "$GCS" --account "$EMAIL=$T/sa-pub.pem" --token static-test-token --log "$T/$name.log" "$@" \
        >"$T/$name.port" 2>"$T/$name.err" &
    bg_register $!
    local i
    for i in $(seq 200); do [ -s "$T/$name.port" ] && break; sleep 0.05; done  # 10 s: a loaded machine
    local port; port=$(head -n1 "$T/$name.port")
    wait_tcp "$port" 5 || { fail "gcsserver ($name) did not start"; cat "$T/$name.err"; finish; }
    printf -v "PORT_$name" %s "$port"
    printf -v "EP_$name" %s "gs.endpoint=http://127.0.0.1:$port"
}

# A small tree: nested folders, an empty file, a 3 MiB random file, a symlink.
small_source_tree

count() { grep -c -- "$2" "$1" 2>/dev/null || true; }
snapshot_count() { "$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$1" 2>/dev/null; }

# ---------------------------------------------------------------------------
section "service account: init, backup, restore, check"
start_gcs main
key_file "$T/sa-key.pem" "$PORT_main" "$T/sa.json"
export GOOGLE_APPLICATION_CREDENTIALS=$T/sa.json
REPO=gs:crestic-bucket:/repo
gs() { cr -o "$EP_main" -r "$REPO" "$@"; }

expect_exit 10 gs snapshots
expect_grep "$ERR" 'bucket "crestic-bucket" does not exist' "missing bucket: named in the error"
expect_exit 1 gs init
expect_grep "$ERR" "GOOGLE_PROJECT_ID" "init without a project: says GOOGLE_PROJECT_ID is needed"
export GOOGLE_PROJECT_ID=crestic-test
expect_exit 0 gs -o gs.region=europe-west3 init
expect_true "the bucket was created in the region asked for" bash -c \
    "curl -sf -H 'Authorization: Bearer static-test-token' http://127.0.0.1:$PORT_main/storage/v1/b/crestic-bucket | grep -q '\"EUROPE-WEST3\"'"
expect_exit 1 gs init
expect_grep "$ERR" "config file already exists" "second init: config file already exists"
expect_exit 0 gs snapshots
expect_empty "$OUT" "snapshots of an empty repository: nothing listed"

expect_exit 0 gs backup "$T/src"
expect_exit 0 gs snapshots --json
expect_true "snapshots lists one snapshot" test "$(snapshot_count "$OUT")" = 1
expect_exit 0 gs restore latest --target "$T/r1"
manifest --no-atime "$T/r1$T/src" >"$T/m.r1"
expect_same "$T/m.src" "$T/m.r1" "restore from gs equals the source"
expect_exit 0 gs check --read-data
expect_true "objects are named repo/config, repo/keys/..., repo/data/XX/..." bash -c \
    "curl -sf -H 'Authorization: Bearer static-test-token' 'http://127.0.0.1:$PORT_main/storage/v1/b/crestic-bucket/o?prefix=repo/' >'$T/objs.json' &&
     grep -q '\"name\": \"repo/config\"' '$T/objs.json' && grep -q '\"name\": \"repo/keys/[0-9a-f]\{64\}\"' '$T/objs.json' &&
     grep -Eq '\"name\": \"repo/data/([0-9a-f]{2})/\\1[0-9a-f]{62}\"' '$T/objs.json'"
expect_true "locks were removed again" bash -c "! grep -q 'repo/locks/' '$T/objs.json'"
expect_true "multipart uploads were used" grep -q "^POST /upload/storage/v1/b/crestic-bucket/o?uploadType=multipart 200" "$T/main.log"
# The server really checks the MD5 that crestic sends (multipart and resumable).
"$PY" - "$PORT_main" >"$T/md5check.out" 2>&1 <<'EOF'
import base64, hashlib, http.client, json, sys
port = int(sys.argv[1])
auth = {"Authorization": "Bearer static-test-token"}
def req(method, path, body=b"", headers={}):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body, dict(auth, **headers))
    r = c.getresponse()
    r.read()
    return r.status, r.getheader("Location")
def multipart(data, md5):
    meta = json.dumps({"name": "md5-test/m", "md5Hash": md5}).encode()
    body = (b"--b0\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n" + meta +
            b"\r\n--b0\r\nContent-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--b0--\r\n")
    return req("POST", "/upload/storage/v1/b/crestic-bucket/o?uploadType=multipart", body,
               {"Content-Type": "multipart/related; boundary=b0"})[0]
def resumable(data, md5):
    st, loc = req("POST", "/upload/storage/v1/b/crestic-bucket/o?uploadType=resumable",
                  json.dumps({"name": "md5-test/r", "md5Hash": md5}).encode(), {"Content-Type": "application/json"})
    path = loc.split("127.0.0.1:%d" % port, 1)[1]
    return req("PUT", path, data, {"Content-Range": "bytes 0-%d/%d" % (len(data) - 1, len(data))})[0]
data = b"some bytes"
good = base64.b64encode(hashlib.md5(data).digest()).decode()
wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
got = [multipart(data, good), multipart(data, wrong), resumable(data, good), resumable(data, wrong)]
print(got)
sys.exit(got != [200, 400, 200, 400])
EOF
rc=$?
expect_true "the server refuses uploads whose MD5 does not match (multipart and resumable)" test "$rc" = 0
[ "$rc" = 0 ] || show "$T/md5check.out"
expect_grep "$T/main.err" "^token issued to $EMAIL" "the server issued a token after checking the JWT"

section "list paging"
: >"$T/main.log"
CRESTIC_LIST_PAGE_SIZE=1 run gs check
expect_true "check with 1 entry a page: exit 0" test "$RC" = 0
expect_true "lists were paged (pageToken sent)" grep -q "o?prefix=repo%2Fdata%2F&maxResults=1&pageToken=" "$T/main.log"

section "resumable uploads of large packs"
head -c 2621440 /dev/urandom >"$T/src/big.bin"
: >"$T/main.log"
CRESTIC_GS_RESUMABLE_THRESHOLD=1048576 CRESTIC_GS_CHUNK_SIZE=262144 run gs backup "$T/src"
expect_true "backup with a 1 MiB resumable threshold: exit 0" test "$RC" = 0
expect_true "resumable sessions were started" grep -q "uploadType=resumable 200" "$T/main.log"
expect_true "chunks were answered 308 until complete, then 200" \
    bash -c "grep -q '^PUT /upload/.*uploadType=resumable 308' '$T/main.log' && grep -q '^PUT /upload/.*uploadType=resumable 200' '$T/main.log'"
manifest --no-atime "$T/src" >"$T/m.src2"
expect_exit 0 gs restore latest --target "$T/r2"
manifest --no-atime "$T/r2$T/src" >"$T/m.r2"
expect_same "$T/m.src2" "$T/m.r2" "restore after resumable uploads equals the source"
expect_exit 0 gs check --read-data

section "forget --prune"
expect_exit 0 gs forget --keep-last 1 --prune
expect_exit 0 gs snapshots --json
expect_true "one snapshot left" test "$(snapshot_count "$OUT")" = 1
expect_exit 0 gs check --read-data

# ---------------------------------------------------------------------------
section "GOOGLE_ACCESS_TOKEN"
expect_exit 0 env GOOGLE_ACCESS_TOKEN=static-test-token GOOGLE_APPLICATION_CREDENTIALS= \
    "$CRESTIC" --cache-dir "$T/cache-tok" -o "$EP_main" -r "$REPO" snapshots
key_file "$T/other-key.pem" "$PORT_main" "$T/sa-wrong.json"
expect_exit 0 env GOOGLE_ACCESS_TOKEN=static-test-token GOOGLE_APPLICATION_CREDENTIALS="$T/sa-wrong.json" \
    "$CRESTIC" --cache-dir "$T/cache-tok" -o "$EP_main" -r "$REPO" check
expect_exit 1 env GOOGLE_ACCESS_TOKEN=wrong-token-987 "$CRESTIC" --cache-dir "$T/cache-tok" -o "$EP_main" -r "$REPO" snapshots
expect_grep "$ERR" "401" "wrong static token: the error names the status 401"
expect_true "wrong static token: not shown in the error" bash -c "! grep -q 'wrong-token-987' '$ERR'"

section "service account with the wrong key"
t0=$(date +%s)
expect_exit 1 env GOOGLE_APPLICATION_CREDENTIALS="$T/sa-wrong.json" \
    "$CRESTIC" --cache-dir "$T/cache-tok" -o "$EP_main" -r "$REPO" snapshots
t1=$(date +%s)
expect_true "wrong key: refused within 5 s" test $((t1 - t0)) -le 5
expect_grep "$ERR" "service-account login as $EMAIL .*refused: 400: invalid_grant: Invalid JWT Signature" \
    "wrong key: the error says the login was refused and why"
expect_true "wrong key: no key material in the error" bash -c "! grep -q 'PRIVATE KEY\|MII' '$ERR'"
expect_grep "$T/main.err" "token refused: invalid_grant: Invalid JWT Signature" "the server refused the JWT signature"
expect_exit 1 env GOOGLE_APPLICATION_CREDENTIALS="$T/missing.json" \
    "$CRESTIC" --cache-dir "$T/cache-tok" -o "$EP_main" -r "$REPO" snapshots
expect_grep "$ERR" "GOOGLE_APPLICATION_CREDENTIALS .*missing.json" "missing key file: named in the error"
expect_exit 1 env GOOGLE_APPLICATION_CREDENTIALS= "$CRESTIC" --cache-dir "$T/cache-tok" -o "$EP_main" -r "$REPO" snapshots
expect_grep "$ERR" "no credentials" "no credentials at all: said so"

section "the test server's own JWT checks (so a pass above means a valid JWT)"
"$PY" - "$T/sa-key.pem" "$T/other-key.pem" "$PORT_main" "$EMAIL" >"$T/jwtcheck.out" 2>&1 <<'EOF'
import base64, json, sys, time, urllib.request, urllib.error, urllib.parse
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
key_file, other_file, port, email = sys.argv[1:5]
load = lambda f: serialization.load_pem_private_key(open(f, "rb").read(), password=None)
key, other = load(key_file), load(other_file)
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
aud = "http://127.0.0.1:%s/token" % port
now = int(time.time())
good = {"iss": email, "scope": "https://www.googleapis.com/auth/devstorage.read_write", "aud": aud,
        "iat": now, "exp": now + 3600}
def jwt(claims, header={"alg": "RS256", "typ": "JWT"}, signer=key):
    si = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    return si + "." + b64(signer.sign(si.encode(), padding.PKCS1v15(), hashes.SHA256()))
def status(assertion, grant="urn:ietf:params:oauth:grant-type:jwt-bearer"):
    body = urllib.parse.urlencode({"grant_type": grant, "assertion": assertion}).encode()
    try:
        return urllib.request.urlopen(urllib.request.Request(aud, body), timeout=10).status
    except urllib.error.HTTPError as e:
        return e.code
h, c, sig = jwt(good).split(".")
cases = [("valid", jwt(good), 200),
         ("signed by another key", jwt(good, signer=other), 400),
         ("alg none", b64(b'{"alg":"none"}') + "." + c + ".", 400),
         ("alg HS256", jwt(good, {"alg": "HS256"}), 400),
         ("unknown iss", jwt(dict(good, iss="x@y")), 400),
         ("aud elsewhere", jwt(dict(good, aud="http://127.0.0.1/other")), 400),
         ("lifetime 2 h", jwt(dict(good, exp=now + 7200)), 400),
         ("expired", jwt(dict(good, iat=now - 4000, exp=now - 400)), 400),
         ("iat in the future", jwt(dict(good, iat=now + 600, exp=now + 1200)), 400),
         ("no scope", jwt({k: v for k, v in good.items() if k != "scope"}), 400),
         ("tampered claims", h + "." + b64(json.dumps(dict(good, exp=now + 3000)).encode()) + "." + sig, 400)]
bad = 0
for name, a, want in cases + [("grant_type client_credentials", None, 400)]:
    got = status(a) if a is not None else status(jwt(good), "client_credentials")
    print("%s %s: %d" % ("ok  " if got == want else "FAIL", name, got))
    bad += got != want
sys.exit(bad != 0)
EOF
rc=$?
expect_true "gcsserver accepts a valid JWT and refuses 11 kinds of bad ones" test "$rc" = 0
[ "$rc" = 0 ] || show "$T/jwtcheck.out" 20

section "options"
expect_exit 1 gs -o gs.connections=0 snapshots
expect_grep "$ERR" "gs.connections" "gs.connections=0: refused, named"
expect_exit 1 gs -o gs.nosuch=1 snapshots
expect_grep "$ERR" "gs.nosuch" "unknown gs option: refused, named"
expect_exit 1 gs -o gs.endpoint=http://127.0.0.1: snapshots
expect_grep "$ERR" "gs.endpoint" "an endpoint without a port number after the colon: refused, named"
expect_exit 0 gs -o gs.connections=2 snapshots

# ---------------------------------------------------------------------------
section "token refresh"
# Tokens live 4 s: the client must replace them on its own during the backup
# (it does so a quarter of the lifetime early: 1 s, enough for a loaded machine).
start_gcs short --token-lifetime 4
key_file "$T/sa-key.pem" "$PORT_short" "$T/sa-short.json"
short() { GOOGLE_APPLICATION_CREDENTIALS=$T/sa-short.json cr -o "$EP_short" -r gs:short-bucket:/ "$@"; }
expect_exit 0 short init
RC=0
{ sleep 5; cat "$T/src/sub/deeper/numbers.txt"; } |
    GOOGLE_APPLICATION_CREDENTIALS=$T/sa-short.json cr -o "$EP_short" -r gs:short-bucket:/ backup --stdin \
    >"$T/short.cr.out" 2>"$T/short.cr.err" || RC=$?
expect_true "backup running longer than the token lifetime: exit 0" test "$RC" = 0
expect_true "the client fetched new tokens before the old ones expired (no 401)" \
    bash -c "[ \$(grep -c '^token issued' '$T/short.err') -ge 3 ] && ! grep -q ' 401$' '$T/short.log'"
expect_exit 0 short check --read-data
# Tokens that die after 2 s while the client is told 3600: it meets a 401,
# fetches a new token and repeats the request.
start_gcs liar --token-lifetime 2 --announced-lifetime 3600
key_file "$T/sa-key.pem" "$PORT_liar" "$T/sa-liar.json"
RC=0
GOOGLE_APPLICATION_CREDENTIALS=$T/sa-liar.json cr -o "$EP_liar" -r gs:liar-bucket:/ init >"$T/liar.cr.out" 2>"$T/liar.cr.err" || RC=$?
{ sleep 3; cat "$T/src/hello.txt"; } |
    GOOGLE_APPLICATION_CREDENTIALS=$T/sa-liar.json cr -o "$EP_liar" -r gs:liar-bucket:/ backup --stdin \
    >>"$T/liar.cr.out" 2>>"$T/liar.cr.err" || RC=$?
expect_true "token expired early: init and backup still exit 0" test "$RC" = 0
expect_true "token expired early: a 401 was met and a new token fetched" \
    bash -c "grep -q ' 401$' '$T/liar.log' && [ \$(grep -c '^token issued' '$T/liar.err') -ge 3 ]"

# ---------------------------------------------------------------------------
section "fault injection: every 3rd upload answers 503, one upload session lost"
start_gcs faulty --fail-every 3 --lose-session-at 4
key_file "$T/sa-key.pem" "$PORT_faulty" "$T/sa-faulty.json"
export CRESTIC_HTTP_RETRY_MAX_SECONDS=60
faulty() { GOOGLE_APPLICATION_CREDENTIALS=$T/sa-faulty.json cr -o "$EP_faulty" -r gs:faulty-bucket:/r "$@"; }
expect_exit 0 faulty init
CRESTIC_GS_RESUMABLE_THRESHOLD=1048576 CRESTIC_GS_CHUNK_SIZE=524288 run faulty backup "$T/src"
expect_true "backup through faults (resumable threshold 1 MiB): exit 0" test "$RC" = 0
expect_grep "$ERR" "resuming" "an interrupted resumable upload was resumed"
expect_grep "$ERR" "upload session of .* was lost, starting over" "a lost upload session was started over"
expect_true "the server dropped a session" grep -q "^fault session lost" "$T/faulty.err"
expect_exit 0 faulty restore latest --target "$T/r3"
manifest --no-atime "$T/r3$T/src" >"$T/m.r3"
expect_same "$T/m.src2" "$T/m.r3" "restore after faulty uploads equals the source"
expect_exit 0 faulty check --read-data
expect_true "the server injected 503s into multipart uploads" grep -q "^fault 503 multipart" "$T/faulty.err"
expect_true "the server injected 503s into resumable chunks (part kept)" grep -q "^fault 503 resumable chunk .*kept [1-9]" "$T/faulty.err"

# ---------------------------------------------------------------------------
CONF=${CRESTIC_BUILD:-$(dirname "$CRESTIC")}/crestic-conformance
if [ -x "$CONF" ]; then
    section "backend conformance suite"
    CRESTIC_LIST_PAGE_SIZE=3 expect_exit 0 "$CONF" -o "$EP_main" gs:conformance-bucket:/c
    grep -E '^FAIL' "$OUT" | head -n 10
    # every 6th upload fails here: the suite makes ~150 uploads, each fault costs a back-off
    start_gcs conffaults --fail-every 6
    key_file "$T/sa-key.pem" "$PORT_conffaults" "$T/sa-conffaults.json"
    CRESTIC_LIST_PAGE_SIZE=3 CRESTIC_GS_RESUMABLE_THRESHOLD=262144 CRESTIC_GS_CHUNK_SIZE=262144 \
        expect_exit 0 env GOOGLE_APPLICATION_CREDENTIALS="$T/sa-conffaults.json" "$CONF" -o "$EP_conffaults" gs:conformance-faults:/c
    expect_true "faults were injected during the suite" grep -q "^fault 503 resumable chunk" "$T/conffaults.err"
    # Dropped connections and truncated downloads (tests/tools/faultproxy.py):
    # a chunk whose connection drops is resumed from the server's status.
    PPORT=$(free_port)
    "$PY" "$TOOLS/faultproxy.py" --listen "$PPORT" --target "$PORT_main" --every 7 >"$T/proxy.log" 2>&1 &
    bg_register $!
    wait_tcp "$PPORT" 5 || fail "faultproxy did not start"
    CRESTIC_LIST_PAGE_SIZE=3 CRESTIC_GS_RESUMABLE_THRESHOLD=262144 CRESTIC_GS_CHUNK_SIZE=262144 \
        expect_exit 0 "$CONF" -o "gs.endpoint=http://127.0.0.1:$PPORT" gs:conformance-proxy:/c
    grep -E '^FAIL' "$OUT" | head -n 10
    for kind in 500 503 drop; do  # truncate hits only GETs with a body: not every run
        expect_true "the proxy injected '$kind' faults" grep -q "^fault $kind " "$T/proxy.log"
    done
    expect_true "a resumable chunk met a fault and was resumed" grep -q "resuming$" "$ERR"
    grep -E '^FAIL' "$OUT" | head -n 10
else
    skip "crestic-conformance not built (CRESTIC_TESTS=ON builds it)"
fi

finish
