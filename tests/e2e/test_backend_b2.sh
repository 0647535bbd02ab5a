#!/usr/bin/env bash
# B2 backend (native API) against the project's own B2 server,
# tests/servers/b2server.py, on 127.0.0.1 (no B2 server can be installed).
#   - crestic init / backup / snapshots / restore / check --read-data /
#     forget --prune on b2:bucket:path; removed files leave no version behind
#   - large files (-o b2.part-size below the object sizes)
#   - credentials: wrong key (quick, clear, no secret shown), missing
#     variables, missing bucket (exit 10), an application key bound to a bucket
#   - faults: every 3rd upload answers 503 and tokens expire after 2 s;
#     dropped/truncated/5xx answers through tests/tools/faultproxy.py
#   - the backend conformance suite, plain and with faults
#   - interop with restic 0.14, both ways: restic's B2 library only talks to
#     https://api.backblazeb2.com, so restic (and crestic, for the same
#     server) go through tests/tools/connectproxy.py (HTTPS_PROXY), which
#     terminates TLS for *.backblazeb2.com with a test certificate and relays
#     to the local server; any other host is refused, nothing leaves loopback
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

B2SERVER=$TESTS_DIR/servers/b2server.py
CONF=$(dirname "$CRESTIC")/crestic-conformance
export RESTIC_PASSWORD=b2-test-password
export B2_ACCOUNT_ID=test-account-id
B2_KEY='K0-master-Secret/+x'
export B2_ACCOUNT_KEY=$B2_KEY
export CRESTIC_HTTP_RETRY_MAX_SECONDS=60
# loopback only: no proxy from the environment in between (the interop part sets its own)
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY
T0=$(date +%s)

# start_b2 NAME [server options...]: sets B2_PORT_<NAME>; log in $T/NAME.log
start_b2() {
    local name=$1 i port=""
    shift
    "$PY" "$B2SERVER" --data "$T/$name-data" --account "$B2_ACCOUNT_ID:$B2_KEY" "$@" \
        >"$T/$name.port" 2>"$T/$name.log" &
    bg_register $!
    for i in $(seq 100); do
        port=$(sed -n 's/^PORT //p' "$T/$name.port" 2>/dev/null)
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { fail "b2server $name did not start"; show "$T/$name.log"; finish; }
    printf -v "B2_PORT_$name" '%s' "$port"
}

# names of the stored file versions of a server: "ACTION NAME" lines, sorted
b2_versions() {
    "$PY" -c 'import json,sys,glob
for f in glob.glob(sys.argv[1] + "/files/*.json"):
    v = json.load(open(f)); print(v["action"], v["fileName"])' "$T/$1-data" | sort
}

# the newest version of each name: "ACTION NAME" lines, sorted
b2_latest() {
    "$PY" -c 'import json,sys,glob
new = {}
for f in glob.glob(sys.argv[1] + "/files/*.json"):
    v = json.load(open(f))
    if v["action"] != "start" and v["uploadTimestamp"] >= new.get(v["fileName"], (0, ""))[0]:
        new[v["fileName"]] = (v["uploadTimestamp"], v["action"])
for n, (_, a) in new.items(): print(a, n)' "$T/$1-data" | sort
}

small_source_tree

start_b2 main --min-part-size 100000 --app-key "app-key-1:AppSecret-1:crestic-bucket" \
    --app-key "nodel-key:NoDel-Secret-1:crestic-bucket:nodelete"
EP="-o b2.endpoint=http://127.0.0.1:$B2_PORT_main"

# ---------------------------------------------------------------------------
section "crestic on b2:"
REPO=b2:crestic-bucket:some/path
expect_exit 0 cr $EP -r $REPO init
expect_grep "$T/main.log" "CALL b2_create_bucket 200" "init created the bucket"
expect_exit 0 cr $EP -r $REPO snapshots
expect_empty "$OUT" "snapshots of an empty repository: nothing listed"
expect_exit 1 cr $EP -r $REPO init
expect_grep "$ERR" "config file already exists" "second init: config file already exists"
expect_exit 0 cr $EP -r $REPO backup "$T/src"
expect_exit 0 cr $EP -r $REPO snapshots --json
expect_true "snapshots lists one snapshot" \
    "$PY" -c 'import json,sys; sys.exit(len(json.load(open(sys.argv[1])))!=1)' "$OUT"
