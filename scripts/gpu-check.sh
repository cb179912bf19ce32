#!/usr/bin/env bash
# The cube backend's GPU check, in two halves:
#
#   scripts/gpu-check.sh --prepare     on a machine with the Rust toolchain (no GPU needed): builds the
#                                      release test and bench executables (CUDA and wgpu runtimes are loaded
#                                      at run time, so they build anywhere), strips and gzips them, lays them out
#                                      in the ignored folder device/ with the golden files, this script and
#                                      the PyTorch baseline.
#   scripts/gpu-check.sh OUTDIR        on the GPU machine (CUDA driver, PyTorch; no Rust toolchain): runs
#                                      what --prepare laid out and writes raw logs into OUTDIR:
#        env.txt                       date, kernel, glibc, nvidia-smi -q, python / torch, the NVRTC used
#        nvidia-smi.txt                nvidia-smi before the runs
#        ops_cuda.log                  tests/ops on CUDA (every op vs the f64 oracle, per-op errors)
#        ops_wgpu.log                  the same on wgpu (Vulkan on the GPU, when the machine has a loader)
#        golden.log                    the golden conformance runner, cuda (and wgpu) included
#        bench_ops.log                 benches/ops.rs on cuda and wgpu: every op at the DCGAN shapes
#        bench_train_step.log          benches/train_step.rs on cuda and wgpu: the full DCGAN / WGAN-GP
#                                      iterations (criterion's raw data of both in criterion/)
#        gpu_during_bench.csv          nvidia-smi samples (utilization, clocks, power) during the bench
#        pytorch_baseline.log          scripts/pytorch_step_baseline.py: the same iterations, PyTorch eager,
#                                      CUDA events (strict f32; a second run with TF32 allowed)
#        summary.txt                   each step's exit code and wall time
#
# The device half never stops at a failing step: every step's log and exit code are kept. Environment:
#   CXR_GAN_BENCH_BATCH (128)   batch of the benches and the PyTorch baseline
#   GPU_CHECK_BENCH_ARGS        criterion flags (default: short warm-up / measurement, to fit ~15 minutes)
#   CXR_GAN_FID_WEIGHTS         the Inception weights, if the golden Inception files should run (else skipped)
#   PYTHON                      the interpreter with torch (default python3)
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"

prepare() {
    local root
    root="$(cd "$here/.." && pwd)"
    cd "$root" || exit 1
    command -v cargo >/dev/null || { echo "--prepare needs cargo"; exit 1; }
    local dev="$root/device"
    rm -rf "$dev"
    mkdir -p "$dev/bin" "$dev/scripts" "$dev/golden"
    local json
    json="$(mktemp)"
    echo "== building the release test executables (ops, golden) and the ops and train_step benches"
    cargo test --release --locked --no-run --test ops --test golden --message-format=json >"$json" || exit 1
    cargo bench --locked --no-run --bench ops --bench train_step --message-format=json >>"$json" || exit 1
    # Name each executable by its target and profile (test and bench executables share the `ops-` prefix).
    python3 - "$json" "$dev/bin" <<'EOF' || exit 1
import json, shutil, sys
out = sys.argv[2]
found = {}
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    kind = m["target"]["kind"][0]
    name = {"test": "test_", "bench": "bench_"}.get(kind, "") + m["target"]["name"]
    found[name] = m["executable"]
for want in ["test_ops", "test_golden", "bench_ops", "bench_train_step"]:
    if want not in found:
        sys.exit(f"no executable for {want} in cargo's output (found {sorted(found)})")
    shutil.copy2(found[want], f"{out}/{want}")
    print(f"{want}: {found[want]}")
EOF
    rm -f "$json"
    # Debug info and symbols are most of their size (~19 → ~16 MB each), and gzip takes them to ~6 MB each;
    # the device tool carries 64 MiB in all. (Panics still print their messages; backtraces lose function names.)
    strip "$dev"/bin/* 2>/dev/null || true
    gzip -9 "$dev"/bin/*
    local golden="${CXR_GAN_GOLDEN_DIR:-$root/../shared/golden}"
    if [ -d "$golden" ]; then
        cp "$golden"/*.safetensors "$dev/golden/"
    else
        echo "no golden files at $golden: the device's golden run will skip"
    fi
    cp "$here/gpu-check.sh" "$here/pytorch_step_baseline.py" "$dev/scripts/"
    du -b "$dev"/bin/*
    du -sb "$dev/golden"
    du -sb "$dev"
    echo "device/ is ready: carry it to the GPU machine and run  bash device/scripts/gpu-check.sh OUTDIR"
}

# Runs one step: `step NAME LOG TIMEOUT_S command...`; records its exit code and wall time.
step() {
    local name="$1" log="$2" limit="$3"
    shift 3
    echo "== $name ($(date -u +%H:%M:%S))"
    local t0 rc
    t0=$(date +%s)
    timeout --signal=INT --kill-after=20 "$limit" "$@" >"$OUT/$log" 2>&1
    rc=$?
    printf '%-28s rc %-4s %5ss  %s\n' "$name" "$rc" "$(( $(date +%s) - t0 ))" "$log" | tee -a "$OUT/summary.txt"
    tail -n 3 "$OUT/$log"
}

# NVRTC for CubeCL's CUDA runtime: cudarc looks for libnvrtc.so / libnvrtc.so.12 (and older). A CUDA 13
# machine may only have libnvrtc.so.13 (the toolkit, or PyTorch's nvidia-* wheels): link it under a name
# cudarc tries, and put its folder (which holds libnvrtc-builtins) on the library path.
find_nvrtc() {
    local py="$1" dirs d f lib="" shim
    dirs="$("$py" -c '
import glob, os
try:
    import nvidia
    for root in nvidia.__path__:
        print("\n".join(glob.glob(os.path.join(root, "*", "lib"))))
except Exception:
    pass' 2>/dev/null)"
    for d in $dirs /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-*/lib64 /usr/lib/x86_64-linux-gnu; do
        for f in "$d"/libnvrtc.so "$d"/libnvrtc.so.*; do
            case "$f" in *builtins*|*alt*) continue ;; esac
            if [ -e "$f" ]; then lib="$f"; break 2; fi
        done
    done
    [ -n "$lib" ] || return 1
    shim="$(mktemp -d)"
    ln -s "$lib" "$shim/libnvrtc.so"
    export LD_LIBRARY_PATH="$shim:$(dirname "$lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    NVRTC_LIB="$lib"
}

