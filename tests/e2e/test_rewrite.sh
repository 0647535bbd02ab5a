#!/usr/bin/env bash
# crestic rewrite (today's restic; 0.14 lacks it): excluded paths vanish from
# the rewritten snapshots, everything else lists exactly as before in restic
# 0.14's ls -l, restic check --read-data passes, `original` points to the
# rewritten snapshot, tag "rewrite" (none with --forget), --dry-run writes
# nothing, unchanged snapshots are left alone.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic
export RESTIC_PASSWORD=fixture-password

ids() { rs -r "$1" snapshots --json | "$PY" -c 'import json,sys; [print(s["id"]) for s in sorted(json.load(sys.stdin), key=lambda s: (s["time"], s["id"]))]'; }
field() { # REPO ID FIELD
    rs -r "$1" snapshots --json | "$PY" -c '
import json, sys
for s in json.load(sys.stdin):
    if s["id"] == sys.argv[1]: print(s.get(sys.argv[2]))' "$2" "$3"
}
checked() {
    run rs -r "$1" check --read-data
    if [ $RC = 0 ] && grep -q 'no errors were found' "$OUT"; then pass "$2: restic check --read-data"; else fail "$2: restic check --read-data" "rc $RC"; show "$OUT"; show "$ERR"; fi
}
listing() { rs -r "$1" ls -l "$2" | tail -n +2; }

repo=$(copy_repo v2-two-snapshots)
old=$(ids "$repo")

section "dry run"
files_before=$(find "$repo" -type f | sort | md5sum)
run cr -r "$repo" rewrite -n --exclude '*.bin' --exclude /src/sub/deeper
expect_true "dry run: exit 0" test "$RC" = 0
expect_grep "$OUT" '^snapshot [0-9a-f]{8} of \[/tmp/restic-fixture/src\] at 2023-01-0[23] .* by root@fixture-host$' "dry run: snapshot line"
expect_grep "$OUT" '^excluding /src/big\.bin$' "dry run: excluding line"
expect_grep "$OUT" '^would save new snapshot$' "dry run: would save"
expect_grep "$OUT" '^would modify 2 snapshots$' "dry run: summary"
expect_true "dry run: repository untouched" test "$(find "$repo" -type f | sort | md5sum)" = "$files_before"

section "rewrite --exclude"
run cr -r "$repo" rewrite --exclude '*.bin' --exclude /src/sub/deeper
expect_true "rewrite: exit 0" test "$RC" = 0
expect_grep "$OUT" '^saved new snapshot [0-9a-f]{8}$' "rewrite: saved line"
expect_grep "$OUT" '^modified 2 snapshots$' "rewrite: summary"
checked "$repo" "rewrite"
expect_true "rewrite: four snapshots (originals kept)" test "$(ids "$repo" | wc -l)" = 4
for id in $old; do
    new=$(rs -r "$repo" snapshots --json | "$PY" -c '
import json, sys
for s in json.load(sys.stdin):
    if s.get("original") == sys.argv[1]: print(s["id"])' "$id")
    expect_true "rewrite ${id:0:8}: one snapshot with original = old ID" test -n "$new"
    [ -n "$new" ] || continue
    listing "$repo" "$id" | grep -vE '\.bin$|/src/sub/deeper' >"$T/expected"
    listing "$repo" "$new" >"$T/got"
    expect_same "$T/expected" "$T/got" "rewrite ${id:0:8}: ls -l equals the original without the excluded paths"
    expect_grep <(field "$repo" "$new" tags) "'rewrite'" "rewrite ${id:0:8}: tag rewrite"
    expect_true "rewrite ${id:0:8}: same time" test "$(field "$repo" "$new" time)" = "$(field "$repo" "$id" time)"
done

section "nothing left to exclude"
run cr -r "$repo" rewrite --exclude '*.bin' --tag rewrite
expect_true "again: exit 0" test "$RC" = 0
expect_grep "$OUT" '^no snapshots were modified$' "again: no snapshots were modified"
expect_true "again: still four snapshots" test "$(ids "$repo" | wc -l)" = 4

section "--forget, --iexclude, --exclude-file, snapshot ID"
repo2=$(copy_repo v2-two-snapshots "$T/repo2")
first=$(ids "$repo2" | head -1)
printf '# comment\n*.TXT\n' >"$T/ipatterns"
printf '/src/sub\n' >"$T/patterns"
run cr -r "$repo2" rewrite --forget --iexclude-file "$T/ipatterns" --exclude-file "$T/patterns" "${first:0:8}"
expect_true "forget: exit 0" test "$RC" = 0
expect_grep "$OUT" "^removed old snapshot ${first:0:8}\$" "forget: removed line"
expect_grep "$OUT" '^excluding /src/README\.TXT$' "forget: --iexclude-file matches case-insensitively"
expect_true "forget: still two snapshots" test "$(ids "$repo2" | wc -l)" = 2
new=$(ids "$repo2" | head -1)
expect_true "forget: no tag rewrite" test "$(field "$repo2" "$new" tags)" = "['base', 'fixture', 'first']"
expect_true "forget: original = old ID" test "$(field "$repo2" "$new" original)" = "$first"
expect_empty <(listing "$repo2" "$new" | grep -E '/src/sub|\.(txt|TXT)$') "forget: excluded paths gone"
checked "$repo2" "forget"
run cr -r "$repo2" prune
expect_true "prune after rewrite --forget: exit 0" test "$RC" = 0
checked "$repo2" "rewrite --forget + prune"

section "errors"
run cr -r "$repo2" rewrite
expect_true "no excludes: exit 1" test "$RC" = 1
expect_grep "$ERR" '^Fatal: Nothing to do: no excludes provided' "no excludes: message"
run cr -r "$repo2" rewrite --exclude x deadbeef
expect_grep "$ERR" '^Ignoring "deadbeef": no matching ID found for prefix "deadbeef"$' "unknown ID: warning"
finish
