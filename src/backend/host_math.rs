//! Host-side scalar math that every f32 backend forms the same way before its kernels run: Adam's bias
//! corrections, the gradient penalty from its per-sample norms, and the bilinear resize's source taps.
//! (Shape checks live in [`super::shapes`].)

use super::AdamConfig;

/// One Adam step's scalars. The bias corrections are computed in f64 (b^t for t in the tens of thousands
/// loses digits in f32) and, as torch does with its Python-float scalars, rounded to f32 once; so is
/// 1 − β (0.001, not 1 − 0.999f32 = 0.00099998).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamScalars {
    pub b1: f32,
    pub b2: f32,
    pub one_m_b1: f32,
    pub one_m_b2: f32,
    /// lr / (1 − b1^t).
    pub step_size: f32,
    /// √(1 − b2^t).
    pub bc2_sqrt: f32,
    pub eps: f32,
}

impl AdamScalars {
    /// The scalars of step `step` (1-based; checked by [`super::shapes::adam_step`]).
    pub fn new(cfg: &AdamConfig, step: u64) -> Self {
        let (b1, b2) = (cfg.beta1, cfg.beta2);
        let t = step.min(i32::MAX as u64) as i32;
        AdamScalars {
            b1: b1 as f32,
            b2: b2 as f32,
            one_m_b1: (1.0 - b1) as f32,
            one_m_b2: (1.0 - b2) as f32,
            step_size: (cfg.lr / (1.0 - b1.powi(t))) as f32,
            bc2_sqrt: (1.0 - b2.powi(t)).sqrt() as f32,
            eps: cfg.eps as f32,
        }
    }
}

/// WGAN-GP's penalty λ·mean((‖gₙ‖ − 1)²) from the per-sample norms ‖gₙ‖.
pub fn gradient_penalty(grad_norm: &[f64], lambda: f32) -> f64 {
    let lambda = lambda as f64;
    lambda * grad_norm.iter().map(|&r| (r - 1.0) * (r - 1.0)).sum::<f64>() / grad_norm.len() as f64
}

/// The penalty's cotangent factor of one sample, v = k·gₙ with k = 2λ(‖gₙ‖ − 1)/‖gₙ‖/N; 0 where ‖gₙ‖ = 0
/// (PyTorch's subgradient of the norm at 0).
pub fn gradient_penalty_factor(norm: f64, lambda: f32, n: usize) -> f64 {
    if norm > 0.0 {
        2.0 * lambda as f64 * (norm - 1.0) / norm / n as f64
    } else {
        0.0
    }
}

/// One output row's (or column's) source taps in a bilinear resize: rows i0, i1 weighted λ0, λ1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BilinearTap {
    pub i0: usize,
    pub i1: usize,
    pub l0: f32,
    pub l1: f32,
}

/// The taps of `F.interpolate(mode='bilinear', align_corners=False)` from `len_in` to `len_out` (both > 0)
/// along one axis: PyTorch's src = max((d + 0.5)·in/out − 0.5, 0), in f64, rounded to f32 weights once.
pub fn bilinear_taps(len_in: usize, len_out: usize) -> Vec<BilinearTap> {
    let scale = len_in as f64 / len_out as f64;
    (0..len_out)
        .map(|d| {
            let src = ((d as f64 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (src as usize).min(len_in - 1);
            let i1 = if i0 + 1 < len_in { i0 + 1 } else { i0 };
            let l1 = src - i0 as f64;
            BilinearTap { i0, i1, l0: (1.0 - l1) as f32, l1: l1 as f32 }
        })
        .collect()
}