expect_exit 0 cr $EP -r $REPO restore latest --target "$T/r1"
manifest --no-atime "$T/r1$T/src" >"$T/m.r1"
expect_same "$T/m.src" "$T/m.r1" "restore from b2: equals the source"
expect_exit 0 cr $EP -r $REPO check --read-data
b2_versions main >"$T/v1"
expect_true "restic's layout under the path: config, keys/, data/XX/, index/, snapshots/" bash -c \
    "grep -qx 'upload some/path/config' '$T/v1' && grep -q '^upload some/path/keys/[0-9a-f]\{64\}$' '$T/v1' &&
     grep -q '^upload some/path/data/\([0-9a-f]\{2\}\)/\1[0-9a-f]\{62\}$' '$T/v1' &&
     grep -q '^upload some/path/index/' '$T/v1' && grep -q '^upload some/path/snapshots/' '$T/v1'"
expect_true "locks were removed again" bash -c "! grep -q ' some/path/locks/' '$T/v1'"

section "forget --prune: removed files leave no version behind"
printf 'changed\n' >>"$T/src/hello.txt"
head -c 1048576 /dev/urandom >"$T/src/sub/random.bin"
manifest --no-atime "$T/src" >"$T/m.src2"
expect_exit 0 cr $EP -r $REPO backup "$T/src"
expect_exit 0 cr $EP -r $REPO forget --keep-last 1 --prune
expect_exit 0 cr $EP -r $REPO snapshots --json
expect_true "one snapshot left" \
    "$PY" -c 'import json,sys; sys.exit(len(json.load(open(sys.argv[1])))!=1)' "$OUT"
expect_exit 0 cr $EP -r $REPO check --read-data
b2_versions main >"$T/v2"
expect_true "no hide markers, one version per name" bash -c \
    "! grep -qv '^upload ' '$T/v2' && [ -z \"\$(cut -d' ' -f2 '$T/v2' | sort | uniq -d)\" ]"
expect_true "prune deleted packs of the first backup" bash -c \
    "[ -n \"\$(comm -23 <(grep ' some/path/data/' '$T/v1') <(grep ' some/path/data/' '$T/v2'))\" ]"
expect_exit 0 cr $EP -r $REPO restore latest --target "$T/r2"
manifest --no-atime "$T/r2$T/src" >"$T/m.r2"
expect_same "$T/m.src2" "$T/m.r2" "restore after prune equals the changed source"

section "a key without deleteFiles: removed files are hidden instead (as restic)"
nodel() { env B2_ACCOUNT_ID=nodel-key B2_ACCOUNT_KEY=NoDel-Secret-1 "$CRESTIC" --cache-dir "$T/cache-nodel" $EP -r $REPO "$@"; }
expect_exit 0 nodel backup "$T/src"
expect_exit 0 nodel forget --keep-last 1 --prune
expect_grep "$T/main.log" "CALL b2_delete_file_version 401 unauthorized" "the server refused the delete"
expect_grep "$T/main.log" "CALL b2_hide_file 200" "files were hidden instead"
expect_exit 0 nodel snapshots --json
expect_true "one snapshot visible" \
    "$PY" -c 'import json,sys; sys.exit(len(json.load(open(sys.argv[1])))!=1)' "$OUT"
expect_exit 0 cr $EP -r $REPO check --read-data
b2_latest main >"$T/v3"
expect_grep "$T/v3" "^hide some/path/snapshots/" "the forgotten snapshot is hidden, not deleted"
expect_grep "$T/v3" "^hide some/path/locks/" "locks were hidden"
expect_true "no lock is visible" bash -c "! grep -q '^upload some/path/locks/' '$T/v3'"

