// InceptionV3's pools: avg_pool2d and max_pool2d (one thread per output, grid-stride, each looping over its
// window clipped to x; Inception's windows are 3×3) and the global average pool (one block per plane,
// block_sum), beside kernels/src/cube/pool.rs and src/backend/cpu/pool.rs. Their backward passes are gathers:
// one thread per INPUT element summing over the output windows that contain it, in the windows' row-major
// order (deterministic, no atomics).
#include "common.cuh"

// x [planes, h, w] pooled to y [planes, ho, wo] by a kernel_h × kernel_w window with stride and zero-based
// padding (the host's PoolGeom in src/backend/cuda_native/pool.rs). n: the elements a launch writes, one per
// thread of the grid-stride loop: y's (planes·ho·wo) for the forwards, dx's (planes·h·w) for the backwards.
struct PoolGeom {
    u32 n, h, w, ho, wo;
    u32 kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
};

// The window of output (oh, ow) along one axis: it starts at o·s in x padded by p, ends at
// min(start + k, len + 2p); [lo, hi) is that clipped to x, `padded` its extent in the padded x.
struct PoolSpan {
    u32 lo, hi, padded;
};

__device__ __forceinline__ u32 pool_min(u32 a, u32 b) { return a < b ? a : b; }

__device__ __forceinline__ PoolSpan pool_span(u32 o, u32 len, u32 k, u32 stride, u32 pad) {
    const u32 start = o * stride;
    const u32 end = pool_min(start + k, len + 2 * pad);
    PoolSpan s;
    s.lo = start > pad ? start - pad : 0;
    s.hi = pool_min(end > pad ? end - pad : 0, len);
    s.padded = end - start;
    return s;
}

// F.avg_pool2d (ceil_mode False): the window's sum over the elements inside x, divided by their count, or by
// the window's extent in x padded by p when count_include_pad. Summed row by row, then the row sums, in the
// cpu backend's (separable) order.
CXR_KERNEL void avg_pool2d(const float* __restrict__ x, float* __restrict__ y, PoolGeom g, u32 count_include_pad) {
    for (u32 i = grid_start(); i < g.n; i += grid_stride()) {
        const u32 plane = i / (g.ho * g.wo), q = i % (g.ho * g.wo);
        const PoolSpan sh = pool_span(q / g.wo, g.h, g.kernel_h, g.stride_h, g.pad_h);
        const PoolSpan sw = pool_span(q % g.wo, g.w, g.kernel_w, g.stride_w, g.pad_w);
        const float* xp = x + plane * g.h * g.w;
        float s = 0.0f;
        for (u32 r = sh.lo; r < sh.hi; ++r) {
            float t = 0.0f;
            for (u32 c = sw.lo; c < sw.hi; ++c) t += xp[r * g.w + c];
            s += t;
        }
        const u32 count = count_include_pad ? sh.padded * sw.padded : (sh.hi - sh.lo) * (sw.hi - sw.lo);
        y[i] = s / (float)count;
    }
}
CXR_EXPORT(avg_pool2d)

// F.max_pool2d (ceil_mode False): padding is −∞, and NaN wins (`v > m || isnan(v)`, as PyTorch and the cpu
// backend), so a window holding a NaN gives NaN.
CXR_KERNEL void max_pool2d(const float* __restrict__ x, float* __restrict__ y, PoolGeom g) {
    for (u32 i = grid_start(); i < g.n; i += grid_stride()) {
        const u32 plane = i / (g.ho * g.wo), q = i % (g.ho * g.wo);
        const PoolSpan sh = pool_span(q / g.wo, g.h, g.kernel_h, g.stride_h, g.pad_h);
        const PoolSpan sw = pool_span(q % g.wo, g.w, g.kernel_w, g.stride_w, g.pad_w);
        const float* xp = x + plane * g.h * g.w;
        float m = __int_as_float(0xff800000);  // −∞
        for (u32 r = sh.lo; r < sh.hi; ++r) {
            for (u32 c = sw.lo; c < sw.hi; ++c) {
                const float v = xp[r * g.w + c];
                if (v > m || isnan(v)) m = v;
            }
        }
        y[i] = m;
    }
}
CXR_EXPORT(max_pool2d)

// y[p] = mean of plane p of x [planes, hw] (hw > 0): one block of CXR_BLOCK threads per plane (groups along
// the grid's x, then y: launch.rs Dims::per_group), per-thread partial sums, then block_sum.
CXR_KERNEL void global_avg_pool2d(const float* __restrict__ x, float* __restrict__ y, u32 planes, u32 hw) {
    __shared__ float scratch[CXR_BLOCK / CXR_WARP];
    const u32 p = blockIdx.y * gridDim.x + blockIdx.x;
    float acc = 0.0f;
    if (p < planes) {
        const float* xp = x + p * hw;
        for (u32 j = threadIdx.x; j < hw; j += blockDim.x) acc += xp[j];
    }
    acc = block_sum(acc, scratch);  // every thread of the block, even past the last plane
    if (p < planes && threadIdx.x == 0) y[p] = acc / (float)hw;
}
CXR_EXPORT(global_avg_pool2d)

