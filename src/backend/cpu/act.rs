//! Elementwise activations and their backward passes, with PyTorch's conventions: the derivative of relu
//! at exactly 0 is 0 and of leaky_relu is `slope` (both test `x > 0`); tanh and sigmoid differentiate
//! through their output y, as autograd does.

use rayon::prelude::*;

use super::{CpuBackend, ELEMWISE_CHUNK};
use crate::backend::{shapes, Activation};
use crate::error::Result;
use crate::tensor::Tensor;

/// Logistic sigmoid that never overflows: exp is only taken of a non-positive argument.
#[inline]
fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

pub(super) fn activation(be: &CpuBackend, act: Activation, x: &Tensor) -> Result<Tensor> {
    let mut y = be.alloc(x.shape());
    y.data_mut().par_chunks_mut(ELEMWISE_CHUNK).zip(x.data().par_chunks(ELEMWISE_CHUNK)).for_each(|(y, x)| {
        let pairs = y.iter_mut().zip(x);
        // One loop per activation so each compiles to its own tight (vectorizable) loop.
        match act {
            // NaN passes through, as torch.relu (a diverged network must not look healthy).
            Activation::Relu => pairs.for_each(|(y, &x)| *y = if x > 0.0 || x.is_nan() { x } else { 0.0 }),
            Activation::LeakyRelu { slope } => pairs.for_each(|(y, &x)| *y = if x > 0.0 { x } else { slope * x }),
            Activation::Tanh => pairs.for_each(|(y, &x)| *y = x.tanh()),
            Activation::Sigmoid => pairs.for_each(|(y, &x)| *y = sigmoid(x)),
        }
    });
    Ok(y)
}

pub(super) fn activation_bwd(be: &CpuBackend, act: Activation, x: &Tensor, y: &Tensor, dy: &Tensor) -> Result<Tensor> {
    shapes::activation_bwd("activation_bwd", x.shape(), y.shape(), dy.shape())?;
    let mut dx = be.alloc(x.shape());
    let c = ELEMWISE_CHUNK;
    dx.data_mut().par_chunks_mut(c).zip(x.data().par_chunks(c).zip(y.data().par_chunks(c)).zip(dy.data().par_chunks(c))).for_each(
        |(dx, ((x, y), dy))| match act {
            Activation::Relu => dx.iter_mut().zip(x).zip(dy).for_each(|((dx, &x), &g)| *dx = if x > 0.0 { g } else { 0.0 }),
            Activation::LeakyRelu { slope } => {
                dx.iter_mut().zip(x).zip(dy).for_each(|((dx, &x), &g)| *dx = if x > 0.0 { g } else { slope * g })
            }
            Activation::Tanh => dx.iter_mut().zip(y).zip(dy).for_each(|((dx, &y), &g)| *dx = g * (1.0 - y * y)),
            Activation::Sigmoid => dx.iter_mut().zip(y).zip(dy).for_each(|((dx, &y), &g)| *dx = g * y * (1.0 - y)),
        },
    );
    Ok(dx)
}

/// x·mask/(1 − p), the scale rounded to f32 once as PyTorch's `noise.div_(1 − p)`.
pub(super) fn dropout(be: &CpuBackend, x: &Tensor, mask: &Tensor, p: f32) -> Result<Tensor> {
    shapes::dropout("dropout", x.shape(), mask.shape(), p)?;
    let keep_scale = (1.0 / (1.0 - p as f64)) as f32;
    be.zip_map("dropout", x, mask, |x, m| x * (m * keep_scale))
}
