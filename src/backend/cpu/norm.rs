//! Batch norm (train / eval / backward) and instance norm (forward / backward / forward-mode derivative and
//! its reverse pass), over NCHW.
//!
//! Work is split into (n, c) planes of H·W contiguous elements, run in parallel with rayon. Each plane's
//! reductions are accumulated in f64 and combined per channel in f64 (batch norm) so that statistics over a
//! whole batch agree with the f64 oracle to f32 rounding; the per-element maps are also evaluated in f64
//! (they are memory-bound, so this costs nothing measurable) and rounded once on store.

use rayon::prelude::*;

use super::{sum_f64, CpuBackend};
use crate::backend::{shapes, InstanceNormJvpGrads, NormGrads, NormStats};
use crate::error::Result;
use crate::tensor::Tensor;

/// Σ (x − mu)², f64, four lanes so that the adds are not one long dependency chain.
fn sq_dev_f64(x: &[f32], mu: f64) -> f64 {
    let mut acc = [0f64; 4];
    let chunks = x.chunks_exact(4);
    let mut s: f64 = chunks.remainder().iter().map(|&v| (v as f64 - mu) * (v as f64 - mu)).sum();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            let d = v as f64 - mu;
            *a += d * d;
        }
    }
    s += acc.iter().sum::<f64>();
    s
}

/// (Σ dy, Σ dy·(x − mu)) over one plane, f64.
fn sum_and_dot_centered(dy: &[f32], x: &[f32], mu: f64) -> (f64, f64) {
    let (mut s, mut d) = ([0f64; 4], [0f64; 4]);
    let (cd, cx) = (dy.chunks_exact(4), x.chunks_exact(4));
    let (mut s_t, mut d_t) = (0f64, 0f64);
    for (&g, &v) in cd.remainder().iter().zip(cx.remainder()) {
        s_t += g as f64;
        d_t += g as f64 * (v as f64 - mu);
    }
    for (g4, x4) in cd.zip(cx) {
        for i in 0..4 {
            s[i] += g4[i] as f64;
            d[i] += g4[i] as f64 * (x4[i] as f64 - mu);
        }
    }
    (s.iter().sum::<f64>() + s_t, d.iter().sum::<f64>() + d_t)
}

/// The shapes of saved statistics, for the shared checks.
fn stat_shapes(stats: &NormStats<Tensor>) -> NormStats<&[usize]> {
    NormStats { mean: stats.mean.shape(), invstd: stats.invstd.shape() }
}

fn to_f64(t: &Tensor) -> Vec<f64> {
    t.to_f64()
}

fn to_tensor(be: &CpuBackend, shape: &[usize], v: &[f64]) -> Tensor {
    let mut t = be.alloc(shape);
    for (o, &s) in t.data_mut().iter_mut().zip(v) {
        *o = s as f32;
    }
    t
}

/// Per-channel sums of per-plane values laid out [N*C]: out[c] = Σ_n v[n*C + c].
fn per_channel<const K: usize>(v: &[[f64; K]], c: usize) -> Vec<[f64; K]> {
    let mut out = vec![[0f64; K]; c];
    for (i, s) in v.iter().enumerate() {
        for k in 0..K {
            out[i % c][k] += s[k];
        }
    }
    out
}

/// y = (x − mean)·invstd·gamma + beta per plane, with mean / invstd looked up by `stat(plane)`.
fn normalize_affine(
    be: &CpuBackend,
    x: &Tensor,
    c: usize,
    hw: usize,
    gamma: &[f64],
    beta: &[f64],
    stat: impl Fn(usize) -> (f64, f64) + Sync,
) -> Tensor {
    let mut y = be.alloc(x.shape());
    y.data_mut().par_chunks_mut(hw).zip(x.data().par_chunks(hw)).enumerate().for_each(|(i, (y, x))| {
        let (mu, r) = stat(i);
        let (g, b) = (gamma[i % c], beta[i % c]);
        for (y, &v) in y.iter_mut().zip(x) {
            *y = ((v as f64 - mu) * r * g + b) as f32;
        }
    });
    y
}

