// Activations and their backward passes (relu, leaky_relu, tanh, sigmoid), beside kernels/src/cube/act.rs and
// src/backend/cpu/act.rs, with PyTorch's conventions: relu / leaky_relu test `x > 0` (so the derivative at
// exactly 0 is 0, resp. `slope`); tanh and sigmoid differentiate through their output y, as autograd does.
// One kernel per activation, direction and storage type, named after them; grid-stride loops of CXR_BLOCK threads. And dropout
// with the caller's keep-mask (its own backward).
#include "common.cuh"

// Logistic sigmoid that never overflows: exp only of a non-positive argument (NaN stays NaN).
__device__ __forceinline__ float act_sigmoid_f32(float x) {
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    const float e = expf(x);
    return e / (1.0f + e);
}

// Each activation for both storage types: NAME reads and writes f32, NAME_bf16 bf16 (--precision bf16, whose
// activations are stored as bf16); the backward's dy and dx are gradients, f32 in both.
template <class T, class F>
__device__ __forceinline__ void act_map(const T* __restrict__ x, T* __restrict__ y, u32 n, F f) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) store(y, i, f(load(x, i)));
}
// dx = f(s, dy) elementwise, s the saved input x or output y.
template <class T, class F>
__device__ __forceinline__ void act_map_bwd(const T* __restrict__ s, const float* __restrict__ dy, float* __restrict__ dx, u32 n, F f) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) dx[i] = f(load(s, i), dy[i]);
}

#define ACT_FWD(NAME, F)                                                                                         \
    CXR_KERNEL void NAME(const float* __restrict__ x, float* __restrict__ y, u32 n) { act_map(x, y, n, F); }     \
    CXR_EXPORT(NAME)                                                                                             \
    CXR_KERNEL void NAME##_bf16(const bf16* __restrict__ x, bf16* __restrict__ y, u32 n) { act_map(x, y, n, F); } \
    CXR_EXPORT(NAME##_bf16)
#define ACT_BWD(NAME, F)                                                                                           \
    CXR_KERNEL void NAME(const float* __restrict__ s, const float* __restrict__ dy, float* __restrict__ dx, u32 n) { \
        act_map_bwd(s, dy, dx, n, F);                                                                              \
    }                                                                                                              \
    CXR_EXPORT(NAME)                                                                                               \
    CXR_KERNEL void NAME##_bf16(const bf16* __restrict__ s, const float* __restrict__ dy, float* __restrict__ dx, u32 n) { \
        act_map_bwd(s, dy, dx, n, F);                                                                              \
    }                                                                                                              \
    CXR_EXPORT(NAME##_bf16)
// leaky_relu's, with its slope as the last argument.
#define ACT_FWD_SLOPE(NAME, F)                                                                                        \
    CXR_KERNEL void NAME(const float* __restrict__ x, float* __restrict__ y, u32 n, float slope) { act_map(x, y, n, F); } \
    CXR_EXPORT(NAME)                                                                                                  \
    CXR_KERNEL void NAME##_bf16(const bf16* __restrict__ x, bf16* __restrict__ y, u32 n, float slope) {               \
        act_map(x, y, n, F);                                                                                          \
    }                                                                                                                 \
    CXR_EXPORT(NAME##_bf16)
#define ACT_BWD_SLOPE(NAME, F)                                                                                                 \
    CXR_KERNEL void NAME(const float* __restrict__ s, const float* __restrict__ dy, float* __restrict__ dx, u32 n, float slope) { \
        act_map_bwd(s, dy, dx, n, F);                                                                                          \
    }                                                                                                                          \
    CXR_EXPORT(NAME)                                                                                                           \
    CXR_KERNEL void NAME##_bf16(const bf16* __restrict__ s, const float* __restrict__ dy, float* __restrict__ dx, u32 n,        \
                                float slope) {                                                                                 \
        act_map_bwd(s, dy, dx, n, F);                                                                                          \
    }                                                                                                                          \
    CXR_EXPORT(NAME##_bf16)

// y = relu(x): 0 unless x > 0; NaN passes through, as torch.relu (a diverged network must not look healthy).
ACT_FWD(act_relu, [](float v) { return relu_value(v); })
// y = leaky_relu(x) = x where x > 0, slope·x elsewhere.
ACT_FWD_SLOPE(act_leaky_relu, [=](float v) { return leaky_relu_value(v, slope); })
// y = tanh(x) (CUDA's tanhf: a few ulps, ±1 in saturation, NaN kept).
ACT_FWD(act_tanh, [](float v) { return tanhf(v); })
// y = σ(x).
ACT_FWD(act_sigmoid, [](float v) { return act_sigmoid_f32(v); })

// dx = dy where x > 0, else 0.
ACT_BWD(act_relu_bwd, [](float x, float g) { return x > 0.0f ? g : 0.0f; })
// dx = dy where x > 0, else slope·dy.
ACT_BWD_SLOPE(act_leaky_relu_bwd, [=](float x, float g) { return x > 0.0f ? g : slope * g; })
// dx = dy·(1 − y²) from y = tanh(x).
ACT_BWD(act_tanh_bwd, [](float y, float g) { return g * (1.0f - y * y); })
// dx = dy·y·(1 − y) from y = σ(x).
ACT_BWD(act_sigmoid_bwd, [](float y, float g) { return g * y * (1.0f - y); })

// F.dropout with the caller's keep-mask: y = x·(mask·scale), scale = 1/(1 − p) rounded to f32 once on the host.
// Also dropout's backward, applied to dy with the same mask.
CXR_KERNEL void dropout(const float* __restrict__ x, const float* __restrict__ mask, float* __restrict__ y, u32 n, float scale) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) y[i] = x[i] * (mask[i] * scale);
}
CXR_EXPORT(dropout)
