#!/usr/bin/env bash
# S3 backend against real servers on loopback (shared test-servers recipe):
#   - OpenStack Swift with s3api (checks SigV4 and the payload hash), over
#     https and over plain http; npm s3rver (a second dialect, https)
#   - crestic init / backup / snapshots / restore / check --read-data /
#     forget --prune on each; restic's layout (data/XX/) and a prefix
#   - interop with restic 0.14 on Swift over https, both directions
#   - credentials: wrong secret or key, none at all, a shared credentials
#     file with a profile; wrong region; s3.* options
#   - the backend conformance suite, plain and through tests/tools/faultproxy.py
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic
need_server_tool "OpenStack Swift (swift-proxy-server)" command -v swift-proxy-server
need_server_tool "Swift's python modules (python3-swift)" "$PY" -c 'import swift.common.ring'
need_server_tool "npm s3rver" test -f "$NPM_DIR/s3rver/bin/s3rver.js"
CONF=$(dirname "$CRESTIC")/crestic-conformance

export RESTIC_PASSWORD=s3-test-password
# A server error must fail a check quickly instead of retrying for 15 min.
export CRESTIC_HTTP_RETRY_MAX_SECONDS=20
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_ACCESS_KEY AWS_SECRET_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_REGION \
    AWS_SHARED_CREDENTIALS_FILE MINIO_ROOT_USER MINIO_ROOT_PASSWORD MINIO_ACCESS_KEY MINIO_SECRET_KEY
SWIFT_KEY=test:tester        # tempauth's access keys hold a ':'
SWIFT_SECRET=testing
swift_env() { AWS_ACCESS_KEY_ID=$SWIFT_KEY AWS_SECRET_ACCESS_KEY=$SWIFT_SECRET "$@"; }
s3rver_env() { AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER "$@"; }
T0=$(date +%s)

# Swift + s3api (tests/servers/swift.sh, shared with bench/compare): a TLS
# proxy on SWIFT_TLS_PORT, a plain one on SWIFT_HTTP_PORT, free loopback ports
source "$TESTS_DIR/servers/swift.sh"
start_swift() { # DIR: launch without waiting
    local pid
    swift_start "$1" || return 1
    for pid in "${SWIFT_PIDS[@]}"; do bg_register "$pid"; done
}
wait_swift() { swift_wait "$T/swift" 90; }

# s3rver: its continuation tokens use DES, which Node 18+'s OpenSSL 3 only
# offers through the legacy provider (without it every paged listing is a 500).
# Virtual-host buckets stay on: a request to Host dns-bucket.localhost (curl
# resolves *.localhost to loopback) goes to s3rver's bucket
# "dns-bucket.localhost", which tells a dns-style request from a path-style one.
start_s3rver() { # DIR
    mkdir -p "$1/tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
        -addext "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:dns-bucket.localhost" \
        -keyout "$1/tls/key.pem" -out "$1/tls/cert.pem" >/dev/null 2>&1
    S3RVER_PORT=$(free_port)
    node --openssl-legacy-provider "$NPM_DIR/s3rver/bin/s3rver.js" -d "$1/data" -a 127.0.0.1 -p "$S3RVER_PORT" \
        --silent --key "$1/tls/key.pem" --cert "$1/tls/cert.pem" >"$1/log" 2>&1 &
    bg_register $!
}

# Swift takes seconds to start (several Python servers): the s3rver part
# runs meanwhile.
start_swift "$T/swift" || { fail "Swift's rings could not be built"; finish; }
mkdir -p "$T/s3rver"
start_s3rver "$T/s3rver"
wait_tcp "$S3RVER_PORT" 20 || { fail "s3rver did not start"; cat "$T/s3rver/log"; finish; }

# A small tree: nested folders, an empty file, 1.5 MiB of random data, a symlink.
small_source_tree 1572864
mkdir -p "$T/src2"
head -c 300000 /dev/urandom >"$T/src2/other.bin"

