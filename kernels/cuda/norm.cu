// Batch norm (training statistics, apply, eval, backward) and instance norm (forward, backward, forward-mode
// derivative and its reverse pass) over NCHW, beside kernels/src/cube/norm.rs.
//
// Both norms reduce over groups: batch norm a channel over (N, H, W), M = N·H·W elements at
// ((s·C + c)·HW + p); instance norm a plane (n, c) over (H, W), M = HW contiguous elements. Every group
// kernel runs one block of CXR_BLOCK threads per group (Dims::per_group): each thread accumulates a strided
// share of the group in f32, block_sum adds the shares, and every pass that needs a mean subtracts one
// computed in an earlier pass (mean, then centred squares), so no sum cancels. The same block then writes the
// group's elementwise outputs (except batch norm's forward, whose y is a grid-stride map over all of x).
//
// Notation (one group of M elements): μ, r = invstd = 1/√(var + eps) with the biased variance,
// xc = x − μ, x̂ = xc·r, y = γ·x̂ + β.
//
// Storage: the kernels that read the activation x (statistics, apply, eval, backward) are templates
// `<name>_impl<T>` over its element type, defined as `<name>` (f32) and `<name>_bf16` (bf16 storage, y stored
// the same way; dy, dx and every statistic f32). The forward-mode kernels read f32 only.
#include "common.cuh"

// x [N, C, H, W] as the norms see it: N samples of C planes of hw = H·W elements (NormDims in
// src/backend/cuda_native/norm.rs).
struct NormDims {
    u32 n, c, hw;
};

// The group of this block (a channel or a plane): Dims::per_group's x then y.
__device__ __forceinline__ u32 norm_group() { return blockIdx.y * gridDim.x + blockIdx.x; }

// This thread's walk over one channel's elements j = threadIdx.x, +CXR_BLOCK, ... < N·HW as (sample s, pixel
// p), j = s·HW + p, advanced without a division per step; the element is (s·C + ch)·HW + p.
struct NormChannelWalk {
    u32 s, p, ds, dp, hw;
    __device__ __forceinline__ explicit NormChannelWalk(u32 hw_)
        : s(threadIdx.x / hw_), p(threadIdx.x % hw_), ds(CXR_BLOCK / hw_), dp(CXR_BLOCK % hw_), hw(hw_) {}
    __device__ __forceinline__ void next() {
        s += ds;
        p += dp;
        if (p >= hw) {
            p -= hw;
            s += 1;
        }
    }
};

// ------------------------------------------------------------------ batch norm

// A channel's training statistics from its mean and biased variance over mf elements: mean, invstd, and
// PyTorch's running-statistics update r ← (1 − momentum)·r + momentum·stat with the unbiased variance, in
// place (the host made the buffers the only holders of their data; the state stays where a captured graph
// reads it). Thread 0 of the channel's block reads and writes its channel.
__device__ __forceinline__ void batch_norm_store_stats(u32 ch, float mu, float var, float mf, float* __restrict__ run_mean,
                                                       float* __restrict__ run_var, float* __restrict__ mean,
                                                       float* __restrict__ invstd, float eps, float momentum) {
    if (threadIdx.x == 0) {
        mean[ch] = mu;
        invstd[ch] = 1.0f / sqrtf(var + eps);
        run_mean[ch] = (1.0f - momentum) * run_mean[ch] + momentum * mu;
        run_var[ch] = (1.0f - momentum) * run_var[ch] + momentum * (var * (mf / (mf - 1.0f)));
    }
}

