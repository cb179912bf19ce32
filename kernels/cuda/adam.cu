// torch.optim.Adam (no weight decay, no amsgrad): one fused, in-place step over param, grad and both moments,
// beside kernels/src/cube/adam.rs and src/backend/cpu/adam.rs.
#include "common.cuh"

// The scalars every step shares, rounded to f32 once on the host (crate::backend::host_math::AdamScalars;
// mirrored by AdamBetas in src/backend/cuda_native/adam.rs).
struct AdamBetas {
    float b1, b2, one_m_b1, one_m_b2, eps;
};

// The scalars of step t: formed in f64 and rounded to f32 once, on the host (AdamScalars) or by
// adam_step_scale on the device.
struct AdamStepScale {
    float step_size;  // lr / (1 − b1^t)
    float bc2_sqrt;   // √(1 − b2^t)
};

// torch's per-element sequence in f32, in place (the host made each buffer the only holder of its data):
// m ← b1·m + (1−b1)·g; v ← b2·v + (1−b2)·g²; denom = √v / √(1−b2^t) + eps; p ← p − step_size·m/denom.
__device__ __forceinline__ void adam_update(float* __restrict__ param, const float* __restrict__ grad, float* __restrict__ exp_avg,
                                            float* __restrict__ exp_avg_sq, u32 i, const AdamBetas& a, const AdamStepScale& s) {
    const float g = grad[i];
    const float m = a.b1 * exp_avg[i] + a.one_m_b1 * g;
    const float v = a.b2 * exp_avg_sq[i] + a.one_m_b2 * g * g;
    const float denom = sqrtf(v) / s.bc2_sqrt + a.eps;
    param[i] = param[i] - s.step_size * (m / denom);
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
}

// One parameter tensor.
CXR_KERNEL void adam_step(float* __restrict__ param, const float* __restrict__ grad, float* __restrict__ exp_avg,
                          float* __restrict__ exp_avg_sq, u32 n, AdamBetas a, AdamStepScale s) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) adam_update(param, grad, exp_avg, exp_avg_sq, i, a, s);
}
CXR_EXPORT(adam_step)

// An optimizer's step on the device (mirrored by AdamDeviceStep in adam.rs): the count taken so far and the
// scalars of the latest, which adam_step_all reads. On the device so that a captured graph, replayed, takes
// step t+1, t+2, ... where launch arguments would repeat the captured t.
struct AdamDeviceStep {
    AdamStepScale scale;
    u32 t;
    u32 pad;
};

// What adam_step_scale needs (mirrored by AdamScaleArgs in adam.rs): t = 0 means "one past the device's
// count" (a captured step); otherwise the host's count (an eager step).
struct AdamScaleArgs {
    double lr, beta1, beta2;
    u32 t;
    u32 pad;
};

// x^n by squaring, the multiplication order of Rust's f64::powi (compiler-rt's __powidf2), so the device's
// scalars equal the host's bit for bit.
__device__ __forceinline__ double pow_int(double x, int n) {
    double r = 1.0;
    for (int b = n;; x = x * x) {
        if (b & 1) r = r * x;
        b /= 2;
        if (b == 0) break;
    }
    return r;
}

// One thread: counts the step and forms its scalars as AdamScalars::new does (t ≥ 1).
CXR_KERNEL void adam_step_scale(AdamDeviceStep* __restrict__ step, AdamScaleArgs a) {
    if (grid_start() != 0) return;
    const u32 t = a.t != 0 ? a.t : step->t + 1;
    const int ti = t > 0x7fffffffu ? 0x7fffffff : (int)t;
    step->t = t;
    step->scale.step_size = (float)(a.lr / (1.0 - pow_int(a.beta1, ti)));
    step->scale.bc2_sqrt = (float)sqrt(1.0 - pow_int(a.beta2, ti));
}
CXR_EXPORT(adam_step_scale)

// One parameter tensor's addresses and length in adam_step_all's table (mirrored by AdamTensor in
// src/backend/cuda_native/adam.rs).
struct AdamTensor {
    u64 param, grad, exp_avg, exp_avg_sq;
    u32 n, pad;
};

// Every parameter of a model in one launch (PyTorch's foreach Adam): blockIdx.y picks the tensor, x walks it;
// the step's scalars come from adam_step_scale, launched just before.
CXR_KERNEL void adam_step_all(const AdamTensor* __restrict__ table, u32 count, AdamBetas a, const AdamDeviceStep* __restrict__ step) {
    const u32 t = blockIdx.y;
    if (t >= count) return;
    const AdamTensor e = table[t];
    float* p = reinterpret_cast<float*>(e.param);
    const float* g = reinterpret_cast<const float*>(e.grad);
    float* m = reinterpret_cast<float*>(e.exp_avg);
    float* v = reinterpret_cast<float*>(e.exp_avg_sq);
    const AdamStepScale s = step->scale;
    for (u32 i = grid_start(); i < e.n; i += grid_stride()) adam_update(p, g, m, v, i, a, s);
}
CXR_EXPORT(adam_step_all)
