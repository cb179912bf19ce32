//! batch_norm2d (train / eval) and instance_norm2d (affine), with backwards, and instance norm's
//! forward-mode derivative (jvp) and the reverse pass through it (the gradient penalty's double backward).
//!
//! Both norms are the same computation on different groups of elements: batch norm normalizes each
//! channel over (N, H, W), instance norm each (n, c) over (H, W). So everything below works on one
//! group, given as a list of flat indices, and the two norms differ only in how they form the groups.
//!
//! Notation for one group of M elements: μ = mean(x), r = invstd = 1/sqrt(var + eps) with the biased
//! variance, x̂ = (x − μ)·r, y = γ·x̂ + β.

use crate::Array;

/// Saved statistics: invstd = 1/sqrt(biased var + eps). Per channel [C] for batch norm, per
/// (n, c) [N·C] at index n·C + c for instance norm.
#[derive(Clone, Debug, PartialEq)]
pub struct NormStats {
    pub mean: Vec<f64>,
    pub invstd: Vec<f64>,
}

/// The reverse pass through instance norm's (y, ẏ) pair: cotangents of x and ẋ, and of gamma and beta.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceNormJvpGrads {
    pub x_bar: Array,
    pub x_dot_bar: Array,
    pub dgamma: Vec<f64>,
    pub dbeta: Vec<f64>,
}

// ------------------------------------------------------------------ groups

/// Flat indices of channel c over all (n, h, w): a batch-norm group.
fn channel_group(x: &Array, c: usize) -> Vec<usize> {
    let [n_, _, h_, w_] = x.dims4();
    let mut idx = Vec::with_capacity(n_ * h_ * w_);
    for n in 0..n_ {
        for h in 0..h_ {
            for w in 0..w_ {
                idx.push(x.idx4(n, c, h, w));
            }
        }
    }
    idx
}

/// Flat indices of (n, c) over all (h, w): an instance-norm group.
fn instance_group(x: &Array, n: usize, c: usize) -> Vec<usize> {
    let [_, _, h_, w_] = x.dims4();
    (0..h_ * w_).map(|i| x.idx4(n, c, 0, 0) + i).collect()
}

/// Every instance-norm group as (channel, stats index n·C + c, indices).
fn instance_groups(x: &Array) -> Vec<(usize, usize, Vec<usize>)> {
    let [n_, c_, _, _] = x.dims4();
    let mut groups = Vec::with_capacity(n_ * c_);
    for n in 0..n_ {
        for c in 0..c_ {
            groups.push((c, n * c_ + c, instance_group(x, n, c)));
        }
    }
    groups
}

fn check_affine(x: &Array, gamma: &[f64], beta: Option<&[f64]>) {
    let c = x.dims4()[1];
    assert_eq!(gamma.len(), c, "gamma has {} entries for {c} channels", gamma.len());
    if let Some(beta) = beta {
        assert_eq!(beta.len(), c, "beta has {} entries for {c} channels", beta.len());
    }
}

fn check_same_shape(a: &Array, b: &Array, what: &str) {
    assert_eq!(a.shape, b.shape, "{what}: shapes differ");
}

// ------------------------------------------------------------------ one group

/// (mean, biased variance) of x over the group, two-pass for accuracy.
fn mean_var(x: &[f64], idx: &[usize]) -> (f64, f64) {
    let m = idx.len() as f64;
    let mean = idx.iter().map(|&i| x[i]).sum::<f64>() / m;
    let var = idx.iter().map(|&i| (x[i] - mean).powi(2)).sum::<f64>() / m;
    (mean, var)
}

/// y = γ·(x − μ)·r + β over the group.
fn normalize_group(x: &[f64], idx: &[usize], mean: f64, invstd: f64, gamma: f64, beta: f64, y: &mut [f64]) {
    for &i in idx {
        y[i] = gamma * (x[i] - mean) * invstd + beta;
    }
}

