#!/usr/bin/env bash
# crestic forget against restic 0.14 on a generated repository of 200
# snapshots (tests/tools/gen_snapshots.py: years of times in many offsets,
# year ends, runs of identical times, three hosts, path and tag sets).
#
# For each policy both programs run `forget --dry-run --json` and the
# whole JSON must be equal per group (keep, remove, reasons with counters,
# snapshot bodies); only the order of the groups may differ, since restic
# prints them in Go map order.  Then real forgets on copies must leave the
# same snapshot files.
#
# Ties: restic 0.14 sorts each group with a stable sort of the order in which
# its loader delivered the snapshots: the directory listing order, except that
# its two parallel loaders (local.connections=2) now and then overtake each
# other, which makes restic itself nondeterministic for identical times.  The
# reference runs therefore use -o local.connections=1, the order crestic
# reproduces.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
need_restic

export RESTIC_PASSWORD=$FIXTURE_PASSWORD
RS_ONE=(-o local.connections=1)

section "generate a repository with 200 snapshots"
GEN=$T/gen
if "$PY" "$TOOLS/gen_snapshots.py" "$GEN" --count 200 --seed 7 --restic "$RESTIC" >"$T/gen.out" 2>&1; then
    pass "generated $(cat "$T/gen.out") snapshots"
else
    fail "gen_snapshots.py"; show "$T/gen.out"; finish
fi

# Groups sorted by their key; everything else as printed.  One Python run
# normalises a whole batch of outputs (FILE.json -> FILE.norm).
cat >"$T/norm.py" <<'EOF'
import json, sys
for path in sys.argv[1:]:
    text = open(path).read()
    out = "(no output)"
    if text.strip():
        try:
            groups = json.loads(text)
            groups.sort(key=lambda g: json.dumps([g["host"], g["paths"], g["tags"]]))
            out = json.dumps(groups, indent=1)
        except Exception as e:
            out = "not JSON (%s):\n%s" % (e, text)
    open(path[:-5] + ".norm", "w").write(out + "\n")
EOF

N=0
PENDING=()   # numbers of compared runs not yet checked; DESCS holds their names
DESCS=()
# compare_json DESC ARGS...: forget --dry-run --json of both; checked by flush_json
compare_json() {
    local desc=$1; shift
    N=$((N + 1))
    run rs -r "$GEN" "${RS_ONE[@]}" --no-lock forget --dry-run --json "$@"
    local rrc=$RC
    cp "$OUT" "$T/ref.$N.json"
    run cr -r "$GEN" --no-lock forget --dry-run --json "$@"
    if [ "$RC" != "$rrc" ]; then
        fail "$desc: exit $RC, restic $rrc"; show "$ERR"; return
    fi
    cp "$OUT" "$T/cand.$N.json"
    PENDING+=("$N")
    DESCS[$N]=$desc
}

