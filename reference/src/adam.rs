//! torch.optim.Adam (no amsgrad, no weight decay, not maximizing), one step.

#[derive(Clone, Copy, Debug)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

/// One Adam step in place; `step` is 1-based (the step being taken, as PyTorch's state['step'] after
/// its increment). The arithmetic follows torch/optim/adam.py's single-tensor path:
///   m ← β1 m + (1 − β1) g,  v ← β2 v + (1 − β2) g²,  bc1 = 1 − β1^t,  bc2 = 1 − β2^t,
///   p ← p − (lr/bc1) · m / (sqrt(v)/sqrt(bc2) + eps).
/// (eps is added after the bias correction of sqrt(v), not before.)
pub fn adam_step(param: &mut [f64], grad: &[f64], exp_avg: &mut [f64], exp_avg_sq: &mut [f64], cfg: &AdamConfig, step: u64) {
    assert!(step >= 1, "adam_step: step is 1-based");
    let n = param.len();
    assert!(grad.len() == n && exp_avg.len() == n && exp_avg_sq.len() == n, "adam_step: lengths differ");
    let t = step as f64;
    let bc1 = 1.0 - cfg.beta1.powf(t);
    let bc2 = 1.0 - cfg.beta2.powf(t);
    let step_size = cfg.lr / bc1;
    for i in 0..n {
        let g = grad[i];
        exp_avg[i] = cfg.beta1 * exp_avg[i] + (1.0 - cfg.beta1) * g;
        exp_avg_sq[i] = cfg.beta2 * exp_avg_sq[i] + (1.0 - cfg.beta2) * g * g;
        let denom = exp_avg_sq[i].sqrt() / bc2.sqrt() + cfg.eps;
        param[i] -= step_size * exp_avg[i] / denom;
    }
}