// Training statistics, one block per channel, from x itself: the mean, then the centred squares.
template <class T>
__device__ __forceinline__ void batch_norm2d_stats_impl(const T* __restrict__ x, float* __restrict__ run_mean, float* __restrict__ run_var, float* __restrict__ mean, float* __restrict__ invstd, NormDims d, float eps, float momentum){
    __shared__ float scratch[CXR_BLOCK / CXR_WARP];
    const u32 ch = norm_group();
    if (ch >= d.c) return;  // the whole block: no thread reaches a barrier
    const float mf = (float)(d.n * d.hw);

    float acc = 0.0f;
    for (NormChannelWalk k(d.hw); k.s < d.n; k.next()) acc += load(x, (k.s * d.c + ch) * d.hw + k.p);
    const float mu = block_sum(acc, scratch) / mf;

    float sq = 0.0f;
    for (NormChannelWalk k(d.hw); k.s < d.n; k.next()) {
        const float dv = load(x, (k.s * d.c + ch) * d.hw + k.p) - mu;
        sq += dv * dv;
    }
    const float var = block_sum(sq, scratch) / mf;
    batch_norm_store_stats(ch, mu, var, mf, run_mean, run_var, mean, invstd, eps, momentum);
}
CXR_KERNEL void batch_norm2d_stats(const float* __restrict__ x, float* __restrict__ run_mean, float* __restrict__ run_var, float* __restrict__ mean, float* __restrict__ invstd, NormDims d, float eps, float momentum) { batch_norm2d_stats_impl(x, run_mean, run_var, mean, invstd, d, eps, momentum); }
CXR_EXPORT(batch_norm2d_stats)
CXR_KERNEL void batch_norm2d_stats_bf16(const bf16* __restrict__ x, float* __restrict__ run_mean, float* __restrict__ run_var, float* __restrict__ mean, float* __restrict__ invstd, NormDims d, float eps, float momentum) { batch_norm2d_stats_impl(x, run_mean, run_var, mean, invstd, d, eps, momentum); }
CXR_EXPORT(batch_norm2d_stats_bf16)

// The mean and biased variance of mf elements from `count` consecutive partials (count, mean, M2) that a
// convolution's epilogue wrote (conv_tile_stats in conv.cu), without reading the elements: mean =
// Σ nᵢ·meanᵢ / mf, then M2 = Σ M2ᵢ + nᵢ·(meanᵢ − mean)² (Chan et al.), both sums of non-negative or centred
// terms. Every thread of the block calls it.
__device__ __forceinline__ void norm_combine_partials(const float* __restrict__ p, u32 count, float mf, float* scratch, float& mu,
                                                      float& var) {
    float acc = 0.0f;
    for (u32 i = threadIdx.x; i < count; i += CXR_BLOCK) acc += p[3 * i] * p[3 * i + 1];
    mu = block_sum(acc, scratch) / mf;
    float m2 = 0.0f;
    for (u32 i = threadIdx.x; i < count; i += CXR_BLOCK) {
        const float dv = p[3 * i + 1] - mu;
        m2 += p[3 * i + 2] + p[3 * i] * dv * dv;
    }
    var = block_sum(m2, scratch) / mf;
}

// The same statistics, one block per channel, from the `per_row` partials of the channel.
CXR_KERNEL void batch_norm2d_stats_partials(const float* __restrict__ part, u32 per_row, float* __restrict__ run_mean,
                                            float* __restrict__ run_var, float* __restrict__ mean, float* __restrict__ invstd, NormDims d,
                                            float eps, float momentum) {
    __shared__ float scratch[CXR_BLOCK / CXR_WARP];
    const u32 ch = norm_group();
    if (ch >= d.c) return;
    const float mf = (float)(d.n * d.hw);
    float mu, var;
    norm_combine_partials(part + ch * per_row * 3, per_row, mf, scratch, mu, var);
    batch_norm_store_stats(ch, mu, var, mf, run_mean, run_var, mean, invstd, eps, momentum);
}
CXR_EXPORT(batch_norm2d_stats_partials)

