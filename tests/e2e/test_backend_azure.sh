#!/usr/bin/env bash
# Azure Blob backend against azurite (npm azurite@3.35.0, real Shared Key and
# SAS checks), on loopback:
#   - crestic on a free port with a second account and -o azure.endpoint:
#     init, backup, snapshots, restore, check --read-data, forget --prune
#   - a large upload through Put Block + Put Block List (-o azure.block-size=1),
#     seen in the committed block lists; small ones are single Put Blobs;
#     -o azure.access-tier; forget --prune and check with listings paged by 2
#   - AZURE_ENDPOINT_SUFFIX shapes the URL (https://ACCOUNT.blob.SUFFIX/)
#   - wrong account key: quick, clear, non-zero, the key never shown
#   - an account SAS made here (HMAC-SHA256 with python3's hmac): full access
#     works; a read-only one and a forged one fail clearly, the token unshown
#   - missing container: exit 10 as restic for a missing repository
#   - the conformance suite, plain (on an awkward prefix) and through
#     tests/tools/faultproxy.py with 1 MiB blocks
#   - restic 0.14 interop both ways: only possible on 127.0.0.1:10000 with
#     devstoreaccount1 (its SDK hard-codes the emulator), skipped when busy
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic
AZURITE_MAIN=$NPM_DIR/azurite/dist/src/blob/main.js
need_server_tool "azurite (npm, in .deps/npm)" test -f "$AZURITE_MAIN"
need_server_tool "node" node --version

export RESTIC_PASSWORD=azure-test-password
EMU_ACCOUNT=devstoreaccount1
EMU_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
ACCOUNT=testacct
KEY=$("$PY" -c 'import base64; print(base64.b64encode(b"crestic-azure-test-key-0123456789").decode())')
WRONG_KEY=$("$PY" -c 'import base64; print(base64.b64encode(b"not-the-right-key-for-the-account").decode())')

# try_azurite PORT DIR: azurite's blob service with both accounts; 1 when it
# did not come up (its log in DIR.log)
try_azurite() {
    mkdir -p "$2"
    AZURITE_ACCOUNTS="$EMU_ACCOUNT:$EMU_KEY;$ACCOUNT:$KEY" \
        node "$AZURITE_MAIN" --blobHost 127.0.0.1 --blobPort "$1" --location "$2" \
        --disableTelemetry --silent --loose >"$2.log" 2>&1 &
    local pid=$!
    bg_register $pid
    wait_tcp "$1" 20 && kill -0 $pid 2>/dev/null
}
start_azurite() { # PORT DIR
    try_azurite "$@" || { fail "azurite did not start on port $1"; show "$2.log"; finish; }
}

PORT=$(free_port)
start_azurite "$PORT" "$T/azurite"
ENDPOINT=http://127.0.0.1:$PORT/$ACCOUNT
export AZURE_ACCOUNT_NAME=$ACCOUNT AZURE_ACCOUNT_KEY=$KEY
az() { cr -o "azure.endpoint=$ENDPOINT" "$@"; }

# An account SAS for testacct (service b, all resource types), valid 1 h.
make_sas() { # PERMISSIONS [KEY]
    "$PY" - "$ACCOUNT" "${2:-$KEY}" "$1" <<'EOF'
import base64, hashlib, hmac, sys, time, urllib.parse
account, key, perms = sys.argv[1:4]
version = "2021-12-02"
expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
fields = [account, perms, "b", "sco", "", expiry, "", "https,http", version, ""]
to_sign = "\n".join(fields) + "\n"
sig = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()).decode()
print(urllib.parse.urlencode(dict(sv=version, ss="b", srt="sco", sp=perms, se=expiry, spr="https,http", sig=sig)))
EOF
}
READ_SAS=$(make_sas rl)

