// Bilinear resize, F.interpolate(mode='bilinear', align_corners=False), beside kernels/src/cube/resize.rs:
// one thread per output, grid-stride. The source taps of every output row and column come from the host
// (cxr_gan::backend::host_math::bilinear_taps: PyTorch's src = max((d + 0.5)·in/out − 0.5, 0) in f64).
#include "common.cuh"

// x [planes, h, w] → y [planes, out_h, out_w] (n outputs).
struct ResizeGeom {
    u32 n, h, w, out_h, out_w;
};

// `taps` holds 4 floats per output row, then per output column: i0 and i1 as their u32 bits, then λ0, λ1.
// y = λ0h·(λ0w·x00 + λ1w·x01) + λ1h·(λ0w·x10 + λ1w·x11), PyTorch's (and the cpu backend's) order.
CXR_KERNEL void resize_bilinear(const float* __restrict__ x, const float* __restrict__ taps, float* __restrict__ y, ResizeGeom g) {
    for (u32 i = grid_start(); i < g.n; i += grid_stride()) {
        const u32 plane = i / (g.out_h * g.out_w), q = i % (g.out_h * g.out_w);
        const float* th = taps + 4 * (q / g.out_w);
        const float* tw = taps + 4 * (g.out_h + q % g.out_w);
        const float* xp = x + plane * g.h * g.w;
        const float* r0 = xp + (u32)__float_as_int(th[0]) * g.w;
        const float* r1 = xp + (u32)__float_as_int(th[1]) * g.w;
        const u32 c0 = (u32)__float_as_int(tw[0]), c1 = (u32)__float_as_int(tw[1]);
        const float l0w = tw[2], l1w = tw[3];
        y[i] = th[2] * (l0w * r0[c0] + l1w * r0[c1]) + th[3] * (l0w * r1[c0] + l1w * r1[c1]);
    }
}
CXR_EXPORT(resize_bilinear)