// y = act((x − mean[c])·invstd[c]·gamma[c] + beta[c]) over all of x (grid-stride); `act` fuses the ReLU /
// LeakyReLU that follows the norm in the DCGAN (one pass over the activations instead of two).
template <class T>
__device__ __forceinline__ void batch_norm2d_apply_impl(const T* __restrict__ x, const float* __restrict__ mean, const float* __restrict__ invstd, const float* __restrict__ gamma, const float* __restrict__ beta, T* __restrict__ y, NormDims d, FusedAct act){
    const u32 len = d.n * d.c * d.hw;
    for (u32 i = grid_start(); i < len; i += grid_stride()) {
        const u32 ch = (i / d.hw) % d.c;
        store(y, i, fused_act((load(x, i) - mean[ch]) * invstd[ch] * gamma[ch] + beta[ch], act));
    }
}
CXR_KERNEL void batch_norm2d_apply(const float* __restrict__ x, const float* __restrict__ mean, const float* __restrict__ invstd, const float* __restrict__ gamma, const float* __restrict__ beta, float* __restrict__ y, NormDims d, FusedAct act) { batch_norm2d_apply_impl(x, mean, invstd, gamma, beta, y, d, act); }
CXR_EXPORT(batch_norm2d_apply)
CXR_KERNEL void batch_norm2d_apply_bf16(const bf16* __restrict__ x, const float* __restrict__ mean, const float* __restrict__ invstd, const float* __restrict__ gamma, const float* __restrict__ beta, bf16* __restrict__ y, NormDims d, FusedAct act) { batch_norm2d_apply_impl(x, mean, invstd, gamma, beta, y, d, act); }
CXR_EXPORT(batch_norm2d_apply_bf16)

// Eval mode: y = γ·(x − running_mean)/√(running_var + eps) + β (grid-stride).
template <class T>
__device__ __forceinline__ void batch_norm2d_eval_impl(const T* __restrict__ x, const float* __restrict__ run_mean, const float* __restrict__ run_var, const float* __restrict__ gamma, const float* __restrict__ beta, T* __restrict__ y, NormDims d, float eps){
    const u32 len = d.n * d.c * d.hw;
    for (u32 i = grid_start(); i < len; i += grid_stride()) {
        const u32 ch = (i / d.hw) % d.c;
        const float r = 1.0f / sqrtf(run_var[ch] + eps);
        store(y, i, (load(x, i) - run_mean[ch]) * r * gamma[ch] + beta[ch]);
    }
}
CXR_KERNEL void batch_norm2d_eval(const float* __restrict__ x, const float* __restrict__ run_mean, const float* __restrict__ run_var, const float* __restrict__ gamma, const float* __restrict__ beta, float* __restrict__ y, NormDims d, float eps) { batch_norm2d_eval_impl(x, run_mean, run_var, gamma, beta, y, d, eps); }
CXR_EXPORT(batch_norm2d_eval)
CXR_KERNEL void batch_norm2d_eval_bf16(const bf16* __restrict__ x, const float* __restrict__ run_mean, const float* __restrict__ run_var, const float* __restrict__ gamma, const float* __restrict__ beta, bf16* __restrict__ y, NormDims d, float eps) { batch_norm2d_eval_impl(x, run_mean, run_var, gamma, beta, y, d, eps); }
CXR_EXPORT(batch_norm2d_eval_bf16)

// Backward, one block per channel: Σdy and Σdy·xc over the channel, then dx = k·dy + kx·xc + k0 with
// k = γr, k0 = −k·Σdy/M, kx = −k·r²·Σ(dy·xc)/M; dgamma = r·Σ(dy·xc), dbeta = Σdy.
template <class T>
__device__ __forceinline__ void batch_norm2d_bwd_impl(const float* __restrict__ dy, const T* __restrict__ x, const float* __restrict__ gamma, const float* __restrict__ mean, const float* __restrict__ invstd, float* __restrict__ dx, float* __restrict__ dgamma, float* __restrict__ dbeta, NormDims d){
    __shared__ float scratch[CXR_BLOCK / CXR_WARP];
    const u32 ch = norm_group();
    if (ch >= d.c) return;
    const float mf = (float)(d.n * d.hw);
    const float mu = mean[ch], r = invstd[ch];

    float s_dy = 0.0f, s_dyxc = 0.0f;
    for (NormChannelWalk k(d.hw); k.s < d.n; k.next()) {
        const u32 e = (k.s * d.c + ch) * d.hw + k.p;
        const float g = dy[e];
        s_dy += g;
        s_dyxc += g * (load(x, e) - mu);
    }
    const float t_dy = block_sum(s_dy, scratch);
    const float t_dyxc = block_sum(s_dyxc, scratch);

    const float kk = gamma[ch] * r;
    const float k0 = -kk * t_dy / mf;
    const float kx = -kk * r * r * t_dyxc / mf;
    for (NormChannelWalk k(d.hw); k.s < d.n; k.next()) {
        const u32 e = (k.s * d.c + ch) * d.hw + k.p;
        dx[e] = kk * dy[e] + kx * (load(x, e) - mu) + k0;
    }
    if (threadIdx.x == 0) {
        dgamma[ch] = t_dyxc * r;
        dbeta[ch] = t_dy;
    }
}
CXR_KERNEL void batch_norm2d_bwd(const float* __restrict__ dy, const float* __restrict__ x, const float* __restrict__ gamma, const float* __restrict__ mean, const float* __restrict__ invstd, float* __restrict__ dx, float* __restrict__ dgamma, float* __restrict__ dbeta, NormDims d) { batch_norm2d_bwd_impl(dy, x, gamma, mean, invstd, dx, dgamma, dbeta, d); }
CXR_EXPORT(batch_norm2d_bwd)
CXR_KERNEL void batch_norm2d_bwd_bf16(const float* __restrict__ dy, const bf16* __restrict__ x, const float* __restrict__ gamma, const float* __restrict__ mean, const float* __restrict__ invstd, float* __restrict__ dx, float* __restrict__ dgamma, float* __restrict__ dbeta, NormDims d) { batch_norm2d_bwd_impl(dy, x, gamma, mean, invstd, dx, dgamma, dbeta, d); }
CXR_EXPORT(batch_norm2d_bwd_bf16)