section "large files (b2.part-size below the pack sizes)"
LREPO=b2:crestic-bucket:large
expect_exit 0 cr $EP -o b2.part-size=300000 -r $LREPO init
expect_exit 0 cr $EP -o b2.part-size=300000 -r $LREPO backup "$T/src"
expect_grep "$T/main.log" "CALL b2_finish_large_file 200" "packs above the part size became large files"
expect_true "a large file had several parts" bash -c "[ \$(grep -c 'CALL b2_upload_part 200' '$T/main.log') -ge 3 ]"
expect_exit 0 cr $EP -r $LREPO check --read-data
expect_exit 0 cr $EP -r $LREPO restore latest --target "$T/r3"
manifest --no-atime "$T/r3$T/src" >"$T/m.r3"
expect_same "$T/m.src2" "$T/m.r3" "restore of large-file packs equals the source"
expect_exit 1 cr $EP -o b2.part-size=1000 -r $LREPO snapshots
expect_grep "$ERR" "below the service's minimum part size" "a part size below the minimum is refused"

# ---------------------------------------------------------------------------
section "credentials and errors"
t0=$(date +%s)
B2_ACCOUNT_KEY=wrong-Key-123 run cr $EP -r $REPO snapshots
t1=$(date +%s)
if [ "$RC" -ne 0 ] && [ $((t1 - t0)) -le 5 ]; then pass "wrong key: non-zero exit ($RC) within 5 s"
else fail "wrong key: non-zero exit within 5 s" "rc=$RC, $((t1 - t0)) s"; show "$ERR"; fi
expect_grep "$ERR" "authorization with key ID \"$B2_ACCOUNT_ID\" failed.*401 unauthorized" "wrong key: the error says so"
expect_true "wrong key: the keys are not shown" bash -c "! grep -q -e 'wrong-Key-123' -e 'K0-master' '$ERR'"
B2_ACCOUNT_KEY= run cr $EP -r $REPO snapshots
expect_grep "$ERR" 'B2_ACCOUNT_KEY\) is empty' "no key: the error names B2_ACCOUNT_KEY"
B2_ACCOUNT_ID= run cr $EP -r $REPO snapshots
expect_grep "$ERR" 'B2_ACCOUNT_ID\) is empty' "no key ID: the error names B2_ACCOUNT_ID"
expect_exit 10 cr $EP -r b2:no-such-bucket:x snapshots
expect_grep "$ERR" 'bucket "no-such-bucket" does not exist' "missing bucket: exit 10 with a clear message"
expect_exit 10 cr $EP -r b2:crestic-bucket:nothing-here snapshots
expect_exit 1 cr $EP -r b2:bad_bucket snapshots
expect_grep "$ERR" "invalid bucket name" "bad bucket name refused"
expect_exit 1 cr $EP -o b2.nope=1 -r $REPO snapshots
expect_grep "$ERR" "b2 has no such option" "unknown b2 option refused"
DEAD=$(free_port)
t0=$(date +%s)
CRESTIC_HTTP_RETRY_MAX_SECONDS=2 run cr -o "b2.endpoint=http://127.0.0.1:$DEAD" -r $REPO snapshots
t1=$(date +%s)
if [ "$RC" -ne 0 ] && [ $((t1 - t0)) -le 10 ]; then pass "no server: non-zero exit ($RC) within the 2 s retry cap"
else fail "no server: non-zero exit within the 2 s retry cap" "rc=$RC, $((t1 - t0)) s"; show "$ERR"; fi
expect_grep "$ERR" "b2: authorization with key ID .* failed: giving up after .*b2_authorize_account" \
    "no server: the error names the call and says retries ran out"
expect_exit 0 env B2_ACCOUNT_ID=app-key-1 B2_ACCOUNT_KEY=AppSecret-1 "$CRESTIC" --cache-dir "$T/cache-app" $EP -r $REPO snapshots
expect_grep "$OUT" "1 snapshots" "an application key bound to the bucket opens the repository"

