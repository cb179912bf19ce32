// Losses with mean reduction (nn.BCELoss, nn.BCEWithLogitsLoss, F.cross_entropy) and WGAN-GP's penalty head,
// beside kernels/src/cube/loss.rs and src/backend/cpu/loss.rs.
//
// The loss kernels write the gradient (already divided by N) and, per block, the sum of their grid-stride
// share of the loss terms (elements; cross_entropy's rows); the host adds those partials in f64 and divides by N. The penalty head is two
// kernels: the per-sample squared norms (one block per sample), then v = k[s]·g with the per-sample factor
// k = 2λ(‖g‖ − 1)/‖g‖/N (0 where ‖g‖ = 0) that the host forms in f64 from the norms it reports anyway.
#include "common.cuh"

// torch.clamp(log, min=-100), keeping NaN (a diverged model must show a NaN loss).
__device__ __forceinline__ float loss_clamp_log(float v) { return v < -100.0f ? -100.0f : v; }

// Logistic sigmoid that never overflows: exp only of a non-positive argument (NaN stays NaN).
__device__ __forceinline__ float loss_sigmoid(float z) {
    if (z >= 0.0f) return 1.0f / (1.0f + expf(-z));
    const float e = expf(z);
    return e / (1.0f + e);
}

// nn.BCELoss: grad = (p − t)/max(p(1 − p), 1e-12)·inv_n; partial[block] = Σ −(t·ln p + (1 − t)·ln(1 − p)),
// both logs clamped at −100 (so p ∈ {0, 1} stays finite).
CXR_KERNEL void bce(const float* __restrict__ p, const float* __restrict__ t, float* __restrict__ grad,
                    float* __restrict__ partial, u32 n, float inv_n) {
    __shared__ float scratch[CXR_BLOCK / CXR_WARP];
    float acc = 0.0f;
    for (u32 i = grid_start(); i < n; i += grid_stride()) {
        const float pv = p[i], tv = t[i];
        acc -= tv * loss_clamp_log(logf(pv)) + (1.0f - tv) * loss_clamp_log(logf(1.0f - pv));
        grad[i] = (pv - tv) / fmaxf(pv * (1.0f - pv), 1e-12f) * inv_n;
    }
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}
CXR_EXPORT(bce)

// nn.BCEWithLogitsLoss in its overflow-free form max(z, 0) − z·t + ln(1 + e^{−|z|}); grad = (σ(z) − t)·inv_n.
CXR_KERNEL void bce_logits(const float* __restrict__ z, const float* __restrict__ t, float* __restrict__ grad,
                           float* __restrict__ partial, u32 n, float inv_n) {
    __shared__ float scratch[CXR_BLOCK / CXR_WARP];
    float acc = 0.0f;
    for (u32 i = grid_start(); i < n; i += grid_stride()) {
        const float zv = z[i], tv = t[i];
        acc += fmaxf(zv, 0.0f) - zv * tv + log1pf(expf(-fabsf(zv)));
        grad[i] = (loss_sigmoid(zv) - tv) * inv_n;
    }
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}
CXR_EXPORT(bce_logits)

// F.cross_entropy over logits z [rows, k] and class indices `target` [rows], one thread per row (grid-stride):
// with m = z[a] the row's first maximum, r = Σ_{j≠a} e^{z_j − m} and q = Σ_{j≠t} e^{z_j − m}, the row's loss
// is (m − z_t) + log1p(r) (accurate for a confidently right row, whose loss is about r) and its gradient
// e^{z_j − m}/(1 + r)·inv_n, at j = t −q/(1 + r)·inv_n (1 − softmax_t without cancelling);
// partial[block] = Σ of its rows' losses. A NaN logit makes its row's loss and gradient NaN.
CXR_KERNEL void cross_entropy(const float* __restrict__ z, const u32* __restrict__ target, float* __restrict__ grad,
                              float* __restrict__ partial, u32 rows, u32 k, float inv_n) {
    __shared__ float scratch[CXR_BLOCK / CXR_WARP];
    float acc = 0.0f;
    for (u32 row = grid_start(); row < rows; row += grid_stride()) {
        const float* zr = z + row * k;
        float* gr = grad + row * k;
        const u32 t = target[row];
        float m = zr[0];
        u32 a = 0;
        for (u32 j = 1; j < k; ++j) {
            if (zr[j] > m) {
                m = zr[j];
                a = j;
            }
        }
        float r = 0.0f, q = 0.0f;
        for (u32 j = 0; j < k; ++j) {
            const float e = expf(zr[j] - m);
            if (j != a) r += e;
            if (j != t) q += e;
        }
        const float s = 1.0f + r;
        acc += (m - zr[t]) + log1pf(r);
        for (u32 j = 0; j < k; ++j) gr[j] = (j == t ? -q / s : expf(zr[j] - m) / s) * inv_n;
    }
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}
CXR_EXPORT(cross_entropy)

// sq[s] = Σ g[s, :]² for g [samples, per]: one block per sample (Dims::per_group), s = blockIdx.y·gridDim.x +
// blockIdx.x; blocks past the last sample leave whole (no thread of theirs reaches the block sum).
CXR_KERNEL void gp_head_sq_norms(const float* __restrict__ g, float* __restrict__ sq, u32 samples, u32 per) {
    __shared__ float scratch[CXR_BLOCK / CXR_WARP];
    const u32 s = blockIdx.y * gridDim.x + blockIdx.x;
    if (s >= samples) return;
    const float* row = g + (u64)s * per;
    float acc = 0.0f;
    for (u32 j = threadIdx.x; j < per; j += CXR_BLOCK) {
        const float v = row[j];
        acc += v * v;
    }
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) sq[s] = acc;
}
CXR_EXPORT(gp_head_sq_norms)

// One factor per sample from its squared norm, in f64 as crate::backend::host_math::gradient_penalty_factor
// forms it on the host (so the two agree bit for bit): k = 2λ(‖g‖ − 1)/‖g‖/N, 0 where ‖g‖ = 0.
CXR_KERNEL void gp_head_factors(const float* __restrict__ sq, float* __restrict__ k, u32 n, float lambda) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) {
        const double norm = sqrt((double)sq[i]);
        k[i] = norm > 0.0 ? (float)(2.0 * (double)lambda * (norm - 1.0) / norm / (double)n) : 0.0f;
    }
}
CXR_EXPORT(gp_head_factors)

// The penalty's cotangent v = k[i / per]·g (k: one factor per sample, gp_head_factors).
CXR_KERNEL void gp_head_v(const float* __restrict__ g, const float* __restrict__ k, float* __restrict__ v, u32 n, u32 per) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) v[i] = k[i / per] * g[i];
}
CXR_EXPORT(gp_head_v)
