#!/bin/bash
# Runs every test binary (cmocka, TAP output) of the plain build and the
# fast ones of the sanitizer build, then prints one closing line:
# "N passed, N failed" (after a line "N skipped" when some were skipped:
# the GPU tests skip on a machine without a GPU).
#
#   tests/run.sh [PATTERN]   only binaries whose name matches PATTERN
cd "$(dirname "$0")/.." || exit 1
pattern=${1:-.}
# Slow tests (whole-model parity with PyTorch, training runs, black-box
# tests of a running daemon, the GPU tests) run only in the plain build;
# everything else also runs under ASan + UBSan.
slow='parity|train|daemon|cuda'
export CMOCKA_MESSAGE_OUTPUT=TAP
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1
passed=0 failed=0 skipped=0
failures=()

run_one() { # run_one LABEL BINARY
    local label=$1 bin=$2 out rc
    out=$(mktemp)
    timeout 1200 "$bin" >"$out" 2>&1
    rc=$?
    local p f s planned
    # cmocka reports a skipped test as "not ok N # SKIP".
    p=$(grep -E '^ok [0-9]+' "$out" | grep -cv '# SKIP' | tr -d ' ')
    s=$(grep -cE '^(not )?ok [0-9]+.*# SKIP' "$out" | tr -d ' ')
    f=$(grep -E '^not ok [0-9]+' "$out" | grep -cv '# SKIP' | tr -d ' ')
    planned=$(sed -nE 's/^1\.\.([0-9]+).*/\1/p' "$out" | head -1)
    # A crash or a sanitizer report loses the tests that did not report.
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=$(( ${planned:-1} - p - s )); [ "$f" -gt 0 ] || f=1; fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    printf '%-8s %-28s %3d passed %3d failed %3d skipped\n' "$label" "$(basename "$bin")" "$p" "$f" "$s"
    if [ "$f" -ne 0 ]; then
        failures+=("$label $(basename "$bin")")
        sed 's/^/    | /' "$out" | tail -60
    fi
    rm -f "$out"
}

for bin in build/tests/test_*; do
    [ -x "$bin" ] || continue
    [[ $(basename "$bin") =~ $pattern ]] || continue
    run_one plain "$bin"
done
for bin in build/san/tests/test_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    [[ $name =~ $pattern ]] || continue
    [[ $name =~ $slow ]] && continue
    run_one asan "$bin"
done

for f in "${failures[@]}"; do echo "FAILED: $f"; done
[ "$skipped" -gt 0 ] && echo "$skipped skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
