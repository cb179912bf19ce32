//! Batch norm (train statistics, eval, backward) and instance norm (forward, backward, forward-mode
//! derivative and its reverse pass) over NCHW.
//!
//! Both norms reduce over groups: batch norm a channel over (N, H, W), M = N·H·W elements at
//! ((n·C + c)·HW + p); instance norm a plane (n, c) over (H, W), M = HW contiguous elements. Every group
//! kernel runs one cube per group ([`super::cube_group`]): each unit accumulates a strided share of the
//! group, a shared-memory tree sums the shares, and every pass that needs a mean subtracts one computed
//! in an earlier pass (mean, then centred squares), so no sum cancels. The same cube then writes the
//! group's elementwise outputs, so statistics never leave the chip between reduction and use.
//!
//! Notation (one group of M elements): μ, r = invstd = 1/√(var + eps) with the biased variance,
//! xc = x − μ, x̂ = xc·r, y = γ·x̂ + β.

use cubecl::prelude::*;

use super::{cube_group, grid_start, grid_stride, tree_sum_rows};

/// Index of element j (0 ≤ j < N·HW) of channel `ch`'s batch-norm group.
#[cube]
fn channel_elem(j: usize, ch: usize, c: usize, hw: usize) -> usize {
    let s = j / hw;
    (s * c + ch) * hw + j % hw
}

/// Batch-norm training statistics, one cube per channel: mean, invstd, and PyTorch's running-statistics
/// update r ← (1 − momentum)·r + momentum·stat with the unbiased variance (into fresh buffers).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn batch_norm2d_train_stats(
    x: &Array<f32>, mean: &mut Array<f32>, invstd: &mut Array<f32>, rm: &Array<f32>, rv: &Array<f32>,
    rm_out: &mut Array<f32>, rv_out: &mut Array<f32>, n: u32, c: u32, hw: u32, eps: f32, momentum: f32,
    #[comptime] units: usize,
) {
    let mut sh = SharedMemory::<f32>::new(units);
    let cc = c as usize;
    let ch = cube_group(cc);
    let hw = hw as usize;
    let m = n as usize * hw;
    let u = UNIT_POS as usize;
    let mf = f32::cast_from(m);

    let mut acc = 0.0f32;
    let mut j = u;
    while j < m {
        acc += x[channel_elem(j, ch, cc, hw)];
        j += units;
    }
    sh[u] = acc;
    tree_sum_rows(&mut sh, 1usize, units);
    let mu = sh[0] / mf;
    sync_cube();

    let mut sq = 0.0f32;
    let mut j = u;
    while j < m {
        let d = x[channel_elem(j, ch, cc, hw)] - mu;
        sq += d * d;
        j += units;
    }
    sh[u] = sq;
    tree_sum_rows(&mut sh, 1usize, units);
    let var = sh[0] / mf;

    if u == 0 && CUBE_POS < cc {
        mean[ch] = mu;
        invstd[ch] = 1.0f32 / f32::sqrt(var + eps);
        rm_out[ch] = (1.0f32 - momentum) * rm[ch] + momentum * mu;
        rv_out[ch] = (1.0f32 - momentum) * rv[ch] + momentum * (var * (mf / (mf - 1.0f32)));
    }
}

/// y = (x − mean[s])·invstd[s]·gamma[c] + beta[c] over NCHW, where s = c (batch norm, `per_instance`
/// false) or the plane n·C + c (instance norm).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn norm_affine(
    x: &Array<f32>, mean: &Array<f32>, invstd: &Array<f32>, gamma: &Array<f32>, beta: &Array<f32>, y: &mut Array<f32>,
    c: u32, hw: u32, #[comptime] per_instance: bool,
) {
    let n = y.len();
    let cc = c as usize;
    let hw = hw as usize;
    let mut i = grid_start();
    while i < n {
        let plane = i / hw;
        let ch = plane % cc;
        let mut s = ch;
        if comptime![per_instance] {
            s = plane;
        }
        y[i] = (x[i] - mean[s]) * invstd[s] * gamma[ch] + beta[ch];
        i += grid_stride();
    }
}

