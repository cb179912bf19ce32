//! Channel-wise ops of the Inception blocks: concat_channels (`torch.cat(dim=1)`) and affine_channels
//! (eval-mode BatchNorm as x ← scale[c]·x + shift[c] in place, fused with the ReLU of a BasicConv2d).

use rayon::prelude::*;

use super::pool::planes_per_task;
use super::CpuBackend;
use crate::backend::shapes;
use crate::error::Result;
use crate::tensor::Tensor;

pub(super) fn concat_channels(be: &CpuBackend, xs: &[&Tensor]) -> Result<Tensor> {
    let shapes: Vec<&[usize]> = xs.iter().map(|x| x.shape()).collect();
    let y_shape = shapes::concat_channels_out("concat_channels", &shapes)?;
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

pub(super) fn affine_channels(x: &mut Tensor, scale: &Tensor, shift: &Tensor, relu: bool) -> Result<()> {
    let [_, c, h, w] = shapes::affine_channels("affine_channels", x.shape(), scale.shape(), shift.shape())?;
    let hw = h * w;
    if x.is_empty() {
        return Ok(());
    }
    let group = planes_per_task(hw);
    let (s, t) = (scale.data(), shift.data());
    x.data_mut().par_chunks_mut(hw * group).enumerate().for_each(|(gi, xs)| {
        for (pi, x) in xs.chunks_exact_mut(hw).enumerate() {
            let ch = (gi * group + pi) % c;
            let (a, b) = (s[ch], t[ch]);
            if relu {
                // `v < 0 ? 0 : v` keeps NaN as NaN, as torch.relu does.
                x.iter_mut().for_each(|x| {
                    let v = a * *x + b;
                    *x = if v < 0.0 { 0.0 } else { v };
                });
            } else {
                x.iter_mut().for_each(|x| *x = a * *x + b);
            }
        }
    });
    Ok(())
}

pub(super) fn concat_channels_bwd(be: &CpuBackend, dy: &Tensor, channels: &[usize]) -> Result<Vec<Tensor>> {
    let [n, _, h, w] = shapes::concat_channels_bwd("concat_channels_bwd", dy.shape(), channels)?;
    let per_sample = dy.len() / n.max(1);
    let mut offset = 0;
    let mut out = Vec::with_capacity(channels.len());
    for &c in channels {
        let mut dx = be.alloc(&[n, c, h, w]);
        let len = c * h * w;
        if len > 0 {
            // Each sample's slice of dx is a contiguous run of dy's sample block.
            dx.data_mut()
                .par_chunks_mut(len)
                .enumerate()
                .for_each(|(i, d)| d.copy_from_slice(&dy.data()[i * per_sample + offset..][..len]));
        }
        offset += len;
        out.push(dx);
    }
    Ok(out)
}
