//! torch.optim.Adam (no weight decay, no amsgrad) as one fused kernel over param, grad and both moments.

use cubecl::prelude::*;

use super::{grid_start, grid_stride};

/// A parameter and its two moments: what an Adam step reads, and (fresh buffers) what it writes.
#[derive(CubeLaunch, CubeType)]
pub struct AdamState {
    pub param: Array<f32>,
    pub exp_avg: Array<f32>,
    pub exp_avg_sq: Array<f32>,
}

launch_args! {
    /// One step's scalars, formed on the host in f64 and rounded once (`AdamScalars` of the host math).
    AdamArgs => AdamArgsLaunch: f32 {
        b1, b2, one_m_b1, one_m_b2,
        /// lr / (1 − b1^t).
        step_size,
        /// √(1 − b2^t).
        bc2_sqrt,
        eps,
    }
}

/// One Adam step, torch's per-element sequence in f32:
/// m ← b1·m + (1−b1)·g; v ← b2·v + (1−b2)·g²; denom = √v / √(1−b2^t) + eps; p ← p − step_size·m/denom.
#[cube(launch)]
pub fn adam_step(state: &AdamState, grad: &Array<f32>, out: &mut AdamState, args: AdamArgs) {
    let n = out.param.len();
    let mut i = grid_start();
    while i < n {
        let gi = grad[i];
        let mi = args.b1 * state.exp_avg[i] + args.one_m_b1 * gi;
        let vi = args.b2 * state.exp_avg_sq[i] + args.one_m_b2 * gi * gi;
        let denom = f32::sqrt(vi) / args.bc2_sqrt + args.eps;
        out.param[i] = state.param[i] - args.step_size * (mi / denom);
        out.exp_avg[i] = mi;
        out.exp_avg_sq[i] = vi;
        i += grid_stride();
    }
}
