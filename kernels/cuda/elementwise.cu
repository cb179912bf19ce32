// Elementwise kernels (fill, add, scale, lerp_per_sample, copy, the bf16 storage casts) and the mean's reduction, beside
// kernels/src/cube/elementwise.rs. Grid-stride loops over n elements; launched with CXR_BLOCK threads.
#include "common.cuh"

// out[i] = value (`full`, `zeros`, and the poisoned backend's NaN fill).
CXR_KERNEL void fill(float* __restrict__ out, u32 n, float value) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) out[i] = value;
}
CXR_EXPORT(fill)

// out = a + b. `out` may be `a` (add_assign on a tensor no one else holds).
CXR_KERNEL void add(const float* a, const float* b, float* out, u32 n) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) out[i] = a[i] + b[i];
}
CXR_EXPORT(add)

// out = s·a.
CXR_KERNEL void scale(const float* __restrict__ a, float* __restrict__ out, u32 n, float s) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) out[i] = s * a[i];
}
CXR_EXPORT(scale)

// out = α·a + (1 − α)·b with α = alpha[i / per] (one per sample of the batch).
CXR_KERNEL void lerp_per_sample(const float* __restrict__ a, const float* __restrict__ b, const float* __restrict__ alpha,
                                float* __restrict__ out, u32 n, u32 per) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) {
        const float al = alpha[i / per];
        out[i] = al * a[i] + (1.0f - al) * b[i];
    }
}
CXR_EXPORT(lerp_per_sample)

// out = a (a tensor about to be updated in place while another holder still reads the original).
CXR_KERNEL void copy(const float* __restrict__ a, float* __restrict__ out, u32 n) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) out[i] = a[i];
}
CXR_EXPORT(copy)

// Storage casts (--precision bf16): an f32 tensor narrowed to bf16 storage (round to nearest even: a weight's
// shadow, an uploaded input an activation kernel stores), and a bf16 one widened (exact) for the ops that read
// f32 only.
CXR_KERNEL void cast_f32_to_bf16(const float* __restrict__ a, bf16* __restrict__ out, u32 n) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) store(out, i, a[i]);
}
CXR_EXPORT(cast_f32_to_bf16)

CXR_KERNEL void cast_bf16_to_f32(const bf16* __restrict__ a, float* __restrict__ out, u32 n) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) out[i] = load(a, i);
}
CXR_EXPORT(cast_bf16_to_f32)

// Up to WORD_CHUNK words of small constant data (a kernel's table), carried in the launch's own arguments:
// how a graph capture, which cannot copy from the host, still writes one (the capture bakes the words in).
// Mirrored by WordChunk in src/backend/cuda_native/elementwise.rs.
#define WORD_CHUNK 256
struct WordChunk {
    u32 w[WORD_CHUNK];
};

CXR_KERNEL void write_words(u32* __restrict__ dst, u32 n, WordChunk c) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) dst[i] = c.w[i];
}
CXR_EXPORT(write_words)

// partial[block] = Σ of this block's grid-stride share of x; the host adds the partials in f64.
CXR_KERNEL void sum_partials(const float* __restrict__ x, float* __restrict__ partial, u32 n) {
    __shared__ float scratch[CXR_BLOCK / CXR_WARP];
    float acc = 0.0f;
    for (u32 i = grid_start(); i < n; i += grid_stride()) acc += x[i];
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}
CXR_EXPORT(sum_partials)