/// The Jacobian of x̂(x) applied to a vector t, times a scalar (written into out over the group):
///   out_i = scale·(J t)_i,  (J t)_i = r·(t_i − mean(t)) − x̂_i·r·mean(x̂ ⊙ t).
/// J = r·(I − 11ᵀ/M − x̂x̂ᵀ/M) is symmetric, so this one function is both the forward-mode derivative
/// of y = γx̂ + β (t = ẋ, scale = γ) and its input backward (t = dy, scale = γ: Jᵀ(γ dy) = γ J dy).
fn normalize_jacobian(x: &[f64], t: &[f64], scale: f64, idx: &[usize], mean: f64, r: f64, out: &mut [f64]) {
    let m = idx.len() as f64;
    let t_mean = idx.iter().map(|&i| t[i]).sum::<f64>() / m;
    let xhat_t_mean = idx.iter().map(|&i| (x[i] - mean) * r * t[i]).sum::<f64>() / m;
    for &i in idx {
        let xhat = (x[i] - mean) * r;
        out[i] = scale * (r * (t[i] - t_mean) - xhat * r * xhat_t_mean);
    }
}

/// Backward of y = γ·x̂ + β over one group: writes dx, returns this group's (Σ dy·x̂, Σ dy).
fn norm_bwd_group(dy: &[f64], x: &[f64], idx: &[usize], gamma: f64, mean: f64, r: f64, dx: &mut [f64]) -> (f64, f64) {
    normalize_jacobian(x, dy, gamma, idx, mean, r, dx); // dx = Jᵀ(dL/dx̂) = J(γ·dy)
    let dgamma = idx.iter().map(|&i| dy[i] * (x[i] - mean) * r).sum();
    let dbeta = idx.iter().map(|&i| dy[i]).sum();
    (dgamma, dbeta)
}

// ------------------------------------------------------------------ batch norm

/// Training-mode batch norm: batch statistics per channel over (N, H, W), the biased variance to
/// normalize; the running statistics move as PyTorch's, r ← (1 − m)·r + m·stat, with the UNBIASED
/// variance (·M/(M − 1)) for running_var.
pub fn batch_norm2d_train(
    x: &Array,
    gamma: &[f64],
    beta: &[f64],
    running_mean: &mut [f64],
    running_var: &mut [f64],
    eps: f64,
    momentum: f64,
) -> (Array, NormStats) {
    check_affine(x, gamma, Some(beta));
    let c_ = x.dims4()[1];
    assert!(running_mean.len() == c_ && running_var.len() == c_, "running stats need {c_} entries");
    let mut y = Array::zeros(&x.shape);
    let mut stats = NormStats { mean: vec![0.0; c_], invstd: vec![0.0; c_] };
    for c in 0..c_ {
        let idx = channel_group(x, c);
        let m = idx.len() as f64;
        assert!(idx.len() > 1, "batch norm in training needs more than 1 value per channel");
        let (mean, var) = mean_var(&x.data, &idx);
        let invstd = 1.0 / (var + eps).sqrt();
        normalize_group(&x.data, &idx, mean, invstd, gamma[c], beta[c], &mut y.data);
        stats.mean[c] = mean;
        stats.invstd[c] = invstd;
        running_mean[c] = (1.0 - momentum) * running_mean[c] + momentum * mean;
        running_var[c] = (1.0 - momentum) * running_var[c] + momentum * var * m / (m - 1.0);
    }
    (y, stats)
}

/// Eval-mode batch norm: y = γ·(x − running_mean)/sqrt(running_var + eps) + β.
pub fn batch_norm2d_eval(x: &Array, gamma: &[f64], beta: &[f64], running_mean: &[f64], running_var: &[f64], eps: f64) -> Array {
    check_affine(x, gamma, Some(beta));
    let c_ = x.dims4()[1];
    assert!(running_mean.len() == c_ && running_var.len() == c_, "running stats need {c_} entries");
    let mut y = Array::zeros(&x.shape);
    for c in 0..c_ {
        let invstd = 1.0 / (running_var[c] + eps).sqrt();
        normalize_group(&x.data, &channel_group(x, c), running_mean[c], invstd, gamma[c], beta[c], &mut y.data);
    }
    y
}

