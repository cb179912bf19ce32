//! Channel-wise ops of the Inception blocks: concat_channels (`torch.cat(dim=1)`) and affine_channels
//! (eval-mode BatchNorm as y = scale[c]·x + shift[c], fused with the ReLU of a BasicConv2d).

use rayon::prelude::*;

use super::pool::planes_per_task;
use super::CpuBackend;
use crate::backend::shapes_pool;
use crate::error::Result;
use crate::tensor::Tensor;

pub(super) fn concat_channels(be: &CpuBackend, xs: &[&Tensor]) -> Result<Tensor> {
    let shapes: Vec<&[usize]> = xs.iter().map(|x| x.shape()).collect();
    let y_shape = shapes_pool::concat_channels_out("concat_channels", &shapes)?;
    let mut y = be.alloc(&y_shape);
    if y.is_empty() {
        return Ok(y);
    }
    let per_sample = y.len() / y_shape[0];
    // Every sample's output block is its inputs' sample blocks, one after another.
    y.data_mut().par_chunks_mut(per_sample).enumerate().for_each(|(n, out)| {
        let mut offset = 0;
        for x in xs {
            let len = x.len() / y_shape[0];
            out[offset..offset + len].copy_from_slice(&x.data()[n * len..][..len]);
            offset += len;
        }
    });
    Ok(y)
}

pub(super) fn affine_channels(be: &CpuBackend, x: &Tensor, scale: &Tensor, shift: &Tensor, relu: bool) -> Result<Tensor> {
    let [_, c, h, w] = shapes_pool::affine_channels("affine_channels", x.shape(), scale.shape(), shift.shape())?;
    let mut y = be.alloc(x.shape());
    if y.is_empty() {
        return Ok(y);
    }
    let hw = h * w;
    let group = planes_per_task(hw);
    let (s, t) = (scale.data(), shift.data());
    y.data_mut().par_chunks_mut(hw * group).zip(x.data().par_chunks(hw * group)).enumerate().for_each(|(gi, (ys, xs))| {
        for (pi, (y, x)) in ys.chunks_exact_mut(hw).zip(xs.chunks_exact(hw)).enumerate() {
            let ch = (gi * group + pi) % c;
            let (a, b) = (s[ch], t[ch]);
            if relu {
                // `v < 0 ? 0 : v` keeps NaN as NaN, as torch.relu does.
                y.iter_mut().zip(x).for_each(|(y, &x)| {
                    let v = a * x + b;
                    *y = if v < 0.0 { 0.0 } else { v };
                });
            } else {
                y.iter_mut().zip(x).for_each(|(y, &x)| *y = a * x + b);
            }
        }
    });
    Ok(y)
}