/// Eval-mode batch norm: y = γ·(x − running_mean)/√(running_var + eps) + β.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn batch_norm2d_eval(
    x: &Array<f32>, rm: &Array<f32>, rv: &Array<f32>, gamma: &Array<f32>, beta: &Array<f32>, y: &mut Array<f32>, c: u32,
    hw: u32, eps: f32,
) {
    let n = y.len();
    let cc = c as usize;
    let hw = hw as usize;
    let mut i = grid_start();
    while i < n {
        let ch = (i / hw) % cc;
        let r = 1.0f32 / f32::sqrt(rv[ch] + eps);
        y[i] = (x[i] - rm[ch]) * r * gamma[ch] + beta[ch];
        i += grid_stride();
    }
}

/// Batch-norm backward, one cube per channel: Σdy and Σdy·xc over the channel, then
/// dx = k·dy + kx·xc + k0 with k = γr, k0 = −k·Σdy/M, kx = −k·r²·Σ(dy·xc)/M; dgamma = r·Σ(dy·xc), dbeta = Σdy.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn batch_norm2d_bwd(
    dy: &Array<f32>, x: &Array<f32>, gamma: &Array<f32>, mean: &Array<f32>, invstd: &Array<f32>, dx: &mut Array<f32>,
    dgamma: &mut Array<f32>, dbeta: &mut Array<f32>, n: u32, c: u32, hw: u32, #[comptime] units: usize,
) {
    let mut sh = SharedMemory::<f32>::new(2 * units);
    let cc = c as usize;
    let ch = cube_group(cc);
    let hw = hw as usize;
    let m = n as usize * hw;
    let u = UNIT_POS as usize;
    let mf = f32::cast_from(m);
    let mu = mean[ch];
    let r = invstd[ch];

    let mut s_dy = 0.0f32;
    let mut s_dyxc = 0.0f32;
    let mut j = u;
    while j < m {
        let e = channel_elem(j, ch, cc, hw);
        let g = dy[e];
        s_dy += g;
        s_dyxc += g * (x[e] - mu);
        j += units;
    }
    sh[u] = s_dy;
    sh[units + u] = s_dyxc;
    tree_sum_rows(&mut sh, 2usize, units);
    let t_dy = sh[0];
    let t_dyxc = sh[units];

    let k = gamma[ch] * r;
    let k0 = -k * t_dy / mf;
    let kx = -k * r * r * t_dyxc / mf;
    if CUBE_POS < cc {
        let mut j = u;
        while j < m {
            let e = channel_elem(j, ch, cc, hw);
            dx[e] = k * dy[e] + kx * (x[e] - mu) + k0;
            j += units;
        }
        if u == 0 {
            dgamma[ch] = t_dyxc * r;
            dbeta[ch] = t_dy;
        }
    }
}

/// Instance norm forward, one cube per plane (n, c): mean, invstd (two passes) and y.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn instance_norm2d(
    x: &Array<f32>, gamma: &Array<f32>, beta: &Array<f32>, y: &mut Array<f32>, mean: &mut Array<f32>,
    invstd: &mut Array<f32>, planes: u32, c: u32, hw: u32, eps: f32, #[comptime] units: usize,
) {
    let mut sh = SharedMemory::<f32>::new(units);
    let np = planes as usize;
    let pl = cube_group(np);
    let hw = hw as usize;
    let base = pl * hw;
    let u = UNIT_POS as usize;
    let mf = f32::cast_from(hw);

    let mut acc = 0.0f32;
    let mut j = u;
    while j < hw {
        acc += x[base + j];
        j += units;
    }
    sh[u] = acc;
    tree_sum_rows(&mut sh, 1usize, units);
    let mu = sh[0] / mf;
    sync_cube();

    let mut sq = 0.0f32;
    let mut j = u;
    while j < hw {
        let d = x[base + j] - mu;
        sq += d * d;
        j += units;
    }
    sh[u] = sq;
    tree_sum_rows(&mut sh, 1usize, units);
    let r = 1.0f32 / f32::sqrt(sh[0] / mf + eps);

    if CUBE_POS < np {
        let ch = pl % c as usize;
        let g = gamma[ch] * r;
        let b = beta[ch];
        let mut j = u;
        while j < hw {
            y[base + j] = (x[base + j] - mu) * g + b;
            j += units;
        }
        if u == 0 {
            mean[pl] = mu;
            invstd[pl] = r;
        }
    }
}

