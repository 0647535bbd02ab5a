#!/usr/bin/env bash
# crestic repair index / rebuild-index against restic 0.14's rebuild-index:
# the same blobs indexed afterwards, the same check findings, every
# snapshot intact after the index was deleted, damaged packs and index
# files reported and worked around, and crash safety (killed after the new
# index is written / while old files are removed).
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

# "type id" of every indexed blob, with the pack: what the index says.
index_content() { # REPO PASSWORD
    RESTIC_PASSWORD=$2 rs -r "$1" --no-lock list blobs 2>/dev/null | sort -u
}

# The findings both checkers print (as in test_check.sh), normalised.
findings() {
    grep -E 'does not exist|not referenced in any index|unexpected file size|not found in (repository|index)|contained in several indexes|mix of tree and data|error for tree|additional files were found' "$1" |
        sed -E 's/^  +//' | sort
}

expect_check() { # REPO PASSWORD DESC
    RESTIC_PASSWORD=$2 run "$RESTIC" --cache-dir "$T/cache-restic" -r "$1" check --read-data
    if [ "$RC" = 0 ]; then pass "$3: restic check --read-data passes"
    else fail "$3: restic check --read-data (exit $RC)"; show "$ERR"; fi
}

listings() { # REPO PASSWORD OUTFILE: restic ls -l of every snapshot
    local id
    for id in $(snapshot_ids "$1" "$2"); do
        RESTIC_PASSWORD=$2 rs -r "$1" --no-lock ls -l "$id" 2>&1
    done >"$3"
}

# Repair a copy with restic 0.14 and one with crestic; compare the exit
# codes, the indexed blobs and what restic check says afterwards.
compare_repair() { # DESC PASSWORD SOURCE_REPO [flags...]
    local desc=$1 pw=$2 src=$3; shift 3
    local a=$T/cmp-restic b=$T/cmp-crestic
    rm -rf "$a" "$b"; cp -a "$src" "$a"; cp -a "$src" "$b"
    RESTIC_PASSWORD=$pw rs -r "$a" rebuild-index "$@" >"$T/rs.out" 2>&1; local rs_rc=$?
    RESTIC_PASSWORD=$pw run "$CRESTIC" -r "$b" repair index "$@"
    if [ "$RC" = "$rs_rc" ]; then pass "$desc: exit $RC as restic"
    else fail "$desc: exit code" "restic $rs_rc, crestic $RC"; show "$ERR"; fi
    [ "$rs_rc" = 0 ] || return 0
    index_content "$a" "$pw" >"$T/idx.rs"; index_content "$b" "$pw" >"$T/idx.cr"
    expect_same "$T/idx.rs" "$T/idx.cr" "$desc: the same blobs indexed as by restic"
    RESTIC_PASSWORD=$pw rs -r "$a" check >"$T/chk.rs" 2>&1; local c_rs=$?
    RESTIC_PASSWORD=$pw rs -r "$b" check >"$T/chk.cr" 2>&1; local c_cr=$?
    findings "$T/chk.rs" >"$T/f.rs"; findings "$T/chk.cr" >"$T/f.cr"
    expect_same "$T/f.rs" "$T/f.cr" "$desc: restic check finds the same afterwards"
    if [ "$c_rs" = "$c_cr" ]; then pass "$desc: restic check exit $c_cr as after restic's repair"
    else fail "$desc: restic check exit" "after restic $c_rs, after crestic $c_cr"; fi
}

