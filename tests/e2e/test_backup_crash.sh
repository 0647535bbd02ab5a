#!/usr/bin/env bash
# Crash safety of crestic backup: SIGKILL at several points of a larger
# backup (while the walk starts, once packs are being stored, once the first
# index file is written) must leave a repository restic 0.14 checks without
# errors (unreferenced packs are legal), and the next crestic backup must
# succeed -- reusing the blobs of every index file written before the kill.
# The lock a killed backup leaves behind must be recognisably stale (this
# host, dead PID): `restic unlock` removes it.
#
# usage: bash tests/e2e/test_backup_crash.sh path/to/crestic
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic

export RESTIC_PASSWORD=test-password
# The smallest pack size: many packs from little data, so that every kill
# point comes long before the end of the backup.
export RESTIC_PACK_SIZE=4
REPO=$T/repo
rs init -r "$REPO" -q >/dev/null 2>&1 || { fail "restic init"; finish; }
cheapen_keys "$REPO" "$RESTIC_PASSWORD"   # many program runs follow

# 20,000 small files (an index file every 4,000 blobs, below, makes the writer
# write index files while the backup is still running) and some larger ones:
# about 90 MiB, some 23 packs.
"$PY" - "$T/src" <<'EOF'
import os, random, sys
rng = random.Random(11)
root = sys.argv[1]
for d in range(20):
    p = os.path.join(root, "d%02d" % d)
    os.makedirs(p)
    for f in range(1000):
        with open(os.path.join(p, "f%04d" % f), "wb") as fh:
            fh.write(b"%d/%d " % (d, f) + rng.randbytes(rng.randint(1500, 4000)))
big = os.path.join(root, "big")
os.makedirs(big)
for i in range(12):
    with open(os.path.join(big, "b%02d" % i), "wb") as fh:
        fh.write(rng.randbytes(3 << 20))
EOF

# stored files of a type (not the temporary files of a write in progress)
count() { find "$REPO/$1" -type f -regextype egrep -regex '.*/[0-9a-f]{64}' 2>/dev/null | wc -l; }
# the same for index/ and locks/, cheap enough to poll
HEX64=$(printf '?%.0s' $(seq 64))
count_flat() { local f n=0; for f in "$REPO/$1"/$HEX64; do [ -e "$f" ] && n=$((n + 1)); done; echo $n; }
summary_field() { # FILE FIELD
    "$PY" -c 'import json,sys
for l in open(sys.argv[1]):
    if l.startswith("{") and "\"summary\"" in l: print(json.loads(l)[sys.argv[2]])' "$1" "$2"
}

# kill_when DESC CONDITION: start a backup, SIGKILL it once CONDITION holds
kill_when() {
    local desc=$1 cond=$2 snaps pid
    snaps=$(count snapshots)
    RESTIC_CACHE_DIR="$T/cache-crestic" "$CRESTIC" -r "$REPO" backup "$T/src" --force -q >/dev/null 2>&1 &
    pid=$!
    local waited=0
    while kill -0 $pid 2>/dev/null && ! eval "$cond"; do sleep 0.005; waited=$((waited + 1)); [ $waited -gt 60000 ] && break; done
    if ! kill -KILL $pid 2>/dev/null; then
        wait $pid
        skip "$desc: the backup finished before the kill point"
        return 1
    fi
    wait $pid 2>/dev/null
    pass "$desc: killed"
    expect_true "$desc: no snapshot written" test "$(count snapshots)" = "$snaps"
    expect_true "$desc: the dead process's lock stays" test "$(count locks)" -gt 0
    # restic 0.14 refuses an exclusive lock next to any other lock, stale or
    # not: `unlock` (which removes stale locks only) is the documented step.
    expect_exit 0 rs -r "$REPO" unlock
    expect_true "$desc: restic unlock found our lock stale" test "$(count locks)" = 0
    expect_exit 0 rs -r "$REPO" check
    return 0
}

section "SIGKILL right after the lock"
kill_when "after lock" '[ "$(count_flat locks)" -gt 0 ]'

section "SIGKILL once packs are stored"
P0=$(count data)
kill_when "packs stored" "[ \"\$(count data)\" -gt $((P0 + 3)) ]"

section "SIGKILL after the first index file of the run"
# An index file every 4,000 blobs (instead of 50,000): the first one then
# comes long before the end, so the kill cannot lose the race to the
# snapshot, and ~4,000 blobs are indexed for the next backup to reuse.
export CRESTIC_INDEX_FLUSH_BLOBS=4000
I0=$(count_flat index)
data_blob_count() { rs -r "$REPO" --no-lock list blobs | awk '$1 == "data" {print $2}' | sort -u | wc -l; }
if kill_when "index written" "[ \"\$(count_flat index)\" -gt $I0 ]"; then
    BEFORE=$(data_blob_count)
    expect_true "the killed run left indexed data blobs ($BEFORE)" test "$BEFORE" -ge 2000
    expect_exit 0 cr -r "$REPO" backup "$T/src" --json
    ADDED=$(summary_field "$OUT" data_blobs)
    AFTER=$(data_blob_count)
    # exactly the blobs not indexed before are stored again: the rest is reused
    expect_true "next backup stores only what was not indexed (added ${ADDED:-?} = $AFTER - $BEFORE)" \
        test "${ADDED:-x}" = $((AFTER - BEFORE))
else
    expect_exit 0 cr -r "$REPO" backup "$T/src"
fi
expect_exit 0 rs -r "$REPO" check --read-data
expect_exit 0 rs -r "$REPO" restore latest --target "$T/restored"
manifest --no-atime "$T/src" >"$T/m.src"
manifest --no-atime "$T/restored$T/src" >"$T/m.rst"
expect_same "$T/m.src" "$T/m.rst" "the backup after the crashes restores the source tree"

finish