// ------------------------------------------------------------------ instance norm

// Plane pl's output y = act((x − μ)·γr + β) and its statistics, from its mean and biased variance.
template <class T>
__device__ __forceinline__ void instance_norm_apply(const T* __restrict__ x, const float* __restrict__ gamma,
                                                    const float* __restrict__ beta, T* __restrict__ y, float* __restrict__ mean,
                                                    float* __restrict__ invstd, NormDims d, u32 pl, float mu, float var, float eps,
                                                    FusedAct act) {
    const u32 hw = d.hw, base = pl * hw, ch = pl % d.c;
    const float r = 1.0f / sqrtf(var + eps);
    const float g = gamma[ch] * r, b = beta[ch];
    for (u32 j = threadIdx.x; j < hw; j += CXR_BLOCK) store(y, base + j, fused_act((load(x, base + j) - mu) * g + b, act));
    if (threadIdx.x == 0) {
        mean[pl] = mu;
        invstd[pl] = r;
    }
}

// Forward, one block per plane (n, c): mean, variance (two passes over x) and y = act(normalized) (`act`
// fuses the critic's LeakyReLU).
template <class T>
__device__ __forceinline__ void instance_norm2d_fwd_impl(const T* __restrict__ x, const float* __restrict__ gamma, const float* __restrict__ beta, T* __restrict__ y, float* __restrict__ mean, float* __restrict__ invstd, NormDims d, float eps, FusedAct act){
    __shared__ float scratch[CXR_BLOCK / CXR_WARP];
    const u32 pl = norm_group();
    if (pl >= d.n * d.c) return;
    const u32 hw = d.hw, base = pl * hw;
    const float mf = (float)hw;

    float acc = 0.0f;
    for (u32 j = threadIdx.x; j < hw; j += CXR_BLOCK) acc += load(x, base + j);
    const float mu = block_sum(acc, scratch) / mf;

    float sq = 0.0f;
    for (u32 j = threadIdx.x; j < hw; j += CXR_BLOCK) {
        const float dv = load(x, base + j) - mu;
        sq += dv * dv;
    }
    instance_norm_apply(x, gamma, beta, y, mean, invstd, d, pl, mu, block_sum(sq, scratch) / mf, eps, act);
}
CXR_KERNEL void instance_norm2d_fwd(const float* __restrict__ x, const float* __restrict__ gamma, const float* __restrict__ beta, float* __restrict__ y, float* __restrict__ mean, float* __restrict__ invstd, NormDims d, float eps, FusedAct act) { instance_norm2d_fwd_impl(x, gamma, beta, y, mean, invstd, d, eps, act); }
CXR_EXPORT(instance_norm2d_fwd)
CXR_KERNEL void instance_norm2d_fwd_bf16(const bf16* __restrict__ x, const float* __restrict__ gamma, const float* __restrict__ beta, bf16* __restrict__ y, float* __restrict__ mean, float* __restrict__ invstd, NormDims d, float eps, FusedAct act) { instance_norm2d_fwd_impl(x, gamma, beta, y, mean, invstd, d, eps, act); }
CXR_EXPORT(instance_norm2d_fwd_bf16)