# elapsed seconds in each heading, to see where the time goes
section() { printf '\n=== %s  (%d s)\n' "$*" $(( $(date +%s) - T0 )); }
n_snapshots() { "$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1])) or []))' "$OUT"; }

# full_cycle NAME REPO [crestic flags...]: the everyday commands on one server
full_cycle() {
    local name=$1 repo=$2; shift 2
    expect_exit 0 cr "$@" -r "$repo" init
    expect_exit 0 cr "$@" -r "$repo" snapshots
    expect_empty "$OUT" "$name: an empty repository lists no snapshots"
    expect_exit 1 cr "$@" -r "$repo" init
    expect_grep "$ERR" "config file already exists" "$name: a second init is refused"
    expect_exit 0 cr "$@" -r "$repo" backup "$T/src"
    expect_exit 0 cr "$@" -r "$repo" restore latest --target "$T/r-$name"
    manifest --no-atime "$T/r-$name$T/src" >"$T/m.r-$name"
    expect_same "$T/m.src" "$T/m.r-$name" "$name: the restored tree equals the source"
    # a second, different backup: forget --prune then drops the first one's data
    expect_exit 0 cr "$@" -r "$repo" backup "$T/src2"
    expect_exit 0 cr "$@" -r "$repo" forget --keep-last 1 --group-by host --prune
    expect_grep "$OUT" "remove 1 snapshots|removed|this removes" "$name: forget --prune removed something"
    expect_exit 0 cr "$@" -r "$repo" snapshots --json
    expect_true "$name: one snapshot left after forget --prune" test "$(n_snapshots)" = 1
    expect_exit 0 cr "$@" -r "$repo" check --read-data
}

# ---------------------------------------------------------------------------
section "crestic on s3rver (https, with a prefix)"
S3RVER_CA=$T/s3rver/tls/cert.pem
S3R_REPO=s3:https://127.0.0.1:$S3RVER_PORT/s3rver-bucket/nested/prefix
s3rver_env full_cycle s3rver "$S3R_REPO" --cacert "$S3RVER_CA"
D=$T/s3rver/data/s3rver-bucket/nested/prefix
expect_true "s3rver: config at <prefix>/config" test -f "$D/config._S3rver_object"
expect_true "s3rver: key files under <prefix>/keys/" bash -c "ls '$D'/keys/*._S3rver_object >/dev/null"
expect_true "s3rver: packs under <prefix>/data/XX/ (restic's layout)" \
    bash -c "ls '$D'/data/??/*._S3rver_object | grep -Eq '/data/([0-9a-f]{2})/\1[0-9a-f]{62}\._S3rver_object$'"
s3rver_env run cr --cacert "$S3RVER_CA" -r "$S3R_REPO" list packs
sort "$OUT" >"$T/s3r.packs"
CRESTIC_LIST_PAGE_SIZE=1 s3rver_env run cr --cacert "$S3RVER_CA" -r "$S3R_REPO" list packs
sort "$OUT" >"$T/s3r.packs.v2"
CRESTIC_LIST_PAGE_SIZE=1 s3rver_env run cr --cacert "$S3RVER_CA" -o s3.list-objects-v1=1 -r "$S3R_REPO" list packs
sort "$OUT" >"$T/s3r.packs.v1"
expect_true "s3rver: several packs to list" test "$(wc -l <"$T/s3r.packs")" -ge 2
expect_same "$T/s3r.packs" "$T/s3r.packs.v2" "s3rver: a V2 listing paged by 1 key equals the unpaged one"
expect_same "$T/s3r.packs" "$T/s3r.packs.v1" "s3rver: a V1 listing paged by 1 key equals the unpaged one"
run cr --cacert "$S3RVER_CA" -r "$S3R_REPO" snapshots --json
expect_true "no credentials: anonymous requests (s3rver allows them)" test "$RC" = 0 -a "$(n_snapshots)" = 1
S3R_DNS=s3:https://localhost:$S3RVER_PORT/dns-bucket
expect_exit 0 s3rver_env cr --cacert "$S3RVER_CA" -o s3.bucket-lookup=dns -r "$S3R_DNS" init
expect_exit 0 s3rver_env cr --cacert "$S3RVER_CA" -o s3.bucket-lookup=dns -r "$S3R_DNS" backup "$T/src2"
expect_true "s3.bucket-lookup=dns: the bucket went into the host name" \
    test -f "$T/s3rver/data/dns-bucket.localhost/config._S3rver_object"
expect_true "s3.bucket-lookup=dns: nothing was addressed path style" test ! -e "$T/s3rver/data/dns-bucket"
if [ -x "$CONF" ]; then
    expect_exit 0 s3rver_env "$CONF" --cacert "$S3RVER_CA" --big 300000 --many 8 "s3:https://127.0.0.1:$S3RVER_PORT/conformance-s3rver"
fi

section "waiting for Swift"
wait_swift || { fail "Swift did not start"; tail -n 5 "$T"/swift/run/*.log; finish; }
SWIFT_CA=$T/swift/tls/cert.pem
SWIFT_S=https://127.0.0.1:$SWIFT_TLS_PORT
SWIFT_P=http://127.0.0.1:$SWIFT_HTTP_PORT

# ---------------------------------------------------------------------------
section "crestic on Swift over https"
CR_REPO=s3:$SWIFT_S/crestic-bucket
swift_env full_cycle swift "$CR_REPO" --cacert "$SWIFT_CA"
# listings paged one key at a time give the same answer
swift_env run cr --cacert "$SWIFT_CA" -r "$CR_REPO" list packs
sort "$OUT" >"$T/packs.all"
CRESTIC_LIST_PAGE_SIZE=1 swift_env run cr --cacert "$SWIFT_CA" -r "$CR_REPO" list packs
sort "$OUT" >"$T/packs.paged"
expect_true "Swift: several packs to list" test "$(wc -l <"$T/packs.all")" -ge 2
expect_same "$T/packs.all" "$T/packs.paged" "Swift: a listing paged by 1 key equals the unpaged one"
CRESTIC_LIST_PAGE_SIZE=1 swift_env run cr --cacert "$SWIFT_CA" -o s3.list-objects-v1=true -r "$CR_REPO" list packs
sort "$OUT" >"$T/packs.v1"
expect_same "$T/packs.all" "$T/packs.v1" "Swift: ListObjects V1 (s3.list-objects-v1) paged by 1 key: the same"

section "restic 0.14 reads crestic's repository (Swift, https)"
expect_exit 0 swift_env rs --cacert "$SWIFT_CA" -r "$CR_REPO" check --read-data

section "crestic reads restic 0.14's repository (Swift, https, with a prefix)"
RS_REPO=s3:$SWIFT_S/restic-bucket/some/prefix
expect_exit 0 swift_env rs --cacert "$SWIFT_CA" -r "$RS_REPO" init
expect_exit 0 swift_env rs --cacert "$SWIFT_CA" -r "$RS_REPO" backup -q "$T/src"
expect_exit 0 swift_env cr --cacert "$SWIFT_CA" -r "$RS_REPO" snapshots --json
expect_true "restic's repository: one snapshot" test "$(n_snapshots)" = 1
expect_exit 0 swift_env cr --cacert "$SWIFT_CA" -r "$RS_REPO" restore latest --target "$T/r-rs"
manifest --no-atime "$T/r-rs$T/src" >"$T/m.r-rs"
expect_same "$T/m.src" "$T/m.r-rs" "crestic restores restic's snapshot identically"
expect_exit 0 swift_env cr --cacert "$SWIFT_CA" -r "$RS_REPO" check --read-data
expect_exit 0 swift_env cr --cacert "$SWIFT_CA" -r "s3:$SWIFT_S/restic-bucket/crestic-prefix" init
expect_grep "$OUT" "created restic repository" "init in an existing bucket (restic made it), beside restic's repository"

# ---------------------------------------------------------------------------
section "credentials and errors (Swift)"
t0=$(date +%s)
AWS_ACCESS_KEY_ID=$SWIFT_KEY AWS_SECRET_ACCESS_KEY=wrong-Secret-42 run cr --cacert "$SWIFT_CA" -r "$CR_REPO" snapshots
t1=$(date +%s)
if [ "$RC" -ne 0 ] && [ $((t1 - t0)) -le 10 ]; then pass "wrong secret: non-zero exit ($RC) at once"
else fail "wrong secret: non-zero exit at once" "rc=$RC, $((t1 - t0)) s"; show "$ERR"; fi
expect_grep "$ERR" "SignatureDoesNotMatch" "wrong secret: the server's code is named"
expect_grep "$ERR" "wrong credentials" "wrong secret: the message says the credentials are wrong"
expect_true "wrong secret: not shown" bash -c "! grep -q 'wrong-Secret-42' '$ERR'"
AWS_ACCESS_KEY_ID=nobody:none AWS_SECRET_ACCESS_KEY=$SWIFT_SECRET run cr --cacert "$SWIFT_CA" -r "$CR_REPO" snapshots
expect_true "unknown access key: non-zero exit" test "$RC" -ne 0
expect_grep "$ERR" "wrong credentials" "unknown access key: the message says the credentials are wrong"
run cr --cacert "$SWIFT_CA" -r "$CR_REPO" snapshots
expect_true "no credentials at all: non-zero exit" test "$RC" -ne 0
expect_grep "$ERR" "no credentials were found" "no credentials at all: the message says so"
AWS_ACCESS_KEY_ID=$SWIFT_KEY run cr --cacert "$SWIFT_CA" -r "$CR_REPO" snapshots
expect_grep "$ERR" 'Secret \(\$AWS_SECRET_ACCESS_KEY\) is empty' "a key ID without a secret is refused"
swift_env run cr --cacert "$SWIFT_CA" -r "s3:$SWIFT_S/no-such-bucket" snapshots
expect_true "missing bucket: exit 10 (no repository)" test "$RC" = 10
swift_env run cr --cacert "$SWIFT_CA" -o s3.region=eu-west-1 -r "$CR_REPO" snapshots
expect_true "wrong region: non-zero exit" test "$RC" -ne 0
expect_grep "$ERR" "region 'eu-west-1' is wrong" "wrong region: the message names the region"
# the plain proxy's region (eu-central-1) is found without being told, or given
swift_env run cr -r "s3:$SWIFT_P/crestic-bucket" snapshots --json
expect_true "region eu-central-1 discovered (GetBucketLocation): snapshots works" test "$RC" = 0 -a "$(n_snapshots)" = 1
AWS_DEFAULT_REGION=eu-central-1 swift_env run cr -r "s3:$SWIFT_P/crestic-bucket" snapshots --json
expect_true "AWS_DEFAULT_REGION=eu-central-1: snapshots works" test "$RC" = 0
AWS_DEFAULT_REGION=eu-central-1 swift_env run cr -o s3.region=us-east-1 -r "s3:$SWIFT_P/crestic-bucket" snapshots
expect_grep "$ERR" "expecting 'eu-central-1'" "-o s3.region wins over AWS_DEFAULT_REGION (and is wrong here)"

section "other credential sources: MinIO variables, a shared credentials file with a profile"
MINIO_ACCESS_KEY=$SWIFT_KEY MINIO_SECRET_KEY=$SWIFT_SECRET run cr --cacert "$SWIFT_CA" -r "$CR_REPO" snapshots --json
expect_true "MINIO_ACCESS_KEY / MINIO_SECRET_KEY: snapshots works" test "$RC" = 0

mkdir -p "$T/aws"
printf '[default]\naws_access_key_id = nobody:none\naws_secret_access_key = nothing\n\n[swift]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
    "$SWIFT_KEY" "$SWIFT_SECRET" >"$T/aws/credentials"
chmod 600 "$T/aws/credentials"
AWS_SHARED_CREDENTIALS_FILE=$T/aws/credentials AWS_PROFILE=swift run cr --cacert "$SWIFT_CA" -r "$CR_REPO" snapshots --json
expect_true "AWS_PROFILE=swift from AWS_SHARED_CREDENTIALS_FILE: snapshots works" test "$RC" = 0
mkdir -p "$HOME/.aws" && cp "$T/aws/credentials" "$HOME/.aws/credentials"
AWS_PROFILE=swift run cr --cacert "$SWIFT_CA" -r "$CR_REPO" snapshots --json
expect_true "AWS_PROFILE=swift from ~/.aws/credentials: snapshots works" test "$RC" = 0
run cr --cacert "$SWIFT_CA" -r "$CR_REPO" snapshots
expect_grep "$ERR" "wrong credentials" "the default profile (wrong keys) is used without AWS_PROFILE"
rm -rf "$HOME/.aws"

section "options"
swift_env run cr --cacert "$SWIFT_CA" -o s3.region=us-east-1 -o s3.bucket-lookup=path -o s3.connections=2 -r "$CR_REPO" snapshots --json
expect_true "s3.region, s3.bucket-lookup=path, s3.connections: accepted" test "$RC" = 0
swift_env run cr --cacert "$SWIFT_CA" -r "s3:127.0.0.1:$SWIFT_TLS_PORT/crestic-bucket/" snapshots --json
expect_true "s3:host:port/bucket/ (no scheme: https) reaches the same repository" test "$RC" = 0 -a "$(n_snapshots)" = 1
LONG_TOKEN=$(head -c 1200 /dev/zero | tr '\0' T)
AWS_SESSION_TOKEN=$LONG_TOKEN swift_env run cr --cacert "$SWIFT_CA" -r "$CR_REPO" snapshots --json
expect_true "a 1200-byte AWS_SESSION_TOKEN does not break requests (Swift's tempauth ignores tokens)" test "$RC" = 0
swift_env run cr --cacert "$SWIFT_CA" -o s3.storage-class=GLACIER -r "$CR_REPO" backup "$T/src/hello.txt"
expect_grep "$ERR" "InvalidStorageClass" "s3.storage-class is sent (Swift refuses GLACIER)"
swift_env run cr --cacert "$SWIFT_CA" -o s3.storage-class=STANDARD -r "$CR_REPO" backup "$T/src/hello.txt"
expect_true "s3.storage-class=STANDARD: backup works" test "$RC" = 0
swift_env run cr --cacert "$SWIFT_CA" -o s3.bucket-lookup=sideways -r "$CR_REPO" snapshots
expect_grep "$ERR" 'bad bucket-lookup style' "a bad s3.bucket-lookup is refused"
swift_env run cr --cacert "$SWIFT_CA" -o s3.list-objects-v1=maybe -r "$CR_REPO" snapshots
expect_grep "$ERR" 'for option s3.list-objects-v1' "a bad s3.list-objects-v1 value is refused"
swift_env run cr --cacert "$SWIFT_CA" -o s3.nope=1 -r "$CR_REPO" snapshots
expect_grep "$ERR" 's3 has no such option' "an unknown s3 option is refused"

# ---------------------------------------------------------------------------
section "conformance on Swift over plain http (a prefix with a space, UTF-8 and URL metacharacters), directly and through faultproxy"
if [ -x "$CONF" ]; then
    expect_exit 0 swift_env "$CONF" --big 1000000 --many 16 "s3:$SWIFT_P/conformance-plain/a%20dir/%C3%BCn%C3%AF+=&;,x"
    PPORT=$(free_port)
    "$PY" "$TOOLS/faultproxy.py" --listen "$PPORT" --target "$SWIFT_HTTP_PORT" --every 5 >"$T/proxy.log" 2>&1 &
    bg_register $!
    wait_tcp "$PPORT" || fail "faultproxy did not start"
    expect_exit 0 swift_env "$CONF" --big 600000 --many 12 "s3:http://127.0.0.1:$PPORT/conformance-faults"
    for kind in 500 503 drop truncate; do
        expect_true "the proxy injected '$kind' faults" grep -q "^fault $kind " "$T/proxy.log"
    done
    expect_exit 0 swift_env cr -r "s3:http://127.0.0.1:$PPORT/crestic-bucket" check --read-data
else
    fail "crestic-conformance not built next to $CRESTIC"
fi

echo "elapsed: $(( $(date +%s) - T0 )) s"
finish
