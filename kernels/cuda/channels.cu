// Channel-wise ops of the Inception blocks, beside kernels/src/cube/channels.rs: concat_channels
// (torch.cat(dim=1), one launch per input copying its planes into their channel slot), its backward
// (torch.split(dim=1), one launch per piece copying its channel slot back out) and affine_channels
// (eval-mode BatchNorm folded to x ← scale[c]·x + shift[c] in place, fused with a BasicConv2d's ReLU).
// Grid-stride loops, CXR_BLOCK threads per block.
#include "common.cuh"

// Copies x [N, c, hw] (n = N·c·hw elements) into channels [offset, offset + c) of y [N, c_total, hw]; f32,
// or bf16 storage (`_bf16`).
template <class T>
__device__ __forceinline__ void concat_channels_impl(const T* __restrict__ x, T* __restrict__ y, u32 n, u32 c, u32 c_total, u32 offset,
                                                     u32 hw) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) {
        const u32 plane = i / hw, b = plane / c, ch = plane % c;
        y[(b * c_total + offset + ch) * hw + i % hw] = x[i];
    }
}
CXR_KERNEL void concat_channels(const float* __restrict__ x, float* __restrict__ y, u32 n, u32 c, u32 c_total, u32 offset, u32 hw) {
    concat_channels_impl(x, y, n, c, c_total, offset, hw);
}
CXR_EXPORT(concat_channels)
CXR_KERNEL void concat_channels_bf16(const bf16* __restrict__ x, bf16* __restrict__ y, u32 n, u32 c, u32 c_total, u32 offset, u32 hw) {
    concat_channels_impl(x, y, n, c, c_total, offset, hw);
}
CXR_EXPORT(concat_channels_bf16)

// concat_channels' backward: dx [N, c, hw] (n = N·c·hw elements) ← channels [offset, offset + c) of
// dy [N, c_total, hw].
CXR_KERNEL void concat_channels_bwd(const float* __restrict__ dy, float* __restrict__ dx, u32 n, u32 c, u32 c_total, u32 offset,
                                    u32 hw) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) {
        const u32 plane = i / hw, b = plane / c, ch = plane % c;
        dx[i] = dy[(b * c_total + offset + ch) * hw + i % hw];
    }
}
CXR_EXPORT(concat_channels_bwd)

// x [N, c, hw] (n elements) ← scale[ch]·x + shift[ch], then `v < 0 ? 0 : v` when relu (NaN stays NaN, as
// torch.relu and the cpu backend); x f32, or bf16 storage (`_bf16`).
template <class T>
__device__ __forceinline__ void affine_channels_impl(T* x, const float* __restrict__ scale, const float* __restrict__ shift, u32 n, u32 c,
                                                     u32 hw, u32 relu) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) {
        const u32 ch = (i / hw) % c;
        const float v = scale[ch] * load(x, i) + shift[ch];
        store(x, i, relu && v < 0.0f ? 0.0f : v);
    }
}
CXR_KERNEL void affine_channels(float* x, const float* __restrict__ scale, const float* __restrict__ shift, u32 n, u32 c, u32 hw, u32 relu) {
    affine_channels_impl(x, scale, shift, n, c, hw, relu);
}
CXR_EXPORT(affine_channels)
CXR_KERNEL void affine_channels_bf16(bf16* x, const float* __restrict__ scale, const float* __restrict__ shift, u32 n, u32 c, u32 hw,
                                     u32 relu) {
    affine_channels_impl(x, scale, shift, n, c, hw, relu);
}
CXR_EXPORT(affine_channels_bf16)