section "index files deleted: repair index restores everything"
for name in v1 v2-two-snapshots; do
    repo=$(fixture_copy "$name")
    index_content "$repo" $FIXTURE_PASSWORD >"$T/idx.before"
    listings "$repo" $FIXTURE_PASSWORD "$T/ls.before"
    rm -f "$repo"/index/*
    RESTIC_PASSWORD=$FIXTURE_PASSWORD expect_exit 0 cr -r "$repo" repair index
    for phase in "loading indexes..." "getting pack files to read..." "reading pack files" "rebuilding index" "deleting obsolete index files" "done"; do
        expect_grep "$OUT" "^$phase\$" "$name: prints \"$phase\""
    done
    expect_check "$repo" $FIXTURE_PASSWORD "$name repaired"
    index_content "$repo" $FIXTURE_PASSWORD >"$T/idx.after"
    expect_same "$T/idx.before" "$T/idx.after" "$name: the index lists what it listed before"
    listings "$repo" $FIXTURE_PASSWORD "$T/ls.after"
    expect_same "$T/ls.before" "$T/ls.after" "$name: every snapshot lists as before"
done
repo=$(fixture_copy v2-two-snapshots)
rm -f "$repo"/index/*
rm -rf "$T/restore-a" "$T/restore-b"
RESTIC_PASSWORD=$FIXTURE_PASSWORD expect_exit 0 cr -r "$repo" rebuild-index
RESTIC_PASSWORD=$FIXTURE_PASSWORD rs -r "$FIXTURES/repos/v2-two-snapshots" --no-lock restore latest --target "$T/restore-a" >/dev/null 2>&1
RESTIC_PASSWORD=$FIXTURE_PASSWORD rs -r "$repo" --no-lock restore latest --target "$T/restore-b" >/dev/null 2>&1
manifest "$T/restore-a" --no-atime >"$T/m.a"; manifest "$T/restore-b" --no-atime >"$T/m.b"
expect_same "$T/m.a" "$T/m.b" "rebuild-index: latest snapshot restores as from the original"

section "an intact index: reused, old files replaced"
repo=$(fixture_copy v2-two-snapshots)
ls "$repo/index" >"$T/files.before"
index_content "$repo" $FIXTURE_PASSWORD >"$T/idx.before"
RESTIC_PASSWORD=$FIXTURE_PASSWORD expect_exit 0 cr -r "$repo" repair index -v
expect_true "no pack header was read" bash -c "! grep -q '^reading pack files' '$OUT'"
ls "$repo/index" >"$T/files.after"
expect_true "old index files removed" bash -c "! grep -qxFf '$T/files.before' '$T/files.after'"
index_content "$repo" $FIXTURE_PASSWORD >"$T/idx.after"
expect_same "$T/idx.before" "$T/idx.after" "same index content"
RESTIC_PASSWORD=$FIXTURE_PASSWORD expect_exit 0 cr -r "$repo" repair index --read-all-packs
expect_grep "$OUT" '^reading pack files$' "--read-all-packs reads the headers"
expect_true "--read-all-packs: no old index loaded" bash -c "! grep -q '^loading indexes' '$OUT'"
index_content "$repo" $FIXTURE_PASSWORD >"$T/idx.after"
expect_same "$T/idx.before" "$T/idx.after" "--read-all-packs: same index content"
expect_check "$repo" $FIXTURE_PASSWORD "after --read-all-packs"

section "compared with restic 0.14 rebuild-index: fixture and upstream repositories"
for name in v2 v2-pruned; do
    compare_repair "$name" $FIXTURE_PASSWORD "$(fixture_copy "$name")"
    compare_repair "$name --read-all-packs" $FIXTURE_PASSWORD "$(fixture_copy "$name")" --read-all-packs
done
for name in repo-unreferenced-data repo-duplicates repo-data-missing repo-unused-data-missing \
            duplicate-packs-in-index-test-repo repo-index-missing repo-index-missing-blob repo-mixed repo-obsolete-index; do
    compare_repair "$name" $UPSTREAM_PASSWORD "$(unpack_upstream "$name")"
done

section "damage: packs with unreadable headers, index files that do not load"
repo=$(fixture_copy v2-two-snapshots)
pack=$(find "$repo/data" -type f | sort | head -1)
chmod u+w "$pack"; truncate -s 100 "$pack"
compare_repair "truncated pack" $FIXTURE_PASSWORD "$repo"
expect_grep "$ERR" "^skipped incomplete pack file: $(basename "$pack")" "the damaged pack is reported"
repo=$(fixture_copy v2-two-snapshots)
pack=$(find "$repo/data" -type f | sort | head -1)
chmod u+w "$pack"; echo garbage >>"$pack"
compare_repair "pack with trailing garbage" $FIXTURE_PASSWORD "$repo"
repo=$(fixture_copy v2-two-snapshots)
index_content "$repo" $FIXTURE_PASSWORD >"$T/idx.before"
idx=$(ls "$repo/index" | head -1)
chmod u+w "$repo/index/$idx"; head -c 300 /dev/urandom >"$repo/index/$idx"
# restic 0.14 cannot load the index at all; crestic reads that file's packs instead.
RESTIC_PASSWORD=$FIXTURE_PASSWORD expect_exit 0 cr -r "$repo" repair index
expect_grep "$ERR" "^index $idx cannot be loaded" "the broken index file is reported"
expect_true "the broken index file is gone" test ! -e "$repo/index/$idx"
index_content "$repo" $FIXTURE_PASSWORD >"$T/idx.after"
expect_same "$T/idx.before" "$T/idx.after" "broken index file: the index is complete again"
expect_check "$repo" $FIXTURE_PASSWORD "broken index file repaired"

section "repair, then prune: a blob missing from the index is found again"
repo=$(unpack_upstream repo-index-missing-blob)
RESTIC_PASSWORD=$UPSTREAM_PASSWORD expect_exit 1 cr -r "$repo" prune
RESTIC_PASSWORD=$UPSTREAM_PASSWORD expect_exit 0 cr -r "$repo" repair index
RESTIC_PASSWORD=$UPSTREAM_PASSWORD expect_exit 0 cr -r "$repo" prune
expect_check "$repo" $UPSTREAM_PASSWORD "repo-index-missing-blob repaired and pruned"

section "crash safety: killed after the new index is written / while old files go"
for step in repair:index-written index-removed-1; do
    repo=$(fixture_copy v2-two-snapshots)
    index_content "$repo" $FIXTURE_PASSWORD >"$T/idx.before"
    RESTIC_PASSWORD=$FIXTURE_PASSWORD CRESTIC_TEST_ABORT_AT=$step run "$CRESTIC" -r "$repo" repair index
    if [ "$RC" = 137 ]; then pass "$step: killed there"; else fail "$step: not killed (exit $RC)"; fi
    RESTIC_PASSWORD=$FIXTURE_PASSWORD rs -r "$repo" unlock >/dev/null 2>&1
    expect_check "$repo" $FIXTURE_PASSWORD "$step: interrupted"
    RESTIC_PASSWORD=$FIXTURE_PASSWORD expect_exit 0 cr -r "$repo" repair index
    expect_check "$repo" $FIXTURE_PASSWORD "$step: repaired again"
    index_content "$repo" $FIXTURE_PASSWORD >"$T/idx.after"
    expect_same "$T/idx.before" "$T/idx.after" "$step: same index content"
    RESTIC_PASSWORD=$FIXTURE_PASSWORD rs -r "$repo" check >"$T/chk" 2>&1
    expect_true "$step: no pack in several index files afterwards" bash -c "! grep -q 'contained in several indexes' '$T/chk'"
done

section "usage"
repo=$(fixture_copy v2)
RESTIC_PASSWORD=$FIXTURE_PASSWORD expect_exit 1 cr -r "$repo" repair nonsense
expect_grep "$ERR" 'unknown command "nonsense"' "unknown repair subcommand"
expect_exit 0 cr repair
expect_grep "$OUT" '^  index ' "repair lists its subcommands"
RESTIC_PASSWORD=$FIXTURE_PASSWORD expect_exit 0 cr repair -r "$repo" index -q
expect_empty "$OUT" "-q: nothing printed"

finish
