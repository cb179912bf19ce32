#!/usr/bin/env bash
# The GPU check: one prepared folder, one command on the GPU machine, under 9 minutes.
#
#   scripts/gpu-check.sh --prepare     here (Rust toolchain, no GPU needed): builds the release `cxr-gan`
#                                      binary (the CUDA and wgpu runtimes are loaded at run time, so it
#                                      builds anywhere), strips and gzips it, and lays out the ignored folder
#                                      device/: bin/cxr-gan.gz, the golden files, this script, the PyTorch
#                                      baseline and MANIFEST.txt (commit, glibc needed, shared libraries).
#                                      Fails if device/ is 48 MiB or more; prints the glibc the binary needs.
#   scripts/gpu-check.sh --dry-run [OUTDIR]
#                                      --prepare, then the device half here, where CUDA is absent: every
#                                      step must run and leave its log (the CUDA ones fail, as they should).
#   scripts/gpu-check.sh OUTDIR        on the GPU machine (CUDA driver, python3 with PyTorch; no Rust, no
#                                      network), from device/scripts/ or the repository's scripts/; every log
#                                      goes into OUTDIR:
#        env.txt                       date, kernel, glibc (needed / present), nvidia-smi -q, python / torch,
#                                      the NVRTC put on the library path, MANIFEST.txt
#        version.log                   cxr-gan --version (the binary starts: its glibc and libraries are there)
#        devices.log                   cxr-gan devices: driver, device, NVRTC, headers, PTX target
#        conformance.log               cxr-gan conformance --backend cpu,cuda,cuda-native --require cuda,cuda-native:
#                                      every golden file on cpu, cuda (CubeCL) and cuda-native (our CUDA C++)
#                                      (the Inception ones skip: their weights stay home)
#        bench_cuda.log, bench_cuda.json
#                                      cxr-gan bench --backend cuda: each op checked against cpu, then timed;
#                                      whole DCGAN and WGAN-GP iterations; FID images/s
#        bench_cuda_native.log, bench_cuda_native.json
#                                      cxr-gan bench --precision tf32 --backend cuda-native: the same, our kernels
#        bench_cuda_native_bf16.log, bench_cuda_native_bf16.json
#                                      the same at --precision bf16 (% of the card's bf16 tensor peak)
#        bench_cuda_native_v4.log, bench_cuda_native_v4.json
#                                      tf32 again with CXR_GAN_WGMMA=0: v4 (mma.sync) where the card would run v5
#        conformance_tf32.log, conformance_bf16.log
#                                      the golden files on cuda-native at --precision tf32 / bf16 (if budget is left)
#        gpu_during_bench.csv          nvidia-smi samples (utilization, clocks, power) during the bench
#        pytorch_f32.log, pytorch_tf32.log
#                                      scripts/pytorch_step_baseline.py: the same iterations in PyTorch eager
#                                      on the same card (strict f32, then TF32 allowed)
#        summary.txt                   each step's exit code, wall time and log; the key result lines
#
# Each step has a time limit (cut further so that the whole ends within GPU_CHECK_BUDGET_S); a failing or
# timed-out step never stops the next. The exit code is 0 only when every step passed. Environment:
#   GPU_CHECK_BUDGET_S (540)    the whole device half's wall-clock budget, in seconds
#   CXR_GAN_BENCH_BATCH (128)   batch of the bench's DCGAN / WGAN-GP work and of the PyTorch baseline
#   CXR_GAN_GOLDEN_DIR          --prepare: where the golden files are (default ../shared/golden)
#   PYTHON                      the interpreter with torch (default python3)
# Through the device tool: carry the folder device/ and run  bash device/scripts/gpu-check.sh "$OUT/gpu-check"
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
max_bytes=$((48 * 1024 * 1024))

# The highest GLIBC_x.y symbol version a binary needs, and the symbols that need it.
glibc_needed() {
    local top
    top="$(objdump -T "$1" | grep -o 'GLIBC_[0-9][0-9.]*' | sort -uV | tail -n 1)"
    echo "${top#GLIBC_} ($(objdump -T "$1" | awk -v v="($top)" '$0 ~ v {print $NF}' | sort -u | paste -sd, -))"
}

