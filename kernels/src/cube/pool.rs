//! InceptionV3's pooling ops: avg_pool2d, max_pool2d (one unit per output, looping over its clipped window;
//! Inception's windows are 3×3) and the global average pool (one cube per plane, a tree sum), and their
//! backward passes as gathers: one unit per INPUT element summing over the output windows that contain it,
//! in the windows' row-major order (deterministic, no atomics).

use cubecl::prelude::*;

use super::{cube_group, grid_start, grid_stride, tree_sum_rows, BLOCK};

/// Which windowed pool a [`pool2d`] launch computes (a comptime parameter: one kernel each).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Pool2dKind {
    /// F.max_pool2d: padding is −∞, NaN wins.
    Max,
    /// F.avg_pool2d: the divisor counts the window's elements inside x, or inside x padded by p when
    /// `count_include_pad`.
    Avg { count_include_pad: bool },
}

launch_args! {
    /// x [N, C, H, W] pooled to y [N, C, Ho, Wo] with a kernel_h × kernel_w window.
    Pool2dGeom => Pool2dGeomLaunch: usize { h, w, ho, wo, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w }
}

/// avg_pool2d / max_pool2d over x [N, C, H, W] → y [N, C, Ho, Wo] (ceil_mode False). The window of output
/// (oh, ow) starts at oh·s − p in x; it is clipped to x, and to x padded by p for count_include_pad's
/// divisor. max ignores padding (PyTorch's −∞) and lets NaN win (`v > m || isnan(v)`), as PyTorch.
#[cube(launch)]
pub fn pool2d(x: &Array<f32>, y: &mut Array<f32>, g: Pool2dGeom, #[comptime] kind: Pool2dKind) {
    let n = y.len();
    let (h, w, ho, wo) = (g.h, g.w, g.ho, g.wo);
    let (ph, pw) = (g.pad_h, g.pad_w);
    let mut i = grid_start();
    while i < n {
        let plane = i / (ho * wo);
        let q = i % (ho * wo);
        let start_h = (q / wo) * g.stride_h;
        let start_w = (q % wo) * g.stride_w;
        // Window bounds in padded coordinates, then clipped to x.
        let end_h = select(start_h + g.kernel_h < h + 2 * ph, start_h + g.kernel_h, h + 2 * ph);
        let end_w = select(start_w + g.kernel_w < w + 2 * pw, start_w + g.kernel_w, w + 2 * pw);
        let lo_h = select(start_h > ph, start_h - ph, 0usize);
        let lo_w = select(start_w > pw, start_w - pw, 0usize);
        let hi_h = select(end_h > ph, end_h - ph, 0usize);
        let hi_w = select(end_w > pw, end_w - pw, 0usize);
        let hi_h = select(hi_h < h, hi_h, h);
        let hi_w = select(hi_w < w, hi_w, w);
        let base = plane * h * w;
        if comptime![kind == Pool2dKind::Max] {
            // Seeded with the window's first element (every window holds one: padding ≤ kernel/2), not
            // with −∞, which WGSL cannot spell.
            let mut m = x[base + lo_h * w + lo_w];
            for r in lo_h..hi_h {
                for c in lo_w..hi_w {
                    let v = x[base + r * w + c];
                    if v > m || f32::is_nan(v) {
                        m = v;
                    }
                }
            }
            y[i] = m;
        } else {
            let mut s = 0.0f32;
            for r in lo_h..hi_h {
                for c in lo_w..hi_w {
                    s += x[base + r * w + c];
                }
            }
            let mut count = (hi_h - lo_h) * (hi_w - lo_w);
            if comptime![kind == Pool2dKind::Avg { count_include_pad: true }] {
                count = (end_h - start_h) * (end_w - start_w);
            }
            y[i] = s / f32::cast_from(count);
        }
        i += grid_stride();
    }
}

/// The mean of every plane of x [planes, hw] into y [planes] (one cube per plane).
#[cube(launch)]
pub fn global_avg_pool2d(x: &Array<f32>, y: &mut Array<f32>, planes: usize, hw: usize) {
    let mut sh = SharedMemory::<f32>::new(BLOCK);
    let pl = cube_group(planes);
    let base = pl * hw;
    let mut acc = 0.0f32;
    let mut j = UNIT_POS as usize;
    while j < hw {
        acc += x[base + j];
        j += BLOCK;
    }
    sh[UNIT_POS as usize] = acc;
    tree_sum_rows(&mut sh, 1usize);
    if UNIT_POS == 0 && CUBE_POS < planes {
        y[pl] = sh[0] / f32::cast_from(hw);
    }
}

/// The window of output `o` along one axis (as [`pool2d`]): it starts at o·s in x padded by p and ends at
/// min(start + k, len + 2p); returns (lo, hi), that window clipped to x, and its extent in the padded x.
#[cube]
fn pool_span(o: usize, len: usize, k: usize, stride: usize, pad: usize) -> (usize, usize, usize) {
    let start = o * stride;
    let end = select(start + k < len + 2 * pad, start + k, len + 2 * pad);
    let lo = select(start > pad, start - pad, 0usize);
    let hi = select(end > pad, end - pad, 0usize);
    (lo, select(hi < len, hi, len), end - start)
}