run() {
    OUT="$1"
    mkdir -p "$OUT"
    OUT="$(cd "$OUT" && pwd)"
    local dev
    dev="$(cd "$here/.." && pwd)" # device/ (this script lives in device/scripts/)
    if [ ! -f "$dev/bin/test_ops.gz" ] && [ -f "$here/../device/bin/test_ops.gz" ]; then
        dev="$(cd "$here/../device" && pwd)" # run from the repository's scripts/
    fi
    [ -f "$dev/bin/test_ops.gz" ] || { echo "no executables in $dev/bin: run scripts/gpu-check.sh --prepare first" | tee "$OUT/summary.txt"; exit 1; }
    : >"$OUT/summary.txt"
    # The executables travel gzipped: unpack them into a fresh folder (device/ may be read-only).
    local bin f
    bin="$(mktemp -d)"
    for f in "$dev"/bin/*.gz; do
        gunzip -c "$f" >"$bin/$(basename "$f" .gz)" && chmod +x "$bin/$(basename "$f" .gz)"
    done
    local py="${PYTHON:-python3}" batch="${CXR_GAN_BENCH_BATCH:-128}"
    local bench_args="${GPU_CHECK_BENCH_ARGS:---warm-up-time 0.3 --measurement-time 1 --noplot}"
    NVRTC_LIB="not found (the CUDA tests will say so and skip)"
    find_nvrtc "$py" || true
    {
        date -u
        uname -a
        ldd --version 2>&1 | head -n 1
        echo "executables: $(ls "$dev/bin")"
        "$py" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1
        echo "nvrtc: $NVRTC_LIB"
        echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
        nvidia-smi -q 2>&1 | head -n 60
    } >"$OUT/env.txt" 2>&1
    nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1
    export RUST_BACKTRACE=1 CXR_GAN_BENCH_BATCH="$batch"

    # CUDA must be there (a missing driver fails each test, not skips it); wgpu needs a Vulkan loader.
    CXR_GAN_REQUIRE_BACKEND=cuda step "ops on cuda" ops_cuda.log 300 "$bin/test_ops" --test-threads 1 --nocapture cuda:: device_probing
    step "ops on wgpu" ops_wgpu.log 300 "$bin/test_ops" --test-threads 1 --nocapture wgpu::
    CXR_GAN_GOLDEN_DIR="$dev/golden" step "golden conformance" golden.log 300 "$bin/test_golden" --nocapture

    nvidia-smi --query-gpu=timestamp,utilization.gpu,utilization.memory,clocks.sm,clocks.mem,power.draw,memory.used \
        --format=csv -lms 500 >"$OUT/gpu_during_bench.csv" 2>&1 &
    local smi=$!
    # shellcheck disable=SC2086 # bench_args is a list of flags
    CXR_GAN_BENCH_BACKENDS=cuda,wgpu CRITERION_HOME="$OUT/criterion" step "bench ops" bench_ops.log 300 "$bin/bench_ops" --bench $bench_args
    # shellcheck disable=SC2086
    CXR_GAN_BENCH_BACKENDS=cuda,wgpu CRITERION_HOME="$OUT/criterion" step "bench train_step" bench_train_step.log 180 \
        "$bin/bench_train_step" --bench $bench_args
    kill "$smi" 2>/dev/null
    wait "$smi" 2>/dev/null

    step "pytorch baseline (f32)" pytorch_baseline.log 240 "$py" "$here/pytorch_step_baseline.py" --batch "$batch"
    step "pytorch baseline (tf32)" pytorch_baseline_tf32.log 240 "$py" "$here/pytorch_step_baseline.py" --batch "$batch" --tf32
    echo "== logs in $OUT"
    cat "$OUT/summary.txt"
    rm -rf "$bin"
}

case "${1:-}" in
    --prepare) prepare ;;
    ""|-h|--help) sed -n '2,30p' "$0"; exit 2 ;;
    *) run "$1" ;;
esac
