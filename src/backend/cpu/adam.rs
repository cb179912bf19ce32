//! torch.optim.Adam (no weight decay, no amsgrad) as one fused pass over param, grad and both moments.

use rayon::prelude::*;

use super::ELEMWISE_CHUNK;
use crate::backend::{shapes, AdamConfig};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// One Adam step, in place. Follows torch's per-element sequence in f32:
/// m ← b1·m + (1−b1)·g; v ← b2·v + (1−b2)·g²; denom = √v / √(1−b2^t) + eps; p ← p − (lr/(1−b1^t))·m/denom.
/// The bias corrections are computed in f64 (b^t for t in the tens of thousands loses digits in f32) and,
/// as torch does with its Python-float scalars, rounded to f32 once.
pub(super) fn adam_step(
    param: &mut Tensor, grad: &Tensor, exp_avg: &mut Tensor, exp_avg_sq: &mut Tensor, cfg: &AdamConfig, step: u64,
) -> Result<()> {
    const OP: &str = "adam_step";
    shapes::same(OP, "param", param.shape(), "grad", grad.shape())?;
    shapes::same(OP, "param", param.shape(), "exp_avg", exp_avg.shape())?;
    shapes::same(OP, "param", param.shape(), "exp_avg_sq", exp_avg_sq.shape())?;
    if step == 0 {
        return Err(Error::invalid(OP, "step is 1-based; got 0"));
    }
    let (b1, b2) = (cfg.beta1, cfg.beta2);
    let t = step.min(i32::MAX as u64) as i32;
    let bc1 = 1.0 - b1.powi(t);
    let bc2_sqrt = (1.0 - b2.powi(t)).sqrt();
    let step_size = (cfg.lr / bc1) as f32;
    let bc2_sqrt = bc2_sqrt as f32;
    let (one_m_b1, one_m_b2) = ((1.0 - b1) as f32, (1.0 - b2) as f32);
    let (b1, b2, eps) = (b1 as f32, b2 as f32, cfg.eps as f32);
    let c = ELEMWISE_CHUNK;
    param
        .data_mut()
        .par_chunks_mut(c)
        .zip(grad.data().par_chunks(c))
        .zip(exp_avg.data_mut().par_chunks_mut(c).zip(exp_avg_sq.data_mut().par_chunks_mut(c)))
        .for_each(|((p, g), (m, v))| {
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *m = b1 * *m + one_m_b1 * g;
                *v = b2 * *v + one_m_b2 * g * g;
                let denom = v.sqrt() / bc2_sqrt + eps;
                *p -= step_size * (*m / denom);
            }
        });
    Ok(())
}