# committed_blocks CONTAINER KEY: number of committed blocks of a blob (0 for a
# blob made by a single Put Blob), read with a SAS by curl.
committed_blocks() {
    curl -s "$ENDPOINT/$1/$2?comp=blocklist&blocklisttype=committed&$READ_SAS" |
        "$PY" -c 'import sys, xml.etree.ElementTree as E; print(len(E.fromstring(sys.stdin.read()).findall("CommittedBlocks/Block")))'
}
# blob_keys CONTAINER PREFIX: "name size" of each blob under PREFIX
blob_keys() {
    curl -s "$ENDPOINT/$1?restype=container&comp=list&prefix=$2&$READ_SAS" |
        "$PY" -c 'import sys, xml.etree.ElementTree as E
for b in E.fromstring(sys.stdin.read()).iter("Blob"): print(b.findtext("Name"), b.findtext("Properties/Content-Length"))'
}
# access_tier CONTAINER KEY: the blob's access tier
access_tier() {
    curl -s -I "$ENDPOINT/$1/$2?$READ_SAS" | tr -d '\r' | sed -n 's/^x-ms-access-tier: //Ip'
}

small_source_tree

# ---------------------------------------------------------------------------
section "crestic on azure: (account $ACCOUNT, -o azure.endpoint)"
REPO=azure:crestic-repo:/some/prefix
expect_exit 0 az -r "$REPO" init
expect_exit 1 az -r "$REPO" init
expect_grep "$ERR" "config file already exists" "second init: config file already exists"
expect_exit 0 az -r "$REPO" snapshots
expect_empty "$OUT" "snapshots of an empty repository: nothing listed"
expect_exit 0 az -r "$REPO" backup "$T/src"
expect_exit 0 az -r "$REPO" snapshots --json
expect_true "snapshots lists one snapshot" \
    "$PY" -c 'import json,sys; sys.exit(len(json.load(open(sys.argv[1])))!=1)' "$OUT"
expect_exit 0 az -r "$REPO" restore latest --target "$T/r-cr"
manifest --no-atime "$T/r-cr$T/src" >"$T/m.r-cr"
expect_same "$T/m.src" "$T/m.r-cr" "crestic restore from azure: equals the source"
expect_exit 0 az -r "$REPO" check --read-data
blob_keys crestic-repo some/prefix/ >"$T/blobs1"
expect_grep "$T/blobs1" '^some/prefix/config [0-9]+$' "config lies at PREFIX/config"
expect_grep "$T/blobs1" '^some/prefix/data/([0-9a-f]{2})/\1[0-9a-f]{62} [0-9]+$' "packs lie at PREFIX/data/XX/ID (restic's layout)"
expect_true "no lock left behind" bash -c "! grep -q '/locks/' '$T/blobs1'"
big=$(sort -k2 -n "$T/blobs1" | grep /data/ | tail -1 | cut -d' ' -f1)
expect_true "a pack saved in one piece has no committed blocks (Put Blob)" \
    test "$(committed_blocks crestic-repo "$big")" = 0

section "large upload through Put Block List (-o azure.block-size=1)"
head -c 2621440 /dev/urandom >"$T/src/sub/random2.bin"
manifest --no-atime "$T/src" >"$T/m.src2"
expect_exit 0 az -o azure.block-size=1 -o azure.access-tier=cool -r "$REPO" backup "$T/src"
# the largest pack this backup added
blob_keys crestic-repo some/prefix/data/ | grep -vxF -f "$T/blobs1" | sort -k2 -n | tail -1 >"$T/big2"
read -r big2 big2size <"$T/big2"
nblocks=$(committed_blocks crestic-repo "$big2")
if [ "${big2size:-0}" -gt 1048576 ] && [ "${nblocks:-0}" -eq $(( (big2size + 1048575) / 1048576 )) ]; then
    pass "the largest pack ($big2size bytes) was committed as $nblocks blocks of 1 MiB"
else fail "the largest pack was committed from 1 MiB blocks" "size=$big2size blocks=$nblocks"; fi
expect_true "-o azure.access-tier=cool: the new pack is in the Cool tier" test "$(access_tier crestic-repo "$big2")" = Cool
expect_true "without the option: the first pack has the account's default tier (Hot)" \
    test "$(access_tier crestic-repo "$big")" = Hot
expect_exit 0 az -r "$REPO" restore latest --target "$T/r-cr2"
manifest --no-atime "$T/r-cr2$T/src" >"$T/m.r-cr2"
expect_same "$T/m.src2" "$T/m.r-cr2" "restore of the block-list upload equals the source"
# listings paged by 2 (CRESTIC_LIST_PAGE_SIZE) from here on
export CRESTIC_LIST_PAGE_SIZE=2
expect_exit 0 az -r "$REPO" forget --keep-last 1 --prune
expect_exit 0 az -r "$REPO" snapshots --json
expect_true "forget --prune: one snapshot left" \
    "$PY" -c 'import json,sys; sys.exit(len(json.load(open(sys.argv[1])))!=1)' "$OUT"
