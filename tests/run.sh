#!/bin/bash
# Runs every test binary (cmocka, TAP output) of the plain build and again
# those of the sanitizer build (ASan + UBSan), then prints the counts and one
# closing line: "N passed, N failed".
#
# Every tests/unit/test_*.c must have its binary in build/tests and, unless
# it is one of the slow ones, in build/san/tests; then each libFuzzer
# harness of build/fuzz runs for a few seconds (tests/fuzz/run.sh, 8 s
# each unless FUZZ_SECONDS says otherwise). A missing binary is a
# failure, and so is a binary that reports fewer results than its plan
# ("1..N") announces, whatever its exit status. A skipped test ("not ok N
# # SKIP": the GPU tests on a machine without a GPU) is counted apart.
#
# The store's and the API's tests also run a second time with their store
# on PostgreSQL (label pg).
#
#   tests/run.sh [PATTERN]   only tests whose name matches PATTERN
cd "$(dirname "$0")/.." || exit 1
pattern=${1:-.}
# Slow tests (whole-model parity with PyTorch, training runs, the GPU tests,
# the daemon under load, in a crash storm and under the fault shim)
# run only in the plain build; everything else, the black-box tests of a
# running daemon included (against the sanitizer build's evogradd), also
# runs under ASan + UBSan.
slow='parity|train|cuda|load|storm|inject|_ui|shared'
export CMOCKA_MESSAGE_OUTPUT=TAP
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1
# The store's tests and the daemon's API and sweep tests run again with
# the store on a PostgreSQL server of their own (tests/unit/pg_cluster.c).
on_pg='^(test_store|test_daemon_api|test_daemon_sweeps)$'
run_env=
passed=0 failed=0 skipped=0
declare -A count=([plain]=0 [pg]=0 [asan]=0 [fuzz]=0)
failures=()

run_one() { # run_one LABEL BINARY
    local label=$1 bin=$2 out rc start secs
    local name
    name=$(basename "$bin")
    if [ ! -x "$bin" ]; then
        failed=$((failed + 1))
        failures+=("$label $name (no binary $bin: the build is incomplete)")
        printf '%-6s %-28s missing\n' "$label" "$name"
        return
    fi
    out=$(mktemp)
    start=$(date +%s)
    timeout 1200 env $run_env "$bin" >"$out" 2>&1
    rc=$?
    secs=$(($(date +%s) - start))
    local p f s planned missing=0
    # cmocka reports a skipped test as "not ok N # SKIP".
    p=$(grep -E '^ok [0-9]+' "$out" | grep -cv '# SKIP' | tr -d ' ')
    s=$(grep -cE '^(not )?ok [0-9]+.*# SKIP' "$out" | tr -d ' ')
    f=$(grep -E '^not ok [0-9]+' "$out" | grep -cv '# SKIP' | tr -d ' ')
    planned=$(sed -nE 's/^1\.\.([0-9]+).*/\1/p' "$out" | head -1)
    # Tests the plan announced that never reported (a crash, a sanitizer
    # abort, an early exit) are failures; so is a binary with no plan, and
    # one that exits non-zero with every reported test passing.
    if [ -z "$planned" ]; then
        missing=1
    elif [ $((p + f + s)) -lt "$planned" ]; then
        missing=$((planned - p - f - s))
    fi
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && [ "$missing" -eq 0 ] && missing=1
    f=$((f + missing))
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    count[$label]=$((count[$label] + p + f + s))
    printf '%-6s %-28s %3d passed %3d failed %3d skipped %5ds\n' "$label" "$name" "$p" "$f" "$s" "$secs"
    if [ "$f" -ne 0 ]; then
        local why="exit $rc"
        [ "$missing" -gt 0 ] && why="$why, $missing of ${planned:-?} planned results missing"
        failures+=("$label $name ($why)")
        sed 's/^/    | /' "$out" | tail -60
    fi
    rm -f "$out"
}

names=()
for src in tests/unit/test_*.c; do
    name=$(basename "$src" .c)
    [[ $name =~ $pattern ]] && names+=("$name")
done
run_fuzz=0
[[ fuzz =~ $pattern ]] && run_fuzz=1
if [ "${#names[@]}" -eq 0 ] && [ "$run_fuzz" -eq 0 ]; then
    echo "no test matches \"$pattern\""
    echo "0 passed, 1 failed"
    exit 1
fi
for name in "${names[@]}"; do run_one plain "build/tests/$name"; done
run_env=EG_TEST_STORE=postgresql
for name in "${names[@]}"; do
    [[ $name =~ $on_pg ]] && run_one pg "build/tests/$name"
done
run_env=
if [ "${#names[@]}" -eq 0 ]; then
    :
elif [ ! -d build/san/tests ]; then
    failed=$((failed + 1))
    failures+=("asan stage (no build/san/tests: run make SAN=1 all)")
else
    for name in "${names[@]}"; do
        [[ $name =~ $slow ]] && continue
        run_one asan "build/san/tests/$name"
    done
fi

[ "$run_fuzz" -eq 1 ] && run_one fuzz tests/fuzz/run.sh

for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "${#names[@]} test binaries: ${count[plain]} tests in the plain build, ${count[pg]} again on PostgreSQL, ${count[asan]} reruns under ASan + UBSan, ${count[fuzz]} fuzz harnesses"
[ "$skipped" -gt 0 ] && echo "$skipped skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
