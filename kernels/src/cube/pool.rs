//! FID's pooling ops (forward only): avg_pool2d, max_pool2d (one unit per output, looping over its clipped
//! window; Inception's windows are 3×3) and the global average pool (one cube per plane, a tree sum).

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
