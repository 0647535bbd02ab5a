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
# restic 0.14 is not run here: it cannot be pointed at a local B2 server
# without a CONNECT proxy that impersonates Backblaze's host names.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

B2SERVER=$TESTS_DIR/servers/b2server.py
CONF=$(dirname "$CRESTIC")/crestic-conformance
export RESTIC_PASSWORD=b2-test-password
export B2_ACCOUNT_ID=test-account-id
B2_KEY='K0-master-Secret/+x'
export B2_ACCOUNT_KEY=$B2_KEY
export CRESTIC_HTTP_RETRY_MAX_SECONDS=60
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

mkdir -p "$T/src/sub/deeper" "$T/src/empty-dir"
printf 'hello\n' >"$T/src/hello.txt"
: >"$T/src/empty"
head -c 3145728 /dev/urandom >"$T/src/sub/random.bin"
seq 1 20000 >"$T/src/sub/deeper/numbers.txt"
ln -s ../hello.txt "$T/src/sub/link"
manifest --no-atime "$T/src" >"$T/m.src"

start_b2 main --min-part-size 100000 --app-key "app-key-1:AppSecret-1:crestic-bucket"
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
if [ -x "$CONF" ]; then
    section "conformance: plain"
    expect_exit 0 "$CONF" $EP "b2:conform-bucket:c1"
    show "$OUT" 200 | grep -v '^     | ok' || true
    expect_grep "$T/main.log" "CALL b2_list_file_names 200" "conformance went through b2_list_file_names"

    section "conformance: 503s, expiring tokens, dropped and truncated answers"
    PPORT=$(free_port)
    start_b2 proxied --fail-upload-every 3 --token-lifetime 2 --public-url "http://127.0.0.1:$PPORT"
    "$PY" "$TOOLS/faultproxy.py" --listen "$PPORT" --target "$B2_PORT_proxied" --every 7 >"$T/proxy.log" 2>&1 &
    bg_register $!
    wait_tcp "$PPORT" || fail "faultproxy did not start"
    expect_exit 0 "$CONF" -o "b2.endpoint=http://127.0.0.1:$PPORT" "b2:conform-bucket:c2"
    show "$OUT" 200 | grep -v '^     | ok' || true
    for kind in 500 503 drop truncate; do
        expect_true "the proxy injected '$kind' faults" grep -q "^fault $kind " "$T/proxy.log"
    done
    expect_grep "$T/proxied.log" "INJECTED 503" "the server injected 503s on uploads"
    expect_grep "$T/proxied.log" "401 expired_auth_token" "tokens expired during the conformance run"
    expect_true "a retired upload URL was never used again" bash -c "! grep -q REUSED '$T/proxied.log'"
else
    fail "crestic-conformance not built next to $CRESTIC"
fi

echo "($TEST_NAME took $(( $(date +%s) - T0 )) s)"
finish
