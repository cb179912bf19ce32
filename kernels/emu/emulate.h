// The CUDA C++ subset kernels/cuda uses, on the CPU: each block's threads run as fibers (one stack each) on
// one OS thread, switching only at __syncthreads, warp shuffles and MMA; blocks are shared among a few OS
// threads. `__shared__` is thread_local static storage, so the fibers of one block share it and blocks on
// other OS threads do not. Results are those of a GPU up to the libm's last bits (expf, tanhf, ...).
// cp.async is emulated strictly: a copy lands only when its thread waits for its group (cp_async_wait), the
// latest moment a GPU may complete it, so a kernel that reads a stage before waiting for it reads stale data
// here too. Not emulated (so not used by the kernels): atomics, dynamic shared memory, partial-warp masks.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

namespace cxr_emu {

// Where the running fiber is: its thread and block index.
struct Place {
    dim3 thread, block;
    unsigned linear;  // x + y·bx + z·bx·by
};
const Place& here();
const dim3& block_dim();
const dim3& grid_dim();

// Waits for every live thread of the block / of the warp.
void syncthreads();
void syncwarp();
// Lane `src` of this warp's `v` (every live lane of the warp must call it).
uint64_t warp_read(uint64_t v, unsigned src);

inline uint32_t f2u(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
inline float u2f(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
inline float shfl(float v, unsigned src) { return u2f(static_cast<uint32_t>(warp_read(f2u(v), src))); }

// cvt.rna.tf32.f32: keep 10 mantissa bits, rounding to nearest with ties away from zero.
inline uint32_t tf32_rna(float x) {
    uint32_t u = f2u(x);
    if ((u & 0x7f800000u) == 0x7f800000u) return u;  // inf, NaN unchanged
    u += 0x1000u;                                      // half of the dropped 13 bits: ties away
    return u & 0xffffe000u;
}

// cvt.rn.bf16x2.f32's rounding of one value: the upper 16 bits of the f32, rounded to nearest, ties to even.
inline uint32_t bf16_rn(float x) {
    uint32_t u = f2u(x);
    if ((u & 0x7f800000u) == 0x7f800000u) return (u >> 16) | ((u & 0x007fffffu) ? 0x40u : 0u);  // inf; NaN stays NaN
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}
inline float bf16_value(uint32_t h) { return u2f(h << 16); }

// One warp's MMAs, D += A·B, with PTX's fragment layouts (see common.cuh): m16n8k8 with TF32 inputs, and
// m16n8k16 with bf16 inputs (two per 32-bit register, the lower index in the low half). Products are exact
// in f32 for both input types; they are summed in f32 in k order.
void mma_m16n8k8_tf32(float d[4], const uint32_t a[4], const uint32_t b[2]);
void mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2]);

// One warpgroup's wgmma.mma_async m64n32k8 with TF32 inputs, D += A·B: A (64×8) and B (32×8, i.e. Bᵀ) read
// from the block's shared memory `smem` through the descriptors (address relative to `smem`; canonical K-major,
// no swizzle: element (row, k) at start + (row/8)·sbo + (row%8)·16 + (k/4)·lbo + (k%4)·4 bytes). Each thread
// computes its own accumulators (d[4j + 2h + c] = D[16w + group + 8h][8j + 2t + c]) from shared memory, so
// nothing is exchanged; inputs lose their low 13 bits (TF32 as the tensor core reads it), products are summed
// in f32 in k order, as mma_m16n8k8_tf32's.
void wgmma_m64n32k8_tf32(float d[16], uint64_t desc_a, uint64_t desc_b, const void* smem);

// cp.async.ca.shared.global of 4 bytes from `src` (nullptr: zero fill, as src-size 0), in this thread's
// current group; commit closes the group; wait(n) lands every copy of this thread's committed groups but
// the newest n.
void cp_async_f32(float* dst, const float* src);
void cp_async_commit();
void cp_async_wait(unsigned newest_pending);

// The kernel registry: name → (function, a caller unpacking cuLaunchKernel-style argument pointers).
using Invoke = void (*)(void* fn, void** args);
int register_kernel_raw(const char* name, void* fn, Invoke invoke);

template <typename... A, std::size_t... I>
void call_unpacked(void (*f)(A...), void** args, std::index_sequence<I...>) {
    f(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(args[I])...);
}
template <typename... A>
void invoke(void* fn, void** args) {
    call_unpacked(reinterpret_cast<void (*)(A...)>(fn), args, std::index_sequence_for<A...>{});
}
template <typename... A>
int register_kernel(const char* name, void (*f)(A...)) {
    return register_kernel_raw(name, reinterpret_cast<void*>(f), &invoke<A...>);
}

}  // namespace cxr_emu

#define threadIdx (cxr_emu::here().thread)
#define blockIdx (cxr_emu::here().block)
#define blockDim (cxr_emu::block_dim())
#define gridDim (cxr_emu::grid_dim())
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static thread_local
#define __syncthreads() cxr_emu::syncthreads()
#define __syncwarp(...) cxr_emu::syncwarp()
#define __launch_bounds__(...)
#define CXR_EXPORT(name) static const int cxr_registered_##name = cxr_emu::register_kernel(#name, name);

inline float __shfl_xor_sync(unsigned, float v, int mask) { return cxr_emu::shfl(v, (cxr_emu::here().linear % 32) ^ mask); }
inline float __shfl_sync(unsigned, float v, int src) { return cxr_emu::shfl(v, src & 31); }
inline float __shfl_down_sync(unsigned, float v, unsigned d) {
    unsigned lane = cxr_emu::here().linear % 32;
    float r = cxr_emu::shfl(v, lane + d < 32 ? lane + d : lane);
    return r;
}
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __int_as_float(int i) { return cxr_emu::u2f(static_cast<uint32_t>(i)); }
inline int __float_as_int(float f) { return static_cast<int>(cxr_emu::f2u(f)); }
using std::isnan;