prepare() {
    local root
    root="$(cd "$here/.." && pwd)"
    cd "$root" || exit 1
    command -v cargo >/dev/null || { echo "--prepare needs cargo"; exit 1; }
    local golden="${CXR_GAN_GOLDEN_DIR:-$root/../shared/golden}"
    ls "$golden"/*.safetensors >/dev/null 2>&1 || { echo "no golden files in $golden (set CXR_GAN_GOLDEN_DIR)"; exit 1; }
    local dev="$root/device"
    rm -rf "$dev"
    mkdir -p "$dev/bin" "$dev/scripts" "$dev/golden"

    echo "== building the release cxr-gan binary"
    local exe
    exe="$(cargo build --release --locked --bin cxr-gan --message-format=json \
        | grep -o '"executable":"[^"]*cxr-gan"' | tail -n 1 | cut -d'"' -f4)"
    [ -x "$exe" ] || { echo "cargo built no cxr-gan executable"; exit 1; }
    # Debug info and symbols are most of its size (~115 MB → ~18 MB), gzip takes it to ~7 MB. Panics still
    # print their messages; backtraces lose function names.
    strip -o "$dev/bin/cxr-gan" "$exe" || exit 1
    local glibc subcommands="" sub
    glibc="$(glibc_needed "$dev/bin/cxr-gan")"
    for sub in devices conformance bench; do
        if "$dev/bin/cxr-gan" "$sub" --help >/dev/null 2>&1; then
            subcommands+=" $sub"
        else
            echo "note: this build has no \`cxr-gan $sub\` (not merged yet?): the device half will log its absence"
        fi
    done
    {
        echo "commit:      $(git rev-parse HEAD)$(git diff --quiet HEAD -- . ':!device' 2>/dev/null || echo ' (with uncommitted changes)')"
        echo "built:       $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(uname -srm)"
        echo "glibc:       needs >= $glibc; built against $(ldd --version 2>&1 | head -n 1 | awk '{print $NF}')"
        echo "libraries:   $(readelf -d "$dev/bin/cxr-gan" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | paste -sd' ' -)"
        echo "subcommands:$subcommands"
    } >"$dev/MANIFEST.txt"
    gzip -9 "$dev/bin/cxr-gan" || exit 1

    # Every golden file: the Inception ones travel too (~1 MB) but skip on the device with their reason,
    # since the 87 MB weights file they need cannot travel.
    cp "$golden"/*.safetensors "$dev/golden/" || exit 1
    cp "$here/gpu-check.sh" "$here/pytorch_step_baseline.py" "$dev/scripts/" || exit 1

    local total
    total="$(du -sb "$dev" | cut -f1)"
    echo "== device/ laid out"
    du -b "$dev/bin/cxr-gan.gz"
    echo "$(du -sb "$dev/golden" | cut -f1)	$dev/golden ($(ls "$dev/golden" | wc -l) files)"
    cat "$dev/MANIFEST.txt"
    echo "size:        $total bytes ($((total / 1024 / 1024)) MiB; limit 48 MiB)" | tee -a "$dev/MANIFEST.txt"
    if [ "$total" -ge "$max_bytes" ]; then
        echo "device/ is $total bytes, over the 48 MiB limit"
        exit 1
    fi
    echo "device/ is ready: carry it to the GPU machine and run  bash device/scripts/gpu-check.sh OUTDIR"
}

# Runs one step: `step NAME LOG LIMIT_S command...`. The limit is cut to what is left of the budget; the
# step's exit code (124: timed out) and wall time go into summary.txt.
step() {
    local name="$1" log="$2" limit="$3"
    shift 3
    local left=$((deadline - $(date +%s)))
    [ "$left" -lt "$limit" ] && limit="$left"
    if [ "$limit" -lt 5 ]; then
        echo "not run: the ${budget}s budget is spent" >"$OUT/$log"
        printf '%-24s rc %-4s %5ss  %s\n' "$name" "-" 0 "$log (not run: budget spent)" | tee -a "$OUT/summary.txt"
        failures=$((failures + 1))
        return
    fi
    echo "== $name ($(date -u +%H:%M:%S), at most ${limit}s)"
    local t0 rc
    t0=$(date +%s)
    timeout --signal=INT --kill-after=10 "$limit" "$@" >"$OUT/$log" 2>&1
    rc=$?
    [ "$rc" -ne 0 ] && failures=$((failures + 1))
    local note=""
    [ "$rc" -eq 124 ] && note=" (timed out after ${limit}s)"
    printf '%-24s rc %-4s %5ss  %s\n' "$name" "$rc" "$(($(date +%s) - t0))" "$log$note" | tee -a "$OUT/summary.txt"
    tail -n 3 "$OUT/$log"
}

# A `cxr-gan` subcommand this build may lack (devices and bench came from other work): run it as a step,
# or log its absence as a failed step.
cxr_step() {
    local name="$1" log="$2" limit="$3" sub="$4"
    if "$cxr" "$sub" --help >/dev/null 2>&1; then
        step "$name" "$log" "$limit" "$cxr" "${@:4}"
    else
        echo "this cxr-gan has no \`$sub\` subcommand (built before it was merged): rebuild with --prepare" >"$OUT/$log"
        printf '%-24s rc %-4s %5ss  %s\n' "$name" "-" 0 "$log (no \`cxr-gan $sub\` in this build)" | tee -a "$OUT/summary.txt"
        failures=$((failures + 1))
    fi
}

# NVRTC for CubeCL's CUDA runtime: cudarc looks for libnvrtc.so / libnvrtc.so.12 (and older). A CUDA 13
# machine may only have libnvrtc.so.13 (the toolkit, or PyTorch's nvidia-* wheels, whose NVRTC matches the
# driver PyTorch runs on): link it under a name cudarc tries, and put its folder (with libnvrtc-builtins) on
# the library path.
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
    mkdir -p "$OUT" || exit 1
    OUT="$(cd "$OUT" && pwd)"
    budget="${GPU_CHECK_BUDGET_S:-540}"
    deadline=$(($(date +%s) + budget))
    failures=0
    local t_start dev
    t_start=$(date +%s)
    dev="$(cd "$here/.." && pwd)" # device/ (this script lives in device/scripts/)
    if [ ! -f "$dev/bin/cxr-gan.gz" ] && [ -f "$here/../device/bin/cxr-gan.gz" ]; then
        dev="$(cd "$here/../device" && pwd)" # run from the repository's scripts/
    fi
    [ -f "$dev/bin/cxr-gan.gz" ] || { echo "no bin/cxr-gan.gz in $dev: run scripts/gpu-check.sh --prepare first" | tee "$OUT/summary.txt"; exit 1; }
    : >"$OUT/summary.txt"
    # The binary travels gzipped: unpack it into a fresh folder (device/ may be read-only).
    local bin
    bin="$(mktemp -d)"
    cxr="$bin/cxr-gan"
    gunzip -c "$dev/bin/cxr-gan.gz" >"$cxr" && chmod +x "$cxr"
    local py="${PYTHON:-python3}" batch="${CXR_GAN_BENCH_BATCH:-128}"
    NVRTC_LIB="not found (cxr-gan devices says what CUDA lacks)"
    find_nvrtc "$py" || true
    local need have
    need="$(sed -n 's/^glibc: *needs >= \([0-9.]*\).*/\1/p' "$dev/MANIFEST.txt" 2>/dev/null)"
    have="$(ldd --version 2>&1 | head -n 1 | awk '{print $NF}')"
    {
        date -u
        uname -a
        echo "glibc here: $have; the binary needs: ${need:-unknown}"
        if [ -n "$need" ] && [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n 1)" != "$need" ]; then
            echo "WARNING: glibc $have is older than the $need the binary needs: it will not start"
        fi
        timeout 30 "$py" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1
        echo "nvrtc: $NVRTC_LIB"
        echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
        echo "budget: ${budget}s"
        echo "--- MANIFEST.txt"
        cat "$dev/MANIFEST.txt" 2>&1
        echo "--- nvidia-smi -q"
        timeout 30 nvidia-smi -q 2>&1 | head -n 60
    } >"$OUT/env.txt" 2>&1
    grep -E '^(glibc here|WARNING|nvrtc|python)' "$OUT/env.txt"
    export RUST_BACKTRACE=1 CXR_GAN_BENCH_BATCH="$batch"

    step "cxr-gan starts" version.log 20 "$cxr" --version
    cxr_step "devices" devices.log 60 devices
    # cpu beside cuda: a file failing on cuda alone points at the CUDA path, not at the folder.
    cxr_step "conformance (cuda, cuda-native)" conformance.log 180 conformance --golden "$dev/golden" --backend cpu,cuda,cuda-native \
        --require cuda,cuda-native

    timeout 300 nvidia-smi --query-gpu=timestamp,utilization.gpu,utilization.memory,clocks.sm,clocks.mem,power.draw,memory.used \
        --format=csv -lms 500 >"$OUT/gpu_during_bench.csv" 2>&1 &
    local smi=$!
    cxr_step "bench (cuda)" bench_cuda.log 120 bench --backend cuda --batch "$batch" --json "$OUT/bench_cuda.json"
    # Our hand-written kernels, convolutions on tensor cores (TF32), beside PyTorch's TF32 below.
    cxr_step "bench (cuda-native, tf32)" bench_cuda_native.log 120 bench --precision tf32 --backend cuda-native --batch "$batch" \
        --json "$OUT/bench_cuda_native.json"
    # The same at bf16 (bf16 tensor-core MMAs, bf16 activations and weight copies: v6): % of the card's bf16 peak.
    cxr_step "bench (cuda-native, bf16)" bench_cuda_native_bf16.log 90 bench --precision bf16 --backend cuda-native --batch "$batch" \
        --json "$OUT/bench_cuda_native_bf16.json"
    # TF32 with v4's mma.sync instead of v5's wgmma (an sm_90a card runs v5 above): which pays, measured.
    CXR_GAN_WGMMA=0 cxr_step "bench (cuda-native, tf32 v4)" bench_cuda_native_v4.log 90 bench --precision tf32 --backend cuda-native \
        --batch "$batch" --json "$OUT/bench_cuda_native_v4.json"
    kill "$smi" 2>/dev/null
    wait "$smi" 2>/dev/null

    step "pytorch eager (f32)" pytorch_f32.log 45 "$py" "$here/pytorch_step_baseline.py" --batch "$batch"
    step "pytorch eager (tf32)" pytorch_tf32.log 45 "$py" "$here/pytorch_step_baseline.py" --batch "$batch" --tf32
    # The golden files at the reduced precisions: convolutions at the precision's tolerance, the rest at
    # their own bars, whole-model chains left to the benches above (last: what budget is left).
    local p
    for p in tf32 bf16; do
        cxr_step "conformance (cuda-native, $p)" "conformance_$p.log" 60 conformance --golden "$dev/golden" --backend cuda-native \
            --require cuda-native --precision "$p"
    done

    {
        echo "-- key lines"
        grep -h -m 1 -E '^[0-9]+ passed, ' "$OUT/conformance.log" | sed 's/^/conformance: /'
        grep -h -E 'FAIL|required' "$OUT/conformance.log" | head -n 5 | sed 's/^/conformance: /'
        for f in tf32 bf16; do
            grep -h -m 1 -E '^[0-9]+ passed, ' "$OUT/conformance_$f.log" | sed "s/^/conformance $f: /"
        done
        tail -n 1 "$OUT/bench_cuda.log" | sed 's/^/bench: /'
        tail -n 1 "$OUT/bench_cuda_native.log" | sed 's/^/bench cuda-native tf32: /'
        tail -n 1 "$OUT/bench_cuda_native_bf16.log" | sed 's/^/bench cuda-native bf16: /'
        tail -n 1 "$OUT/bench_cuda_native_v4.log" | sed 's/^/bench cuda-native tf32 v4 (no wgmma): /'
        local f
        for f in f32 tf32; do
            { grep -h -E 'median' "$OUT/pytorch_$f.log" || tail -n 1 "$OUT/pytorch_$f.log"; } | sed "s/^/pytorch $f: /"
        done
        echo "total ${failures} failed step(s), $(($(date +%s) - t_start))s of the ${budget}s budget"
    } >>"$OUT/summary.txt" 2>/dev/null
    echo "== logs in $OUT"
    cat "$OUT/summary.txt"
    rm -rf "$bin"
    [ "$failures" -eq 0 ]
}

