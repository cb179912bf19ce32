//! Binary cross-entropy losses, mean reduction over all elements: the loss and its input gradient.

use crate::act::sigmoid;
use crate::Array;

/// nn.BCELoss on probabilities p:
///   loss = −mean(t·max(ln p, −100) + (1 − t)·max(ln(1 − p), −100)),
/// clamping the logs (before multiplying by t) so that p ∈ {0, 1} gives a finite loss, as ATen does.
/// The gradient is ATen's binary_cross_entropy_backward: (p − t)/max(p(1 − p), 1e-12)/N, whose clamped
/// denominator keeps it finite (if huge) at p ∈ {0, 1}.
pub fn bce(p: &Array, target: &Array) -> (f64, Array) {
    assert_eq!(p.shape, target.shape, "bce: shapes differ");
    let n = p.len() as f64;
    let mut loss = 0.0;
    let mut dp = Array::zeros(&p.shape);
    for ((&p, &t), d) in p.data.iter().zip(&target.data).zip(&mut dp.data) {
        assert!((0.0..=1.0).contains(&p), "bce: input {p} outside [0, 1]");
        // ln(1 − p) as ln_1p(−p): the same value, accurate for small p (ATen uses log1p too).
        loss -= t * clamp_log(p.ln()) + (1.0 - t) * clamp_log((-p).ln_1p());
        *d = (p - t) / (p * (1.0 - p)).max(1e-12) / n;
    }
    (loss / n, dp)
}

/// nn.BCEWithLogitsLoss, in its stable form mean(max(z, 0) − z·t + ln(1 + e^{−|z|})) (the same as
/// −t ln σ(z) − (1 − t) ln(1 − σ(z)) without overflow); the gradient is (σ(z) − t)/N.
pub fn bce_logits(logits: &Array, target: &Array) -> (f64, Array) {
    assert_eq!(logits.shape, target.shape, "bce_logits: shapes differ");
    let n = logits.len() as f64;
    let mut loss = 0.0;
    let mut dz = Array::zeros(&logits.shape);
    for ((&z, &t), d) in logits.data.iter().zip(&target.data).zip(&mut dz.data) {
        loss += z.max(0.0) - z * t + (-z.abs()).exp().ln_1p();
        *d = (sigmoid(z) - t) / n;
    }
    (loss / n, dz)
}

/// torch.clamp(log, min=-100): like `max`, but NaN stays NaN (a diverged model must show a NaN loss).
fn clamp_log(v: f64) -> f64 {
    if v < -100.0 {
        -100.0
    } else {
        v
    }
}
