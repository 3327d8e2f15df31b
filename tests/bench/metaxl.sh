#!/bin/bash
# The metaxl benchmark (the EvoGrad paper's Figure 7): step time and peak
# memory of joint training (none), EvoGrad (K = 2, the classifier
# perturbed) and T1−T2 in the engine (BUILD/bench_metaxl, a from-scratch
# encoder on the synthetic languages, batches of 12 + 12 sentences padded
# to their longest, at most LEN tokens) beside PyTorch running the official
# code's steps on the same shape (tests/bench/bench_torch_metaxl.py: joint,
# MetaXL's second-order step with create_graph, its EvoGrad step). Prints a
# table and the goals; fails only when a program fails.
#
#   tests/bench/metaxl.sh [BUILD]      (default build)
#
# Environment: BENCH_DEVICE (cpu; cuda:0 on a GPU), BENCH_SHAPE ("D LAYERS
# HEADS FF LEN": 256 4 4 1024 32 on the CPU, 768 12 12 3072 32 on a GPU; the
# synthetic sentences have 5 to 30 words, so a batch pads to about 32 tokens),
# BENCH_STEPS (3 after 1 warm-up), BENCH_THREADS (nproc), PYTHON
# (/usr/bin/python3), TORCH_LD_LIBRARY_PATH.
#
# Memory: the engine's figure is its allocator's peak (θ, its gradient,
# Adam's moments, EvoGrad's saved scope, λ, activations); PyTorch's is
# max_memory_allocated on CUDA and, on the CPU, the growth of its peak
# resident set over the timed steps (no parameters or optimiser state), so
# the CPU comparison with PyTorch is indicative; the engine's own ratios
# are exact.
cd "$(dirname "$0")/../.." || exit 1
export LC_NUMERIC=C
build=${1:-build}
device=${BENCH_DEVICE:-cpu}
if [ "$device" = cpu ]; then shape=${BENCH_SHAPE:-256 4 4 1024 32}; torch_device=cpu
else shape=${BENCH_SHAPE:-768 12 12 3072 32}; torch_device=cuda; fi
read -r d layers heads ff len <<<"$shape"
steps=${BENCH_STEPS:-3}
threads=${BENCH_THREADS:-$(nproc)}
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
py=${PYTHON:-/usr/bin/python3}
[ -x "$build/bench_metaxl" ] || { echo "metaxl bench: $build/bench_metaxl not found" >&2; exit 1; }
args=(--d "$d" --layers "$layers" --heads "$heads" --ff "$ff" --bottleneck $((d / 2)) --len "$len" --steps "$steps")
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$build/bench_metaxl" --device "$device" "${args[@]}" >>"$out" || exit 1
LD_LIBRARY_PATH=${TORCH_LD_LIBRARY_PATH-${LD_LIBRARY_PATH-}} "$py" tests/bench/bench_torch_metaxl.py \
    --device "$torch_device" --threads "$threads" "${args[@]}" >>"$out" || exit 1
"$py" - "$out" "$device" "$shape" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
ours = {r["method"]: r for r in rows if r["impl"] == "evograd"}
torch = {r["method"]: r for r in rows if r["impl"] == "pytorch"}
def mib(r):
    return (r["peak_bytes"] or r.get("rss_delta_bytes", 0)) / 2**20
d, layers, heads, ff, ln = sys.argv[3].split()
print(f"MetaXL step, encoder d {d}, {layers} layers, {heads} heads, ff {ff}, 12 + 12 sentences "
      f"of at most {ln} tokens, {sys.argv[2]}; {ours['none']['params'] / 1e6:.2f} M parameters, "
      f"RTN {ours['none']['rtn_params']}")
print(f"{'method':8} {'ms':>8} {'MiB':>8} {'ms x none':>9} {'MiB x none':>10} | {'torch':7} {'ms':>8} {'MiB':>8}")
for m, tm in (("none", "joint"), ("evograd", "evograd"), ("t1t2", "metaxl")):
    o, n, t = ours.get(m), ours["none"], torch.get(tm)
    if not o: continue
    ts = f"{tm:7} {t['median_ms']:8.1f} {mib(t):8.1f}" if t else "-"
    print(f"{m:8} {o['median_ms']:8.1f} {mib(o):8.1f} {o['median_ms'] / n['median_ms']:9.2f} "
          f"{mib(o) / mib(n):10.3f} | {ts}")
e, n, t2, te = ours.get("evograd"), ours.get("none"), torch.get("metaxl"), torch.get("evograd")
if e and n:
    mx, tx = mib(e) / mib(n), e["median_ms"] / n["median_ms"]
    print(f"evograd: memory {mx:.3f}x joint training (goal <= 1.1x: {'met' if mx <= 1.1 else 'not met'}), "
          f"time {tx:.2f}x (goal <= 1.3x: {'met' if tx <= 1.3 else 'not met'})")
if e and t2 and te:
    if t2["peak_bytes"]:
        lx = mib(e) / mib(t2)
        print(f"evograd memory {lx:.2f}x PyTorch's second-order MetaXL (goal <= 0.5x: "
              f"{'met' if lx <= 0.5 else 'not met'})")
    else:
        state = 4 * e["params"] * 4  # θ, its gradient, Adam's m and v
        act = (e["peak_bytes"] - state) / 2**20
        print(f"evograd: {act:.1f} MiB besides θ, its gradient and Adam's moments, "
              f"{act / mib(t2):.2f}x PyTorch's second-order MetaXL's resident-set growth "
              f"(indicative; goal <= 0.5x)")
    print(f"time: evograd {e['median_ms'] / te['median_ms']:.2f}x PyTorch's EvoGrad step, "
          f"{e['median_ms'] / t2['median_ms']:.2f}x its MetaXL step")
PY