expect_exit 0 az -r "$REPO" check --read-data
unset CRESTIC_LIST_PAGE_SIZE

# ---------------------------------------------------------------------------
section "credentials"
t0=$(date +%s)
AZURE_ACCOUNT_KEY=$WRONG_KEY run az -r "$REPO" snapshots
t1=$(date +%s)
if [ "$RC" -ne 0 ] && [ $((t1 - t0)) -le 5 ]; then pass "wrong key: non-zero exit ($RC) within 5 s"
else fail "wrong key: non-zero exit within 5 s" "rc=$RC, $((t1 - t0)) s"; show "$ERR"; fi
expect_grep "$ERR" "403" "wrong key: the error names the status 403"
expect_grep "$ERR" "access denied: wrong credentials" "wrong key: the error says the credentials were refused"
expect_grep "$ERR" "AZURE_ACCOUNT_KEY" "wrong key: the error names the variable to check"
expect_true "wrong key: the key is not shown" bash -c "! grep -qF -e '$WRONG_KEY' -e '$KEY' '$ERR'"
AZURE_ACCOUNT_KEY='%%not base64%%' run az -r "$REPO" snapshots
expect_grep "$ERR" "AZURE_ACCOUNT_KEY is not a base64 account key" "malformed key: said so"
run env -u AZURE_ACCOUNT_KEY "$CRESTIC" -o "azure.endpoint=$ENDPOINT" -r "$REPO" snapshots
expect_grep "$ERR" "no credentials: set AZURE_ACCOUNT_KEY or AZURE_ACCOUNT_SAS" "no key nor SAS: said so"
CRESTIC_HTTP_RETRY_MAX_SECONDS=1 AZURE_ENDPOINT_SUFFIX=suffix.invalid run cr -r "$REPO" snapshots
expect_grep "$ERR" 'https://testacct\.blob\.suffix\.invalid/crestic-repo/some/prefix/config' \
    "AZURE_ENDPOINT_SUFFIX: https://ACCOUNT.blob.SUFFIX/CONTAINER is used"
expect_exit 10 az -r azure:no-such-container:/ snapshots
expect_grep "$ERR" "Is there a repository at the following location" "missing container: missing repository"
expect_exit 1 az -o azure.nope=1 -r "$REPO" snapshots
expect_grep "$ERR" 'azure has no such option' "unknown azure option refused"

section "SAS token"
FULL_SAS=$(make_sas rwdlac)
# The token travels in the environment only (never in argv): sas uses $SAS.
sas() { AZURE_ACCOUNT_SAS=$SAS env -u AZURE_ACCOUNT_KEY "$CRESTIC" --cache-dir "$T/cache-sas" -o "azure.endpoint=$ENDPOINT" "$@"; }
SAS="?$FULL_SAS"
expect_exit 0 sas -r "$REPO" snapshots --json
expect_true "SAS (with a leading '?'): one snapshot listed" \
    "$PY" -c 'import json,sys; sys.exit(len(json.load(open(sys.argv[1])))!=1)' "$OUT"
SAS=$FULL_SAS
expect_exit 0 sas -r azure:sas-repo:/ init
expect_exit 0 sas -r azure:sas-repo:/ backup "$T/src/sub"
expect_exit 0 sas -r azure:sas-repo:/ restore latest --target "$T/r-sas"
manifest --no-atime "$T/src/sub" >"$T/m.sub"
manifest --no-atime "$T/r-sas$T/src/sub" >"$T/m.r-sas"
expect_same "$T/m.sub" "$T/m.r-sas" "SAS: restore equals the source"
sig=$("$PY" -c 'import sys, urllib.parse; print(urllib.parse.parse_qs(sys.argv[1])["sig"][0])' "$READ_SAS")
SAS=$READ_SAS
run sas -r azure:sas-repo:/ backup "$T/src/hello.txt"
expect_true "read-only SAS: backup fails" test "$RC" -ne 0
expect_grep "$ERR" "403 .*access denied" "read-only SAS: the error says access was denied"
expect_grep "$ERR" "AZURE_ACCOUNT_SAS" "read-only SAS: the error names the variable"
expect_true "read-only SAS: the token is not shown" bash -c "! grep -qF -e '$sig' -e 'sig=' '$ERR'"
SAS=$(make_sas rwdlac "$WRONG_KEY")
run sas -r "$REPO" snapshots
expect_true "forged SAS: non-zero exit" test "$RC" -ne 0
expect_grep "$ERR" "403" "forged SAS: 403 in the error"
expect_true "forged SAS: the token is not shown" bash -c "! grep -qF 'sig=' '$ERR'"

