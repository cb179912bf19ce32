// What every kernels/cuda/<family>.cu includes: fixed-width names, the launch geometry every family
// shares, and the few device helpers (grid-stride loops, block sums, TF32 MMA) written once.
//
// The same files compile two ways:
//  - by NVRTC at run time (src/backend/cuda_native), for sm_80+: the real kernels;
//  - by the host C++ compiler with CXR_EMULATE (kernels/build.rs), against kernels/emu/emulate.h, which runs
//    each block's threads as fibers on the CPU. That is how CI, with no GPU, executes every kernel of the
//    cuda-native backend through the same host code and the same tests as on a GPU.
#pragma once

#ifdef CXR_EMULATE
#include "../emu/emulate.h"
#else
// Registration of a kernel for the emulator; nothing on the device (kernels are found by name in PTX).
#define CXR_EXPORT(name)
#endif

typedef unsigned int u32;
typedef int i32;
typedef unsigned long long u64;

// Every kernel has C linkage, so PTX knows it by its plain name. The emulator compiles all families as one
// translation unit and finds kernels through its registry, so there they stay internal to it.
#ifdef CXR_EMULATE
#define CXR_KERNEL static
#else
#define CXR_KERNEL extern "C" __global__
#endif

// Threads of the elementwise and reduction kernels' blocks (src/backend/cuda_native/launch.rs: BLOCK).
#define CXR_BLOCK 256
#define CXR_WARP 32

// The index of this thread in a 1-d grid and the grid's stride, for grid-stride loops over n < 2^32.
__device__ __forceinline__ u32 grid_start() { return blockIdx.x * blockDim.x + threadIdx.x; }
__device__ __forceinline__ u32 grid_stride() { return gridDim.x * blockDim.x; }

