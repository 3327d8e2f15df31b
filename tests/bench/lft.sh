#!/bin/bash
# The lft benchmark (the EvoGrad paper's Figure 4): time and peak memory per
# meta-training episode of none / evograd / t1t2 in the engine
# (BUILD/bench_lft) beside PyTorch running the official code's steps
# (tests/bench/bench_torch_lft.py: none, LFT's second-order lft2, the
# paper's EvoGrad with K full copies) on the same workload: ResNet-10 and
# ResNet-34 with the RelationNet head, 5-way 5-shot 16 queries, in one run.
# Prints a table and the goals; fails only when a program fails.
#
#   tests/bench/lft.sh [BUILD]      (default build)
#
# Environment: BENCH_DEVICE (cpu; cuda:0 on a GPU, where PyTorch runs on
# cuda), BENCH_SIZE (84 on the CPU, 224 on a GPU), BENCH_EPISODES (2 timed
# episodes after 1 warm-up), BENCH_THREADS (nproc), PYTHON (/usr/bin/python3)
# and TORCH_LD_LIBRARY_PATH (the library path PyTorch runs with, when the
# engine's differs).
#
# Memory: the engine's figure is its allocator's peak (parameters,
# optimiser state, activations, episode buffers); PyTorch's is
# max_memory_allocated on CUDA, and on the CPU the growth of the process's
# peak resident set over the timed episodes (parameters and Adam state
# allocated before are not in it), so CPU memory ratios across the two are
# indicative only; the ratios within each column are exact.
cd "$(dirname "$0")/../.." || exit 1
export LC_NUMERIC=C
build=${1:-build}
device=${BENCH_DEVICE:-cpu}
if [ "$device" = cpu ]; then size=${BENCH_SIZE:-84}; torch_device=cpu
else size=${BENCH_SIZE:-224}; torch_device=cuda; fi
episodes=${BENCH_EPISODES:-2}
threads=${BENCH_THREADS:-$(nproc)}
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
py=${PYTHON:-/usr/bin/python3}
[ -x "$build/bench_lft" ] || { echo "lft bench: $build/bench_lft not found" >&2; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$build/bench_lft" --device "$device" --size "$size" --episodes "$episodes" >>"$out" || exit 1
LD_LIBRARY_PATH=${TORCH_LD_LIBRARY_PATH-${LD_LIBRARY_PATH-}} "$py" tests/bench/bench_torch_lft.py --device "$torch_device" --size "$size" \
    --episodes "$episodes" --warmup 1 --threads "$threads" >>"$out" || exit 1
"$py" - "$out" "$device" "$size" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
ours = {(r["backbone"], r["method"]): r for r in rows if r["impl"] == "evograd"}
torch = {(r["backbone"], r["method"]): r for r in rows if r["impl"] == "pytorch"}
def mib(r):
    return (r["peak_bytes"] or r.get("rss_delta_bytes", 0)) / 2**20
print(f"LFT meta-training episode, RelationNet, 5-way 5-shot 16 queries, {sys.argv[3]} px, "
      f"{sys.argv[2]}")
print(f"{'backbone':9} {'method':8} {'ms':>9} {'MiB':>8} {'ms x none':>9} {'MiB x none':>10} | "
      f"{'torch':7} {'ms':>9} {'MiB':>8}")
for bb in ("resnet10", "resnet34"):
    for m, tm in (("none", "none"), ("evograd", "evograd"), ("t1t2", "lft2")):
        o, n, t = ours.get((bb, m)), ours.get((bb, "none")), torch.get((bb, tm))
        if not o: continue
        ts = f"{tm:7} {t['median_ms']:9.0f} {mib(t):8.0f}" if t else "-"
        print(f"{bb:9} {m:8} {o['median_ms']:9.0f} {mib(o):8.0f} "
              f"{o['median_ms'] / n['median_ms']:9.2f} {mib(o) / mib(n):10.3f} | {ts}")
for bb in ("resnet10", "resnet34"):
    e, n, l2, te = (ours.get((bb, "evograd")), ours.get((bb, "none")),
                    torch.get((bb, "lft2")), torch.get((bb, "evograd")))
    if not (e and n and l2 and te): continue
    mx, lx = mib(e) / mib(n), mib(e) / mib(l2)
    print(f"{bb}: evograd memory {mx:.3f}x none (goal <= 1.2x: {'met' if mx <= 1.2 else 'not met'})"
          f", {lx:.2f}x PyTorch's second-order LFT (goal <= 0.5x: "
          f"{'met' if lx <= 0.5 else 'not met'}); time {e['median_ms'] / te['median_ms']:.2f}x "
          f"PyTorch's EvoGrad, {e['median_ms'] / l2['median_ms']:.2f}x its LFT step")
PY
