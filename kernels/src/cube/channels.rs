//! Channel-wise ops of the Inception blocks: concat_channels (`torch.cat(dim=1)`, one launch per input,
//! each copying its planes to their channel offset) and its backward (`torch.split(dim=1)`, one launch per
//! piece, copying its channel slice back out), and affine_channels (eval-mode BatchNorm folded to
//! x·scale[c] + shift[c], fused with the ReLU of a BasicConv2d).

use cubecl::prelude::*;

use super::{grid_start, grid_stride};

/// Copies x [N, C, hw] into channels [offset, offset + C) of y [N, c_total, hw].
#[cube(launch)]
pub fn concat_channels(x: &Array<f32>, y: &mut Array<f32>, c: usize, c_total: usize, offset: usize, hw: usize) {
    let n = x.len();
    let mut i = grid_start();
    while i < n {
        let plane = i / hw;
        let b = plane / c;
        let ch = plane % c;
        y[(b * c_total + offset + ch) * hw + i % hw] = x[i];
        i += grid_stride();
    }
}

/// concat_channels' backward: dx [N, C, hw] ← channels [offset, offset + C) of dy [N, c_total, hw].
#[cube(launch)]
pub fn concat_channels_bwd(dy: &Array<f32>, dx: &mut Array<f32>, c: usize, c_total: usize, offset: usize, hw: usize) {
    let n = dx.len();
    let mut i = grid_start();
    while i < n {
        let plane = i / hw;
        let b = plane / c;
        let ch = plane % c;
        dx[i] = dy[(b * c_total + offset + ch) * hw + i % hw];
        i += grid_stride();
    }
}

/// y = scale[c]·x + shift[c], then `v < 0 ? 0 : v` when `relu` (NaN stays NaN, as torch.relu).
#[cube(launch)]
pub fn affine_channels(
    x: &Array<f32>,
    scale: &Array<f32>,
    shift: &Array<f32>,
    y: &mut Array<f32>,
    c: usize,
    hw: usize,
    #[comptime] relu: bool,
) {
    let n = y.len();
    let mut i = grid_start();
    while i < n {
        let ch = (i / hw) % c;
        let v = scale[ch] * x[i] + shift[ch];
        if comptime![relu] {
            y[i] = select(v < 0.0f32, 0.0f32, v);
        } else {
            y[i] = v;
        }
        i += grid_stride();
    }
}
