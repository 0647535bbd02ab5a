#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this):
#
#   1. scripts/install-deps.sh
#   2. build/       default build (-Wall -Wextra -Werror), ctest -j2 of the unit
#                   tests, the lint and the "smoke" e2e scripts (labels unit,
#                   lint, smoke: the optimised binary end to end)
#   3. build-asan/  -DCRESTIC_SANITIZE=ON (ASan + UBSan, also -Werror), the
#                   whole ctest suite: every e2e script runs once, here
#                   (ctest hands each e2e script build-asan/crestic)
#   4. scripts/run-fuzz.sh: every fuzz target for FUZZ_SECONDS (default 20 s)
#
# Last line: "N passed, N failed" (ctest tests of both passes + fuzz targets;
# a stage that cannot run, e.g. a failed build, counts as one failure).
# Exit status non-zero when anything failed.
#
# Environment (for local use; CI sets none of them):
#   SKIP_ASAN=1  SKIP_FUZZ=1   leave out stage 3 / 4
#   FULL_DEFAULT=1             stage 2 runs the whole suite too
#   CTEST_ARGS="-R e2e"        extra ctest arguments (both passes)
#   JOBS=N                     build and ctest parallelism (default 2)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=${JOBS:-2}
T0=$(date +%s)

N_PASS=0
N_FAIL=0
STAGES=()

elapsed() { echo "$(( $(date +%s) - $1 ))s"; }
stage_result() { # name ok|FAIL start
    STAGES+=("$(printf '%-44s %-4s %s' "$1" "$2" "$(elapsed "$3")")")
}

# ctest_pass DIR LABEL [CTEST-ARGS...]: run the suite in DIR, add its counts
ctest_pass() {
    local dir=$1 label=$2 t log
    shift 2
    t=$(date +%s)
    log=$dir/ctest-summary.log
    echo
    echo "== $label: ctest -j$JOBS ($dir)"
    # per-test timeout: CMakeLists gives e2e scripts 900 s; everything else 300 s
    local timer=()
    rm -f "$dir/ctest-cpu.txt"
    [ -x /usr/bin/time ] && timer=(/usr/bin/time -f "%U %S" -o "$ROOT/$dir/ctest-cpu.txt")
    (cd "$dir" && "${timer[@]}" ctest -j"$JOBS" --output-on-failure --timeout 300 "$@" ${CTEST_ARGS:-}) </dev/null 2>&1 | tee "$log"
    local cpu=""
    [ -s "$dir/ctest-cpu.txt" ] && cpu=$(tail -n 1 "$dir/ctest-cpu.txt" | awk '{printf ", cpu %ds", $1 + $2}')
    local line p f total
    line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        if grep -q 'No tests were found' "$log"; then
            echo "$label: no tests found"
            N_FAIL=$((N_FAIL + 1)); stage_result "$label" FAIL "$t"; return
        fi
        echo "$label: ctest printed no summary"
        N_FAIL=$((N_FAIL + 1)); stage_result "$label" FAIL "$t"; return
    fi
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/')
    total=$(echo "$line" | sed -E 's/.* failed out of ([0-9]+).*/\1/')
    p=$((total - f))
    N_PASS=$((N_PASS + p)); N_FAIL=$((N_FAIL + f))
    if [ "$f" -eq 0 ]; then stage_result "$label ($total tests$cpu)" ok "$t"
    else stage_result "$label ($f of $total failed$cpu)" FAIL "$t"; fi
}

# build DIR LABEL CMAKE-ARGS...
build() {
    local dir=$1 label=$2 t; shift 2
    t=$(date +%s)
    echo
    echo "== $label: configure + build ($dir)"
    mkdir -p "$dir"
    if cmake -B "$dir" -S . "$@" >"$dir/configure.log" 2>&1 || { cat "$dir/configure.log"; false; }; then
        cmake --build "$dir" -j"$JOBS" 2>&1 | grep -vE '^\[ *[0-9]+%\] (Building|Linking|Built)|^gmake|^make'
        local rc=${PIPESTATUS[0]}
        if [ "$rc" -eq 0 ] && [ -x "$dir/crestic" ]; then
            stage_result "$label" ok "$t"; return 0
        fi
    fi
    echo "$label: build FAILED"
    N_FAIL=$((N_FAIL + 1)); stage_result "$label" FAIL "$t"
    return 1
}

# --- 1. dependencies ---------------------------------------------------------
t=$(date +%s)
echo "== install-deps"
if bash scripts/install-deps.sh </dev/null; then stage_result install-deps ok "$t"
else N_FAIL=$((N_FAIL + 1)); stage_result install-deps FAIL "$t"; fi

# restic reference results are shared by both ctest passes (fresh per run)
export CRESTIC_E2E_REFCACHE=$ROOT/build/e2e-refcache
rm -rf "$CRESTIC_E2E_REFCACHE"

# --- 2. default build + tests -----------------------------------------------
if build build "build (-Werror)"; then
    if [ "${FULL_DEFAULT:-0}" = 1 ] || [ "${SKIP_ASAN:-0}" = 1 ]; then ctest_pass build "tests"
    else ctest_pass build "tests (unit, lint, smoke e2e)" -L 'unit|lint|smoke'; fi
fi

# --- 3. ASan + UBSan ---------------------------------------------------------
if [ "${SKIP_ASAN:-0}" != 1 ]; then
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    if build build-asan "build (ASan+UBSan)" -DCRESTIC_SANITIZE=ON; then
        ctest_pass build-asan "tests (ASan+UBSan)"
    fi
    unset ASAN_OPTIONS UBSAN_OPTIONS
fi

# --- 4. fuzzing --------------------------------------------------------------
if [ "${SKIP_FUZZ:-0}" != 1 ]; then
    t=$(date +%s)
    echo
    echo "== fuzz"
    mkdir -p build-fuzz
    bash scripts/run-fuzz.sh </dev/null 2>&1 | tee build-fuzz/run.log
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' build-fuzz/run.log | tail -n 1)
    if [ -n "$line" ]; then
        p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
        N_PASS=$((N_PASS + p)); N_FAIL=$((N_FAIL + f))
        if [ "$f" -eq 0 ]; then stage_result "fuzz ($p targets)" ok "$t"
        else stage_result "fuzz ($f of $((p + f)) failed)" FAIL "$t"; fi
    else
        N_FAIL=$((N_FAIL + 1)); stage_result "fuzz" FAIL "$t"
    fi
fi

echo
echo "== summary (total $(elapsed "$T0"))"
printf '  %s\n' "${STAGES[@]}"
echo "$N_PASS passed, $N_FAIL failed"
[ "$N_FAIL" -eq 0 ]