// The same, with the statistics from the producing conv2d's epilogue instead of two passes over x: plane
// (s, c) is the seg_per_plane partials of channel c's row (`per_row` of them) from column s·seg_per_plane.
template <class T>
__device__ __forceinline__ void instance_norm2d_fwd_partials_impl(const T* __restrict__ x, const float* __restrict__ part, u32 per_row, u32 seg_per_plane, const float* __restrict__ gamma, const float* __restrict__ beta, T* __restrict__ y, float* __restrict__ mean, float* __restrict__ invstd, NormDims d, float eps, FusedAct act){
    __shared__ float scratch[CXR_BLOCK / CXR_WARP];
    const u32 pl = norm_group();
    if (pl >= d.n * d.c) return;
    const u32 s = pl / d.c, ch = pl % d.c;
    float mu, var;
    norm_combine_partials(part + (ch * per_row + s * seg_per_plane) * 3, seg_per_plane, (float)d.hw, scratch, mu, var);
    instance_norm_apply(x, gamma, beta, y, mean, invstd, d, pl, mu, var, eps, act);
}
CXR_KERNEL void instance_norm2d_fwd_partials(const float* __restrict__ x, const float* __restrict__ part, u32 per_row, u32 seg_per_plane, const float* __restrict__ gamma, const float* __restrict__ beta, float* __restrict__ y, float* __restrict__ mean, float* __restrict__ invstd, NormDims d, float eps, FusedAct act) { instance_norm2d_fwd_partials_impl(x, part, per_row, seg_per_plane, gamma, beta, y, mean, invstd, d, eps, act); }
CXR_EXPORT(instance_norm2d_fwd_partials)
CXR_KERNEL void instance_norm2d_fwd_partials_bf16(const bf16* __restrict__ x, const float* __restrict__ part, u32 per_row, u32 seg_per_plane, const float* __restrict__ gamma, const float* __restrict__ beta, bf16* __restrict__ y, float* __restrict__ mean, float* __restrict__ invstd, NormDims d, float eps, FusedAct act) { instance_norm2d_fwd_partials_impl(x, part, per_row, seg_per_plane, gamma, beta, y, mean, invstd, d, eps, act); }
CXR_EXPORT(instance_norm2d_fwd_partials_bf16)

// Backward, one block per plane: dx as batch norm's with the plane as the group, and the plane's
// dgamma / dbeta shares r·Σ(dy·xc), Σdy (summed over the batch by instance_norm2d_channel_sums).
template <class T>
__device__ __forceinline__ void instance_norm2d_bwd_planes_impl(const float* __restrict__ dy, const T* __restrict__ x, const float* __restrict__ gamma, const float* __restrict__ mean, const float* __restrict__ invstd, float* __restrict__ dx, float* __restrict__ dgamma_part, float* __restrict__ dbeta_part, NormDims d){
    __shared__ float scratch[CXR_BLOCK / CXR_WARP];
    const u32 pl = norm_group();
    if (pl >= d.n * d.c) return;
    const u32 hw = d.hw, base = pl * hw;
    const float mf = (float)hw;
    const float mu = mean[pl], r = invstd[pl];

    float s_dy = 0.0f, s_dyxc = 0.0f;
    for (u32 j = threadIdx.x; j < hw; j += CXR_BLOCK) {
        const float g = dy[base + j];
        s_dy += g;
        s_dyxc += g * (load(x, base + j) - mu);
    }
    const float t_dy = block_sum(s_dy, scratch);
    const float t_dyxc = block_sum(s_dyxc, scratch);

    const float k = gamma[pl % d.c] * r;
    const float k0 = -k * t_dy / mf;
    const float kx = -k * r * r * t_dyxc / mf;
    for (u32 j = threadIdx.x; j < hw; j += CXR_BLOCK) dx[base + j] = k * dy[base + j] + kx * (load(x, base + j) - mu) + k0;
    if (threadIdx.x == 0) {
        dgamma_part[pl] = t_dyxc * r;
        dbeta_part[pl] = t_dy;
    }
}
CXR_KERNEL void instance_norm2d_bwd_planes(const float* __restrict__ dy, const float* __restrict__ x, const float* __restrict__ gamma, const float* __restrict__ mean, const float* __restrict__ invstd, float* __restrict__ dx, float* __restrict__ dgamma_part, float* __restrict__ dbeta_part, NormDims d) { instance_norm2d_bwd_planes_impl(dy, x, gamma, mean, invstd, dx, dgamma_part, dbeta_part, d); }
CXR_EXPORT(instance_norm2d_bwd_planes)
CXR_KERNEL void instance_norm2d_bwd_planes_bf16(const float* __restrict__ dy, const bf16* __restrict__ x, const float* __restrict__ gamma, const float* __restrict__ mean, const float* __restrict__ invstd, float* __restrict__ dx, float* __restrict__ dgamma_part, float* __restrict__ dbeta_part, NormDims d) { instance_norm2d_bwd_planes_impl(dy, x, gamma, mean, invstd, dx, dgamma_part, dbeta_part, d); }
CXR_EXPORT(instance_norm2d_bwd_planes_bf16)