# flush_json: the same JSON per group for every pending comparison
flush_json() {
    [ ${#PENDING[@]} -gt 0 ] || return 0
    local files=() k
    for k in "${PENDING[@]}"; do files+=("$T/ref.$k.json" "$T/cand.$k.json"); done
    "$PY" "$T/norm.py" "${files[@]}"
    for k in "${PENDING[@]}"; do expect_same "$T/ref.$k.norm" "$T/cand.$k.norm" "${DESCS[$k]}"; done
    PENDING=()
}

section "each rule alone"
compare_json "keep-last" --keep-last 5
compare_json "keep-hourly" --keep-hourly 10
compare_json "keep-daily" --keep-daily 7
compare_json "keep-weekly" --keep-weekly 8
compare_json "keep-monthly" --keep-monthly 12
compare_json "keep-yearly" --keep-yearly 3
compare_json "keep-within 2m" --keep-within 2m
compare_json "keep-within 1y6m" --keep-within 1y6m
compare_json "keep-within 36h" --keep-within 36h
compare_json "keep-within 1m1d12h" --keep-within 1m1d12h
compare_json "keep-within-hourly" --keep-within-hourly 3d
compare_json "keep-within-daily" --keep-within-daily 1m
compare_json "keep-within-weekly" --keep-within-weekly 3m
compare_json "keep-within-monthly" --keep-within-monthly 1y
compare_json "keep-within-yearly" --keep-within-yearly 5y
compare_json "keep-tag keep" --keep-tag keep
compare_json "keep-tag a,b or daily" --keep-tag a,b --keep-tag daily
compare_json "keep-tag ' b , a '" --keep-tag ' b , a '
compare_json "keep-tag '' (untagged)" --keep-tag ''

flush_json

section "ties: every bucket, all groups"
compare_json "keep-hourly 1000" --keep-hourly 1000
compare_json "keep-daily 1000, one group" --keep-daily 1000 -g ''
compare_json "keep-last 17 + weekly 1000, one group" --keep-last 17 --keep-weekly 1000 -g ''
compare_json "keep-last 30 in the tied runs" --keep-last 30 --host alpha --path /data
compare_json "keep-hourly 60 by tags" --keep-hourly 60 -g tags
compare_json "keep-monthly 1000 by host,tags" --keep-monthly 1000 -g host,tags

flush_json

section "combinations"
compare_json "l3 d7 w4 m12 y5" -l 3 -d 7 -w 4 -m 12 -y 5
compare_json "within 1m + monthly 6 + tag keep" --keep-within 1m --keep-monthly 6 --keep-tag keep
compare_json "within-daily 7d + within-weekly 2m + within-monthly 1y + within-yearly 4y" \
    --keep-within-daily 7d --keep-within-weekly 2m --keep-within-monthly 1y --keep-within-yearly 4y
compare_json "hourly 24 + daily 7 + within-hourly 2d" -H 24 -d 7 --keep-within-hourly 2d
compare_json "negative within (a later cut-off)" --keep-within -1d --keep-last 1
compare_json "count -1 (0.14: rule off, policy set)" --keep-last -1
compare_json "counts in Go syntax (0x3, 0b10, 010, 1_0)" -l 0x3 -d 0b10 -w 010 -m 1_0
compare_json "a repeated flag: the last wins" -l 1 -l 4 --keep-within 1d --keep-within 2d

flush_json

section "grouping"
for gb in '' host paths tags host,tags paths,tags host,paths,tags hosts,path,tag ',host,'; do
    compare_json "group-by '$gb'" --keep-last 2 --keep-monthly 3 -g "$gb"
done

flush_json

section "filters"
compare_json "host alpha" --keep-daily 3 --host alpha
compare_json "host alpha or beta" --keep-daily 3 --host alpha --host beta
compare_json "tag keep" --keep-last 1 --tag keep
compare_json "tag a,b" --keep-last 1 --tag a,b
compare_json "tag '' (untagged)" --keep-last 1 --tag ''
compare_json "path /data" --keep-weekly 2 --path /data
compare_json "paths /data and /srv" --keep-weekly 2 --path /data --path /srv
compare_json "host + tag + path, one group" --keep-last 2 --host gamma --tag daily --path /data -g ''
compare_json "filter that matches nothing" --keep-last 1 --host nobody
compare_json "empty policy (no output)"

flush_json

section "time zones: offsets Go reads as the local zone"
for tz in Europe/Berlin America/New_York Asia/Kolkata; do
    TZ=$tz compare_json "TZ=$tz keep-within 1m" --keep-within 1m
    TZ=$tz compare_json "TZ=$tz keep-within-daily 1m1d, one group" --keep-within-daily 1m1d -g ''
    TZ=$tz compare_json "TZ=$tz keep-within 1y, by host" --keep-within 1y -g host
done
TZ=Europe/Berlin compare_json "TZ=Europe/Berlin DST cut-off" --keep-within 1m --host delta

flush_json

# ---- text output (single groups only: restic orders groups at random) -------
# compare_text DESC ARGS...: stdout and stderr of both
compare_text() {
    local desc=$1; shift
    N=$((N + 1))
    run rs -r "$GEN" "${RS_ONE[@]}" --no-lock forget --dry-run "$@"
    cp "$OUT" "$T/ref.$N.out"; cp "$ERR" "$T/ref.$N.err"; local rrc=$RC
    run cr -r "$GEN" --no-lock forget --dry-run "$@"
    if [ "$RC" != "$rrc" ]; then
        fail "$desc: exit $RC, restic $rrc"; show "$ERR"; return
    fi
    expect_same "$T/ref.$N.out" "$OUT" "$desc (stdout)"
    expect_same "$T/ref.$N.err" "$ERR" "$desc (stderr)"
}

section "text output"
compare_text "tables with reasons" --keep-last 3 --keep-tag keep --keep-within-daily 1y -g '' --host gamma
compare_text "multi-line paths" --keep-monthly 4 --host beta --path /srv -g ''
compare_text "compact" -c --keep-last 3 --keep-tag a,b -g '' --host gamma
compare_text "quiet" -q --keep-last 3 -g ''
compare_text "one host group" --keep-weekly 5 --host alpha --path /data -g host
compare_text "no policy" --host alpha
compare_text "policy text with every rule" -l 1 -H 2 -d 3 -w 4 -m 5 -y 6 --keep-within 1y --keep-within-hourly 1h \
    --keep-within-daily 2d --keep-within-weekly 3m --keep-within-monthly 4y --keep-within-yearly 5y \
    --keep-tag a,b --keep-tag c --host gamma --path /srv -g ''

section "explicit snapshot IDs"
ids=($(cd "$GEN/snapshots" && ls | sort | head -3))
compare_text "full ID, prefix, duplicate" "${ids[0]}" "${ids[1]:0:10}" "${ids[0]:0:8}"
compare_text "unknown prefix and latest with a filter" zzzz latest --host beta "${ids[2]}"
compare_text "latest matching nothing" latest --host nobody
compare_text "filters ignored with IDs" --host beta "${ids[2]}"
compare_json "IDs with --json print nothing" "${ids[0]}"
flush_json

section "errors"
expect_exit 1 cr -r "$GEN" forget -n --keep-last 5x
expect_grep "$ERR" 'invalid argument "5x" for "-l, --keep-last" flag: strconv.ParseInt: parsing "5x": invalid syntax' "message for a bad count"
expect_exit 1 cr -r "$GEN" forget -n --keep-within 5x
expect_grep "$ERR" "invalid argument \"5x\" for \"--keep-within\" flag: invalid unit 'x' found after number 5" "message for a bad duration"
expect_exit 1 cr -r "$GEN" forget -n --keep-last 1 -g foo
expect_grep "$ERR" "unknown grouping option: 'foo'" "message for a bad grouping"
expect_exit 1 cr -r "$GEN" --no-lock forget --keep-last 1
expect_grep "$ERR" "only applicable in combination with --dry-run" "--no-lock needs --dry-run"
expect_exit 0 cr -r "$GEN" forget -n --keep-last unlimited --json
expect_true "unlimited keeps everything" "$PY" -c '
import json, sys
g = json.load(open(sys.argv[1]))
sys.exit(0 if all(not x["remove"] for x in g) and sum(len(x["keep"]) for x in g) == 200 else 1)' "$OUT"

# ---- real forgets on copies ---------------------------------------------------
# forget_both DESC ARGS...: the same forget on two copies; the remaining
# snapshot files must be the same, and restic must find crestic's copy intact.
forget_both() {
    local desc=$1; shift
    rm -rf "$T/a" "$T/b"
    cp -a "$GEN" "$T/a" && cp -a "$GEN" "$T/b"
    run rs -r "$T/a" "${RS_ONE[@]}" forget "$@"
    local rrc=$RC; cp "$OUT" "$T/real.ref.out"
    run cr -r "$T/b" forget "$@"
    if [ "$RC" != "$rrc" ]; then
        fail "$desc: exit $RC, restic $rrc"; show "$ERR"; return
    fi
    (cd "$T/a/snapshots" && ls | sort) >"$T/left.ref"
    (cd "$T/b/snapshots" && ls | sort) >"$T/left.cand"
    expect_same "$T/left.ref" "$T/left.cand" "$desc: same snapshots left ($(wc -l <"$T/left.ref") of 200)"
}

section "real forget"
forget_both "ties, one group" --keep-hourly 1000 -g ''
expect_same "$T/real.ref.out" "$OUT" "text output of a real forget (one group)"
forget_both "combination, by host,paths" -l 2 -d 5 -w 4 -m 6 -y 2 --keep-tag keep
forget_both "JSON" --json --keep-within 1m --keep-monthly 2 -g tags
forget_both "explicit IDs" "${ids[0]}" "${ids[1]:0:12}"
run rs -r "$T/b" check
expect_true "restic check passes after crestic forget" [ "$RC" = 0 ]
N_LOCKS=$(ls "$T/b/locks" | wc -l)
expect_true "no lock file left behind" [ "$N_LOCKS" = 0 ]

section "--prune"
# The forget part must match restic; what prune prints is prune's own test.
forget_both "forget --prune" --keep-last 1 -g '' --prune
sed '/running prune$/q' "$T/real.ref.out" >"$T/prune.ref"
sed '/running prune$/q' "$OUT" >"$T/prune.cand"
expect_same "$T/prune.ref" "$T/prune.cand" "forget --prune: output up to prune"
expect_grep "$OUT" '^done$' "forget --prune: prune ran"
run rs -r "$T/b" check
expect_true "restic check passes after crestic forget --prune" [ "$RC" = 0 ]
# prune works on forget's open repository: the password is read once, so the
# key is derived once (a second open would run the command again).
rm -rf "$T/p" && cp -a "$GEN" "$T/p"
printf '#!/bin/sh\necho read >>"%s"\necho "%s"\n' "$T/pw.count" "$FIXTURE_PASSWORD" >"$T/pwcmd.sh"
chmod +x "$T/pwcmd.sh"
run env -u RESTIC_PASSWORD RESTIC_CACHE_DIR="$T/cache-crestic" "$CRESTIC" -r "$T/p" \
    --password-command "$T/pwcmd.sh" forget --keep-last 1 -g '' --prune
expect_true "forget --prune (password command): exit 0" [ "$RC" = 0 ]
expect_grep "$OUT" '^done$' "forget --prune (password command): prune ran"
expect_true "forget --prune opens the repository once ($(wc -l <"$T/pw.count") password reads)" \
    [ "$(wc -l <"$T/pw.count")" = 1 ]
expect_true "forget --prune: no lock left behind" [ -z "$(ls "$T/p/locks")" ]
expect_exit 1 cr -r "$GEN" forget -n --keep-last 1 --max-unused 120%
expect_grep "$ERR" "percentage for --max-unused must be below 100%" "prune options are checked first"

finish