// Σ over the warp, every lane receiving the total (butterfly; lane order fixed, so deterministic).
__device__ __forceinline__ float warp_sum(float v) {
    for (int m = CXR_WARP / 2; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
    return v;
}

// Σ over a block of CXR_BLOCK threads; every thread receives the total. `scratch` holds CXR_BLOCK/32 floats
// of shared memory. Every thread of the block must call it (it synchronizes).
__device__ __forceinline__ float block_sum(float v, float* scratch) {
    v = warp_sum(v);
    const u32 warp = threadIdx.x / CXR_WARP, lane = threadIdx.x % CXR_WARP;
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float t = lane < CXR_BLOCK / CXR_WARP ? scratch[lane] : 0.0f;
    t = warp_sum(t);
    __syncthreads();  // scratch may be reused by the caller's next block_sum
    return t;
}

// The piecewise-linear activations, written once: act.cu's kernels and the normalizations' fused epilogue
// (norm.cu) compute them with these. relu keeps NaN (NaN <= 0 is false), as PyTorch.
__device__ __forceinline__ float relu_value(float v) { return v <= 0.0f ? 0.0f : v; }
__device__ __forceinline__ float leaky_relu_value(float v, float slope) { return v > 0.0f ? v : slope * v; }

// The activation a fused normalization applies to its output: kind 0 none, 1 relu, 2 leaky_relu (`slope`).
// Mirrored by `FusedAct` in src/backend/cuda_native/norm.rs.
struct FusedAct {
    u32 kind;
    float slope;
};
__device__ __forceinline__ float fused_act(float v, FusedAct a) {
    return a.kind == 1u ? relu_value(v) : a.kind == 2u ? leaky_relu_value(v, a.slope) : v;
}

// f32 → TF32 (round to nearest, ties away from zero: cvt.rna.tf32.f32), kept in a 32-bit register.
__device__ __forceinline__ u32 to_tf32(float x) {
#ifdef CXR_EMULATE
    return cxr_emu::tf32_rna(x);
#else
    u32 r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
#endif
}

// D = A·B + D for one warp: A 16×8 (row-major fragment a[4]), B 8×8 (column fragment b[2]), D 16×8 (d[4]),
// TF32 inputs, FP32 accumulation: PTX mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 (sm_80+).
// Fragment layout (lane = 4·group + t, group = lane/4, t = lane%4):
//   a[0] = A[group][t]   a[1] = A[group+8][t]   a[2] = A[group][t+4]   a[3] = A[group+8][t+4]
//   b[0] = B[t][group]   b[1] = B[t+4][group]
//   d[0] = D[group][2t]  d[1] = D[group][2t+1]  d[2] = D[group+8][2t]  d[3] = D[group+8][2t+1]
__device__ __forceinline__ void mma_m16n8k8_tf32(float d[4], const u32 a[4], const u32 b[2]) {
#ifdef CXR_EMULATE
    cxr_emu::mma_m16n8k8_tf32(d, a, b);
#else
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

// f32 pair → two bf16 in one register (round to nearest, ties to even: cvt.rn.bf16x2.f32), `lo` in the low
// half, as mma's bf16 fragments hold the lower k or column index there.
__device__ __forceinline__ u32 to_bf16x2(float lo, float hi) {
#ifdef CXR_EMULATE
    return cxr_emu::bf16_rn(lo) | (cxr_emu::bf16_rn(hi) << 16);
#else
    u32 r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
#endif
}

// ---------------------------------------------------------------------------------------------- bf16 storage
// A bf16 element in memory (--precision bf16 stores activations and the weights' shadows so): the upper 16
// bits of an f32. Reading widens exactly; writing rounds to nearest, ties to even (as cvt.rn.bf16x2.f32, and
// half::bf16::from_f32 on the host). `load` / `store` take either element type, so a kernel templated on its
// storage type T reads and writes T with the same code; all arithmetic stays f32.
struct bf16 {
    unsigned short bits;
};
__device__ __forceinline__ float load(const float* p, u32 i) { return p[i]; }
__device__ __forceinline__ float load(const bf16* p, u32 i) { return __int_as_float((i32)((u32)p[i].bits << 16)); }
__device__ __forceinline__ void store(float* p, u32 i, float v) { p[i] = v; }
__device__ __forceinline__ void store(bf16* p, u32 i, float v) { p[i].bits = (unsigned short)(to_bf16x2(v, 0.0f) & 0xffffu); }
// v rounded to bf16 as `store` rounds it, kept as an f32.
__device__ __forceinline__ float bf16_round(float v) { return __int_as_float((i32)(to_bf16x2(v, 0.0f) << 16)); }

// D = A·B + D for one warp: A 16×16, B 16×8, D 16×8, bf16 inputs, FP32 accumulation:
// PTX mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 (sm_80+). Fragments (group = lane/4, t = lane%4),
// each register two bf16 (the lower index in the low half):
//   a[0] = A[group][2t, 2t+1]    a[1] = A[group+8][2t, 2t+1]   a[2] = A[group][2t+8, 2t+9]   a[3] = A[group+8][2t+8, 2t+9]
//   b[0] = B[2t, 2t+1][group]    b[1] = B[2t+8, 2t+9][group]
//   d as mma_m16n8k8_tf32's.
__device__ __forceinline__ void mma_m16n8k16_bf16(float d[4], const u32 a[4], const u32 b[2]) {
#ifdef CXR_EMULATE
    cxr_emu::mma_m16n8k16_bf16(d, a, b);
#else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

// Asynchronous global → shared copies (sm_80+): cp.async.ca of one f32 from `src` to `dst` (shared memory);
// a nullptr `src` zero-fills (src-size 0: nothing is read, yet the instruction still takes a global address,
// so `fallback` must be a valid one). Copies issued before cp_async_commit form one group; cp_async_wait<N>()
// returns when at most this thread's newest N groups are still in flight (then a __syncthreads() makes every
// thread's landed copies visible to the whole block).
__device__ __forceinline__ void cp_async_f32(float* dst, const float* src, const float* fallback) {
#ifdef CXR_EMULATE
    (void)fallback;
    cxr_emu::cp_async_f32(dst, src);
#else
    u32 dst_shared;
    asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(dst_shared) : "l"(dst));
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst_shared), "l"(src ? src : fallback), "r"(src ? 4u : 0u) : "memory");
#endif
}
__device__ __forceinline__ void cp_async_commit() {
#ifdef CXR_EMULATE
    cxr_emu::cp_async_commit();
#else
    asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}
