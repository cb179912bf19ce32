#!/usr/bin/env bash
# Installs NVIDIA's pinned PyPI wheels for the offline CUDA compile check (NVRTC, ptxas, the CUDA headers:
# no GPU or driver needed) into DIR (default target/cuda-wheels), one folder per CUDA release, and prints on
# stdout the line to eval:
#     export CXR_GAN_CUDA_WHEELS=DIR/cu12:DIR/cu13
# which `cxr-gan cuda-compile-check` and tests/cuda_offline.rs read, plus, as comments, each release's
# LD_LIBRARY_PATH (for cudarc / CubeCL), ptxas and CUDA_PATH. Where pip cannot get a release, it says why on
# stderr and leaves it out; with none, it prints nothing to eval and the check skips with a reason.
# Usage (.ci/run):  eval "$(bash scripts/ci-cuda-wheels.sh target/cuda-wheels)"
set -uo pipefail
cd "$(dirname "$0")/.."
dir="${1:-target/cuda-wheels}"

# CUDA 12.9: the newest 12.x; cudarc 0.19 loads its libnvrtc.so.12 by name.
CU12="nvidia-cuda-nvrtc-cu12==12.9.86 nvidia-cuda-nvcc-cu12==12.9.86 nvidia-cuda-runtime-cu12==12.9.79"
# CUDA 13.0: what the GPU machine's driver 580 and PyTorch 2.11+cu130 have (libnvrtc.so.13; the headers
# need nvidia-cuda-crt).
CU13="nvidia-cuda-nvrtc==13.0.88 nvidia-cuda-nvcc==13.0.88 nvidia-cuda-runtime==13.0.96 nvidia-cuda-crt==13.0.88"

if ! python3 -m pip --version >/dev/null 2>&1; then
    echo "ci-cuda-wheels: skipped: python3 -m pip is not available, so NVIDIA's NVRTC/ptxas wheels cannot be installed" >&2
    exit 0
fi
mkdir -p "$dir" && dir="$(cd "$dir" && pwd)"

# install NAME PACKAGES...: into $dir/NAME, once per pin set (a stamp file holds the pins).
install() {
    local name="$1"; shift
    local target="$dir/$name" want="$*"
    if [ -f "$target/.pinned" ] && [ "$(cat "$target/.pinned")" = "$want" ]; then
        return 0
    fi
    rm -rf "$target"
    echo "ci-cuda-wheels: pip install $want" >&2
    if python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$target" "$@" >&2; then
        echo "$want" > "$target/.pinned"
    else
        rm -rf "$target"
        echo "ci-cuda-wheels: skipped $name: pip could not install $want" >&2
        return 1
    fi
}

found=()
# shellcheck disable=SC2086
if install cu12 $CU12; then
    found+=("$dir/cu12")
    echo "# cu12: LD_LIBRARY_PATH=$dir/cu12/nvidia/cuda_nvrtc/lib ptxas=$dir/cu12/nvidia/cuda_nvcc/bin/ptxas CUDA_PATH=$dir/cu12/nvidia/cuda_runtime"
fi
# shellcheck disable=SC2086
if install cu13 $CU13; then
    found+=("$dir/cu13")
    echo "# cu13: LD_LIBRARY_PATH=$dir/cu13/nvidia/cu13/lib ptxas=$dir/cu13/nvidia/cu13/bin/ptxas CUDA_PATH=$dir/cu13/nvidia/cu13"
fi
if [ ${#found[@]} -gt 0 ]; then
    (IFS=:; echo "export CXR_GAN_CUDA_WHEELS=${found[*]}")
fi
