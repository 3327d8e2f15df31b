#!/bin/bash
# Packs the shared libraries the binaries of a CUDA build need that a GPU
# machine may lack (libmicrohttpd, oneDNN, cmocka, ...) into
# BUILD/gpu-libs.tar.xz, which tests/gpu/run.sh unpacks there. Left out:
# glibc and the C++ runtime (the GPU machine's are newer), the CUDA
# libraries and OpenBLAS (installed there).
#
#   tests/gpu/bundle.sh [BUILD]   (default build)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
skip='^(linux-vdso|ld-linux|libc|libm|libdl|librt|libpthread|libresolv|libstdc\+\+|libgcc_s|libgomp|libcuda|libcudart|libcublas|libcublasLt|libcudnn.*|libnvrtc.*|libopenblas|libgfortran|libquadmath)\.so'
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
for bin in "$build"/evogradd "$build"/bench_meta "$build"/bench_lft "$build"/tests/test_*; do
    [ -x "$bin" ] || continue
    ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
    [[ $name =~ $skip ]] && continue
    cp -L "$path" "$stage/$name"
done
tar -cJf "$build/gpu-libs.tar.xz.tmp" -C "$stage" .
mv "$build/gpu-libs.tar.xz.tmp" "$build/gpu-libs.tar.xz"
echo "$build/gpu-libs.tar.xz: $(tar -tJf "$build/gpu-libs.tar.xz" | grep -c 'so') libraries," \
     "$(du -h "$build/gpu-libs.tar.xz" | cut -f1)"
