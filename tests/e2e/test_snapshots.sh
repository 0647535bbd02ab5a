#!/usr/bin/env bash
# `snapshots`: crestic against restic 0.14 on the fixture repositories.
#
#  * --json: parsed and compared field by field (same members, same values,
#    short_id included; oldest first).
#  * the plain table: compared byte for byte with restic 0.14.  The table is
#    fully determined by the data (column widths are the longest cell, at
#    least the header; "Host" and "Tags" headers are padded to 10), so exact
#    equality is meaningful and is what scripts that parse it rely on.  Times
#    are local: TZ is UTC here (lib.sh), plus one run in Asia/Kolkata.
#    Exception: with --group-by, restic 0.14 prints the groups in Go map
#    order (random from run to run), so groups are compared as a set of
#    blocks, each block byte for byte.
#  * filters: --tag (a,b = AND within one value, repeated flags = OR, '' =
#    untagged), --host (repeatable, OR), --path, --latest N, --group-by,
#    --compact, snapshot ID arguments (short, full, latest, unknown).
#
# usage: bash tests/e2e/test_snapshots.sh path/to/crestic
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic

S=$T/s
mkdir -p "$S"

# both LABEL REPO PASSWORD ARGS... : run `restic ARGS` and `crestic ARGS`,
# outputs in $S/LABEL.{restic,crestic}; crestic must exit like restic (0).
both() {
    local label=$1 repo=$2 pw=$3; shift 3
    ref env RESTIC_PASSWORD="$pw" "$RESTIC" --cache-dir "$T/cache-restic" -r "$repo" "$@"
    cp "$OUT" "$S/$label.restic"; cp "$ERR" "$S/$label.restic.err"
    if [ "$RC" -ne 0 ]; then
        fail "$label: restic 0.14 failed (exit $RC): harness problem"; show "$ERR"
        : >"$S/$label.crestic"
        return 1
    fi
    RESTIC_PASSWORD=$pw expect_exit 0 cr -r "$repo" "$@"
    local rc=$?
    cp "$OUT" "$S/$label.crestic"; cp "$ERR" "$S/$label.crestic.err"
    return $rc
}

# count of snapshots in a restic JSON list (or of snapshots in groups)
json_count() {
    "$PY" -c 'import json,sys
d=json.load(open(sys.argv[1]))
print(sum(len(g["snapshots"]) for g in d) if d and "group_key" in d[0] else len(d))' "$1" 2>/dev/null || echo "?"
}

# sorted_blocks FILE: the grouped table with its blocks ("snapshots for ..."
# header up to the next header) in sorted order
sorted_blocks() {
    "$PY" -c 'import sys
blocks=[]; cur=None
for line in open(sys.argv[1], "rb").read().decode("utf-8","surrogateescape").splitlines(True):
    if line.startswith("snapshots for") or cur is None:
        cur=[]; blocks.append(cur)
    cur.append(line)
sys.stdout.write("".join("".join(b) for b in sorted(blocks, key=lambda b: "".join(b))))' "$1"
}

# check_json_and_table LABEL REPO PW WANT_COUNT ARGS...
check_json_and_table() {
    local label=$1 repo=$2 pw=$3 want=$4; shift 4
    if both "$label.json" "$repo" "$pw" snapshots --json "$@"; then
        local n; n=$(json_count "$S/$label.json.restic")
        if [ "$want" != any ] && [ "$n" != "$want" ]; then
            fail "$label: restic 0.14 selected $n snapshots, the test expects $want (harness problem)"
        fi
        expect_json "$S/$label.json.restic" "$S/$label.json.crestic" \
            "$label: snapshots --json $* (field by field)" --check-time-order --unordered-groups
    fi
    if both "$label.table" "$repo" "$pw" snapshots "$@"; then
        case " $* " in
            *" --group-by "*|*" -g "*)
                sorted_blocks "$S/$label.table.restic" >"$S/$label.table.restic.sorted"
                sorted_blocks "$S/$label.table.crestic" >"$S/$label.table.crestic.sorted"
                expect_same "$S/$label.table.restic.sorted" "$S/$label.table.crestic.sorted" \
                    "$label: snapshots $* table (groups in any order)" ;;
            *)
                expect_same "$S/$label.table.restic" "$S/$label.table.crestic" \
                    "$label: snapshots $* table (byte for byte)" ;;
        esac
    fi
}

# ---------------------------------------------------------------------------
section "every fixture repository: --json and table"
for name in $(fixture_repo_names); do
    repo=$(copy_repo "$name")
    check_json_and_table "$name" "$repo" "$FIXTURE_PASSWORD" any
done
for name in small-repo repo-same-timestamps repo-layout-default copy-unstable-json duplicate-packs-in-index-test-repo; do
    repo=$(unpack_upstream "$name")
    check_json_and_table "$name" "$repo" "$UPSTREAM_PASSWORD" any
done
# a repository without snapshots: restic prints nothing at all / "[]"
if [ -f "$S/duplicate-packs-in-index-test-repo.table.crestic" ]; then
    expect_empty "$S/duplicate-packs-in-index-test-repo.table.crestic" "no snapshots: empty table output (nothing printed)"
fi

