#!/usr/bin/env bash
# crestic copy vs restic 0.14: copied snapshots read back by restic (check
# --read-data, identical ls -l), trees byte-for-byte (same IDs), `original`
# set and `parent` dropped, restic's "already copied" rule in both directions,
# different chunker polynomials, v1 <-> v2, the same messages and exit codes.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic
export RESTIC_PASSWORD=fixture-password RESTIC_FROM_PASSWORD=fixture-password

# time tree paths host tags original parent, one line per snapshot
state() {
    rs -r "$1" snapshots --json | "$PY" -c '
import json, sys
for s in sorted(json.load(sys.stdin), key=lambda s: (s["time"], s["id"])):
    print(s["time"], s["tree"], s["paths"], s.get("hostname"), s.get("tags"), s.get("original", s["id"])[:8], s.get("parent", "-"))'
}
# the stored snapshot documents (restic cat), sorted: independent of IDs
docs() {
    local id
    for id in $(rs -r "$1" snapshots --json | "$PY" -c 'import json,sys; [print(s["id"]) for s in json.load(sys.stdin)]'); do
        rs -r "$1" cat snapshot "$id" | tr -d ' \n'; echo
    done | sort
}
checked() { # REPO DESC
    run rs -r "$1" check --read-data
    if [ $RC = 0 ] && grep -q 'no errors were found' "$OUT"; then pass "$2: restic check --read-data"; else fail "$2: restic check --read-data" "rc $RC"; show "$OUT"; show "$ERR"; fi
}
same_listings() { # SRC DST DESC: restic ls -l of each source snapshot and its copy
    local ids id copy ok=1
    ids=$(rs -r "$1" snapshots --json | "$PY" -c 'import json,sys; [print(s["id"]) for s in json.load(sys.stdin)]')
    for id in $ids; do
        copy=$(rs -r "$2" snapshots --json | "$PY" -c '
import json, sys
want = sys.argv[1]
for s in json.load(sys.stdin):
    src = None
    if s.get("original") == want: print(s["id"]); break' "$id")
        [ -n "$copy" ] || { ok=0; echo "no copy of $id" >>"$T/ls.diff"; continue; }
        rs -r "$1" ls -l "$id" | tail -n +2 >"$T/ls.src"
        rs -r "$2" ls -l "$copy" | tail -n +2 >"$T/ls.dst"
        cmp -s "$T/ls.src" "$T/ls.dst" || { ok=0; diff -u "$T/ls.src" "$T/ls.dst" >>"$T/ls.diff"; }
    done
    if [ $ok = 1 ]; then pass "$3: restic ls -l of every copy equals its source"; else fail "$3: restic ls -l differs"; show "$T/ls.diff"; fi
}
count_files() { find "$1/$2" -type f | wc -l; }

section "copy into a new repository (other polynomial)"
src=$(copy_repo v2-two-snapshots)
dst=$T/dst
cr -r "$dst" init >/dev/null 2>&1
run cr -r "$dst" copy --from-repo "$src"
expect_true "copy: exit 0" test "$RC" = 0
expect_grep "$OUT" '^snapshot c4395036 of \[/tmp/restic-fixture/src\] at 2023-01-03 11:30:00 \+0530 \+0530\)$' "copy: restic's snapshot line"
expect_grep "$OUT" '^  copy started, this may take a while\.\.\.$' "copy: started line"
expect_grep "$OUT" '^\[0:0[0-9]\] 100\.00%  [0-9]+ / [0-9]+ packs copied$' "copy: packs copied line"
expect_true "copy: two 'saved' lines" test "$(grep -cE '^snapshot [0-9a-f]{8} saved$' "$OUT")" = 2
checked "$dst" "copy"
same_listings "$src" "$dst" "copy"
state "$src" | awk '{print $1, $2}' >"$T/src.trees"
state "$dst" | awk '{print $1, $2}' >"$T/dst.trees"
expect_same "$T/src.trees" "$T/dst.trees" "copy: same times and tree IDs (trees byte-for-byte)"
expect_true "copy: no parent in the copies" test "$(state "$dst" | awk '{print $NF}' | sort -u)" = "-"

section "second copy copies nothing"
before=$(count_files "$dst" data)
run cr -r "$dst" copy --from-repo "$src"
expect_true "recopy: exit 0" test "$RC" = 0
expect_true "recopy: two 'skipping' lines" test "$(grep -c '^skipping source snapshot .*, was already copied to snapshot ' "$OUT")" = 2
expect_true "recopy: no 'saved'" test "$(grep -c ' saved$' "$OUT")" = 0
expect_true "recopy: no new packs" test "$(count_files "$dst" data)" = "$before"
expect_true "recopy: still two snapshots" test "$(count_files "$dst" snapshots)" = 2
run rs -r "$dst" copy --from-repo "$src"
expect_true "restic copy after crestic copy: skips both" test "$(grep -c '^skipping source snapshot' "$OUT")" = 2

section "same snapshot documents as restic's copy"
rsdst=$T/rsdst
rs -r "$rsdst" init >/dev/null 2>&1
rs -r "$rsdst" copy --from-repo "$src" >/dev/null 2>&1
docs "$rsdst" >"$T/docs.rs"; docs "$dst" >"$T/docs.cr"
expect_same "$T/docs.rs" "$T/docs.cr" "copy: snapshot JSON equals restic's copy"
run cr -r "$rsdst" copy --from-repo "$src"
expect_true "crestic copy after restic copy: skips both" test "$(grep -c '^skipping source snapshot' "$OUT")" = 2

section "a second source (v1, same polynomial via init --copy-chunker-params)"
v1=$(copy_repo v1)
dst2=$T/dst2
run cr -r "$dst2" init --copy-chunker-params --from-repo "$v1"
pol() { rs -r "$1" cat config | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["chunker_polynomial"])'; }
expect_true "init --copy-chunker-params: same polynomial" test "$(pol "$v1")" = "$(pol "$dst2")"
run cr -r "$dst2" copy --from-repo "$v1"
expect_true "copy v1 -> v2: exit 0" test "$RC" = 0
run cr -r "$dst2" copy --from-repo "$src" latest
expect_true "copy latest: exit 0" test "$RC" = 0
expect_true "copy latest: one saved" test "$(grep -c ' saved$' "$OUT")" = 1
checked "$dst2" "copy v1 -> v2"
same_listings "$v1" "$dst2" "copy v1 -> v2"

section "into a v1 repository (compressed blobs stored plain)"
dst1=$T/dst1
cr -r "$dst1" init --repository-version 1 >/dev/null 2>&1
run cr -r "$dst1" copy --from-repo "$src"
expect_true "copy v2 -> v1: exit 0" test "$RC" = 0
checked "$dst1" "copy v2 -> v1"
same_listings "$src" "$dst1" "copy v2 -> v1"

section "trees in a non-canonical JSON form keep their IDs"
up=$(unpack_upstream copy-unstable-json)
dst3=$T/dst3
cr -r "$dst3" init >/dev/null 2>&1
run env RESTIC_FROM_PASSWORD=geheim "$CRESTIC" -r "$dst3" --cache-dir "$T/cache-crestic" copy --from-repo "$up"
expect_true "copy unstable json: exit 0" test "$RC" = 0
checked "$dst3" "copy unstable json"
RESTIC_PASSWORD=geheim state "$up" | awk '{print $1, $2}' >"$T/up.trees"
state "$dst3" | awk '{print $1, $2}' >"$T/dst3.trees"
expect_same "$T/up.trees" "$T/dst3.trees" "copy unstable json: same tree IDs"

section "selection and errors"
run cr -r "$dst" copy --from-repo "$src" --host nope
expect_true "--host nope: exit 0, nothing printed" test "$RC" = 0 -a ! -s "$OUT"
run cr -r "$dst" copy --from-repo "$src" deadbeef
expect_true "unknown ID: exit 0" test "$RC" = 0
expect_grep "$ERR" '^Ignoring "deadbeef": no matching ID found for prefix "deadbeef"$' "unknown ID: restic's warning"
run cr -r "$dst" copy -q --from-repo "$src"
expect_true "-q: silent" test "$RC" = 0 -a ! -s "$OUT"
run cr -r "$dst" copy
expect_true "no source: exit 1" test "$RC" = 1
expect_grep "$ERR" '^Fatal: Please specify a source repository location \(--from-repo or --from-repository-file\)$' "no source: restic's message"
run env RESTIC_FROM_PASSWORD=wrong "$CRESTIC" -r "$dst" --cache-dir "$T/cache-crestic" copy --from-repo "$src"
expect_true "wrong source password: exit 12" test "$RC" = 12
echo "$src" >"$T/from-file"; echo fixture-password >"$T/from-pw"
run env -u RESTIC_FROM_PASSWORD "$CRESTIC" -r "$dst" --cache-dir "$T/cache-crestic" copy --from-repository-file "$T/from-file" --from-password-file "$T/from-pw"
expect_true "--from-repository-file/--from-password-file: exit 0" test "$RC" = 0
expect_true "--from-repository-file: skips both" test "$(grep -c '^skipping source snapshot' "$OUT")" = 2
finish
