//! torch.optim.Adam (no weight decay, no amsgrad) as one fused kernel over param, grad and both moments.

use cubecl::prelude::*;

use super::{grid_start, grid_stride};

/// One Adam step, torch's per-element sequence in f32:
/// m ← b1·m + (1−b1)·g; v ← b2·v + (1−b2)·g²; denom = √v / √(1−b2^t) + eps; p ← p − step_size·m/denom,
/// with step_size = lr/(1−b1^t) and √(1−b2^t) formed on the host in f64 and rounded once. Reads
/// (p, g, m, v) and writes fresh (p, m, v) buffers.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn adam_step(
    p: &Array<f32>, g: &Array<f32>, m: &Array<f32>, v: &Array<f32>, p_out: &mut Array<f32>, m_out: &mut Array<f32>,
    v_out: &mut Array<f32>, b1: f32, b2: f32, one_m_b1: f32, one_m_b2: f32, step_size: f32, bc2_sqrt: f32, eps: f32,
) {
    let n = p_out.len();
    let mut i = grid_start();
    while i < n {
        let gi = g[i];
        let mi = b1 * m[i] + one_m_b1 * gi;
        let vi = b2 * v[i] + one_m_b2 * gi * gi;
        let denom = f32::sqrt(vi) / bc2_sqrt + eps;
        p_out[i] = p[i] - step_size * (mi / denom);
        m_out[i] = mi;
        v_out[i] = vi;
        i += grid_stride();
    }
}
