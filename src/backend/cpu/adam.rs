//! torch.optim.Adam (no weight decay, no amsgrad) as one fused pass over param, grad and both moments.

use rayon::prelude::*;

use super::ELEMWISE_CHUNK;
use crate::backend::host_math::AdamScalars;
use crate::backend::{shapes, AdamConfig};
use crate::error::Result;
use crate::tensor::Tensor;

/// One Adam step, in place. Follows torch's per-element sequence in f32:
/// m ← b1·m + (1−b1)·g; v ← b2·v + (1−b2)·g²; denom = √v / √(1−b2^t) + eps; p ← p − (lr/(1−b1^t))·m/denom,
/// with the scalars of [`AdamScalars`].
pub(super) fn adam_step(
    param: &mut Tensor,
    grad: &Tensor,
    exp_avg: &mut Tensor,
    exp_avg_sq: &mut Tensor,
    cfg: &AdamConfig,
    step: u64,
) -> Result<()> {
    shapes::adam_step("adam_step", param.shape(), grad.shape(), exp_avg.shape(), exp_avg_sq.shape(), step)?;
    let AdamScalars { b1, b2, one_m_b1, one_m_b2, step_size, bc2_sqrt, eps } = AdamScalars::new(cfg, step);
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