// Per-channel sums of per-plane shares [N, C]: out[c] = Σₙ part[n·C + c], for dgamma and dbeta at once. One
// thread per channel summing the batch in order (deterministic; the batch is short).
CXR_KERNEL void instance_norm2d_channel_sums(const float* __restrict__ gamma_part, const float* __restrict__ beta_part,
                                             float* __restrict__ dgamma, float* __restrict__ dbeta, u32 n, u32 c) {
    for (u32 ch = grid_start(); ch < c; ch += grid_stride()) {
        float sg = 0.0f, sb = 0.0f;
        for (u32 b = 0; b < n; ++b) {
            sg += gamma_part[b * c + ch];
            sb += beta_part[b * c + ch];
        }
        dgamma[ch] = sg;
        dbeta[ch] = sb;
    }
}
CXR_EXPORT(instance_norm2d_channel_sums)

// Forward-mode derivative, one block per plane: ẏ = γ·(r·(ẋ − mean ẋ) − x̂·r·mean(x̂ ẋ))
// = k·(ẋ − mean ẋ) + kx·xc with k = γr, kx = −k·r²·P/M, P = Σ xc·ẋ.
CXR_KERNEL void instance_norm2d_jvp_fwd(const float* __restrict__ x, const float* __restrict__ x_dot, const float* __restrict__ gamma,
                                        const float* __restrict__ mean, const float* __restrict__ invstd, float* __restrict__ y_dot,
                                        NormDims d) {
    __shared__ float scratch[CXR_BLOCK / CXR_WARP];
    const u32 pl = norm_group();
    if (pl >= d.n * d.c) return;
    const u32 hw = d.hw, base = pl * hw;
    const float mf = (float)hw;
    const float mu = mean[pl], r = invstd[pl];

    float s_xd = 0.0f, p = 0.0f;
    for (u32 j = threadIdx.x; j < hw; j += CXR_BLOCK) {
        const float dv = x_dot[base + j];
        s_xd += dv;
        p += (x[base + j] - mu) * dv;
    }
    const float mean_xd = block_sum(s_xd, scratch) / mf;
    const float t_p = block_sum(p, scratch);

    const float k = gamma[pl % d.c] * r;
    const float kx = -k * r * r * t_p / mf;
    for (u32 j = threadIdx.x; j < hw; j += CXR_BLOCK) y_dot[base + j] = k * (x_dot[base + j] - mean_xd) + kx * (x[base + j] - mu);
}
CXR_EXPORT(instance_norm2d_jvp_fwd)

