#!/bin/bash
# The token encoder's training-step benchmark: tokens per second and peak
# memory of one step (forward, token cross-entropy, backward, Adam) of a
# RoBERTa-shaped encoder with a token classifier in the engine
# (BUILD/bench_encoder) beside PyTorch on the same workload
# (tests/bench/bench_torch_encoder.py: nn.TransformerEncoderLayer,
# post-LayerNorm, GELU), as ratios. Fails only when a program fails.
#
#   tests/bench/encoder.sh [BUILD]      (default build)
#
# Environment: BENCH_DEVICE (cpu; cuda:0 on a GPU, where PyTorch runs on
# cuda), BENCH_SHAPE ("D LAYERS HEADS FF BATCH LEN": 256 4 4 1024 8 128 on
# the CPU, 768 12 12 3072 12 128 on a GPU), BENCH_STEPS (3 timed steps
# after 1 warm-up), BENCH_THREADS (nproc), PYTHON (/usr/bin/python3),
# TORCH_LD_LIBRARY_PATH (the library path PyTorch runs with).
#
# Memory: the engine's figure is its allocator's peak (parameters, Adam's
# moments, gradients, activations); PyTorch's is max_memory_allocated on
# CUDA (the same things), and on the CPU the growth of the process's peak
# resident set over the timed steps (activations and temporaries only), so
# the CPU memory ratio is indicative only.
cd "$(dirname "$0")/../.." || exit 1
export LC_NUMERIC=C
build=${1:-build}
device=${BENCH_DEVICE:-cpu}
if [ "$device" = cpu ]; then shape=${BENCH_SHAPE:-256 4 4 1024 8 128}; torch_device=cpu
else shape=${BENCH_SHAPE:-768 12 12 3072 12 128}; torch_device=cuda; fi
read -r d layers heads ff batch len <<<"$shape"
steps=${BENCH_STEPS:-3}
threads=${BENCH_THREADS:-$(nproc)}
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
py=${PYTHON:-/usr/bin/python3}
[ -x "$build/bench_encoder" ] || { echo "encoder bench: $build/bench_encoder not found" >&2; exit 1; }
args=(--d "$d" --layers "$layers" --heads "$heads" --ff "$ff" --batch "$batch" --len "$len" --steps "$steps")
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$build/bench_encoder" --device "$device" "${args[@]}" >>"$out" || exit 1
LD_LIBRARY_PATH=${TORCH_LD_LIBRARY_PATH-${LD_LIBRARY_PATH-}} "$py" tests/bench/bench_torch_encoder.py \
    --device "$torch_device" --threads "$threads" "${args[@]}" >>"$out" || exit 1
"$py" - "$out" <<'PY'
import json, sys
rows = {r["impl"]: r for r in (json.loads(l) for l in open(sys.argv[1]) if l.startswith("{"))}
o, t = rows["evograd"], rows["pytorch"]
def mib(r):
    return (r["peak_bytes"] or r.get("rss_delta_bytes", 0)) / 2**20
print(f"encoder training step: d {o['d']}, {o['layers']} layers, {o['heads']} heads, ff {o['ff']}, "
      f"batch {o['batch']} x {o['len']} tokens, {o['device']}; {o['params'] / 1e6:.1f} M parameters")
print(f"{'':8} {'ms':>9} {'tokens/s':>10} {'MiB':>8}")
for name, r in (("engine", o), ("pytorch", t)):
    print(f"{name:8} {r['median_ms']:9.1f} {r['tokens_per_s']:10.0f} {mib(r):8.0f}")
act = (o["peak_bytes"] - o["state_bytes"]) / 2**20
print(f"engine: {act:.0f} MiB besides parameters, gradient and Adam's moments")
if t["peak_bytes"]:
    print(f"engine / pytorch: {o['tokens_per_s'] / t['tokens_per_s']:.2f}x the tokens per second, "
          f"{mib(o) / mib(t):.2f}x the peak memory")
else:
    print(f"engine / pytorch: {o['tokens_per_s'] / t['tokens_per_s']:.2f}x the tokens per second, "
          f"{act / mib(t):.2f}x the memory of activations and temporaries "
          f"(PyTorch's CPU figure: its resident-set growth over the timed steps)")
PY
