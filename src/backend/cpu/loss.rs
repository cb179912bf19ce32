//! Losses with mean reduction (nn.BCELoss, nn.BCEWithLogitsLoss) and WGAN-GP's penalty head. Every
//! per-element term is formed and summed in f64: the losses are printed and compared across backends, and
//! the sums run over whole batches.

use rayon::prelude::*;

use super::{CpuBackend, ELEMWISE_CHUNK};
use crate::backend::host_math::{gradient_penalty, gradient_penalty_factor};
use crate::backend::{shapes, PenaltyHead};
use crate::error::Result;
use crate::tensor::Tensor;

/// Runs `term(a_i, b_i) -> (loss_i, grad_i)` over two same-shaped tensors in parallel chunks, writing the
/// gradients and returning Σ loss_i (f64).
fn loss_map(be: &CpuBackend, a: &Tensor, b: &Tensor, term: impl Fn(f64, f64) -> (f64, f64) + Sync) -> (f64, Tensor) {
    let mut grad = be.alloc(a.shape());
    let c = ELEMWISE_CHUNK;
    let total = grad
        .data_mut()
        .par_chunks_mut(c)
        .zip(a.data().par_chunks(c).zip(b.data().par_chunks(c)))
        .map(|(g, (a, b))| {
            let mut s = 0f64;
            for ((g, &a), &b) in g.iter_mut().zip(a).zip(b) {
                let (l, d) = term(a as f64, b as f64);
                s += l;
                *g = d as f32;
            }
            s
        })
        .sum();
    (total, grad)
}

/// nn.BCELoss: −mean(t·max(ln p, −100) + (1−t)·max(ln(1−p), −100)); dL/dp = (p − t)/max(p(1−p), 1e-12)/N
/// (PyTorch clamps the logs at −100 and the denominator at 1e-12 so that p ∈ {0, 1} stays finite).
pub(super) fn bce(be: &CpuBackend, p: &Tensor, target: &Tensor) -> Result<(f64, Tensor)> {
    shapes::loss("bce", "p", p.shape(), "target", target.shape())?;
    let inv_n = 1.0 / p.len() as f64;
    let (sum, grad) = loss_map(be, p, target, |p, t| {
        let l = t * clamp_log(p.ln()) + (1.0 - t) * clamp_log((1.0 - p).ln());
        (-l, (p - t) / (p * (1.0 - p)).max(1e-12) * inv_n)
    });
    Ok((sum * inv_n, grad))
}

/// nn.BCEWithLogitsLoss in its overflow-free form max(z, 0) − z·t + ln(1 + e^{−|z|}); gradient (σ(z) − t)/N.
pub(super) fn bce_logits(be: &CpuBackend, logits: &Tensor, target: &Tensor) -> Result<(f64, Tensor)> {
    shapes::loss("bce_logits", "logits", logits.shape(), "target", target.shape())?;
    let inv_n = 1.0 / logits.len() as f64;
    let (sum, grad) = loss_map(be, logits, target, |z, t| {
        let l = z.max(0.0) - z * t + (-z.abs()).exp().ln_1p();
        let s = if z >= 0.0 { 1.0 / (1.0 + (-z).exp()) } else { z.exp() / (1.0 + z.exp()) };
        (l, (s - t) * inv_n)
    });
    Ok((sum * inv_n, grad))
}

/// From g = ∇x̂ C(x̂) [N, ...]: per-sample norms ‖g_n‖₂ (f64), gp = λ·mean((‖g_n‖ − 1)²) and the cotangent
/// v = 2λ(‖g_n‖ − 1)·g_n/‖g_n‖/N. A zero gradient gets v = 0 there, PyTorch's subgradient of the norm at 0.
pub(super) fn gradient_penalty_head(be: &CpuBackend, g: &Tensor, lambda: f32) -> Result<PenaltyHead<Tensor>> {
    let (n, per) = shapes::gradient_penalty_head("gradient_penalty_head", g.shape())?;
    let grad_norm: Vec<f64> = g
        .data()
        .par_chunks(per)
        .map(|s| {
            let mut acc = [0f64; 8];
            let chunks = s.chunks_exact(8);
            let tail: f64 = chunks.remainder().iter().map(|&v| (v as f64) * (v as f64)).sum();
            for c in chunks {
                for (a, &v) in acc.iter_mut().zip(c) {
                    *a += (v as f64) * (v as f64);
                }
            }
            (acc.iter().sum::<f64>() + tail).sqrt()
        })
        .collect();
    let gp = gradient_penalty(&grad_norm, lambda);
    let mut v = be.alloc(g.shape());
    v.data_mut().par_chunks_mut(per).zip(g.data().par_chunks(per)).zip(grad_norm.par_iter()).for_each(|((v, g), &r)| {
        let k = gradient_penalty_factor(r, lambda, n);
        for (v, &g) in v.iter_mut().zip(g) {
            *v = (k * g as f64) as f32;
        }
    });
    Ok(PenaltyHead { gp, grad_norm, v })
}

/// torch.clamp(log, min=-100): like `max`, but NaN stays NaN (a diverged model must show a NaN loss).
fn clamp_log(v: f64) -> f64 {
    if v < -100.0 {
        -100.0
    } else {
        v
    }
}

/// F.cross_entropy with mean reduction, per row in f64: loss −log softmax(z)[t] = logsumexp(z) − z[t]
/// (the row maximum subtracted first), gradient (softmax(z) − onehot(t))/N.
pub(super) fn cross_entropy(be: &CpuBackend, logits: &Tensor, target: &[usize]) -> Result<(f64, Tensor)> {
    let (n, k) = shapes::cross_entropy("cross_entropy", logits.shape(), target)?;
    let mut grad = be.alloc(&[n, k]);
    let inv_n = 1.0 / n as f64;
    let total: f64 = grad
        .data_mut()
        .par_chunks_mut(k)
        .zip(logits.data().par_chunks(k))
        .zip(target.par_iter())
        .map(|((g, z), &t)| {
            let max = z.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
            let sum: f64 = z.iter().map(|&v| (v as f64 - max).exp()).sum();
            for (j, (g, &v)) in g.iter_mut().zip(z).enumerate() {
                let softmax = (v as f64 - max).exp() / sum;
                *g = ((softmax - if j == t { 1.0 } else { 0.0 }) * inv_n) as f32;
            }
            sum.ln() + max - z[t] as f64
        })
        .sum();
    Ok((total * inv_n, grad))
}
