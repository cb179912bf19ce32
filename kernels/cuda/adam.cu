// torch.optim.Adam (no weight decay, no amsgrad): one fused, in-place step over param, grad and both moments,
// beside kernels/src/cube/adam.rs and src/backend/cpu/adam.rs.
#include "common.cuh"

// One step's scalars, formed on the host in f64 and rounded to f32 once (crate::backend::host_math::AdamScalars;
// mirrored by AdamArgs in src/backend/cuda_native/adam.rs).
struct AdamArgs {
    float b1, b2, one_m_b1, one_m_b2;
    float step_size;  // lr / (1 − b1^t)
    float bc2_sqrt;   // √(1 − b2^t)
    float eps;
};

// torch's per-element sequence in f32, in place (the host made each buffer the only holder of its data):
// m ← b1·m + (1−b1)·g; v ← b2·v + (1−b2)·g²; denom = √v / √(1−b2^t) + eps; p ← p − step_size·m/denom.
__device__ __forceinline__ void adam_update(float* __restrict__ param, const float* __restrict__ grad, float* __restrict__ exp_avg,
                                            float* __restrict__ exp_avg_sq, u32 i, const AdamArgs& a) {
    const float g = grad[i];
    const float m = a.b1 * exp_avg[i] + a.one_m_b1 * g;
    const float v = a.b2 * exp_avg_sq[i] + a.one_m_b2 * g * g;
    const float denom = sqrtf(v) / a.bc2_sqrt + a.eps;
    param[i] = param[i] - a.step_size * (m / denom);
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
}

// One parameter tensor.
CXR_KERNEL void adam_step(float* __restrict__ param, const float* __restrict__ grad, float* __restrict__ exp_avg,
                          float* __restrict__ exp_avg_sq, u32 n, AdamArgs a) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) adam_update(param, grad, exp_avg, exp_avg_sq, i, a);
}
CXR_EXPORT(adam_step)

// One parameter tensor's addresses and length in adam_step_all's table (mirrored by AdamTensor in
// src/backend/cuda_native/adam.rs).
struct AdamTensor {
    u64 param, grad, exp_avg, exp_avg_sq;
    u32 n, pad;
};

// Every parameter of a model in one launch (PyTorch's foreach Adam): blockIdx.y picks the tensor, x walks it.
CXR_KERNEL void adam_step_all(const AdamTensor* __restrict__ table, u32 count, AdamArgs a) {
    const u32 t = blockIdx.y;
    if (t >= count) return;
    const AdamTensor e = table[t];
    float* p = reinterpret_cast<float*>(e.param);
    const float* g = reinterpret_cast<const float*>(e.grad);
    float* m = reinterpret_cast<float*>(e.exp_avg);
    float* v = reinterpret_cast<float*>(e.exp_avg_sq);
    for (u32 i = grid_start(); i < e.n; i += grid_stride()) adam_update(p, g, m, v, i, a);
}
CXR_EXPORT(adam_step_all)