# ---------------------------------------------------------------------------
section "faults: every 3rd upload 503, tokens expire after 1 s"
start_b2 faulty --fail-upload-every 3 --token-lifetime 1 --min-part-size 100000
FEP="-o b2.endpoint=http://127.0.0.1:$B2_PORT_faulty"
FREPO=b2:faulty-bucket:repo
expect_exit 0 cr $FEP -r $FREPO init
expect_exit 0 cr $FEP -o b2.part-size=300000 -r $FREPO backup "$T/src"

expect_exit 0 cr $FEP -r $FREPO restore latest --target "$T/r4"
manifest --no-atime "$T/r4$T/src" >"$T/m.r4"
expect_same "$T/m.src2" "$T/m.r4" "restore from the faulty server equals the source"
expect_exit 0 cr $FEP -r $FREPO backup "$T/src/sub"
expect_exit 0 cr $FEP -r $FREPO forget --keep-last 1 --prune
expect_exit 0 cr $FEP -r $FREPO check --read-data
expect_grep "$T/faulty.log" "INJECTED 503 on b2_upload_file" "503s were injected on b2_upload_file"
expect_grep "$T/faulty.log" "INJECTED 503 on b2_upload_part" "503s were injected on b2_upload_part"
expect_grep "$T/faulty.log" "401 expired_auth_token" "tokens did expire"
expect_true "a retired upload URL was never used again" bash -c "! grep -q REUSED '$T/faulty.log'"

# ---------------------------------------------------------------------------
section "interop with restic 0.14 (through a CONNECT proxy for *.backblazeb2.com)"
if [ -z "$RESTIC" ] || ! "$RESTIC" version >/dev/null 2>&1; then
    if [ "${CI:-}" = true ]; then fail "restic 0.14 is not installed: run scripts/install-deps.sh"
    else skip "restic not found: no interop checks"; fi
else
    start_b2 interop --public-url https://api000.backblazeb2.com
    mkdir -p "$T/tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=api.backblazeb2.com \
        -addext "subjectAltName=DNS:api.backblazeb2.com,DNS:*.backblazeb2.com" \
        -keyout "$T/tls/key.pem" -out "$T/tls/cert.pem" >/dev/null 2>&1
    "$PY" "$TOOLS/connectproxy.py" --target "$B2_PORT_interop" --cert "$T/tls/cert.pem" --key "$T/tls/key.pem" \
        --hosts .backblazeb2.com >"$T/cproxy.port" 2>"$T/cproxy.log" &
    bg_register $!
    for i in $(seq 100); do CPORT=$(sed -n 's/^PORT //p' "$T/cproxy.port" 2>/dev/null); [ -n "$CPORT" ] && break; sleep 0.1; done
    # both programs reach "Backblaze" only through the proxy
    via() (
        unset NO_PROXY no_proxy ALL_PROXY all_proxy
        export HTTPS_PROXY="http://127.0.0.1:$CPORT" https_proxy="http://127.0.0.1:$CPORT"
        "$@"
    )
    XREPO=b2:interop-bucket:from-crestic
    expect_exit 0 via cr --cacert "$T/tls/cert.pem" -r $XREPO init
    expect_exit 0 via cr --cacert "$T/tls/cert.pem" -r $XREPO backup "$T/src"
    expect_exit 0 via rs --cacert "$T/tls/cert.pem" -r $XREPO check --read-data
    expect_exit 0 via rs --cacert "$T/tls/cert.pem" -r $XREPO restore latest --target "$T/r5"
    manifest --no-atime "$T/r5$T/src" >"$T/m.r5"
    expect_same "$T/m.src2" "$T/m.r5" "restic restores crestic's snapshot from B2"

    YREPO=b2:restic-bucket:from-restic
    expect_exit 0 via rs --cacert "$T/tls/cert.pem" -r $YREPO init
    expect_exit 0 via rs --cacert "$T/tls/cert.pem" -r $YREPO backup "$T/src"
    expect_exit 0 via cr --cacert "$T/tls/cert.pem" -r $YREPO snapshots --json
    "$PY" -c 'import json,sys; print("\n".join(sorted(s["id"] for s in json.load(open(sys.argv[1])))))' "$OUT" >"$T/ids.cr"
    via rs --cacert "$T/tls/cert.pem" -r $YREPO snapshots --json 2>/dev/null |
        "$PY" -c 'import json,sys; print("\n".join(sorted(s["id"] for s in json.load(sys.stdin))))' >"$T/ids.rs"
    expect_same "$T/ids.rs" "$T/ids.cr" "crestic lists restic's snapshots"
    expect_exit 0 via cr --cacert "$T/tls/cert.pem" -r $YREPO check --read-data
    expect_exit 0 via cr --cacert "$T/tls/cert.pem" -r $YREPO restore latest --target "$T/r6"
    manifest --no-atime "$T/r6$T/src" >"$T/m.r6"
    expect_same "$T/m.src2" "$T/m.r6" "crestic restores restic's snapshot from B2"
    expect_exit 0 via cr --cacert "$T/tls/cert.pem" -r $YREPO backup "$T/src/sub"
    expect_exit 0 via rs --cacert "$T/tls/cert.pem" -r $YREPO check --read-data
    expect_grep "$T/cproxy.log" "CONNECT api.backblazeb2.com ok" "the programs went through the proxy"
    expect_true "no tunnel to any other host was asked for" bash -c "! grep -q refused '$T/cproxy.log'"