/// The input gradient of a normalization, one plane at a time:
/// dx = γ·r·(dy − mean(dy) − x̂·mean(dy·x̂)), with x̂ = (x − μ)·r, the means taken over the plane's whole
/// group (the channel for batch norm, the plane itself for instance norm). `group(plane)` gives
/// (mean(dy), mean(dy·(x − μ)), μ, r) of that group.
fn input_grad(
    be: &CpuBackend,
    dy: &Tensor,
    x: &Tensor,
    c: usize,
    hw: usize,
    gamma: &[f64],
    group: impl Fn(usize) -> (f64, f64, f64, f64) + Sync,
) -> Tensor {
    let mut dx = be.alloc(x.shape());
    dx.data_mut().par_chunks_mut(hw).zip(dy.data().par_chunks(hw).zip(x.data().par_chunks(hw))).enumerate().for_each(
        |(i, (dx, (dy, x)))| {
            let (mean_dy, mean_dyxc, mu, r) = group(i);
            // dx = k·dy + kx·(x − μ) + k0, from expanding the formula above.
            let k = gamma[i % c] * r;
            let k0 = -k * mean_dy;
            let kx = -k * r * r * mean_dyxc;
            for ((dx, &g), &v) in dx.iter_mut().zip(dy).zip(x) {
                *dx = (k * g as f64 + kx * (v as f64 - mu) + k0) as f32;
            }
        },
    );
    dx
}

#[allow(clippy::too_many_arguments)]
pub(super) fn batch_norm2d_train(
    be: &CpuBackend,
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    running_mean: &mut Tensor,
    running_var: &mut Tensor,
    eps: f32,
    momentum: f32,
) -> Result<(Tensor, NormStats<Tensor>)> {
    let (n, c, hw) = shapes::batch_norm2d_train(
        "batch_norm2d_train",
        x.shape(),
        gamma.shape(),
        beta.shape(),
        running_mean.shape(),
        running_var.shape(),
    )?;
    let m = (n * hw) as f64;
    // Two passes (mean, then centred squares) rather than Σx² − (Σx)²/m, which cancels badly in f32 data
    // with a large mean.
    let sums: Vec<[f64; 1]> = x.data().par_chunks(hw).map(|p| [sum_f64(p)]).collect();
    let mean: Vec<f64> = per_channel(&sums, c).iter().map(|s| s[0] / m).collect();
    let sq: Vec<[f64; 1]> = x.data().par_chunks(hw).enumerate().map(|(i, p)| [sq_dev_f64(p, mean[i % c])]).collect();
    let var: Vec<f64> = per_channel(&sq, c).iter().map(|s| s[0] / m).collect();
    let invstd: Vec<f64> = var.iter().map(|&v| 1.0 / (v + eps as f64).sqrt()).collect();

    let (g, b) = (to_f64(gamma), to_f64(beta));
    let y = normalize_affine(be, x, c, hw, &g, &b, |i| (mean[i % c], invstd[i % c]));

    let mom = momentum as f64;
    for ((rm, rv), (&mu, &v)) in running_mean.data_mut().iter_mut().zip(running_var.data_mut().iter_mut()).zip(mean.iter().zip(&var)) {
        *rm = ((1.0 - mom) * *rm as f64 + mom * mu) as f32;
        *rv = ((1.0 - mom) * *rv as f64 + mom * v * m / (m - 1.0)) as f32;
    }
    let stats = NormStats { mean: to_tensor(be, &[c], &mean), invstd: to_tensor(be, &[c], &invstd) };
    Ok((y, stats))
}

pub(super) fn batch_norm2d_eval(
    be: &CpuBackend,
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    eps: f32,
) -> Result<Tensor> {
    let (_, c, hw) =
        shapes::batch_norm2d_eval("batch_norm2d_eval", x.shape(), gamma.shape(), beta.shape(), running_mean.shape(), running_var.shape())?;
    let rm = to_f64(running_mean);
    let r: Vec<f64> = running_var.data().iter().map(|&v| 1.0 / (v as f64 + eps as f64).sqrt()).collect();
    let (g, b) = (to_f64(gamma), to_f64(beta));
    Ok(normalize_affine(be, x, c, hw, &g, &b, |i| (rm[i % c], r[i % c])))
}