/// Backward of training-mode batch norm (statistics depend on x) → (dx, dgamma, dbeta).
pub fn batch_norm2d_bwd(dy: &Array, x: &Array, gamma: &[f64], stats: &NormStats) -> (Array, Vec<f64>, Vec<f64>) {
    check_same_shape(dy, x, "batch_norm2d_bwd");
    check_affine(x, gamma, None);
    let c_ = x.dims4()[1];
    assert!(stats.mean.len() == c_ && stats.invstd.len() == c_, "batch norm stats need {c_} entries");
    let mut dx = Array::zeros(&x.shape);
    let (mut dgamma, mut dbeta) = (vec![0.0; c_], vec![0.0; c_]);
    for c in 0..c_ {
        let idx = channel_group(x, c);
        (dgamma[c], dbeta[c]) = norm_bwd_group(&dy.data, &x.data, &idx, gamma[c], stats.mean[c], stats.invstd[c], &mut dx.data);
    }
    (dx, dgamma, dbeta)
}

// ------------------------------------------------------------------ instance norm

fn check_instance_stats(x: &Array, stats: &NormStats) {
    let [n_, c_, _, _] = x.dims4();
    assert!(stats.mean.len() == n_ * c_ && stats.invstd.len() == n_ * c_, "instance norm stats need N*C = {} entries", n_ * c_);
}

/// Instance norm with affine gamma/beta: statistics over (H, W) per (n, c), the biased variance.
pub fn instance_norm2d(x: &Array, gamma: &[f64], beta: &[f64], eps: f64) -> (Array, NormStats) {
    check_affine(x, gamma, Some(beta));
    let mut y = Array::zeros(&x.shape);
    let groups = instance_groups(x);
    let mut stats = NormStats { mean: vec![0.0; groups.len()], invstd: vec![0.0; groups.len()] };
    for (c, s, idx) in groups {
        let (mean, var) = mean_var(&x.data, &idx);
        stats.mean[s] = mean;
        stats.invstd[s] = 1.0 / (var + eps).sqrt();
        normalize_group(&x.data, &idx, mean, stats.invstd[s], gamma[c], beta[c], &mut y.data);
    }
    (y, stats)
}

/// Backward of instance_norm2d → (dx, dgamma, dbeta); dgamma/dbeta sum over the batch.
pub fn instance_norm2d_bwd(dy: &Array, x: &Array, gamma: &[f64], stats: &NormStats) -> (Array, Vec<f64>, Vec<f64>) {
    check_same_shape(dy, x, "instance_norm2d_bwd");
    check_affine(x, gamma, None);
    check_instance_stats(x, stats);
    let mut dx = Array::zeros(&x.shape);
    let (mut dgamma, mut dbeta) = (vec![0.0; gamma.len()], vec![0.0; gamma.len()]);
    for (c, s, idx) in instance_groups(x) {
        let (dg, db) = norm_bwd_group(&dy.data, &x.data, &idx, gamma[c], stats.mean[s], stats.invstd[s], &mut dx.data);
        dgamma[c] += dg;
        dbeta[c] += db;
    }
    (dx, dgamma, dbeta)
}

/// Forward-mode derivative of instance_norm2d along ẋ (gamma, beta fixed): ẏ = γ·J ẋ, i.e.
/// ẏ_i = γ·(r(ẋ_i − mean(ẋ)) − x̂_i·r·mean(x̂ ⊙ ẋ)) per (n, c) group.
pub fn instance_norm2d_jvp(x: &Array, x_dot: &Array, gamma: &[f64], stats: &NormStats) -> Array {
    check_same_shape(x_dot, x, "instance_norm2d_jvp");
    check_affine(x, gamma, None);
    check_instance_stats(x, stats);
    let mut y_dot = Array::zeros(&x.shape);
    for (c, s, idx) in instance_groups(x) {
        normalize_jacobian(&x.data, &x_dot.data, gamma[c], &idx, stats.mean[s], stats.invstd[s], &mut y_dot.data);
    }
    y_dot
}

