//! Cross-entropy losses, mean reduction: the loss and its input gradient. Binary (over all elements) and
//! multi-class (over the rows of [N, K] logits).

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

/// F.cross_entropy(logits, target) with mean reduction over the N rows of [N, K] logits, class-index targets
/// (no weights, no label smoothing, no ignore_index): loss = mean_n(logsumexp(z_n) − z_n[t_n]), computed
/// stably with the row max m subtracted (logsumexp = m + ln Σ e^{z − m}); dlogits = (softmax(z_n) − onehot(t_n))/N.
pub fn cross_entropy(logits: &Array, target: &[usize]) -> (f64, Array) {
    assert_eq!(logits.shape.len(), 2, "cross_entropy: expected [N, K] logits, got {:?}", logits.shape);
    let (n_, k_) = (logits.shape[0], logits.shape[1]);
    assert_eq!(target.len(), n_, "cross_entropy: {} targets for {n_} rows", target.len());
    assert!(n_ > 0 && k_ > 0, "cross_entropy of an empty batch");
    let mut loss = 0.0;
    let mut dz = Array::zeros(&logits.shape);
    for (n, &t) in target.iter().enumerate() {
        assert!(t < k_, "cross_entropy: target {t} not below {k_} classes");
        let row = &logits.data[n * k_..(n + 1) * k_];
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = row.iter().map(|&z| (z - m).exp()).sum();
        let lse = m + sum.ln();
        loss += lse - row[t];
        for (k, &z) in row.iter().enumerate() {
            let onehot = if k == t { 1.0 } else { 0.0 };
            dz.data[n * k_ + k] = ((z - m).exp() / sum - onehot) / n_ as f64;
        }
    }
    (loss / n_ as f64, dz)
}