# ---------------------------------------------------------------------------
CONF=$(dirname "$CRESTIC")/crestic-conformance
if [ -x "$CONF" ]; then
    section "conformance suite"
    expect_exit 0 "$CONF" -o "azure.endpoint=$ENDPOINT/" "azure:conformance:/plain/a dir/ü+&=?%x/../y"
    grep -q '^FAIL' "$OUT" && show "$OUT" 100
    if [ -f "$TOOLS/faultproxy.py" ]; then
        PPORT=$(free_port)
        "$PY" "$TOOLS/faultproxy.py" --listen "$PPORT" --target "$PORT" --every 5 >"$T/proxy.log" 2>&1 &
        bg_register $!
        wait_tcp "$PPORT" || fail "faultproxy did not start"
        expect_exit 0 env CRESTIC_HTTP_RETRY_MAX_SECONDS=60 "$CONF" -o "azure.endpoint=http://127.0.0.1:$PPORT/$ACCOUNT" \
            -o azure.block-size=1 --big 2500000 --many 24 azure:conformance:/faulty
        grep -q '^FAIL' "$OUT" && show "$OUT" 100
        expect_exit 0 env CRESTIC_HTTP_RETRY_MAX_SECONDS=60 "$CRESTIC" --cache-dir "$T/cache-px" \
            -o "azure.endpoint=http://127.0.0.1:$PPORT/$ACCOUNT" -r "$REPO" check --read-data
        for kind in 500 503 drop truncate; do
            expect_true "the proxy injected '$kind' faults" grep -q "^fault $kind " "$T/proxy.log"
        done
    fi
else
    fail "crestic-conformance not built next to $CRESTIC"
fi

# ---------------------------------------------------------------------------
section "restic 0.14 interop (azurite on 127.0.0.1:10000, devstoreaccount1)"
if (exec 3<>/dev/tcp/127.0.0.1/10000) 2>/dev/null; then
    skip "port 10000 is busy: restic 0.14 only reaches the emulator there; interop not tested"
elif ! try_azurite 10000 "$T/azurite-10000"; then
    skip "azurite did not start on port 10000 (taken meanwhile?); interop not tested"
    show "$T/azurite-10000.log"
else
    # restic 0.14 needs a non-empty key but uses the emulator's own; crestic
    # with devstoreaccount1 and no endpoint goes to the same place.
    export AZURE_ACCOUNT_NAME=$EMU_ACCOUNT AZURE_ACCOUNT_KEY=$EMU_KEY
    expect_exit 0 rs -r azure:restic-repo:/r init
    expect_exit 0 rs -r azure:restic-repo:/r backup "$T/src"
    expect_exit 0 cr -r azure:restic-repo:/r check --read-data
    expect_exit 0 cr -r azure:restic-repo:/r restore latest --target "$T/r-rs2cr"
    manifest --no-atime "$T/r-rs2cr$T/src" >"$T/m.r-rs2cr"
    expect_same "$T/m.src2" "$T/m.r-rs2cr" "crestic restore of restic's snapshot equals the source"
    expect_exit 0 cr -o azure.block-size=1 -r azure:crestic-repo:/ init
    expect_exit 0 cr -o azure.block-size=1 -r azure:crestic-repo:/ backup "$T/src"
    expect_exit 0 rs -r azure:crestic-repo:/ check --read-data
    expect_exit 0 env -u AZURE_ACCOUNT_KEY "$CRESTIC" --cache-dir "$T/cache-emu" -r azure:crestic-repo:/ snapshots
    expect_grep "$OUT" '^1 snapshots' "devstoreaccount1 without a key: the emulator's well-known key is used"
fi

finish
