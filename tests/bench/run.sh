#!/bin/bash
# CPU benchmark of the engine against PyTorch, measured in the same run:
# runs BUILD/bench_cpu and tests/bench/bench_torch.py on each workload, one
# after the other (ours first in odd rounds), with the same thread count and
# prints the median milliseconds per training step and their ratio against
# the goals. The goals are informational: the script fails only when a
# program fails.
#
#   tests/bench/run.sh [BUILD]   BUILD holds bench_cpu (default: build)
#
# Environment: BENCH_THREADS (default: nproc), BENCH_STEPS_SCALE (default 1,
# scales the timed steps), BENCH_ROUNDS (default 2: each program runs that
# many times per workload and the median of its per-run medians is
# reported), BENCH_BUDGET_S (default 100: no further
# round starts when it would likely end past this many seconds).
#
# Other processes on the machine skew the timings badly (both sides'
# OpenMP threads wait for each other by spinning), so every program's run
# also records how many CPUs other processes kept busy meanwhile. Runs on a
# busy machine are left out when a quiet run of the same program exists;
# otherwise the table flags the row.
cd "$(dirname "$0")/../.." || exit 1
export LC_NUMERIC=C
build=${1:-build}
bin=$build/bench_cpu
py=/usr/bin/python3
workloads="lenet_b128 resnet32_b100"
rounds=${BENCH_ROUNDS:-2}
budget=${BENCH_BUDGET_S:-100}

threads=${BENCH_THREADS:-$(nproc)}
export BENCH_THREADS=$threads OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads

if [ ! -x "$bin" ]; then
    echo "bench: $bin not found (make CUDA=0 BUILD=$build $bin)" >&2
    exit 1
fi
if ! "$py" -c 'import torch' 2>/dev/null; then
    echo "bench: $py cannot import torch (Debian python3-torch; make deps)" >&2
    exit 1
fi

results=$(mktemp)
timesfile=$(mktemp)
trap 'rm -f "$results" "$timesfile"' EXIT
hz=$(getconf CLK_TCK)

# CPU seconds the whole machine has spent busy since boot.
machine_busy() {
    awk -v hz="$hz" '/^cpu / { printf "%.3f", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat
}

# Sets $child_cpu to the CPU seconds this script's finished children have
# used. Bash's `times` must run in this shell, not in a $(...) subshell.
children_cpu() {
    times >"$timesfile"
    child_cpu=$(awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/);
                               printf "%.3f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$timesfile")
}

# measure IMPL WORKLOAD CMD...: runs CMD WORKLOAD, keeps its JSON line and
# adds one with the CPUs that other processes kept busy meanwhile.
failed=0
measure() {
    local impl=$1 w=$2 b0 c0 t0 b1 c1 t1
    shift 2
    children_cpu; c0=$child_cpu; b0=$(machine_busy); t0=$EPOCHREALTIME
    "$@" "$w" >>"$results" || { echo "bench: $impl $w failed" >&2; failed=1; }
    t1=$EPOCHREALTIME; b1=$(machine_busy); children_cpu; c1=$child_cpu
    awk -v i="$impl" -v w="$w" -v b0="$b0" -v b1="$b1" -v c0="$c0" -v c1="$c1" \
        -v t0="$t0" -v t1="$t1" 'BEGIN {
            o = 0
            if (t1 > t0) o = ((b1 - b0) - (c1 - c0)) / (t1 - t0)
            if (o < 0) o = 0
            printf "{\"impl\":\"%s\",\"workload\":\"%s\",\"other_cpus\":%.2f}\n", i, w, o
        }' >>"$results"
}

echo "bench: $threads threads, $rounds round(s), load average $(cut -d' ' -f1-3 /proc/loadavg)"
start=$SECONDS
for ((r = 1; r <= rounds; r++)); do
    spent=$((SECONDS - start))
    if ((r > 1 && spent * r / (r - 1) > budget)); then
        echo "bench: stopping after $((r - 1)) round(s): $spent s spent, budget $budget s"
        break
    fi
    for w in $workloads; do
        if ((r % 2)); then
            measure evograd "$w" "$bin"
            measure pytorch "$w" "$py" tests/bench/bench_torch.py
        else
            measure pytorch "$w" "$py" tests/bench/bench_torch.py
            measure evograd "$w" "$bin"
        fi
    done
done

"$py" - "$results" <<'EOF' || failed=1
import json
import statistics
import sys

GOALS = {"lenet_b128": 1.0, "resnet32_b100": 1.5}
BUSY = 0.25  # CPUs used by other processes above which a run is disturbed
runs = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    key = (r["workload"], r["impl"])
    if "other_cpus" in r:
        # Belongs to the run of the same program just before it.
        if runs.get(key) and "other_cpus" not in runs[key][-1]:
            runs[key][-1]["other_cpus"] = r["other_cpus"]
    else:
        runs.setdefault(key, []).append(r)


def summary(workload, impl):
    """Medians' median and min over the quiet runs, or over all of them
    (busy = True) when none was quiet."""
    rs = runs.get((workload, impl))
    if not rs:
        return None
    quiet = [r for r in rs if r.get("other_cpus", 0) <= BUSY]
    use = quiet or rs
    return {
        "median_ms": statistics.median(r["median_ms"] for r in use),
        "min_ms": min(r["min_ms"] for r in use),
        "peak_mib": max(r.get("peak_bytes", 0) for r in use) / 2**20,
        "rss_mib": max(r.get("rss_delta_bytes", 0) for r in use) / 2**20,
        "runs": "%d/%d" % (len(quiet), len(rs)),
        "busy": not quiet,
    }


row = "%-15s %11s %11s %24s %7s  %s"
print()
print(row % ("workload", "evograd ms", "pytorch ms", "ratio (evograd/pytorch)", "goal", ""))
notes, busy = [], []
for w, goal in GOALS.items():
    ours, ref = summary(w, "evograd"), summary(w, "pytorch")
    if not ours or not ref:
        print(row % (w, "-", "-", "-", "<= %.1f" % goal, "no result"))
        continue
    ratio = ours["median_ms"] / ref["median_ms"]
    verdict = "met" if ratio <= goal else "NOT met"
    if ours["busy"] or ref["busy"]:
        verdict += " (busy machine)"
        busy += ["%s %s" % (w, impl) for impl, s in (("evograd", ours), ("pytorch", ref))
                 if s["busy"]]
    print(row % (w, "%.1f" % ours["median_ms"], "%.1f" % ref["median_ms"],
                 "%.2f" % ratio, "<= %.1f" % goal, verdict))
    notes.append("%-15s min ms: evograd %.1f, pytorch %.1f; memory: evograd peak %.1f MiB "
                 "allocated (RSS +%.1f MiB), pytorch RSS +%.1f MiB; quiet runs: evograd "
                 "%s, pytorch %s" % (w, ours["min_ms"], ref["min_ms"], ours["peak_mib"],
                                     ours["rss_mib"], ref["rss_mib"], ours["runs"],
                                     ref["runs"]))
print()
for n in notes:
    print(n)
if busy:
    print("bench: other processes kept more than %.2f CPUs busy during every run of "
          "%s; those timings are unreliable, rerun on a quiet machine"
          % (BUSY, ", ".join(busy)))
EOF
exit $failed