pub(super) fn batch_norm2d_bwd(
    be: &CpuBackend,
    dy: &Tensor,
    x: &Tensor,
    gamma: &Tensor,
    stats: &NormStats<Tensor>,
) -> Result<NormGrads<Tensor>> {
    let (n, c, hw) = shapes::batch_norm2d_bwd("batch_norm2d_bwd", dy.shape(), x.shape(), gamma.shape(), &stat_shapes(stats))?;
    let (mean, invstd, g) = (to_f64(&stats.mean), to_f64(&stats.invstd), to_f64(gamma));
    let m = (n * hw) as f64;
    let plane: Vec<[f64; 2]> = dy
        .data()
        .par_chunks(hw)
        .zip(x.data().par_chunks(hw))
        .enumerate()
        .map(|(i, (dy, x))| {
            let (s, d) = sum_and_dot_centered(dy, x, mean[i % c]);
            [s, d]
        })
        .collect();
    let ch = per_channel(&plane, c);
    let dx = input_grad(be, dy, x, c, hw, &g, |i| {
        let k = i % c;
        (ch[k][0] / m, ch[k][1] / m, mean[k], invstd[k])
    });
    let dgamma: Vec<f64> = ch.iter().zip(&invstd).map(|(s, &r)| s[1] * r).collect();
    let dbeta: Vec<f64> = ch.iter().map(|s| s[0]).collect();
    Ok(NormGrads { dx, dgamma: to_tensor(be, &[c], &dgamma), dbeta: to_tensor(be, &[c], &dbeta) })
}