/// Instance-norm backward, one cube per plane: dx as batch norm's with the plane as the group, and the
/// plane's dgamma / dbeta shares r·Σ(dy·xc), Σdy (summed over the batch by [`super::per_channel_sum`]).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn instance_norm2d_bwd(
    dy: &Array<f32>, x: &Array<f32>, gamma: &Array<f32>, mean: &Array<f32>, invstd: &Array<f32>, dx: &mut Array<f32>,
    dgamma_part: &mut Array<f32>, dbeta_part: &mut Array<f32>, planes: u32, c: u32, hw: u32, #[comptime] units: usize,
) {
    let mut sh = SharedMemory::<f32>::new(2 * units);
    let np = planes as usize;
    let pl = cube_group(np);
    let hw = hw as usize;
    let base = pl * hw;
    let u = UNIT_POS as usize;
    let mf = f32::cast_from(hw);
    let mu = mean[pl];
    let r = invstd[pl];

    let mut s_dy = 0.0f32;
    let mut s_dyxc = 0.0f32;
    let mut j = u;
    while j < hw {
        let g = dy[base + j];
        s_dy += g;
        s_dyxc += g * (x[base + j] - mu);
        j += units;
    }
    sh[u] = s_dy;
    sh[units + u] = s_dyxc;
    tree_sum_rows(&mut sh, 2usize, units);
    let t_dy = sh[0];
    let t_dyxc = sh[units];

    let k = gamma[pl % c as usize] * r;
    let k0 = -k * t_dy / mf;
    let kx = -k * r * r * t_dyxc / mf;
    if CUBE_POS < np {
        let mut j = u;
        while j < hw {
            dx[base + j] = k * dy[base + j] + kx * (x[base + j] - mu) + k0;
            j += units;
        }
        if u == 0 {
            dgamma_part[pl] = t_dyxc * r;
            dbeta_part[pl] = t_dy;
        }
    }
}

/// Instance norm's forward-mode derivative, one cube per plane: ẏ = γ·(r·(ẋ − mean ẋ) − x̂·r·mean(x̂ ẋ))
/// = k·(ẋ − mean ẋ) + kx·xc with k = γr, kx = −k·r²·P/M, P = Σ xc·ẋ.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn instance_norm2d_jvp(
    x: &Array<f32>, x_dot: &Array<f32>, gamma: &Array<f32>, mean: &Array<f32>, invstd: &Array<f32>, y_dot: &mut Array<f32>,
    planes: u32, c: u32, hw: u32, #[comptime] units: usize,
) {
    let mut sh = SharedMemory::<f32>::new(2 * units);
    let np = planes as usize;
    let pl = cube_group(np);
    let hw = hw as usize;
    let base = pl * hw;
    let u = UNIT_POS as usize;
    let mf = f32::cast_from(hw);
    let mu = mean[pl];
    let r = invstd[pl];

    let mut s_xd = 0.0f32;
    let mut p = 0.0f32;
    let mut j = u;
    while j < hw {
        let d = x_dot[base + j];
        s_xd += d;
        p += (x[base + j] - mu) * d;
        j += units;
    }
    sh[u] = s_xd;
    sh[units + u] = p;
    tree_sum_rows(&mut sh, 2usize, units);
    let mean_xd = sh[0] / mf;
    let t_p = sh[units];

    let k = gamma[pl % c as usize] * r;
    let kx = -k * r * r * t_p / mf;
    if CUBE_POS < np {
        let mut j = u;
        while j < hw {
            y_dot[base + j] = k * (x_dot[base + j] - mean_xd) + kx * (x[base + j] - mu);
            j += units;
        }
    }
}