// The outputs [first, last) along one axis whose windows contain input index i: o·s ≤ i + p < o·s + k, within
// the `outs` outputs.
struct PoolCover {
    u32 first, last;
};

__device__ __forceinline__ PoolCover pool_covering(u32 i, u32 outs, u32 k, u32 stride, u32 pad) {
    const u32 pos = i + pad;
    PoolCover c;
    c.first = pos >= k ? (pos - k) / stride + 1 : 0;
    c.last = pool_min(pos / stride + 1, outs);
    return c;
}

// max_pool2d's backward, dx [planes, h, w] from dy [planes, ho, wo] and the forward input x: each thread takes
// one element of x and, for every window containing it (in row-major order), recomputes that window's first
// maximum as the forward scans it (`v > m || isnan(v)` from the window's first element; a later NaN
// replaces an earlier one: PyTorch's tie rule) and adds the window's dy when it is this element.
CXR_KERNEL void max_pool2d_bwd(const float* __restrict__ dy, const float* __restrict__ x, float* __restrict__ dx, PoolGeom g) {
    for (u32 i = grid_start(); i < g.n; i += grid_stride()) {
        const u32 plane = i / (g.h * g.w), q = i % (g.h * g.w);
        const PoolCover ch = pool_covering(q / g.w, g.ho, g.kernel_h, g.stride_h, g.pad_h);
        const PoolCover cw = pool_covering(q % g.w, g.wo, g.kernel_w, g.stride_w, g.pad_w);
        const float* xp = x + plane * g.h * g.w;
        const float* dyp = dy + plane * g.ho * g.wo;
        float acc = 0.0f;
        for (u32 oh = ch.first; oh < ch.last; ++oh) {
            const PoolSpan sh = pool_span(oh, g.h, g.kernel_h, g.stride_h, g.pad_h);
            for (u32 ow = cw.first; ow < cw.last; ++ow) {
                const PoolSpan sw = pool_span(ow, g.w, g.kernel_w, g.stride_w, g.pad_w);
                u32 at = sh.lo * g.w + sw.lo;
                float m = xp[at];
                for (u32 r = sh.lo; r < sh.hi; ++r) {
                    for (u32 c = sw.lo; c < sw.hi; ++c) {
                        const float v = xp[r * g.w + c];
                        // Every NaN replaces m: the last NaN takes the gradient, as PyTorch's.
                        if (v > m || isnan(v)) {
                            m = v;
                            at = r * g.w + c;
                        }
                    }
                }
                if (at == q) acc += dyp[oh * g.wo + ow];
            }
        }
        dx[i] = acc;
    }
}
CXR_EXPORT(max_pool2d_bwd)

// avg_pool2d's backward, dx [planes, h, w] from dy [planes, ho, wo]: each thread sums dy/divisor over the
// windows containing its element (the divisor as the forward's: the window's elements inside x, or its extent
// in x padded by p when count_include_pad).
CXR_KERNEL void avg_pool2d_bwd(const float* __restrict__ dy, float* __restrict__ dx, PoolGeom g, u32 count_include_pad) {
    for (u32 i = grid_start(); i < g.n; i += grid_stride()) {
        const u32 plane = i / (g.h * g.w), q = i % (g.h * g.w);
        const PoolCover ch = pool_covering(q / g.w, g.ho, g.kernel_h, g.stride_h, g.pad_h);
        const PoolCover cw = pool_covering(q % g.w, g.wo, g.kernel_w, g.stride_w, g.pad_w);
        const float* dyp = dy + plane * g.ho * g.wo;
        float acc = 0.0f;
        for (u32 oh = ch.first; oh < ch.last; ++oh) {
            const PoolSpan sh = pool_span(oh, g.h, g.kernel_h, g.stride_h, g.pad_h);
            for (u32 ow = cw.first; ow < cw.last; ++ow) {
                const PoolSpan sw = pool_span(ow, g.w, g.kernel_w, g.stride_w, g.pad_w);
                const u32 count = count_include_pad ? sh.padded * sw.padded : (sh.hi - sh.lo) * (sw.hi - sw.lo);
                acc += dyp[oh * g.wo + ow] / (float)count;
            }
        }
        dx[i] = acc;
    }
}
CXR_EXPORT(avg_pool2d_bwd)

// global_avg_pool2d's backward: dx[i] = dy[i / hw] / hw over dx [planes, hw] (n elements).
CXR_KERNEL void global_avg_pool2d_bwd(const float* __restrict__ dy, float* __restrict__ dx, u32 n, u32 hw) {
    for (u32 i = grid_start(); i < n; i += grid_stride()) dx[i] = dy[i / hw] / (float)hw;
}
CXR_EXPORT(global_avg_pool2d_bwd)