pub(super) fn instance_norm2d(be: &CpuBackend, x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<(Tensor, NormStats<Tensor>)> {
    let (n, c, hw) = shapes::instance_norm2d("instance_norm2d", x.shape(), gamma.shape(), beta.shape())?;
    let m = hw as f64;
    let stats: Vec<(f64, f64)> = x
        .data()
        .par_chunks(hw)
        .map(|p| {
            let mu = sum_f64(p) / m;
            (mu, 1.0 / (sq_dev_f64(p, mu) / m + eps as f64).sqrt())
        })
        .collect();
    let (g, b) = (to_f64(gamma), to_f64(beta));
    let y = normalize_affine(be, x, c, hw, &g, &b, |i| stats[i]);
    let mean: Vec<f64> = stats.iter().map(|s| s.0).collect();
    let invstd: Vec<f64> = stats.iter().map(|s| s.1).collect();
    Ok((y, NormStats { mean: to_tensor(be, &[n * c], &mean), invstd: to_tensor(be, &[n * c], &invstd) }))
}

pub(super) fn instance_norm2d_bwd(
    be: &CpuBackend,
    dy: &Tensor,
    x: &Tensor,
    gamma: &Tensor,
    stats: &NormStats<Tensor>,
) -> Result<NormGrads<Tensor>> {
    let (_, c, hw) = shapes::instance_norm2d_bwd("instance_norm2d_bwd", dy.shape(), x.shape(), gamma.shape(), &stat_shapes(stats))?;
    let (mean, invstd) = (to_f64(&stats.mean), to_f64(&stats.invstd));
    let g = to_f64(gamma);
    let plane: Vec<[f64; 2]> = dy
        .data()
        .par_chunks(hw)
        .zip(x.data().par_chunks(hw))
        .enumerate()
        .map(|(i, (dy, x))| {
            let (s, d) = sum_and_dot_centered(dy, x, mean[i]);
            [s, d]
        })
        .collect();
    let m = hw as f64;
    let dx = input_grad(be, dy, x, c, hw, &g, |i| (plane[i][0] / m, plane[i][1] / m, mean[i], invstd[i]));
    // dgamma = Σ dy·x̂ = r·Σ dy·(x − μ) per plane, summed over the batch.
    let scaled: Vec<[f64; 2]> = plane.iter().zip(&invstd).map(|(s, &r)| [s[1] * r, s[0]]).collect();
    let ch = per_channel(&scaled, c);
    let dgamma: Vec<f64> = ch.iter().map(|s| s[0]).collect();
    let dbeta: Vec<f64> = ch.iter().map(|s| s[1]).collect();
    Ok(NormGrads { dx, dgamma: to_tensor(be, &[c], &dgamma), dbeta: to_tensor(be, &[c], &dbeta) })
}

pub(super) fn instance_norm2d_jvp(
    be: &CpuBackend,
    x: &Tensor,
    x_dot: &Tensor,
    gamma: &Tensor,
    stats: &NormStats<Tensor>,
) -> Result<Tensor> {
    let (_, c, hw) = shapes::instance_norm2d_jvp("instance_norm2d_jvp", x.shape(), x_dot.shape(), gamma.shape(), &stat_shapes(stats))?;
    let (mean, invstd) = (to_f64(&stats.mean), to_f64(&stats.invstd));
    let g = to_f64(gamma);
    let m = hw as f64;
    let mut y_dot = be.alloc(x.shape());
    y_dot.data_mut().par_chunks_mut(hw).zip(x.data().par_chunks(hw).zip(x_dot.data().par_chunks(hw))).enumerate().for_each(
        |(i, (yd, (x, xd)))| {
            let (mu, r) = (mean[i], invstd[i]);
            // ẏ = γ·(r·(ẋ − mean ẋ) − x̂·r·mean(x̂ ẋ)), x̂ = r(x − μ): with P = Σ (x − μ)ẋ,
            // ẏ = γr·ẋ − γr·mean ẋ − γr³P/m·(x − μ).
            let (s_xd, p) = sum_and_dot_centered(xd, x, mu);
            let k = g[i % c] * r;
            let k0 = -k * s_xd / m;
            let kx = -k * r * r * p / m;
            for ((o, &v), &d) in yd.iter_mut().zip(x).zip(xd) {
                *o = (k * d as f64 + kx * (v as f64 - mu) + k0) as f32;
            }
        },
    );
    Ok(y_dot)
}

/// The per-plane sums the reverse pass of the instance-norm tangent map needs, all in f64 with
/// xc = x − μ: [Σȳ, Σȳ·xc, Σẏ̄, Σẏ̄·xc, Σẏ̄·ẋ, Σẋ, Σxc·ẋ].
fn jvp_bwd_sums(x: &[f32], xd: &[f32], yb: &[f32], ydb: &[f32], mu: f64) -> [f64; 7] {
    let mut s = [0f64; 7];
    for (((&x, &xd), &yb), &ydb) in x.iter().zip(xd).zip(yb).zip(ydb) {
        let (xc, xd, yb, ydb) = (x as f64 - mu, xd as f64, yb as f64, ydb as f64);
        s[0] += yb;
        s[1] += yb * xc;
        s[2] += ydb;
        s[3] += ydb * xc;
        s[4] += ydb * xd;
        s[5] += xd;
        s[6] += xc * xd;
    }
    s
}

pub(super) fn instance_norm2d_jvp_bwd(
    be: &CpuBackend,
    x: &Tensor,
    x_dot: &Tensor,
    gamma: &Tensor,
    stats: &NormStats<Tensor>,
    y_bar: &Tensor,
    y_dot_bar: &Tensor,
) -> Result<InstanceNormJvpGrads<Tensor>> {
    let (_, c, hw) = shapes::instance_norm2d_jvp_bwd(
        "instance_norm2d_jvp_bwd",
        x.shape(),
        x_dot.shape(),
        gamma.shape(),
        &stat_shapes(stats),
        y_bar.shape(),
        y_dot_bar.shape(),
    )?;
    let (mean, invstd) = (to_f64(&stats.mean), to_f64(&stats.invstd));
    let g = to_f64(gamma);
    let m = hw as f64;
    let sums: Vec<[f64; 7]> = x
        .data()
        .par_chunks(hw)
        .zip(x_dot.data().par_chunks(hw))
        .zip(y_bar.data().par_chunks(hw).zip(y_dot_bar.data().par_chunks(hw)))
        .enumerate()
        .map(|(i, ((x, xd), (yb, ydb)))| jvp_bwd_sums(x, xd, yb, ydb, mean[i]))
        .collect();

    let mut x_bar = be.alloc(x.shape());
    let mut x_dot_bar = be.alloc(x.shape());
    x_bar
        .data_mut()
        .par_chunks_mut(hw)
        .zip(x_dot_bar.data_mut().par_chunks_mut(hw))
        .zip(x.data().par_chunks(hw).zip(x_dot.data().par_chunks(hw)))
        .zip(y_bar.data().par_chunks(hw).zip(y_dot_bar.data().par_chunks(hw)))
        .enumerate()
        .for_each(|(i, (((xb, xdb), (x, xd)), (yb, ydb)))| {
            let (mu, r, gm) = (mean[i], invstd[i], g[i % c]);
            let [s_yb, s_ybxc, s_ydb, s_ydbxc, s_ydbxd, s_xd, p] = sums[i];
            // With u = γ·ẏ̄, d = ẋ − mean ẋ, uc = u − mean u: A = Σ u·d, Q = Σ u·xc, P = Σ xc·ẋ.
            let a = gm * (s_ydbxd - s_xd * s_ydb / m);
            let q = gm * s_ydbxc;
            let (r2, r3) = (r * r, r * r * r);
            let r5 = r3 * r2;
            let mean_xd = s_xd / m;
            let mean_u = gm * s_ydb / m;
            // IN_input_bwd(ȳ) = γr·ȳ − γr·Σȳ/m − γr³·Σȳxc/m·xc, plus the curvature terms
            // −r³·xc·A/m + 3r⁵·xc·P·Q/m² − r³·(d·Q + P·uc)/m, collected into one affine map of (ȳ, xc, ẋ, ẏ̄).
            let k = gm * r;
            let c_yb = k;
            let c_xc = -k * r2 * s_ybxc / m - r3 * a / m + 3.0 * r5 * p * q / (m * m);
            let c_xd = -r3 * q / m;
            let c_ydb = -r3 * p * gm / m;
            let c0 = -k * s_yb / m + r3 * q * mean_xd / m + r3 * p * mean_u / m;
            // IN_input_bwd(ẏ̄): the tangent map is symmetric.
            let d_ydb = k;
            let d_xc = -k * r2 * s_ydbxc / m;
            let d0 = -k * s_ydb / m;
            for ((((xb, xdb), &x), &xd), (&yb, &ydb)) in xb.iter_mut().zip(xdb.iter_mut()).zip(x).zip(xd).zip(yb.iter().zip(ydb)) {
                let xc = x as f64 - mu;
                let (xd, yb, ydb) = (xd as f64, yb as f64, ydb as f64);
                *xb = (c_yb * yb + c_xc * xc + c_xd * xd + c_ydb * ydb + c0) as f32;
                *xdb = (d_ydb * ydb + d_xc * xc + d0) as f32;
            }
        });

    // dgamma = Σ ȳ·x̂ + Σ ẏ̄·ẋn with ẋn = r·d − r³·xc·P/m (ẏ before the γ scaling); dbeta = Σ ȳ.
    let plane: Vec<[f64; 2]> = sums
        .iter()
        .zip(&invstd)
        .map(|(s, &r)| {
            let [s_yb, s_ybxc, s_ydb, s_ydbxc, s_ydbxd, s_xd, p] = *s;
            let ydb_d = s_ydbxd - s_xd * s_ydb / m;
            [r * s_ybxc + r * ydb_d - r * r * r * p * s_ydbxc / m, s_yb]
        })
        .collect();
    let ch = per_channel(&plane, c);
    let dgamma: Vec<f64> = ch.iter().map(|s| s[0]).collect();
    let dbeta: Vec<f64> = ch.iter().map(|s| s[1]).collect();
    Ok(InstanceNormJvpGrads { x_bar, x_dot_bar, dgamma: to_tensor(be, &[c], &dgamma), dbeta: to_tensor(be, &[c], &dbeta) })
}
