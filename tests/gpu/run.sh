#!/bin/bash
# On a GPU machine and on an existing CUDA build (made elsewhere with
# `make CUDA=1 BUILD=build/gpu gpu-bundle`, the build folder carried
# along): runs the CPU-vs-CUDA parity tests (every backend op, LeNet and
# ResNet-32, EvoGrad and T1-T2 steps, the LFT layers and ResNet-10 + FT
# + RelationNet), the out-of-memory test, the GPU benchmarks (bench_meta;
# the LFT episode, tests/bench/lft.sh; the token encoder's training step at
# XLM-R-base size, tests/bench/encoder.sh; the MetaXL step, tests/bench/metaxl.sh)
# and PyTorch's figures for the same
# workloads on the same card (when a python with CUDA PyTorch is there;
# $PYTHON, default python3),
# and writes their logs and a summary under $OUT
# (default ./gpu-results). A test that skips here counts as failed: on
# this machine there must be a GPU.
#
#   tests/gpu/run.sh [BUILD]   (default build/gpu)
cd "$(dirname "$0")/../.." || exit 1
build=${1:-build/gpu}
out=${OUT:-./gpu-results}
mkdir -p "$out"
summary="$out/summary.txt"
: >"$summary"
say() { echo "$*" | tee -a "$summary"; }

libs=$(mktemp -d)
trap 'rm -rf "$libs"' EXIT
if [ -f "$build/gpu-libs.tar.xz" ]; then
    tar -xJf "$build/gpu-libs.tar.xz" -C "$libs" || say "cannot unpack $build/gpu-libs.tar.xz"
fi
plain_ld=${LD_LIBRARY_PATH-}   # for python: the bundle is for our binaries only
export LD_LIBRARY_PATH="$libs:/usr/local/cuda/lib64:/usr/local/cuda-13.0/targets/x86_64-linux/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CMOCKA_MESSAGE_OUTPUT=TAP
nvidia-smi >"$out/nvidia-smi.txt" 2>&1 || say "nvidia-smi failed (see $out/nvidia-smi.txt)"

passed=0 failed=0
for t in test_cuda_parity test_cuda_models test_daemon_cuda_oom; do
    log="$out/$t.log"
    start=$(date +%s.%N)
    timeout 400 "$build/tests/$t" >"$log" 2>&1
    rc=$?
    secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')
    p=$(grep -E '^ok [0-9]+' "$log" | grep -cv '# SKIP')
    f=$(grep -cE '^not ok [0-9]+' "$log")
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    passed=$((passed + p)); failed=$((failed + f))
    say "$(printf '%-24s %3d passed %3d failed (skips count as failed)  rc %d  %.1f s' "$t" "$p" "$f" "$rc" "$secs")"
    [ "$f" -ne 0 ] && grep -E '^not ok|error|Error' "$log" | head -20 | sed 's/^/    | /' | tee -a "$summary"
done

say ""
say "GPU benchmark (bench_meta --gpu):"
timeout 400 "$build/bench_meta" --gpu "${BENCH_STEPS:-50}" 2>&1 | tee "$out/bench_gpu.txt" | tee -a "$summary"
[ "${PIPESTATUS[0]}" -eq 0 ] || { say "bench_meta --gpu failed"; failed=$((failed + 1)); }

say ""
say "PyTorch on this card, same workload (tests/bench/bench_torch_mwn.py):"
py=${PYTHON:-python3}
if LD_LIBRARY_PATH=$plain_ld "$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    LD_LIBRARY_PATH=$plain_ld timeout 400 "$py" tests/bench/bench_torch_mwn.py --device cuda --steps "${BENCH_STEPS:-30}" 2>&1 |
        tee "$out/bench_torch.jsonl" | tee -a "$summary"
else
    say "no python with CUDA PyTorch here ($py): skipped"
fi

# bench_beside_torch NAME TIMEOUT TITLE: runs tests/bench/NAME.sh on the GPU
# beside PyTorch on cuda (when this python has it), into $out/bench_NAME.txt.
bench_beside_torch() {
    local name=$1 limit=$2
    say ""
    say "$3 (tests/bench/$name.sh):"
    if LD_LIBRARY_PATH=$plain_ld "$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        BENCH_DEVICE=cuda:0 PYTHON=$py TORCH_LD_LIBRARY_PATH=$plain_ld timeout "$limit" tests/bench/$name.sh "$build" 2>&1 |
            tee "$out/bench_$name.txt" | tee -a "$summary"
        [ "${PIPESTATUS[0]}" -eq 0 ] || { say "tests/bench/$name.sh failed"; failed=$((failed + 1)); }
    else
        say "no python with CUDA PyTorch here ($py): skipped"
    fi
}
bench_beside_torch lft 500 "LFT episode, ResNet-10/34 + RelationNet at 224 px, beside PyTorch's LFT and EvoGrad steps"
bench_beside_torch encoder 200 "Token encoder training step, d 768, 12 layers, 12 heads, batch 12 x 128, beside PyTorch"
bench_beside_torch metaxl 300 "MetaXL step, XLM-R-base-shaped random encoder, beside PyTorch's MetaXL and EvoGrad steps"

say ""
say "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
