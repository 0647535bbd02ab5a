#!/usr/bin/env bash
# crestic backup when things go wrong, with restic's exit codes:
#  * an unreadable file and an unreadable directory (backup run as nobody on
#    a tree owned by root): exit 3, the errors named on stderr, the snapshot
#    saved without them (restic 0.14 stores the same tree);
#  * some targets missing: warning, exit 3; all missing: exit 1;
#  * no repository: 10; wrong password: 12; locked exclusively: 11;
#  * bad flags and combinations: 1;
#  * the repository refusing a write in the middle of a pack, or refusing
#    to name a finished pack: exit 1, no snapshot, nothing left behind, the
#    next backup works;
#  * SIGINT / SIGTERM during a backup: exit 130, no snapshot, the lock
#    removed, the repository still checks, the next backup works.
#
# usage: bash tests/e2e/test_backup_errors.sh path/to/crestic
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic

export RESTIC_PASSWORD=test-password
REPO=$T/repo
rs init -r "$REPO" -q >/dev/null 2>&1 || { fail "restic init"; finish; }
cheapen_keys "$REPO" "$RESTIC_PASSWORD"   # many program runs follow
snapshot_count() { ls "$REPO/snapshots" | wc -l; }

section "unreadable file and directory (run as nobody)"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    chmod 711 "$T"
    U=$T/ur
    mkdir -p "$U/src/sub" "$U/home"
    echo public >"$U/src/pub"
    echo secret >"$U/src/secret"; chmod 600 "$U/src/secret"
    echo hidden >"$U/src/sub/f"; chmod 700 "$U/src/sub"
    chmod 755 "$U" "$U/src"
    rs init -r "$U/repo" -q >/dev/null 2>&1
    chmod -R a+rwX "$U/repo" "$U/home"
    as_nobody() { (cd "$U" && setpriv --reuid=nobody --regid=nogroup --clear-groups \
        env HOME="$U/home" RESTIC_PASSWORD=test-password RESTIC_CACHE_DIR="$U/home/cache-$1" "${@:2}"); }
    expect_exit 3 as_nobody crestic "$CRESTIC" -r repo backup src
    expect_grep "$ERR" '^error: open src/secret: permission denied$' "unreadable file named"
    expect_grep "$ERR" '^error: open src/sub: permission denied$' "unreadable directory named"
    expect_grep "$ERR" '^Warning: at least one source file could not be read$' "exit-3 warning"
    expect_grep "$OUT" '^snapshot [0-9a-f]{8} saved$' "snapshot saved anyway"
    expect_exit 3 as_nobody restic "$RESTIC" -r repo backup src
    rs -r "$U/repo" --no-lock snapshots --json >"$T/ur.json"
    expect_true "restic 0.14 stores the same tree (file and directory left out)" "$PY" -c 'import json,sys
s=json.load(open(sys.argv[1])); assert len(s)==2 and s[0]["tree"]==s[1]["tree"], s' "$T/ur.json"
    rs -r "$U/repo" --no-lock ls latest >"$T/ur.ls"
    expect_true "only the readable file is in the snapshot" \
        bash -c "grep -q '^/src/pub\$' '$T/ur.ls' && ! grep -q secret '$T/ur.ls' && ! grep -q '/src/sub' '$T/ur.ls'"
    expect_exit 3 as_nobody crestic "$CRESTIC" -r repo backup src --json
    expect_true "--json: error messages on stderr" "$PY" -c 'import json,sys
m=[json.loads(l) for l in open(sys.argv[1])]
e=[x for x in m if x["message_type"]=="error" and x["during"]=="archival"]
assert {x["item"] for x in e}=={sys.argv[2]+"/src/secret", sys.argv[2]+"/src/sub"}, e
assert all(x["during"]=="archival" and "permission denied" in x["error"]["message"] for x in e), e
assert m[-1]=={"message_type":"exit_error","code":3,"message":"Warning: at least one source file could not be read"}, m[-1]' "$ERR" "$U"
else
    skip "needs root and setpriv to run the backup as another user"
fi

