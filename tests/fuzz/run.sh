#!/bin/bash
# Runs each libFuzzer harness of a FUZZ=1 build (make FUZZ=1 fuzzers) for
# FUZZ_SECONDS seconds (default 8) on its seed corpus (tests/fuzz/corpus/
# NAME, kept in the repository: examples, small valid files, and every
# input that once crashed a harness), growing a working corpus under
# BUILD/corpus/NAME. Prints TAP, one test per harness, with its executions
# and coverage (edges); a crash, leak or timeout fails the harness and its
# input is kept as BUILD/crashes/NAME-*.
#
#   tests/fuzz/run.sh [BUILD]      (default build/fuzz)
cd "$(dirname "$0")/../.." || exit 1
build=${1:-build/fuzz}
seconds=${FUZZ_SECONDS:-8}
harnesses=(job api idx cifar ckpt image safetensors conll)
echo "1..${#harnesses[@]}"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
mkdir -p "$build/crashes"
failed=0
for i in "${!harnesses[@]}"; do
    name=${harnesses[$i]}
    bin="$build/fuzz_$name"
    work="$build/corpus/$name"
    mkdir -p "$work"
    if [ ! -x "$bin" ]; then
        echo "not ok $((i + 1)) - fuzz_$name: no binary $bin (make FUZZ=1 fuzzers)"
        failed=1
        continue
    fi
    log=$(mktemp)
    timeout $((seconds + 60)) "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$build/crashes/$name-" \
        "$work" "tests/fuzz/corpus/$name" >"$log" 2>&1
    rc=$?
    runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
    if [ "$rc" -eq 0 ]; then
        echo "ok $((i + 1)) - fuzz_$name: ${runs:-?} runs in ${seconds} s, ${cov:-?} edges"
    else
        echo "not ok $((i + 1)) - fuzz_$name: exit $rc after ${runs:-?} runs"
        grep -E "ERROR|SUMMARY|==[0-9]+==|runtime error|Test unit written" "$log" | head -20 |
            sed 's/^/# /'
        failed=1
    fi
    rm -f "$log"
done
exit $failed