# ---------------------------------------------------------------------------
section "filters (v2-two-snapshots: 595d1c1a tags base,fixture,first; c4395036 tags fixture,second)"
R=$(copy_repo v2-two-snapshots "$T/repos/filters")
P=$FIXTURE_PASSWORD
check_json_and_table tag-and        "$R" "$P" 1 --tag fixture,first
check_json_and_table tag-or         "$R" "$P" 2 --tag first --tag second
check_json_and_table tag-and-none   "$R" "$P" 0 --tag first,second
check_json_and_table tag-one        "$R" "$P" 2 --tag fixture
check_json_and_table tag-untagged   "$R" "$P" 0 --tag ''
check_json_and_table tag-untagged-or "$R" "$P" 1 --tag '' --tag second
check_json_and_table host           "$R" "$P" 2 --host fixture-host
check_json_and_table host-short     "$R" "$P" 2 -H fixture-host
check_json_and_table host-none      "$R" "$P" 0 --host other
check_json_and_table host-or        "$R" "$P" 2 --host other --host fixture-host
check_json_and_table path           "$R" "$P" 2 --path /tmp/restic-fixture/src
check_json_and_table path-parent    "$R" "$P" 0 --path /tmp/restic-fixture
check_json_and_table latest1        "$R" "$P" 1 --latest 1
check_json_and_table latest1-tag    "$R" "$P" 1 --latest 1 --tag first
check_json_and_table latest5        "$R" "$P" 2 --latest 5
check_json_and_table compact        "$R" "$P" 2 --compact
check_json_and_table compact-short  "$R" "$P" 2 -c
check_json_and_table compact-tag    "$R" "$P" 1 --compact --tag second
check_json_and_table group-host     "$R" "$P" 2 --group-by host
check_json_and_table group-tags     "$R" "$P" 2 --group-by tags
check_json_and_table group-paths    "$R" "$P" 2 --group-by paths
check_json_and_table group-all      "$R" "$P" 2 --group-by host,paths,tags
check_json_and_table group-latest   "$R" "$P" 1 -g host --latest 1
check_json_and_table group-compact  "$R" "$P" 2 --group-by tags --compact
check_json_and_table id-short       "$R" "$P" 1 595d1c1a
check_json_and_table id-full        "$R" "$P" 1 c439503693ebb5b7a3eb3eeba102b561e3d907f3e039f3506a519b0a14ae8c66
check_json_and_table id-latest      "$R" "$P" 1 latest
check_json_and_table id-two         "$R" "$P" 2 c4395036 595d1c1a
# an unknown ID: restic 0.14 skips it with a warning on stderr
# ('Ignoring "deadbeef": no matching ID found for prefix "deadbeef"') and
# exits 0 with the others listed; today's restic fails (exit 1, nothing on
# stdout, the message on stderr).  Either is accepted.
for form in json table; do
    extra=(); [ $form = json ] && extra=(--json)
    ref env RESTIC_PASSWORD=$P "$RESTIC" --cache-dir "$T/cache-restic" -r "$R" snapshots "${extra[@]}" 595d1c1a deadbeef
    cp "$OUT" "$S/id-unknown.$form.restic"
    RESTIC_PASSWORD=$P run cr -r "$R" snapshots "${extra[@]}" 595d1c1a deadbeef
    cp "$OUT" "$S/id-unknown.$form.crestic"
    if sanitizer_report "$ERR"; then fail "unknown ID ($form): sanitizer report"; show_sanitizer "$ERR"
    elif [ "$RC" = 0 ]; then
        if [ $form = json ]; then
            expect_json "$S/id-unknown.json.restic" "$S/id-unknown.json.crestic" "unknown ID ($form): ignored like restic 0.14"
        else
            expect_same "$S/id-unknown.table.restic" "$S/id-unknown.table.crestic" "unknown ID ($form): ignored like restic 0.14"
        fi
    elif [ "$RC" = 1 ]; then
        expect_empty "$OUT" "unknown ID ($form): refused like today's restic (exit 1), stdout empty"
    else
        fail "unknown ID ($form): exit 0 (0.14) or 1 (today) expected, got $RC"; show "$ERR"
    fi
    expect_grep "$ERR" deadbeef "unknown ID ($form): stderr names it"
done

section "filters on an upstream repository (4 snapshots, no tags)"
U=$(unpack_upstream small-repo)
check_json_and_table up-untagged "$U" "$UPSTREAM_PASSWORD" 4 --tag ''
check_json_and_table up-latest2  "$U" "$UPSTREAM_PASSWORD" 2 --latest 2
check_json_and_table up-host     "$U" "$UPSTREAM_PASSWORD" 4 --host kasimir
check_json_and_table up-compact  "$U" "$UPSTREAM_PASSWORD" 4 --compact

# ---------------------------------------------------------------------------
section "local time zone in the table"
if [ -e /usr/share/zoneinfo/Asia/Kolkata ]; then
    TZ=Asia/Kolkata check_json_and_table tz-kolkata "$R" "$P" 2
    TZ=America/New_York check_json_and_table tz-newyork "$(copy_repo v2 "$T/repos/tz")" "$P" 1
    grep -q '2023-01-02 10:00:00' "$S/tz-kolkata.table.restic" ||
        fail "tz: restic did not print Asia/Kolkata local time (harness problem)"
else
    skip "tz tests: /usr/share/zoneinfo missing (install tzdata)"
fi

# ---------------------------------------------------------------------------
section "global flags after the command, and RESTIC_REPOSITORY"
RESTIC_PASSWORD=$P expect_exit 0 cr snapshots --json -r "$R"
cp "$OUT" "$S/after.json"
expect_json "$S/tag-one.json.restic" "$S/after.json" "snapshots --json -r REPO (flags after the command)"
RESTIC_PASSWORD=$P RESTIC_REPOSITORY=$R expect_exit 0 cr snapshots
cp "$OUT" "$S/env.table"
expect_same "$S/host.table.restic" "$S/env.table" "RESTIC_REPOSITORY selects the repository"

finish
