#!/usr/bin/env bash
# Build the libFuzzer targets (fuzz/fuzz_*.c) with clang in build-fuzz/ and run
# each for a short fixed time.
#
#   bash scripts/run-fuzz.sh [TARGET...]
#
# Environment:
#   FUZZ_SECONDS   time per target (default 20)
#   FUZZ_JOBS      targets run at the same time (default: number of CPUs, max 2)
#   FUZZ_BUILD     build dir (default build-fuzz)
#
# Seeds: fuzz/corpus/<name>/ (name = target without "fuzz_") when it exists,
# plus, for a few targets, matching files from tests/fixtures (copied only when
# the target's corpus directory exists).  The repository's corpus is never
# written to: libFuzzer writes new inputs into $FUZZ_BUILD/corpus/<name>/ and
# crashes into $FUZZ_BUILD/artifacts/<name>/.
#
# Prints "N passed, N failed" (one per target) and exits non-zero when a target
# failed to build or found a crash, leak, timeout or out-of-memory.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_PER=${FUZZ_SECONDS:-20}
BUILD=${FUZZ_BUILD:-build-fuzz}
ncpu=$(nproc 2>/dev/null || echo 1)
JOBS=${FUZZ_JOBS:-$(( ncpu > 2 ? 2 : ncpu ))}

shopt -s nullglob
srcs=(fuzz/fuzz_*.c)
if [ ${#srcs[@]} -eq 0 ]; then
    echo "run-fuzz: no fuzz targets (fuzz/fuzz_*.c)"
    echo "0 passed, 0 failed"
    exit 0
fi
if ! command -v clang >/dev/null 2>&1; then
    echo "run-fuzz: clang not found (scripts/install-deps.sh installs it)"
    echo "0 passed, 1 failed"
    exit 1
fi

echo "== fuzz: configure + build ($BUILD)"
mkdir -p "$BUILD"
if ! CC=clang cmake -B "$BUILD" -S . -DCRESTIC_FUZZ=ON -DCRESTIC_TESTS=OFF \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$BUILD/configure.log" 2>&1; then
    cat "$BUILD/configure.log"
    echo "0 passed, 1 failed"
    exit 1
fi

targets=()
if [ $# -gt 0 ]; then
    targets=("$@")
else
    for s in "${srcs[@]}"; do targets+=("$(basename "$s" .c)"); done
fi
if ! cmake --build "$BUILD" -j"$ncpu" --target "${targets[@]}" >"$BUILD/build.log" 2>&1; then
    grep -E 'error|Error' "$BUILD/build.log" | head -n 40
    echo "run-fuzz: build failed (full log: $BUILD/build.log)"
    echo "0 passed, ${#targets[@]} failed"
    exit 1
fi

# seeds from the fixtures for targets whose corpus dir exists
seed_from_fixtures() { # name dest
    local name=$1 dest=$2 f
    local fx=$ROOT/tests/fixtures
    case $name in
        keyfile) for f in "$fx"/repos/*/keys/*; do cp "$f" "$dest/fixture-$(basename "$f" | cut -c1-16)"; done ;;
        config)  for f in "$fx"/repos/*/config; do cp "$f" "$dest/fixture-$(basename "$(dirname "$f")")"; done ;;
        lock)    for f in "$fx"/samples/lock-*; do cp "$f" "$dest/fixture-$(basename "$f" | cut -c1-21)"; done ;;
    esac
    return 0
}

run_one() { # target -> writes $BUILD/fuzz-logs/<target>.log, returns status
    local t=$1 name=${1#fuzz_}
    local bin=$BUILD/$t
    [ -x "$bin" ] || bin=$BUILD/fuzz/$t
    local work=$BUILD/corpus/$name arts=$BUILD/artifacts/$name log=$BUILD/fuzz-logs/$t.log
    rm -rf "$arts"; mkdir -p "$work" "$arts" "$(dirname "$log")"
    local corp=()
    if [ -d "fuzz/corpus/$name" ]; then
        corp=("fuzz/corpus/$name")
        seed_from_fixtures "$name" "$work"
    fi
    if [ ! -x "$bin" ]; then echo "binary $bin missing" >"$log"; return 1; fi
    "$bin" -max_total_time="$SECONDS_PER" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$arts/" "$work" "${corp[@]}" >"$log" 2>&1
}

echo "== fuzz: ${#targets[@]} targets x ${SECONDS_PER}s, $JOBS at a time"
pass=0; failn=0; failed=()
declare -A pids=()
i=0
while [ $i -lt ${#targets[@]} ] || [ ${#pids[@]} -gt 0 ]; do
    while [ $i -lt ${#targets[@]} ] && [ ${#pids[@]} -lt "$JOBS" ]; do
        t=${targets[$i]}; i=$((i + 1))
        run_one "$t" &
        pids[$!]=$t
    done
    # wait for any one to finish (bash >= 5.1: -p names the finished job)
    done_pid=
    wait -n -p done_pid "${!pids[@]}"
    st=$?
    [ -n "$done_pid" ] || continue
    t=${pids[$done_pid]}; unset "pids[$done_pid]"
    if [ $st -eq 0 ]; then
        pass=$((pass + 1))
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$BUILD/fuzz-logs/$t.log" | tail -n 1)
        echo "ok   $t (${execs:-?} runs)"
    else
        failn=$((failn + 1)); failed+=("$t")
        echo "FAIL $t (exit $st; log: $BUILD/fuzz-logs/$t.log, artifacts: $BUILD/artifacts/${t#fuzz_}/)"
        grep -E 'ERROR|SUMMARY|runtime error|==[0-9]+==|Test unit written|missing' "$BUILD/fuzz-logs/$t.log" | head -n 15 | sed 's/^/     | /'
    fi
done

[ $failn -gt 0 ] && echo "failed fuzz targets: ${failed[*]}"
echo "$pass passed, $failn failed"
[ $failn -eq 0 ]
