//! FID's pooling ops (forward only): avg_pool2d, max_pool2d (one unit per output, looping over its clipped
//! window; Inception's windows are 3×3) and the global average pool (one cube per plane, a tree sum).

use cubecl::prelude::*;

use super::{cube_group, grid_start, grid_stride, tree_sum_rows};

/// avg_pool2d / max_pool2d over x [N, C, H, W] → y [N, C, Ho, Wo] (ceil_mode False). The window of output
/// (oh, ow) starts at oh·s − p in x; it is clipped to x, and to x padded by p for count_include_pad's
/// divisor. max ignores padding (PyTorch's −∞) and lets NaN win (`v > m || isnan(v)`), as PyTorch.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn pool2d(
    x: &Array<f32>, y: &mut Array<f32>, h: u32, w: u32, ho: u32, wo: u32, kh: u32, kw: u32, sh: u32, sw: u32, ph: u32,
    pw: u32, #[comptime] is_max: bool, #[comptime] count_include_pad: bool,
) {
    let n = y.len();
    let (h, w, ho, wo) = (h as usize, w as usize, ho as usize, wo as usize);
    let (kh, kw, sh, sw, ph, pw) = (kh as usize, kw as usize, sh as usize, sw as usize, ph as usize, pw as usize);
    let mut i = grid_start();
    while i < n {
        let plane = i / (ho * wo);
        let q = i % (ho * wo);
        let start_h = (q / wo) * sh;
        let start_w = (q % wo) * sw;
        // Window bounds in padded coordinates, then clipped to x.
        let end_h = select(start_h + kh < h + 2 * ph, start_h + kh, h + 2 * ph);
        let end_w = select(start_w + kw < w + 2 * pw, start_w + kw, w + 2 * pw);
        let lo_h = select(start_h > ph, start_h - ph, 0usize);
        let lo_w = select(start_w > pw, start_w - pw, 0usize);
        let hi_h = select(end_h > ph, end_h - ph, 0usize);
        let hi_w = select(end_w > pw, end_w - pw, 0usize);
        let hi_h = select(hi_h < h, hi_h, h);
        let hi_w = select(hi_w < w, hi_w, w);
        let base = plane * h * w;
        if comptime![is_max] {
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
            if comptime![count_include_pad] {
                count = (end_h - start_h) * (end_w - start_w);
            }
            y[i] = s / f32::cast_from(count);
        }
        i += grid_stride();
    }
}

/// The mean of every plane of x [planes, hw] into y [planes] (one cube per plane).
#[cube(launch)]
pub fn global_avg_pool2d(x: &Array<f32>, y: &mut Array<f32>, planes: u32, hw: u32, #[comptime] units: usize) {
    let mut sh = SharedMemory::<f32>::new(units);
    let np = planes as usize;
    let pl = cube_group(np);
    let hw = hw as usize;
    let base = pl * hw;
    let mut acc = 0.0f32;
    let mut j = UNIT_POS as usize;
    while j < hw {
        acc += x[base + j];
        j += units;
    }
    sh[UNIT_POS as usize] = acc;
    tree_sum_rows(&mut sh, 1usize, units);
    if UNIT_POS == 0 && CUBE_POS < np {
        y[pl] = sh[0] / f32::cast_from(hw);
    }
}