fi

# ---------------------------------------------------------------------------
if [ -x "$CONF" ]; then
    section "conformance: plain, at the bucket root"
    expect_exit 0 "$CONF" $EP "b2:conform-root"
    show "$OUT" 200 | grep -v '^     | ok' || true
    expect_grep "$T/main.log" "CALL b2_list_file_names 200" "conformance went through b2_list_file_names"

    section "conformance: 503s, expiring tokens, dropped and truncated answers"
    # API calls and uploads through one proxy (5xx, dropped connections),
    # downloads through another (answers cut short), as B2 has separate hosts
    PPORT=$(free_port)
    DPORT=$(free_port)
    start_b2 proxied --fail-upload-every 3 --token-lifetime 2 --public-url "http://127.0.0.1:$PPORT" \
        --download-url "http://127.0.0.1:$DPORT"
    "$PY" "$TOOLS/faultproxy.py" --listen "$PPORT" --target "$B2_PORT_proxied" --every 20 --kinds 500,503,drop \
        >"$T/proxy.log" 2>&1 &
    bg_register $!
    "$PY" "$TOOLS/faultproxy.py" --listen "$DPORT" --target "$B2_PORT_proxied" --every 4 --kinds truncate \
        >"$T/dproxy.log" 2>&1 &
    bg_register $!
    wait_tcp "$PPORT" && wait_tcp "$DPORT" || fail "faultproxy did not start"
    expect_exit 0 "$CONF" -o "b2.endpoint=http://127.0.0.1:$PPORT" "b2:conform-bucket:c2"
    show "$OUT" 200 | grep -v '^     | ok' || true
    for kind in 500 503 drop; do
        expect_true "the proxy injected '$kind' faults" grep -q "^fault $kind " "$T/proxy.log"
    done
    expect_true "the download proxy cut answers short" grep -q "^fault truncate GET /file/" "$T/dproxy.log"
    expect_grep "$T/proxied.log" "INJECTED 503" "the server injected 503s on uploads"
    expect_grep "$T/proxied.log" "401 expired_auth_token" "tokens expired during the conformance run"
    expect_true "a retired upload URL was never used again" bash -c "! grep -q REUSED '$T/proxied.log'"
else
    fail "crestic-conformance not built next to $CRESTIC"
fi

section "server-side rules held"
expect_true "no upload URL was used by two uploads at once, no upload refused" bash -c \
    "! grep -hE 'CALL b2_upload_(file|part) 400' '$T'/*.log"
expect_true "no large file left unfinished" bash -c \
    "! grep -l '\"action\": \"start\"' '$T'/*-data/files/*.json 2>/dev/null | grep -q ."

echo "($TEST_NAME took $(( $(date +%s) - T0 )) s)"
finish