/// The reverse pass through instance norm's (y, ẏ) pair given cotangents ȳ, ẏ̄, one cube per plane.
///
/// Pass 1: means of ȳ, ẏ̄, ẋ. Pass 2, centred: Σȳ·xc, Σẏ̄·xc, A' = Σẏ̄·(ẋ − mean ẋ), P = Σxc·ẋ. With
/// u = γẏ̄, A = γA', Q = γΣẏ̄·xc (the oracle's notation, reference/src/norm.rs):
///   x̄  = k(ȳ − mean ȳ) + c_xc·xc + c_xd·(ẋ − mean ẋ) + c_ydb·(ẏ̄ − mean ẏ̄),
///        c_xc = −k r² Σȳxc/M − r³A/M + 3r⁵PQ/M², c_xd = −r³Q/M, c_ydb = −r³Pγ/M;
///   ẋ̄ = k(ẏ̄ − mean ẏ̄) − k r² Σẏ̄xc/M · xc;
/// and the plane's shares dgamma = r Σȳxc + r A' − r³ P Σẏ̄xc/M, dbeta = Σȳ.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn instance_norm2d_jvp_bwd(
    x: &Array<f32>, x_dot: &Array<f32>, gamma: &Array<f32>, mean: &Array<f32>, invstd: &Array<f32>, y_bar: &Array<f32>,
    y_dot_bar: &Array<f32>, x_bar: &mut Array<f32>, x_dot_bar: &mut Array<f32>, dgamma_part: &mut Array<f32>,
    dbeta_part: &mut Array<f32>, planes: u32, c: u32, hw: u32, #[comptime] units: usize,
) {
    let mut sh = SharedMemory::<f32>::new(4 * units);
    let np = planes as usize;
    let pl = cube_group(np);
    let hw = hw as usize;
    let base = pl * hw;
    let u = UNIT_POS as usize;
    let mf = f32::cast_from(hw);
    let mu = mean[pl];
    let r = invstd[pl];
    let gm = gamma[pl % c as usize];

    // Pass 1: the means.
    let mut s_yb = 0.0f32;
    let mut s_ydb = 0.0f32;
    let mut s_xd = 0.0f32;
    let mut j = u;
    while j < hw {
        s_yb += y_bar[base + j];
        s_ydb += y_dot_bar[base + j];
        s_xd += x_dot[base + j];
        j += units;
    }
    sh[u] = s_yb;
    sh[units + u] = s_ydb;
    sh[2 * units + u] = s_xd;
    tree_sum_rows(&mut sh, 3usize, units);
    let t_yb = sh[0];
    let mean_yb = t_yb / mf;
    let mean_ydb = sh[units] / mf;
    let mean_xd = sh[2 * units] / mf;
    sync_cube();

    // Pass 2: centred sums.
    let mut s_ybxc = 0.0f32;
    let mut s_ydbxc = 0.0f32;
    let mut a_raw = 0.0f32;
    let mut p = 0.0f32;
    let mut j = u;
    while j < hw {
        let xc = x[base + j] - mu;
        let xd = x_dot[base + j];
        let ydb = y_dot_bar[base + j];
        s_ybxc += y_bar[base + j] * xc;
        s_ydbxc += ydb * xc;
        a_raw += ydb * (xd - mean_xd);
        p += xc * xd;
        j += units;
    }
    sh[u] = s_ybxc;
    sh[units + u] = s_ydbxc;
    sh[2 * units + u] = a_raw;
    sh[3 * units + u] = p;
    tree_sum_rows(&mut sh, 4usize, units);
    let t_ybxc = sh[0];
    let t_ydbxc = sh[units];
    let t_a = sh[2 * units];
    let t_p = sh[3 * units];

    let a = gm * t_a;
    let q = gm * t_ydbxc;
    let r2 = r * r;
    let r3 = r2 * r;
    let r5 = r3 * r2;
    let k = gm * r;
    let c_xc = -k * r2 * t_ybxc / mf - r3 * a / mf + 3.0f32 * r5 * t_p * q / (mf * mf);
    let c_xd = -r3 * q / mf;
    let c_ydb = -r3 * t_p * gm / mf;
    let d_xc = -k * r2 * t_ydbxc / mf;

    if CUBE_POS < np {
        let mut j = u;
        while j < hw {
            let xc = x[base + j] - mu;
            let d = x_dot[base + j] - mean_xd;
            let ydbc = y_dot_bar[base + j] - mean_ydb;
            x_bar[base + j] = k * (y_bar[base + j] - mean_yb) + c_xc * xc + c_xd * d + c_ydb * ydbc;
            x_dot_bar[base + j] = k * ydbc + d_xc * xc;
            j += units;
        }
        if u == 0 {
            dgamma_part[pl] = r * t_ybxc + r * t_a - r3 * t_p * t_ydbxc / mf;
            dbeta_part[pl] = t_yb;
        }
    }
}