// The reverse pass through instance norm's (y, ẏ) pair given cotangents ȳ, ẏ̄, one block per plane.
//
// Pass 1: means of ȳ, ẏ̄, ẋ. Pass 2, centred: Σȳ·xc, Σẏ̄·xc, A' = Σẏ̄·(ẋ − mean ẋ), P = Σxc·ẋ. With
// A = γA', Q = γΣẏ̄·xc (the oracle's notation, reference/src/norm.rs):
//   x̄  = k(ȳ − mean ȳ) + c_xc·xc + c_xd·(ẋ − mean ẋ) + c_ydb·(ẏ̄ − mean ẏ̄),
//        c_xc = −k r² Σȳxc/M − r³A/M + 3r⁵PQ/M², c_xd = −r³Q/M, c_ydb = −r³Pγ/M;
//   ẋ̄ = k(ẏ̄ − mean ẏ̄) − k r² Σẏ̄xc/M · xc;
// and the plane's shares dgamma = r Σȳxc + r A' − r³ P Σẏ̄xc/M, dbeta = Σȳ.
CXR_KERNEL void instance_norm2d_jvp_bwd_planes(const float* __restrict__ x, const float* __restrict__ x_dot,
                                               const float* __restrict__ gamma, const float* __restrict__ mean,
                                               const float* __restrict__ invstd, const float* __restrict__ y_bar,
                                               const float* __restrict__ y_dot_bar, float* __restrict__ x_bar,
                                               float* __restrict__ x_dot_bar, float* __restrict__ dgamma_part,
                                               float* __restrict__ dbeta_part, NormDims d) {
    __shared__ float scratch[CXR_BLOCK / CXR_WARP];
    const u32 pl = norm_group();
    if (pl >= d.n * d.c) return;
    const u32 hw = d.hw, base = pl * hw;
    const float mf = (float)hw;
    const float mu = mean[pl], r = invstd[pl], gm = gamma[pl % d.c];

    // Pass 1: the means.
    float s_yb = 0.0f, s_ydb = 0.0f, s_xd = 0.0f;
    for (u32 j = threadIdx.x; j < hw; j += CXR_BLOCK) {
        s_yb += y_bar[base + j];
        s_ydb += y_dot_bar[base + j];
        s_xd += x_dot[base + j];
    }
    const float t_yb = block_sum(s_yb, scratch);
    const float mean_yb = t_yb / mf;
    const float mean_ydb = block_sum(s_ydb, scratch) / mf;
    const float mean_xd = block_sum(s_xd, scratch) / mf;

    // Pass 2: centred sums.
    float s_ybxc = 0.0f, s_ydbxc = 0.0f, a_raw = 0.0f, p = 0.0f;
    for (u32 j = threadIdx.x; j < hw; j += CXR_BLOCK) {
        const float xc = x[base + j] - mu;
        const float xd = x_dot[base + j];
        const float ydb = y_dot_bar[base + j];
        s_ybxc += y_bar[base + j] * xc;
        s_ydbxc += ydb * xc;
        a_raw += ydb * (xd - mean_xd);
        p += xc * xd;
    }
    const float t_ybxc = block_sum(s_ybxc, scratch);
    const float t_ydbxc = block_sum(s_ydbxc, scratch);
    const float t_a = block_sum(a_raw, scratch);
    const float t_p = block_sum(p, scratch);

    const float a = gm * t_a;
    const float q = gm * t_ydbxc;
    const float r2 = r * r, r3 = r2 * r, r5 = r3 * r2;
    const float k = gm * r;
    const float c_xc = -k * r2 * t_ybxc / mf - r3 * a / mf + 3.0f * r5 * t_p * q / (mf * mf);
    const float c_xd = -r3 * q / mf;
    const float c_ydb = -r3 * t_p * gm / mf;
    const float d_xc = -k * r2 * t_ydbxc / mf;

    for (u32 j = threadIdx.x; j < hw; j += CXR_BLOCK) {
        const float xc = x[base + j] - mu;
        const float dxd = x_dot[base + j] - mean_xd;
        const float ydbc = y_dot_bar[base + j] - mean_ydb;
        x_bar[base + j] = k * (y_bar[base + j] - mean_yb) + c_xc * xc + c_xd * dxd + c_ydb * ydbc;
        x_dot_bar[base + j] = k * ydbc + d_xc * xc;
    }
    if (threadIdx.x == 0) {
        dgamma_part[pl] = r * t_ybxc + r * t_a - r3 * t_p * t_ydbxc / mf;
        dbeta_part[pl] = t_yb;
    }
}
CXR_EXPORT(instance_norm2d_jvp_bwd_planes)
