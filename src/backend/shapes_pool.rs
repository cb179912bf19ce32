//! Shape inference and validation of the FID ops (pooling, bilinear resize, channel concat / affine),
//! shared by every backend like [`super::shapes`]: the same bad input gets the same error everywhere.

use super::{shapes, Pool2dParams};
use crate::error::{Error, Result};
use crate::tensor::{dims4, fmt_shape};

/// The output shape of avg_pool2d / max_pool2d over x [N, C, H, W] (ceil_mode False). Rejects a zero kernel
/// or stride, padding above half the kernel (PyTorch's rule) and a window larger than the padded input.
pub fn pool2d_out(op: &'static str, x: &[usize], p: Pool2dParams) -> Result<[usize; 4]> {
    let [n, c, h, w] = dims4(x, op, "x")?;
    if p.kernel.contains(&0) || p.stride.contains(&0) {
        return Err(Error::invalid(op, format!("kernel {:?} and stride {:?} must be positive", p.kernel, p.stride)));
    }
    if 2 * p.padding[0] > p.kernel[0] || 2 * p.padding[1] > p.kernel[1] {
        return Err(Error::invalid(op, format!("padding {:?} must be at most half the kernel {:?}", p.padding, p.kernel)));
    }
    let (hp, wp) = (h + 2 * p.padding[0], w + 2 * p.padding[1]);
    if p.kernel[0] > hp || p.kernel[1] > wp {
        return Err(Error::shape(op, format!(
            "window {}x{} does not fit x {} padded to {hp}x{wp}", p.kernel[0], p.kernel[1], fmt_shape(x))));
    }
    Ok([n, c, (hp - p.kernel[0]) / p.stride[0] + 1, (wp - p.kernel[1]) / p.stride[1] + 1])
}

/// [N, C] for the global average pool of x [N, C, H, W] with H·W > 0.
pub fn global_pool_out(op: &'static str, x: &[usize]) -> Result<[usize; 2]> {
    let [n, c, h, w] = dims4(x, op, "x")?;
    if h == 0 || w == 0 {
        return Err(Error::shape(op, format!("the mean of an empty plane: x {}", fmt_shape(x))));
    }
    Ok([n, c])
}

/// [N, C, out_h, out_w] for resizing x [N, C, H, W]; both sides must have pixels.
pub fn resize_out(op: &'static str, x: &[usize], out_h: usize, out_w: usize) -> Result<[usize; 4]> {
    let [n, c, h, w] = dims4(x, op, "x")?;
    if h == 0 || w == 0 || out_h == 0 || out_w == 0 {
        return Err(Error::shape(op, format!("cannot resize x {} to {out_h}x{out_w}: an empty image", fmt_shape(x))));
    }
    Ok([n, c, out_h, out_w])
}

/// [N, ΣCᵢ, H, W] for concatenating 4-d tensors along channels; N, H and W must agree.
pub fn concat_channels_out(op: &'static str, xs: &[&[usize]]) -> Result<[usize; 4]> {
    let Some(first) = xs.first() else {
        return Err(Error::invalid(op, "nothing to concatenate"));
    };
    let [n, _, h, w] = dims4(first, op, "xs[0]")?;
    let mut c_total = 0;
    for (i, x) in xs.iter().enumerate() {
        let [ni, ci, hi, wi] = dims4(x, op, "every input")?;
        if (ni, hi, wi) != (n, h, w) {
            return Err(Error::shape(op, format!(
                "xs[{i}] {} does not match xs[0] {} outside the channel axis", fmt_shape(x), fmt_shape(first))));
        }
        c_total += ci;
    }
    Ok([n, c_total, h, w])
}

/// Checks affine_channels' scale and shift ([C] each) against x [N, C, H, W].
pub fn affine_channels(op: &'static str, x: &[usize], scale: &[usize], shift: &[usize]) -> Result<[usize; 4]> {
    shapes::norm_param(op, x, "scale", scale)?;
    shapes::norm_param(op, x, "shift", shift)
}