/// The outputs [first, last) along one axis whose windows contain input index `i`: o·s ≤ i + p < o·s + k,
/// within the `outs` outputs.
#[cube]
fn pool_covering(i: usize, outs: usize, k: usize, stride: usize, pad: usize) -> (usize, usize) {
    let pos = i + pad;
    let first = select(pos >= k, (pos - k) / stride + 1, 0usize);
    let last = pos / stride + 1;
    (first, select(last < outs, last, outs))
}

/// max_pool2d's backward, dx [N, C, H, W] from dy [N, C, Ho, Wo] and the forward input x: each unit takes
/// one element of x and, for every window containing it (in row-major order), recomputes that window's
/// first maximum as the forward scans it (`v > m || isnan(v)` from the window's first element, so the last
/// NaN wins, as PyTorch's) and adds the window's dy when it is this element.
#[cube(launch)]
pub fn max_pool2d_bwd(dy: &Array<f32>, x: &Array<f32>, dx: &mut Array<f32>, g: Pool2dGeom) {
    let n = dx.len();
    let (h, w, ho, wo) = (g.h, g.w, g.ho, g.wo);
    let mut i = grid_start();
    while i < n {
        let plane = i / (h * w);
        let q = i % (h * w);
        let (oh0, oh1) = pool_covering(q / w, ho, g.kernel_h, g.stride_h, g.pad_h);
        let (ow0, ow1) = pool_covering(q % w, wo, g.kernel_w, g.stride_w, g.pad_w);
        let base = plane * h * w;
        let dy_base = plane * ho * wo;
        let mut acc = 0.0f32;
        for oh in oh0..oh1 {
            let (lo_h, hi_h, _ph) = pool_span(oh, h, g.kernel_h, g.stride_h, g.pad_h);
            for ow in ow0..ow1 {
                let (lo_w, hi_w, _pw) = pool_span(ow, w, g.kernel_w, g.stride_w, g.pad_w);
                let mut at = lo_h * w + lo_w;
                let mut m = x[base + at];
                for r in lo_h..hi_h {
                    for c in lo_w..hi_w {
                        let v = x[base + r * w + c];
                        // Every NaN replaces m: the last NaN takes the gradient, as PyTorch's.
                        if v > m || f32::is_nan(v) {
                            m = v;
                            at = r * w + c;
                        }
                    }
                }
                if at == q {
                    acc += dy[dy_base + oh * wo + ow];
                }
            }
        }
        dx[i] = acc;
        i += grid_stride();
    }
}

/// avg_pool2d's backward, dx [N, C, H, W] from dy [N, C, Ho, Wo]: each unit sums dy/divisor over the
/// windows containing its element (the divisor as the forward's: the window's elements inside x, or its
/// extent in x padded by p when `count_include_pad`).
#[cube(launch)]
pub fn avg_pool2d_bwd(dy: &Array<f32>, dx: &mut Array<f32>, g: Pool2dGeom, #[comptime] count_include_pad: bool) {
    let n = dx.len();
    let (h, w, ho, wo) = (g.h, g.w, g.ho, g.wo);
    let mut i = grid_start();
    while i < n {
        let plane = i / (h * w);
        let q = i % (h * w);
        let (oh0, oh1) = pool_covering(q / w, ho, g.kernel_h, g.stride_h, g.pad_h);
        let (ow0, ow1) = pool_covering(q % w, wo, g.kernel_w, g.stride_w, g.pad_w);
        let dy_base = plane * ho * wo;
        let mut acc = 0.0f32;
        for oh in oh0..oh1 {
            let (lo_h, hi_h, pad_extent_h) = pool_span(oh, h, g.kernel_h, g.stride_h, g.pad_h);
            for ow in ow0..ow1 {
                let (lo_w, hi_w, pad_extent_w) = pool_span(ow, w, g.kernel_w, g.stride_w, g.pad_w);
                let mut count = (hi_h - lo_h) * (hi_w - lo_w);
                if comptime![count_include_pad] {
                    count = pad_extent_h * pad_extent_w;
                }
                acc += dy[dy_base + oh * wo + ow] / f32::cast_from(count);
            }
        }
        dx[i] = acc;
        i += grid_stride();
    }
}

/// global_avg_pool2d's backward: dx[i] = dy[plane] / hw over dx [planes, hw].
#[cube(launch)]
pub fn global_avg_pool2d_bwd(dy: &Array<f32>, dx: &mut Array<f32>, hw: usize) {
    let n = dx.len();
    let count = f32::cast_from(hw);
    let mut i = grid_start();
    while i < n {
        dx[i] = dy[i / hw] / count;
        i += grid_stride();
    }
}
