// Activations and their backward passes (relu, leaky_relu, tanh, sigmoid), beside kernels/src/cube/act.rs and
// src/backend/cpu/act.rs, with PyTorch's conventions: relu / leaky_relu test `x > 0` (so the derivative at
// exactly 0 is 0, resp. `slope`); tanh and sigmoid differentiate through their output y, as autograd does.
// One kernel per activation and direction, named after it; grid-stride loops of CXR_BLOCK threads. And dropout
// with the caller's keep-mask (its own backward).
#include "common.cuh"

// Logistic sigmoid that never overflows: exp only of a non-positive argument (NaN stays NaN).
__device__ __forceinline__ float act_sigmoid_f32(float x) {
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    const float e = expf(x);
    return e / (1.0f + e);
}

// y = relu(x): 0 unless x > 0; NaN passes through, as torch.relu (a diverged network must not look healthy).
CXR_KERNEL void act_relu(const float* __restrict__ x, float* __restrict__ y, u32 n) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) {
        y[i] = relu_value(x[i]);
    }
}
CXR_EXPORT(act_relu)

// y = leaky_relu(x) = x where x > 0, slope·x elsewhere.
CXR_KERNEL void act_leaky_relu(const float* __restrict__ x, float* __restrict__ y, u32 n, float slope) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) {
        y[i] = leaky_relu_value(x[i], slope);
    }
}
CXR_EXPORT(act_leaky_relu)

// y = tanh(x) (CUDA's tanhf: a few ulps, ±1 in saturation, NaN kept).
CXR_KERNEL void act_tanh(const float* __restrict__ x, float* __restrict__ y, u32 n) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) y[i] = tanhf(x[i]);
}
CXR_EXPORT(act_tanh)

// y = σ(x).
CXR_KERNEL void act_sigmoid(const float* __restrict__ x, float* __restrict__ y, u32 n) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) y[i] = act_sigmoid_f32(x[i]);
}
CXR_EXPORT(act_sigmoid)

// dx = dy where x > 0, else 0.
CXR_KERNEL void act_relu_bwd(const float* __restrict__ x, const float* __restrict__ dy, float* __restrict__ dx, u32 n) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}
CXR_EXPORT(act_relu_bwd)

// dx = dy where x > 0, else slope·dy.
CXR_KERNEL void act_leaky_relu_bwd(const float* __restrict__ x, const float* __restrict__ dy, float* __restrict__ dx, u32 n,
                                   float slope) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) {
        const float g = dy[i];
        dx[i] = x[i] > 0.0f ? g : slope * g;
    }
}
CXR_EXPORT(act_leaky_relu_bwd)

// dx = dy·(1 − y²) from y = tanh(x).
CXR_KERNEL void act_tanh_bwd(const float* __restrict__ y, const float* __restrict__ dy, float* __restrict__ dx, u32 n) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) {
        const float t = y[i];
        dx[i] = dy[i] * (1.0f - t * t);
    }
}
CXR_EXPORT(act_tanh_bwd)

// dx = dy·y·(1 − y) from y = σ(x).
CXR_KERNEL void act_sigmoid_bwd(const float* __restrict__ y, const float* __restrict__ dy, float* __restrict__ dx, u32 n) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) {
        const float s = y[i];
        dx[i] = dy[i] * s * (1.0f - s);
    }
}
CXR_EXPORT(act_sigmoid_bwd)

// F.dropout with the caller's keep-mask: y = x·(mask·scale), scale = 1/(1 − p) rounded to f32 once on the host.
// Also dropout's backward, applied to dy with the same mask.
CXR_KERNEL void dropout(const float* __restrict__ x, const float* __restrict__ mask, float* __restrict__ y, u32 n, float scale) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) y[i] = x[i] * (mask[i] * scale);
}
CXR_EXPORT(dropout)
