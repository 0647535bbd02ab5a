#!/usr/bin/env bash
# crestic prune against restic 0.14: the same plan and statistics (dry runs
# with every option, real runs), repositories that restic 0.14 accepts
# afterwards (check --read-data) with every kept snapshot unchanged,
# restic's behaviour on its own damaged test repositories, and crash safety:
# prune killed (SIGKILL) after each step leaves a valid repository and a
# second prune finishes the job.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic

# Key files with restic's default scrypt cost take ~0.5 s of CPU in every
# program run.  Copies of the repositories get a key file for the same
# master key with the cost of restic's own test repositories (N=128, r=1,
# p=1) instead; one slow run per repository fetches the master key.
cheap_key_file() { # REPO PASSWORD -> path of the cheap key file
    local f; f=$T/cheap-keys/$(sha256sum "$1/config" | cut -c1-16)
    if [ ! -s "$f" ]; then
        mkdir -p "$T/cheap-keys"
        RESTIC_PASSWORD=$2 rs -r "$1" --no-lock cat masterkey >"$f.master" 2>/dev/null || return 1
        "$PY" - "$f.master" "$2" "$f" <<'EOF' || return 1
import base64, hashlib, json, os, sys
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.poly1305 import Poly1305
master, password, out = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
salt, iv = os.urandom(64), os.urandom(16)
user = hashlib.scrypt(password.encode(), salt=salt, n=128, r=1, p=1, dklen=64)
plain = json.dumps({"mac": master["mac"], "encrypt": master["encrypt"]}, separators=(",", ":")).encode()
ct = Cipher(algorithms.AES(user[:32]), modes.CTR(iv)).encryptor().update(plain)
s = Cipher(algorithms.AES(user[32:48]), modes.ECB()).encryptor().update(iv)
tag = Poly1305.generate_tag(user[48:] + s, ct)  # restic's MAC: Poly1305-AES, r clamped inside
key = {"created": "2024-01-01T00:00:00Z", "username": "e2e", "hostname": "e2e", "kdf": "scrypt",
       "N": 128, "r": 1, "p": 1, "salt": base64.b64encode(salt).decode(),
       "data": base64.b64encode(iv + ct + tag).decode()}
open(out, "wb").write(json.dumps(key, separators=(",", ":")).encode())
EOF
    fi
    echo "$f"
}
cheapen() { # REPO PASSWORD: replace the key files by the cheap one
    local f; f=$(cheap_key_file "$1" "$2") || return 1
    rm -f "$1"/keys/*
    cp "$f" "$1/keys/$(sha256sum "$f" | cut -c1-64)"
}
# copy_repo with the cheap key (password fixture-password)
fixture_copy() { # NAME -> path
    local repo; repo=$(copy_repo "$1") || return 1
    cheapen "$repo" "$FIXTURE_PASSWORD" || return 1
    echo "$repo"
}

GEN_PW=generated-password

# ---- helpers ----------------------------------------------------------------

# The statistics lines both tools print (restic's progress bars, the
# "repository opened" line and blank lines left out).
stats_of() { # FILE
    grep -E '^(used|duplicates|unused|unreferenced|total|to repack|this removes|to delete|total prune|remaining|unused size|totally used packs|partly used packs|unused packs|to keep|Would have)' "$1"
}

# Names and sizes of every file but locks: what "nothing changed" means.
repo_state() { # REPO
    (cd "$1" && find . -path ./locks -prune -o -type f -printf '%P %s\n' | sort)
}

blob_list() { # REPO PASSWORD -> sorted unique "type id" lines
    RESTIC_PASSWORD=$2 rs -r "$1" --no-lock list blobs 2>/dev/null | sort -u
}

# restic ls -l of every snapshot, one file per snapshot in DIR
listings() { # REPO PASSWORD DIR
    mkdir -p "$3"
    local id
    for id in $(snapshot_ids "$1" "$2"); do
        RESTIC_PASSWORD=$2 rs -r "$1" --no-lock ls -l "$id" >"$3/$id" 2>&1
    done
}

expect_listings() { # REPO PASSWORD REFDIR DESC
    local dir=$T/listings.$RANDOM id ok=1
    listings "$1" "$2" "$dir"
    for id in $(ls "$3"); do
        cmp -s "$3/$id" "$dir/$id" || { ok=0; fail "$4: snapshot ${id:0:8} lists differently"; diff "$3/$id" "$dir/$id" | head -5; }
    done
    [ "$(ls "$3")" = "$(ls "$dir")" ] || { ok=0; fail "$4: other snapshots than before"; }
    [ $ok = 1 ] && pass "$4: every snapshot lists as before ($(ls "$3" | wc -l))"
}

# restic check --read-data must pass (exit 0); with "clean", also without
# hints about unreferenced packs.
expect_check() { # REPO PASSWORD DESC [clean]
    RESTIC_PASSWORD=$2 run "$RESTIC" --cache-dir "$T/cache-restic" -r "$1" check --read-data
    if [ "$RC" != 0 ]; then fail "$3: restic check --read-data (exit $RC)"; show "$ERR"; show "$OUT"; return 1; fi
    if [ "${4:-}" = clean ] && grep -q 'not referenced in any index' "$OUT" "$ERR"; then
        fail "$3: restic check reports unreferenced packs"; show "$ERR"; return 1
    fi
    pass "$3: restic check --read-data passes"
}

# restic's and crestic's dry runs print the same plan.
compare_dry_run() { # REPO PASSWORD DESC [prune options...]
    local repo=$1 pw=$2 desc=$3; shift 3
    RESTIC_PASSWORD=$pw rs -r "$repo" --no-lock prune -n -v "$@" >"$T/rs.out" 2>&1
    RESTIC_PASSWORD=$pw run "$CRESTIC" -r "$repo" --no-lock prune -n -v "$@"
    stats_of "$T/rs.out" >"$T/rs.stats"
    cat "$OUT" "$ERR" >"$T/cr.out"
    stats_of "$T/cr.out" >"$T/cr.stats"
    expect_same "$T/rs.stats" "$T/cr.stats" "$desc: dry-run plan as restic ($*)"
}

# A repository written by restic: 5 snapshots of a tree whose big file
# changes every time, with small new files and a text file; the first 3
# snapshots forgotten.  Packs are partly used afterwards.
make_generated_repo() { # DEST
    local src=$T/gen-src repo=$1 i
    rm -rf "$src"; mkdir -p "$src"
    RESTIC_PASSWORD=$GEN_PW rs init -r "$repo" >/dev/null 2>&1 || return 1
    for i in 1 2 3 4 5; do
        head -c $((1200000 + i * 1000)) /dev/urandom >"$src/changing"
        head -c 300000 /dev/urandom >"$src/new$i"
        seq 1 20000 | sed "s/^/line $i /" >"$src/text.txt"
        mkdir -p "$src/dir$i"; echo "$i" >"$src/dir$i/x"
        RESTIC_PASSWORD=$GEN_PW rs -r "$repo" backup -q --host gen "$src" >/dev/null 2>&1 || return 1
    done
    local ids; ids=$(snapshot_ids "$repo" $GEN_PW | head -3)
    RESTIC_PASSWORD=$GEN_PW rs -r "$repo" forget $ids >/dev/null 2>&1
}

# Store data whose index files and snapshot are then removed: its packs
# are valid but unreferenced (what an interrupted backup leaves behind).
add_unreferenced_packs() { # REPO PASSWORD
    local before=$T/idx.before
    ls "$1/index" >"$before"
    local snaps; snaps=$(ls "$1/snapshots")
    mkdir -p "$T/unref-src"; head -c 400000 /dev/urandom >"$T/unref-src/orphan"
    RESTIC_PASSWORD=$2 rs -r "$1" backup -q "$T/unref-src" >/dev/null 2>&1
    local f
    for f in $(ls "$1/index"); do grep -qx "$f" "$before" || rm -f "$1/index/$f"; done
    for f in $(ls "$1/snapshots"); do echo "$snaps" | grep -qx "$f" || rm -f "$1/snapshots/$f"; done
}

# ---- a repository written by restic, partly used packs ------------------------

section "generated repository (restic backup x5, forget 3)"
GEN=$T/gen-repo
make_generated_repo "$GEN" && cheapen "$GEN" $GEN_PW || { fail "could not build the generated repository with restic"; finish; }
listings "$GEN" $GEN_PW "$T/ls-gen"
RESTIC_PASSWORD=$GEN_PW rs -r "$GEN" --no-lock restore latest --target "$T/restore-before" >/dev/null 2>&1
manifest "$T/restore-before" --no-atime >"$T/manifest-before"

for opts in "" "--max-unused 0" "--max-unused unlimited" "--max-unused 10%" "--max-unused 1M" \
            "--max-repack-size 0" "--max-repack-size 1M" "--repack-cacheable-only" \
            "--repack-uncompressed" "--repack-small" "--pack-size 4 --repack-small"; do
    compare_dry_run "$GEN" $GEN_PW generated $opts
done

section "--dry-run changes nothing"
repo_state "$GEN" >"$T/state-before"
RESTIC_PASSWORD=$GEN_PW expect_exit 0 cr -r "$GEN" prune --dry-run
repo_state "$GEN" >"$T/state-after"
expect_same "$T/state-before" "$T/state-after" "dry run: repository unchanged"
RESTIC_PASSWORD=$GEN_PW expect_exit 0 cr -r "$GEN" prune -n -q
expect_empty "$OUT" "-q: nothing printed"

section "real prune, compared with restic's prune of the same repository"
A=$T/gen-restic; B=$T/gen-crestic
cp -a "$GEN" "$A"; cp -a "$GEN" "$B"
RESTIC_PASSWORD=$GEN_PW rs -r "$A" prune -v >"$T/rs.out" 2>&1
RESTIC_PASSWORD=$GEN_PW expect_exit 0 cr -r "$B" prune -v
cp "$OUT" "$T/cr.out"
stats_of "$T/rs.out" >"$T/rs.stats"; stats_of "$T/cr.out" >"$T/cr.stats"
expect_same "$T/rs.stats" "$T/cr.stats" "prune: statistics as restic"
for phase in "repacking packs" "rebuilding index" "deleting obsolete index files" "removing 6 old packs" "done"; do
    expect_grep "$T/cr.out" "^$phase\$" "prune prints \"$phase\""
done
expect_check "$B" $GEN_PW "after crestic prune" clean
expect_listings "$B" $GEN_PW "$T/ls-gen" "after crestic prune"
blob_list "$A" $GEN_PW >"$T/blobs.rs"; blob_list "$B" $GEN_PW >"$T/blobs.cr"
expect_same "$T/blobs.rs" "$T/blobs.cr" "the same blobs remain as after restic's prune"
rm -rf "$T/restore-after"
RESTIC_PASSWORD=$GEN_PW rs -r "$B" --no-lock restore latest --target "$T/restore-after" >/dev/null 2>&1
manifest "$T/restore-after" --no-atime >"$T/manifest-after"
expect_same "$T/manifest-before" "$T/manifest-after" "latest snapshot restores identically"
RESTIC_PASSWORD=$GEN_PW expect_exit 0 cr -r "$B" prune
expect_grep "$OUT" '^to repack: +0 blobs / 0 B$' "second prune: nothing left to repack"
expect_grep "$OUT" '^to delete: +0 blobs / 0 B$' "second prune: nothing left to delete"
RESTIC_PASSWORD=$GEN_PW rs -r "$B" prune -n >"$T/rs2.out" 2>&1
expect_grep "$T/rs2.out" '^total prune: +0 blobs / 0 B$' "restic finds nothing to prune after crestic"

section "--max-unused 0 / unlimited, --max-repack-size 0, --repack-uncompressed (real runs)"
for opts in "--max-unused 0" "--max-unused unlimited" "--max-repack-size 0" "--repack-uncompressed --max-unused 50%" "--compression max"; do
    C=$T/gen-opt; rm -rf "$C"; cp -a "$GEN" "$C"
    RESTIC_PASSWORD=$GEN_PW expect_exit 0 cr -r "$C" prune $opts
    expect_check "$C" $GEN_PW "prune $opts" clean
    expect_listings "$C" $GEN_PW "$T/ls-gen" "prune $opts"
done

section "unreferenced packs are deleted first"
C=$T/gen-unref; rm -rf "$C"; cp -a "$GEN" "$C"
add_unreferenced_packs "$C" $GEN_PW
compare_dry_run "$C" $GEN_PW unreferenced
RESTIC_PASSWORD=$GEN_PW expect_exit 0 cr -r "$C" prune -v
expect_grep "$OUT" 'will remove pack [0-9a-f]{8} as it is unused and not indexed' "unreferenced pack announced (-v)"
expect_grep "$OUT" '^deleting unreferenced packs$' "unreferenced packs deleted"
expect_check "$C" $GEN_PW "after removing unreferenced packs" clean
expect_listings "$C" $GEN_PW "$T/ls-gen" "after removing unreferenced packs"

section "crash safety: killed after each step, then restic check and a second prune"
UNREF_BASE=$T/gen-crash-base; rm -rf "$UNREF_BASE"; cp -a "$GEN" "$UNREF_BASE"
add_unreferenced_packs "$UNREF_BASE" $GEN_PW
blob_list "$B" $GEN_PW >"$T/blobs.final"
for step in prune:unreferenced-removed-1 prune:repacked-1 prune:repacked prune:index-written \
            index-removed-1 prune:index-removed prune:pack-removed-1; do
    C=$T/gen-crash; rm -rf "$C"; cp -a "$UNREF_BASE" "$C"
    RESTIC_PASSWORD=$GEN_PW CRESTIC_TEST_ABORT_AT=$step run "$CRESTIC" -r "$C" prune
    if [ "$RC" = 137 ]; then pass "$step: prune killed there"; else fail "$step: prune was not killed (exit $RC)"; show "$ERR"; fi
    RESTIC_PASSWORD=$GEN_PW rs -r "$C" unlock >/dev/null 2>&1   # the lock of the killed process
    expect_check "$C" $GEN_PW "$step: interrupted"
    RESTIC_PASSWORD=$GEN_PW expect_exit 0 cr -r "$C" prune
    expect_check "$C" $GEN_PW "$step: second prune" clean
    blob_list "$C" $GEN_PW >"$T/blobs.crash"
    expect_same "$T/blobs.final" "$T/blobs.crash" "$step: the same blobs remain as after one prune"
done

section "crash safety: killed after a delay"
for delay in 0.03 0.08 0.2; do
    C=$T/gen-crash; rm -rf "$C"; cp -a "$UNREF_BASE" "$C"
    # started and reaped here: an orphaned zombie would still count as a live lock holder
    RESTIC_PASSWORD=$GEN_PW "$CRESTIC" -r "$C" prune >/dev/null 2>&1 &
    pid=$!
    sleep "$delay"; kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    RESTIC_PASSWORD=$GEN_PW rs -r "$C" unlock >/dev/null 2>&1
    expect_check "$C" $GEN_PW "killed after ${delay}s"
    RESTIC_PASSWORD=$GEN_PW expect_exit 0 cr -r "$C" prune
    expect_check "$C" $GEN_PW "killed after ${delay}s, second prune" clean
done

# ---- fixture repositories ---------------------------------------------------------

section "fixture repositories (written by restic 0.14)"
for name in v1 v2 v2-two-snapshots v2-pruned; do
    repo=$(fixture_copy "$name")
    compare_dry_run "$repo" $FIXTURE_PASSWORD "$name"
    compare_dry_run "$repo" $FIXTURE_PASSWORD "$name" --max-unused 0 --repack-uncompressed
done
repo=$(fixture_copy v2-two-snapshots)
first=$(snapshot_ids "$repo" $FIXTURE_PASSWORD | head -1)
RESTIC_PASSWORD=$FIXTURE_PASSWORD rs -r "$repo" forget "$first" >/dev/null 2>&1
listings "$repo" $FIXTURE_PASSWORD "$T/ls-fix"
compare_dry_run "$repo" $FIXTURE_PASSWORD "v2-two-snapshots after forget"
RESTIC_PASSWORD=$FIXTURE_PASSWORD expect_exit 0 cr -r "$repo" prune
expect_check "$repo" $FIXTURE_PASSWORD "v2-two-snapshots pruned" clean
expect_listings "$repo" $FIXTURE_PASSWORD "$T/ls-fix" "v2-two-snapshots pruned"
repo=$(fixture_copy v2-two-snapshots)
RESTIC_PASSWORD=$FIXTURE_PASSWORD expect_exit 0 cr -r "$repo" prune --repack-uncompressed
expect_check "$repo" $FIXTURE_PASSWORD "v2-two-snapshots --repack-uncompressed" clean
RESTIC_PASSWORD=$FIXTURE_PASSWORD run "$CRESTIC" -r "$repo" prune -n --repack-uncompressed
expect_grep "$OUT" '^to repack: +0 blobs / 0 B$' "--repack-uncompressed: nothing uncompressed is left"
repo=$(fixture_copy v1)
RESTIC_PASSWORD=$FIXTURE_PASSWORD expect_exit 1 cr -r "$repo" prune --repack-uncompressed
expect_grep "$ERR" 'compression requires at least repository format version 2' "v1: --repack-uncompressed refused"

# ---- restic's own test repositories -----------------------------------------------

section "upstream repositories (password geheim): exit code as restic, nothing needed deleted"
for name in repo-unreferenced-data repo-duplicates repo-data-missing repo-unused-data-missing \
            duplicate-packs-in-index-test-repo repo-index-missing repo-index-missing-blob repo-mixed repo-obsolete-index; do
    ref_repo=$(unpack_upstream "$name")
    mv "$ref_repo" "$T/up-ref"
    RESTIC_PASSWORD=$UPSTREAM_PASSWORD rs -r "$T/up-ref" prune -v >"$T/rs.out" 2>&1; rs_rc=$?
    repo=$(unpack_upstream "$name")
    rm -rf "$T/up-ref"
    repo_state "$repo" >"$T/state-before"
    RESTIC_PASSWORD=$UPSTREAM_PASSWORD run "$CRESTIC" -r "$repo" prune -v
    if [ "$RC" = "$rs_rc" ]; then pass "$name: exit $RC as restic"; else fail "$name: exit code" "restic $rs_rc, crestic $RC"; show "$ERR"; fi
    cat "$OUT" "$ERR" >"$T/cr.out"
    stats_of "$T/rs.out" >"$T/rs.stats"; stats_of "$T/cr.out" >"$T/cr.stats"
    expect_same "$T/rs.stats" "$T/cr.stats" "$name: statistics as restic"
    if [ "$RC" = 0 ]; then
        expect_check "$repo" $UPSTREAM_PASSWORD "$name pruned" clean
    else
        repo_state "$repo" >"$T/state-after"
        expect_same "$T/state-before" "$T/state-after" "$name: failed prune changed nothing"
    fi
done
repo=$(unpack_upstream repo-data-missing)
RESTIC_PASSWORD=$UPSTREAM_PASSWORD run "$CRESTIC" -r "$repo" prune
expect_grep "$ERR" '^The index references 1 needed pack files which are missing from the repository:$' "missing needed pack named"
expect_grep "$ERR" '^Fatal: packs from index missing in repo$' "missing needed pack: restic's fatal message"
repo=$(unpack_upstream repo-index-missing-blob)
RESTIC_PASSWORD=$UPSTREAM_PASSWORD run "$CRESTIC" -r "$repo" prune
expect_grep "$ERR" '^\{<data/f2ca1bb6>\} not found in the index$' "blob missing from the index named"
expect_grep "$ERR" '^Fatal: index is not complete$' "index not complete: restic's fatal message"

# ---- errors -------------------------------------------------------------------------

section "errors and option checks"
repo=$(fixture_copy v2-two-snapshots)
pack=$(find "$repo/data" -type f | sort | head -1)
chmod u+w "$pack"; echo garbage >>"$pack"
repo_state "$repo" >"$T/state-before"
RESTIC_PASSWORD=$FIXTURE_PASSWORD expect_exit 1 cr -r "$repo" prune
expect_grep "$ERR" "^pack $(basename "$pack" | cut -c1-8): calculated size [0-9]+ does not match real size [0-9]+$" "size mismatch named"
expect_grep "$ERR" 'repair index' "size mismatch: repair index suggested"
repo_state "$repo" >"$T/state-after"
expect_same "$T/state-before" "$T/state-after" "size mismatch: nothing changed"
repo=$(fixture_copy v2)
for bad in 100% -1% abc% 10x; do
    RESTIC_PASSWORD=$FIXTURE_PASSWORD rs -r "$repo" --no-lock prune -n --max-unused "$bad" >/dev/null 2>"$T/rs.err"
    RESTIC_PASSWORD=$FIXTURE_PASSWORD expect_exit 1 cr -r "$repo" --no-lock prune -n --max-unused "$bad"
    grep '^Fatal' "$T/rs.err" >"$T/rs.fatal"; grep '^Fatal' "$ERR" >"$T/cr.fatal"
    expect_same "$T/rs.fatal" "$T/cr.fatal" "--max-unused $bad: restic's message"
done
RESTIC_PASSWORD=$FIXTURE_PASSWORD expect_exit 1 cr -r "$repo" prune -n --repack-uncompressed --compression off
RESTIC_PASSWORD=$FIXTURE_PASSWORD expect_exit 1 cr -r "$repo" prune --unsafe-recover-no-free-space wrong-id
expect_grep "$ERR" "must pass id '[0-9a-f]{64}' to --unsafe-recover-no-free-space" "unsafe recovery wants the repository ID"
C=$T/gen-unsafe; rm -rf "$C"; cp -a "$GEN" "$C"
add_unreferenced_packs "$C" $GEN_PW
repo_id=$(RESTIC_PASSWORD=$GEN_PW rs -r "$C" --no-lock cat config 2>/dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
RESTIC_PASSWORD=$GEN_PW expect_exit 0 cr -r "$C" prune --unsafe-recover-no-free-space "$repo_id"
expect_check "$C" $GEN_PW "--unsafe-recover-no-free-space" clean
expect_listings "$C" $GEN_PW "$T/ls-gen" "--unsafe-recover-no-free-space"

section "a damaged blob in a pack to repack: prune stops, deletes nothing"
C=$T/gen-damaged; rm -rf "$C"; cp -a "$GEN" "$C"
RESTIC_PASSWORD=$GEN_PW run "$CRESTIC" -r "$C" prune -n -v
# the largest pack to repack: a data pack (tree packs are small, and a damaged tree stops prune earlier)
f=$(for id in $(grep -A1 '^Would have repacked' "$OUT" | tail -1 | tr -d '{}'); do find "$C/data" -name "$id*" -printf '%s %p\n'; done | sort -n | tail -1 | cut -d' ' -f2)
victim=$(basename "$f" | cut -c1-8)
chmod u+w "$f"
"$PY" - "$f" <<'EOF'
import sys
# every blob damaged (a flipped byte in each 4 KiB), the header at the end intact
data = bytearray(open(sys.argv[1], "rb").read())
blob_area = len(data) - 4 - int.from_bytes(data[-4:], "little")
for i in range(0, blob_area, 4096):
    data[i] ^= 0xff
open(sys.argv[1], "wb").write(data)
EOF
repo_state "$C" >"$T/state-before"
RESTIC_PASSWORD=$GEN_PW expect_exit 1 cr -r "$C" prune
expect_grep "$ERR" "^Fatal: repacking pack $victim: " "the damaged pack is named"
repo_state "$C" >"$T/state-after"
expect_true "damaged blob: no file was deleted" bash -c "! comm -23 '$T/state-before' '$T/state-after' | grep -q ."

section "a lock held by someone else blocks prune"
repo=$(fixture_copy v2)
sample=$(ls "$FIXTURES/samples/" | grep '^lock-' | head -1)
cp "$FIXTURES/samples/$sample" "$repo/locks/${sample#lock-}"
repo_state "$repo" >"$T/state-before"
RESTIC_PASSWORD=$FIXTURE_PASSWORD expect_exit 11 cr -r "$repo" prune
repo_state "$repo" >"$T/state-after"
expect_same "$T/state-before" "$T/state-after" "locked: nothing changed"

section "forget --prune runs this prune"
C=$T/gen-forget; rm -rf "$C"; cp -a "$GEN" "$C"
RESTIC_PASSWORD=$GEN_PW expect_exit 0 cr -r "$C" forget --keep-last 1 --prune
expect_grep "$OUT" '^removing [0-9]+ old packs$' "forget --prune removed packs"
expect_check "$C" $GEN_PW "forget --prune" clean

finish