section "missing targets"
mkdir -p "$T/src"; echo a >"$T/src/a"
expect_exit 3 cr -r "$REPO" backup "$T/src" "$T/missing"
expect_grep "$ERR" "^$T/missing does not exist, skipping$" "missing target warned about"
expect_grep "$OUT" 'snapshot [0-9a-f]{8} saved' "snapshot saved with the existing target"
N=$(snapshot_count)
expect_exit 1 cr -r "$REPO" backup "$T/missing" "$T/missing2"
expect_grep "$ERR" 'all source directories/files do not exist' "all targets missing"
expect_true "no snapshot when all targets are missing" test "$(snapshot_count)" = "$N"
expect_exit 1 cr -r "$REPO" backup
expect_grep "$ERR" 'nothing to backup, please specify source files/dirs' "no target"

section "repository, password, lock"
expect_exit 10 cr -r "$T/nope" backup "$T/src"
expect_exit 12 env RESTIC_PASSWORD=wrong RESTIC_CACHE_DIR="$T/cache-crestic" "$CRESTIC" -r "$REPO" backup "$T/src"
section "bad flags"
expect_exit 1 cr -r "$REPO" backup --no-such-flag "$T/src"
expect_exit 1 cr -r "$REPO" backup --stdin "$T/src"
expect_grep "$ERR" 'stdin was specified and files/dirs were listed as arguments' "--stdin with paths refused"
expect_exit 1 cr -r "$REPO" backup --exclude '[' "$T/src"
expect_exit 1 cr -r "$REPO" backup --exclude-larger-than 12x "$T/src"
expect_exit 1 cr -r "$REPO" backup --time yesterday "$T/src"
expect_exit 1 cr -r "$REPO" backup --group-by color "$T/src"
expect_exit 1 cr -r "$REPO" backup --parent ffffffffff "$T/src"
expect_exit 1 cr -r "$REPO" backup --exclude-file "$T/no-such-file" "$T/src"
expect_exit 1 env -u RESTIC_PASSWORD RESTIC_CACHE_DIR="$T/cache-crestic" "$CRESTIC" -r "$REPO" backup --stdin
expect_grep "$ERR" 'cannot read both password and data from stdin' "--stdin without a password source"

section "storage fails in the middle of a pack (file size limit)"
# Packs are written as they fill: with files limited to 1000 KiB (SIGXFSZ
# ignored, so writes fail with EFBIG) a pack cannot be finished.  The data
# (20 MB, incompressible) is spread over one pack per saver, at most 16 of
# them, so at least one pack passes the limit on any machine (with 12 MB
# and a 6000 KiB limit, two savers could share the data evenly enough that
# no pack failed).  No snapshot, no half pack under any name, nothing
# temporary left, and the next backup works.
mkdir -p "$T/fsz"
head -c 20000000 /dev/urandom >"$T/fsz/big"
N=$(snapshot_count)
expect_exit 1 bash -c 'trap "" XFSZ; ulimit -f 1000; exec "$@"' sh env RESTIC_CACHE_DIR="$T/cache-crestic" "$CRESTIC" -r "$REPO" backup "$T/fsz"
expect_grep "$ERR" 'File too large' "the write error reported"
expect_true "no snapshot after the failed write" test "$(snapshot_count)" = "$N"
find "$REPO" -name '*tmp*' >"$T/fsz.left"
expect_empty "$T/fsz.left" "no temporary file left"
expect_exit 0 rs -r "$REPO" check --read-data
expect_exit 0 cr -r "$REPO" backup -q "$T/fsz"
expect_true "snapshot saved by the next backup" test "$(snapshot_count)" = "$((N + 1))"

section "storage refuses to name a finished pack"
# Finished packs are named (fsync, link under data/XX/) by a committer thread
# while the savers go on.  With every data/XX folder replaced by a plain file,
# each of those links fails: the failure must still reach the backup with its
# cause (exit 1, no snapshot, nothing temporary left), and with the folders
# back the repository checks and the next backup works.
mkdir -p "$T/nolink"
head -c 20000000 /dev/urandom >"$T/nolink/big"
echo small >"$T/nolink/small"
N=$(snapshot_count)
mv "$REPO/data" "$T/data.saved"
mkdir "$REPO/data"
for i in $(seq 0 255); do : >"$REPO/data/$(printf %02x "$i")"; done
expect_exit 1 cr -r "$REPO" backup "$T/nolink"
expect_grep "$ERR" '^Fatal: .*save data/[0-9a-f]*: write .*: Not a directory$' "the failed link named with its cause"
expect_true "no snapshot after the failed link" test "$(snapshot_count)" = "$N"
find "$REPO" -name '*tmp*' >"$T/nolink.left"
expect_empty "$T/nolink.left" "no temporary file left"
rm -rf "$REPO/data"
mv "$T/data.saved" "$REPO/data"
expect_exit 0 rs -r "$REPO" check --read-data
expect_exit 0 cr -r "$REPO" backup -q "$T/nolink"
expect_true "snapshot saved by the next backup" test "$(snapshot_count)" = "$((N + 1))"