# --prepare, then the device half here (no CUDA): checks that every step ran and left a log.
dry_run() {
    local out="${1:-}"
    [ -n "$out" ] || out="$(mktemp -d)/gpu-check-dry-run"
    (prepare) || exit 1
    local root
    root="$(cd "$here/.." && pwd)"
    echo "== the device half, here (CUDA absent: its steps fail, as they must)"
    bash "$root/device/scripts/gpu-check.sh" "$out"
    echo "== dry run: device half exited $? (non-zero expected without CUDA)"
    local missing=0 log
    for log in env.txt version.log devices.log conformance.log bench_cuda.log bench_cuda_native.log bench_cuda_native_bf16.log \
        bench_cuda_native_v4.log pytorch_f32.log pytorch_tf32.log conformance_tf32.log conformance_bf16.log summary.txt; do
        if [ ! -s "$out/$log" ]; then
            echo "missing or empty: $out/$log"
            missing=1
        fi
    done
    grep -q '^cxr-gan starts  *rc 0 ' "$out/summary.txt" || { echo "the binary did not start"; missing=1; }
    [ "$missing" -eq 0 ] || { echo "dry run FAILED"; exit 1; }
    echo "dry run passed: every step ran and logged into $out"
}

case "${1:-}" in
    --prepare) prepare ;;
    --dry-run) dry_run "${2:-}" ;;
    ""|-h|--help|-*) sed -n '2,37p' "$0"; exit 2 ;;
    *) run "$1" ;;
esac