/// Reverse pass through (y, ẏ) = (IN(x), γ·J(x)ẋ) with cotangents ȳ and ẏ̄: the gradient of
/// ⟨ȳ, y⟩ + ⟨ẏ̄, ẏ⟩ with respect to x, ẋ, γ and β.
///
/// Per group, with u = γ·ẏ̄, xc = x − μ, d = ẋ − mean(ẋ), uc = u − mean(u):
/// * ⟨ẏ̄, ẏ⟩ = ⟨u, Jẋ⟩ = S = r·A − r³·P·Q/M, where A = Σ u_i d_i, P = Σ xc_i ẋ_i, Q = Σ u_i xc_i.
/// * ẋ̄ = Jᵀu = J u (J is symmetric): the input backward applied to ẏ̄.
/// * x̄ = J(γ ȳ) + ∂S/∂x. With ∂r/∂x_j = −r³ xc_j/M (Σ xc = 0 kills the mean's share),
///   ∂P/∂x_j = d_j and ∂Q/∂x_j = uc_j (A does not depend on x):
///   ∂S/∂x_j = −r³ xc_j A/M + 3 r⁵ xc_j P Q/M² − r³ (d_j Q + P uc_j)/M.
/// * dγ = Σ ȳ x̂ + Σ ẏ̄ (Jẋ),  dβ = Σ ȳ  (ẏ does not depend on β).
pub fn instance_norm2d_jvp_bwd(
    x: &Array,
    x_dot: &Array,
    gamma: &[f64],
    stats: &NormStats,
    y_bar: &Array,
    y_dot_bar: &Array,
) -> InstanceNormJvpGrads {
    check_same_shape(x_dot, x, "instance_norm2d_jvp_bwd: x_dot");
    check_same_shape(y_bar, x, "instance_norm2d_jvp_bwd: y_bar");
    check_same_shape(y_dot_bar, x, "instance_norm2d_jvp_bwd: y_dot_bar");
    check_affine(x, gamma, None);
    check_instance_stats(x, stats);

    // The first-order parts are the plain backward of ⟨ȳ, y⟩ ...
    let (mut x_bar, mut dgamma, dbeta) = instance_norm2d_bwd(y_bar, x, gamma, stats);
    // ... and of ⟨ẏ̄, ẏ⟩ as a function of ẋ (linear, symmetric map): ẋ̄ = J(γ ẏ̄).
    let (x_dot_bar, _, _) = instance_norm2d_bwd(y_dot_bar, x, gamma, stats);
    let x_dot_n = instance_norm2d_jvp(x, x_dot, &vec![1.0; gamma.len()], stats); // J ẋ, unscaled

    for (c, s, idx) in instance_groups(x) {
        let (mean, r, m) = (stats.mean[s], stats.invstd[s], idx.len() as f64);
        dgamma[c] += idx.iter().map(|&i| y_dot_bar.data[i] * x_dot_n.data[i]).sum::<f64>();

        // Second-order term ∂S/∂x, S = ⟨u, J(x) ẋ⟩.
        let u: Vec<f64> = idx.iter().map(|&i| gamma[c] * y_dot_bar.data[i]).collect();
        let xc: Vec<f64> = idx.iter().map(|&i| x.data[i] - mean).collect();
        let xd: Vec<f64> = idx.iter().map(|&i| x_dot.data[i]).collect();
        let xd_mean = xd.iter().sum::<f64>() / m;
        let u_mean = u.iter().sum::<f64>() / m;
        let d: Vec<f64> = xd.iter().map(|v| v - xd_mean).collect();
        let a: f64 = u.iter().zip(&d).map(|(u, d)| u * d).sum();
        let p: f64 = xc.iter().zip(&xd).map(|(xc, xd)| xc * xd).sum();
        let q: f64 = u.iter().zip(&xc).map(|(u, xc)| u * xc).sum();
        let (r3, r5) = (r.powi(3), r.powi(5));
        for (k, &i) in idx.iter().enumerate() {
            let uc = u[k] - u_mean;
            x_bar.data[i] += -r3 * xc[k] * a / m + 3.0 * r5 * xc[k] * p * q / (m * m) - r3 * (d[k] * q + p * uc) / m;
        }
    }
    InstanceNormJvpGrads { x_bar, x_dot_bar, dgamma, dbeta }
}
