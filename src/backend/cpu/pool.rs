//! avg_pool2d, max_pool2d and the global average pool (forward only: FID never differentiates).
//!
//! Both windowed pools are separable: a horizontal pass reduces every input row over each output column's
//! window into a scratch plane [H, Wo], then a vertical pass reduces that over each output row's window.
//! That is (kh + kw) operations per output instead of kh·kw, and for max it is exact (max is associative;
//! NaN propagates through both passes as in PyTorch). Sums are f32 over at most kh + kw terms per pass.
//!
//! Planes (n, c) run in parallel; small planes are grouped so that one rayon task does ~16K outputs.

use rayon::prelude::*;

use super::{sum_f64, CpuBackend};
use crate::backend::{shapes, Pool2dParams};
use crate::error::Result;
use crate::tensor::Tensor;

/// Elements one rayon task should cover at least.
const TASK_ELEMS: usize = 1 << 14;

/// Planes per rayon task for planes of `plane` elements.
pub(super) fn planes_per_task(plane: usize) -> usize {
    (TASK_ELEMS / plane.max(1)).max(1)
}

/// The clipped input range [lo, hi) of window `o` along one axis, and its extent in the padded input.
#[derive(Clone, Copy, Debug)]
struct Window {
    lo: usize,
    hi: usize,
    padded: usize,
}

