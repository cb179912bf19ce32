//! Bilinear resize, `F.interpolate(mode='bilinear', align_corners=False)`.
//!
//! The source taps (i0, i1, λ0, λ1) of every output row and column come from [`bilinear_taps`] (PyTorch's
//! formula in f64, rounded to f32 weights once). Each output is then PyTorch's
//! λ0h·(λ0w·x00 + λ1w·x01) + λ1h·(λ0w·x10 + λ1w·x11). Planes run in parallel.

use rayon::prelude::*;

use super::pool::planes_per_task;
use super::CpuBackend;
use crate::backend::host_math::bilinear_taps;
use crate::backend::shapes;
use crate::error::Result;
use crate::tensor::Tensor;

pub(super) fn resize_bilinear(be: &CpuBackend, x: &Tensor, out_h: usize, out_w: usize) -> Result<Tensor> {
    let y_shape = shapes::resize_out("resize_bilinear", x.shape(), out_h, out_w)?;
    let [_, _, h, w] = x.dims4("resize_bilinear", "x")?;
    let mut y = be.alloc(&y_shape);
    if y.is_empty() {
        return Ok(y);
    }
    let (th, tw) = (bilinear_taps(h, out_h), bilinear_taps(w, out_w));
    let group = planes_per_task(out_h * out_w);
    y.data_mut().par_chunks_mut(out_h * out_w * group).zip(x.data().par_chunks(h * w * group)).for_each(|(ys, xs)| {
        for (y, x) in ys.chunks_exact_mut(out_h * out_w).zip(xs.chunks_exact(h * w)) {
            for (yrow, t) in y.chunks_exact_mut(out_w).zip(&th) {
                let (r0, r1) = (&x[t.i0 * w..][..w], &x[t.i1 * w..][..w]);
                for (v, c) in yrow.iter_mut().zip(&tw) {
                    *v = t.l0 * (c.l0 * r0[c.i0] + c.l1 * r0[c.i1]) + t.l1 * (c.l0 * r1[c.i0] + c.l1 * r1[c.i1]);
                }
            }
        }
    });
    Ok(y)
}