section "interrupted (SIGINT, SIGTERM)"
"$PY" - "$T/big" <<'EOF'
import os, sys, random
rng = random.Random(5)
os.makedirs(sys.argv[1])
for i in range(40):
    with open(os.path.join(sys.argv[1], "f%02d" % i), "wb") as f:
        f.write(rng.randbytes(4 << 20))
EOF
expect_exit 0 cr -r "$REPO" backup "$T/big" -q
# restic 0.14's check holds an exclusive lock while it reads the data: stop
# it right there and try to back up meanwhile (retried if check was too fast).
# A lock counts once it is complete: a file named by its ID, not empty (a
# lock that cannot be read is ignored, by restic too; under load restic could
# be stopped between creating the file and writing it).
lock_written() {
    local f
    for f in "$REPO"/locks/*; do
        [ -s "$f" ] && [[ ${f##*/} =~ ^[0-9a-f]{64}$ ]] && return 0
    done
    return 1
}
CAUGHT=0
for _ in 1 2 3 4 5; do
    RESTIC_CACHE_DIR="$T/cache-restic" "$RESTIC" -r "$REPO" check --read-data >/dev/null 2>&1 &
    LOCKER=$!
    for _ in $(seq 1 500); do lock_written && break; sleep 0.01; done
    kill -STOP $LOCKER 2>/dev/null
    if lock_written && [ "$(ps -o stat= -p $LOCKER 2>/dev/null | cut -c1)" = T ]; then
        CAUGHT=1
        expect_exit 11 cr -r "$REPO" backup "$T/src"
        expect_grep "$ERR" 'locked exclusively' "exclusive lock held by restic check: reported"
    fi
    kill -CONT $LOCKER 2>/dev/null
    wait $LOCKER 2>/dev/null
    [ $CAUGHT = 1 ] && break
done
[ $CAUGHT = 1 ] || skip "could not catch restic check holding its exclusive lock"

# The backup reads --stdin from a producer that sends 48 MiB and then stays
# silent, so the signal always arrives while the backup is still running
# (a tree backup could finish before the signal on a fast machine).
for sig in INT TERM; do
    N=$(snapshot_count)
    mkfifo "$T/fifo-$sig"
    { head -c 50331648 /dev/urandom; sleep 60; } >"$T/fifo-$sig" &
    PRODUCER=$!
    bg_register "$PRODUCER"
    RESTIC_CACHE_DIR="$T/cache-crestic" "$CRESTIC" -r "$REPO" backup --stdin --stdin-filename big.bin \
        <"$T/fifo-$sig" >"$T/int.out" 2>"$T/int.err" &
    PID=$!
    for _ in $(seq 1 500); do [ -n "$(ls "$REPO/locks" 2>/dev/null)" ] && break; sleep 0.02; done
    # wait until the 48 MiB were read (data packs appear), then interrupt
    for _ in $(seq 1 500); do [ "$(find "$REPO/data" -type f -newer "$T/fifo-$sig" | wc -l)" -gt 0 ] && break; sleep 0.02; done
    kill -$sig $PID
    RC=0; wait $PID || RC=$?
    pkill -P "$PRODUCER" sleep 2>/dev/null; { kill "$PRODUCER"; wait "$PRODUCER"; } 2>/dev/null
    expect_true "SIG$sig: exit 130 (got $RC)" test "$RC" = 130
    expect_true "SIG$sig: no snapshot written" test "$(snapshot_count)" = "$N"
    expect_true "SIG$sig: lock removed" test -z "$(ls "$REPO/locks")"
    expect_exit 0 rs -r "$REPO" check
done
expect_exit 0 cr -r "$REPO" backup "$T/big"
expect_exit 0 rs -r "$REPO" check --read-data

finish