fn windows(len: usize, len_out: usize, k: usize, stride: usize, pad: usize) -> Vec<Window> {
    (0..len_out)
        .map(|o| {
            let start = o * stride; // in padded coordinates: the input starts at `pad`
            let end = (start + k).min(len + 2 * pad);
            Window { lo: start.saturating_sub(pad), hi: end.saturating_sub(pad).min(len), padded: end - start }
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reduce {
    Sum,
    Max,
}

/// max that lets NaN win, as PyTorch's max_pool2d (`val > max || isnan(val)`).
#[inline(always)]
fn nan_max(m: f32, v: f32) -> f32 {
    if v > m || v.is_nan() {
        v
    } else {
        m
    }
}

/// Reduces every (n, c) plane of x with the separable window; `finish(sum, window_h, window_w)` turns the
/// reduced value into the output (the divisor of the average; the identity for max).
fn pool2d(
    be: &CpuBackend,
    op: &'static str,
    x: &Tensor,
    p: Pool2dParams,
    reduce: Reduce,
    finish: impl Fn(f32, &Window, &Window) -> f32 + Sync,
) -> Result<Tensor> {
    let y_shape = shapes::pool2d_out(op, x.shape(), p)?;
    let [_, _, h, w] = x.dims4(op, "x")?;
    let [_, _, ho, wo] = y_shape;
    let mut y = be.alloc(&y_shape);
    if y.is_empty() {
        return Ok(y);
    }
    let wh = windows(h, ho, p.kernel[0], p.stride[0], p.padding[0]);
    let ww = windows(w, wo, p.kernel[1], p.stride[1], p.padding[1]);
    let init = match reduce {
        Reduce::Sum => 0.0,
        Reduce::Max => f32::NEG_INFINITY,
    };
    let group = planes_per_task(ho * wo);
    y.data_mut().par_chunks_mut(ho * wo * group).zip(x.data().par_chunks(h * w * group)).for_each_init(
        || be.buffer(h * wo),
        |tmp, (ys, xs)| {
            for (y, x) in ys.chunks_exact_mut(ho * wo).zip(xs.chunks_exact(h * w)) {
                // Horizontal: tmp[r, ox] = reduce over the columns of window ox of row r.
                for (t, row) in tmp.chunks_exact_mut(wo).zip(x.chunks_exact(w)) {
                    for (t, win) in t.iter_mut().zip(&ww) {
                        let vals = &row[win.lo..win.hi];
                        *t = match reduce {
                            Reduce::Sum => vals.iter().sum(),
                            Reduce::Max => vals.iter().fold(init, |m, &v| nan_max(m, v)),
                        };
                    }
                }
                // Vertical: y[oy, ox] = reduce over the rows of window oy of tmp[·, ox].
                for (yrow, winh) in y.chunks_exact_mut(wo).zip(&wh) {
                    yrow.fill(init);
                    for r in winh.lo..winh.hi {
                        let trow = &tmp[r * wo..][..wo];
                        match reduce {
                            Reduce::Sum => yrow.iter_mut().zip(trow).for_each(|(a, &v)| *a += v),
                            Reduce::Max => yrow.iter_mut().zip(trow).for_each(|(a, &v)| *a = nan_max(*a, v)),
                        }
                    }
                    for (a, winw) in yrow.iter_mut().zip(&ww) {
                        *a = finish(*a, winh, winw);
                    }
                }
            }
        },
    );
    Ok(y)
}

pub(super) fn avg_pool2d(be: &CpuBackend, x: &Tensor, p: Pool2dParams, count_include_pad: bool) -> Result<Tensor> {
    pool2d(be, "avg_pool2d", x, p, Reduce::Sum, |s, wh, ww| {
        let count = if count_include_pad { wh.padded * ww.padded } else { (wh.hi - wh.lo) * (ww.hi - ww.lo) };
        s / count as f32
    })
}

pub(super) fn max_pool2d(be: &CpuBackend, x: &Tensor, p: Pool2dParams) -> Result<Tensor> {
    pool2d(be, "max_pool2d", x, p, Reduce::Max, |m, _, _| m)
}

pub(super) fn global_avg_pool2d(be: &CpuBackend, x: &Tensor) -> Result<Tensor> {
    let [n, c] = shapes::global_pool_out("global_avg_pool2d", x.shape())?;
    let mut y = be.alloc(&[n, c]);
    if y.is_empty() {
        return Ok(y);
    }
    let hw = x.len() / (n * c);
    let group = planes_per_task(hw);
    y.data_mut().par_chunks_mut(group).zip(x.data().par_chunks(hw * group)).for_each(|(ys, xs)| {
        for (y, plane) in ys.iter_mut().zip(xs.chunks_exact(hw)) {
            *y = (sum_f64(plane) / hw as f64) as f32;
        }
    });
    Ok(y)
}

/// Runs `scatter(dx_plane, dy_plane)` over every (n, c) plane in parallel, dx starting at zero: the
/// backward of a windowed pool, where each output scatters its gradient into its window.
fn pool2d_bwd(be: &CpuBackend, dy: &Tensor, x_shape: [usize; 4], scatter: impl Fn(&mut [f32], &[f32], usize) + Sync) -> Tensor {
    let mut dx = be.alloc(&x_shape);
    let [n, c, h, w] = x_shape;
    if n * c == 0 || h * w == 0 {
        return dx;
    }
    let out_plane = dy.len() / (n * c);
    dx.data_mut().par_chunks_mut(h * w).zip(dy.data().par_chunks(out_plane.max(1))).enumerate().for_each(|(plane, (dx, dy))| {
        dx.fill(0.0);
        scatter(dx, dy, plane);
    });
    dx
}

pub(super) fn max_pool2d_bwd(be: &CpuBackend, dy: &Tensor, x: &Tensor, p: Pool2dParams) -> Result<Tensor> {
    let [_, _, ho, wo] = shapes::pool2d_bwd("max_pool2d_bwd", dy.shape(), x.shape(), p)?;
    let x_shape = x.dims4("max_pool2d_bwd", "x")?;
    let [_, _, h, w] = x_shape;
    let wh = windows(h, ho, p.kernel[0], p.stride[0], p.padding[0]);
    let ww = windows(w, wo, p.kernel[1], p.stride[1], p.padding[1]);
    let xd = x.data();
    Ok(pool2d_bwd(be, dy, x_shape, |dx, dy, plane| {
        let xp = &xd[plane * h * w..][..h * w];
        for (oy, winh) in wh.iter().enumerate() {
            for (ox, winw) in ww.iter().enumerate() {
                // PyTorch: the window's first element, replaced by any later one that is larger or NaN (so the
                // last NaN of a window takes its gradient).
                let (mut best, mut at) = (f32::NEG_INFINITY, winh.lo * w + winw.lo);
                for r in winh.lo..winh.hi {
                    for col in winw.lo..winw.hi {
                        let v = xp[r * w + col];
                        if v > best || v.is_nan() {
                            (best, at) = (v, r * w + col);
                        }
                    }
                }
                dx[at] += dy[oy * wo + ox];
            }
        }
    }))
}

pub(super) fn avg_pool2d_bwd(
    be: &CpuBackend,
    dy: &Tensor,
    x_shape: [usize; 4],
    p: Pool2dParams,
    count_include_pad: bool,
) -> Result<Tensor> {
    let [_, _, ho, wo] = shapes::pool2d_bwd("avg_pool2d_bwd", dy.shape(), &x_shape, p)?;
    let [_, _, h, w] = x_shape;
    let wh = windows(h, ho, p.kernel[0], p.stride[0], p.padding[0]);
    let ww = windows(w, wo, p.kernel[1], p.stride[1], p.padding[1]);
    Ok(pool2d_bwd(be, dy, x_shape, |dx, dy, _| {
        for (oy, winh) in wh.iter().enumerate() {
            for (ox, winw) in ww.iter().enumerate() {
                let count = if count_include_pad { winh.padded * winw.padded } else { (winh.hi - winh.lo) * (winw.hi - winw.lo) };
                let g = dy[oy * wo + ox] / count as f32;
                for r in winh.lo..winh.hi {
                    dx[r * w + winw.lo..r * w + winw.hi].iter_mut().for_each(|d| *d += g);
                }
            }
        }
    }))
}

pub(super) fn global_avg_pool2d_bwd(be: &CpuBackend, dy: &Tensor, x_shape: [usize; 4]) -> Result<Tensor> {
    shapes::global_pool_bwd("global_avg_pool2d_bwd", dy.shape(), &x_shape)?;
    let hw = x_shape[2] * x_shape[3];
    Ok(pool2d_bwd(be, dy, x_shape, |dx, dy, _| dx.fill(dy[0] / hw as f32)))
}