template <u32 N>
__device__ __forceinline__ void cp_async_wait() {
#ifdef CXR_EMULATE
    cxr_emu::cp_async_wait(N);
#else
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

// ---------------------------------------------------------------------------------------------- wgmma
// Hopper's warpgroup MMA (sm_90a only: PTX wgmma.*, compiled where NVRTC targets sm_90a, a trap elsewhere;
// the backend launches the kernels that use it only on such a device). A warpgroup is 4 consecutive warps.
#if defined(CXR_EMULATE) || defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define CXR_HAS_WGMMA 1
#endif

// A shared-memory matrix descriptor for wgmma: operand at `p` (16-byte aligned) in the canonical no-swizzle
// layout, `lbo` bytes between core matrices adjacent along k (K-major), `sbo` bytes between core matrices
// adjacent along rows (M or N); bits 0–13 address, 16–29 lbo, 32–45 sbo (each >> 4), swizzle bits 62–63 = 0.
// On the GPU the address is p's in the shared window; the emulator takes it relative to `smem`, the block's
// shared memory, which its wgmma gets too.
__device__ __forceinline__ u64 wgmma_desc(const void* p, const void* smem, u32 lbo, u32 sbo) {
#ifdef CXR_EMULATE
    const u64 addr = (u64)((const char*)p - (const char*)smem);
#else
    (void)smem;
    u64 addr;
    asm("cvta.to.shared.u64 %0, %1;" : "=l"(addr) : "l"(p));
#endif
    return ((addr & 0x3ffffu) >> 4) | ((u64)((lbo & 0x3ffffu) >> 4) << 16) | ((u64)((sbo & 0x3ffffu) >> 4) << 32);
}

// Makes this thread's shared-memory writes (stores, landed cp.async) visible to the async proxy that wgmma
// reads through; then a barrier makes every thread's visible.
__device__ __forceinline__ void fence_proxy_async_shared() {
#if defined(CXR_HAS_WGMMA) && !defined(CXR_EMULATE)
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// D[64×32] += A[64×8]·B[8×32] for one warpgroup, TF32 inputs from shared memory (descriptors; both K-major,
// the only major-ness tf32 has), FP32 accumulation: wgmma.mma_async.sync.aligned.m64n32k8.f32.tf32.tf32.
// Accumulator d[4j + 2h + c] (warp w of the warpgroup, lane = 4·group + t) = D[16w + group + 8h][8j + 2t + c].
// Asynchronous: fence before (wgmma_fence), commit after, and wait before reading d or rewriting the operands.
__device__ __forceinline__ void wgmma_m64n32k8_tf32(float d[16], u64 desc_a, u64 desc_b, const void* smem) {
#ifdef CXR_EMULATE
    cxr_emu::wgmma_m64n32k8_tf32(d, desc_a, desc_b, smem);
#elif defined(CXR_HAS_WGMMA)
    (void)smem;
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, 1, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k8.f32.tf32.tf32 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15}, %16, %17, p, 1, 1;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]),
          "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
        : "l"(desc_a), "l"(desc_b)
        : "memory");
#else
    (void)d, (void)desc_a, (void)desc_b, (void)smem;
    __trap();
#endif
}
__device__ __forceinline__ void wgmma_fence() {
#if defined(CXR_HAS_WGMMA) && !defined(CXR_EMULATE)
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wgmma_commit() {
#if defined(CXR_HAS_WGMMA) && !defined(CXR_EMULATE)
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
// Waits until none of this warpgroup's committed wgmma groups is in flight.
__device__ __forceinline__ void wgmma_wait_all() {
#if defined(CXR_HAS_WGMMA) && !defined(CXR_EMULATE)
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
#endif
}
