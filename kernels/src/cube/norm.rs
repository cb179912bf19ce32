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

use super::{cube_group, grid_start, grid_stride, tree_sum_rows, BLOCK};

launch_args! {
    /// x [N, C, H, W] as the norms see it: N samples of C planes of hw = H·W elements.
    NormDims => NormDimsLaunch: usize { n, c, hw }
}

/// The statistics a forward saves for its backward: per channel (batch norm) or per plane (instance norm).
#[derive(CubeLaunch, CubeType)]
pub struct NormStatsArgs {
    pub mean: Array<f32>,
    pub invstd: Array<f32>,
}

/// Batch norm's running statistics.
#[derive(CubeLaunch, CubeType)]
pub struct RunningStatsArgs {
    pub mean: Array<f32>,
    pub var: Array<f32>,
}

/// A norm backward's outputs: dx, and dgamma / dbeta per channel (batch norm) or per plane (instance norm,
/// summed over the batch by [`super::per_channel_sum`]).
#[derive(CubeLaunch, CubeType)]
pub struct NormGradsArgs {
    pub dx: Array<f32>,
    pub dgamma: Array<f32>,
    pub dbeta: Array<f32>,
}

/// The cotangents ȳ, ẏ̄ of instance norm's (y, ẏ) pair.
#[derive(CubeLaunch, CubeType)]
pub struct JvpCotangentsArgs {
    pub y_bar: Array<f32>,
    pub y_dot_bar: Array<f32>,
}

/// What the reverse pass through instance norm's (y, ẏ) pair writes: x̄, ẋ̄ and per-plane dgamma / dbeta.
#[derive(CubeLaunch, CubeType)]
pub struct InstanceNormJvpGradsArgs {
    pub x_bar: Array<f32>,
    pub x_dot_bar: Array<f32>,
    pub dgamma: Array<f32>,
    pub dbeta: Array<f32>,
}

/// Index of element j (0 ≤ j < N·HW) of channel `ch`'s batch-norm group.
#[cube]
fn channel_elem(j: usize, ch: usize, c: usize, hw: usize) -> usize {
    let s = j / hw;
    (s * c + ch) * hw + j % hw
}

/// Batch-norm training statistics, one cube per channel: mean, invstd, and PyTorch's running-statistics
/// update r ← (1 − momentum)·r + momentum·stat with the unbiased variance (into fresh buffers).
#[cube(launch)]
pub fn batch_norm2d_train_stats(
    x: &Array<f32>,
    stats: &mut NormStatsArgs,
    running: &RunningStatsArgs,
    running_out: &mut RunningStatsArgs,
    d: NormDims,
    eps: f32,
    momentum: f32,
) {
    let mut sh = SharedMemory::<f32>::new(BLOCK);
    let (c, hw) = (d.c, d.hw);
    let ch = cube_group(c);
    let m = d.n * hw;
    let u = UNIT_POS as usize;
    let mf = f32::cast_from(m);

    let mut acc = 0.0f32;
    let mut j = u;
    while j < m {
        acc += x[channel_elem(j, ch, c, hw)];
        j += BLOCK;
    }
    sh[u] = acc;
    tree_sum_rows(&mut sh, 1usize);
    let mu = sh[0] / mf;
    sync_cube();

    let mut sq = 0.0f32;
    let mut j = u;
    while j < m {
        let dv = x[channel_elem(j, ch, c, hw)] - mu;
        sq += dv * dv;
        j += BLOCK;
    }
    sh[u] = sq;
    tree_sum_rows(&mut sh, 1usize);
    let var = sh[0] / mf;

    if u == 0 && CUBE_POS < c {
        stats.mean[ch] = mu;
        stats.invstd[ch] = 1.0f32 / f32::sqrt(var + eps);
        running_out.mean[ch] = (1.0f32 - momentum) * running.mean[ch] + momentum * mu;
        running_out.var[ch] = (1.0f32 - momentum) * running.var[ch] + momentum * (var * (mf / (mf - 1.0f32)));
    }
}

/// Batch norm's output y = (x − mean[c])·invstd[c]·gamma[c] + beta[c] over NCHW.
#[cube(launch)]
pub fn norm_affine(x: &Array<f32>, stats: &NormStatsArgs, gamma: &Array<f32>, beta: &Array<f32>, y: &mut Array<f32>, d: NormDims) {
    let n = y.len();
    let mut i = grid_start();
    while i < n {
        let ch = (i / d.hw) % d.c;
        y[i] = (x[i] - stats.mean[ch]) * stats.invstd[ch] * gamma[ch] + beta[ch];
        i += grid_stride();
    }
}

/// Eval-mode batch norm: y = γ·(x − running_mean)/√(running_var + eps) + β.
#[cube(launch)]
pub fn batch_norm2d_eval(
    x: &Array<f32>,
    running: &RunningStatsArgs,
    gamma: &Array<f32>,
    beta: &Array<f32>,
    y: &mut Array<f32>,
    d: NormDims,
    eps: f32,
) {
    let n = y.len();
    let mut i = grid_start();
    while i < n {
        let ch = (i / d.hw) % d.c;
        let r = 1.0f32 / f32::sqrt(running.var[ch] + eps);
        y[i] = (x[i] - running.mean[ch]) * r * gamma[ch] + beta[ch];
        i += grid_stride();
    }
}

/// Batch-norm backward, one cube per channel: Σdy and Σdy·xc over the channel, then
/// dx = k·dy + kx·xc + k0 with k = γr, k0 = −k·Σdy/M, kx = −k·r²·Σ(dy·xc)/M; dgamma = r·Σ(dy·xc), dbeta = Σdy.
#[cube(launch)]
pub fn batch_norm2d_bwd(
    dy: &Array<f32>,
    x: &Array<f32>,
    gamma: &Array<f32>,
    stats: &NormStatsArgs,
    grads: &mut NormGradsArgs,
    d: NormDims,
) {
    let mut sh = SharedMemory::<f32>::new(2 * BLOCK);
    let (c, hw) = (d.c, d.hw);
    let ch = cube_group(c);
    let m = d.n * hw;
    let u = UNIT_POS as usize;
    let mf = f32::cast_from(m);
    let mu = stats.mean[ch];
    let r = stats.invstd[ch];

    let mut s_dy = 0.0f32;
    let mut s_dyxc = 0.0f32;
    let mut j = u;
    while j < m {
        let e = channel_elem(j, ch, c, hw);
        let g = dy[e];
        s_dy += g;
        s_dyxc += g * (x[e] - mu);
        j += BLOCK;
    }
    sh[u] = s_dy;
    sh[BLOCK + u] = s_dyxc;
    tree_sum_rows(&mut sh, 2usize);
    let t_dy = sh[0];
    let t_dyxc = sh[BLOCK];

    let k = gamma[ch] * r;
    let k0 = -k * t_dy / mf;
    let kx = -k * r * r * t_dyxc / mf;
    if CUBE_POS < c {
        let mut j = u;
        while j < m {
            let e = channel_elem(j, ch, c, hw);
            grads.dx[e] = k * dy[e] + kx * (x[e] - mu) + k0;
            j += BLOCK;
        }
        if u == 0 {
            grads.dgamma[ch] = t_dyxc * r;
            grads.dbeta[ch] = t_dy;
        }
    }
}

/// Instance norm forward, one cube per plane (n, c): mean, invstd (two passes) and y.
#[cube(launch)]
pub fn instance_norm2d(
    x: &Array<f32>,
    gamma: &Array<f32>,
    beta: &Array<f32>,
    y: &mut Array<f32>,
    stats: &mut NormStatsArgs,
    d: NormDims,
    eps: f32,
) {
    let mut sh = SharedMemory::<f32>::new(BLOCK);
    let np = d.n * d.c;
    let hw = d.hw;
    let pl = cube_group(np);
    let base = pl * hw;
    let u = UNIT_POS as usize;
    let mf = f32::cast_from(hw);

    let mut acc = 0.0f32;
    let mut j = u;
    while j < hw {
        acc += x[base + j];
        j += BLOCK;
    }
    sh[u] = acc;
    tree_sum_rows(&mut sh, 1usize);
    let mu = sh[0] / mf;
    sync_cube();

    let mut sq = 0.0f32;
    let mut j = u;
    while j < hw {
        let dv = x[base + j] - mu;
        sq += dv * dv;
        j += BLOCK;
    }
    sh[u] = sq;
    tree_sum_rows(&mut sh, 1usize);
    let r = 1.0f32 / f32::sqrt(sh[0] / mf + eps);

    if CUBE_POS < np {
        let ch = pl % d.c;
        let g = gamma[ch] * r;
        let b = beta[ch];
        let mut j = u;
        while j < hw {
            y[base + j] = (x[base + j] - mu) * g + b;
            j += BLOCK;
        }
        if u == 0 {
            stats.mean[pl] = mu;
            stats.invstd[pl] = r;
        }
    }
}

/// Instance-norm backward, one cube per plane: dx as batch norm's with the plane as the group, and the
/// plane's dgamma / dbeta shares r·Σ(dy·xc), Σdy (summed over the batch by [`super::per_channel_sum`]).
#[cube(launch)]
pub fn instance_norm2d_bwd(
    dy: &Array<f32>,
    x: &Array<f32>,
    gamma: &Array<f32>,
    stats: &NormStatsArgs,
    grads: &mut NormGradsArgs,
    d: NormDims,
) {
    let mut sh = SharedMemory::<f32>::new(2 * BLOCK);
    let np = d.n * d.c;
    let hw = d.hw;
    let pl = cube_group(np);
    let base = pl * hw;
    let u = UNIT_POS as usize;
    let mf = f32::cast_from(hw);
    let mu = stats.mean[pl];
    let r = stats.invstd[pl];

    let mut s_dy = 0.0f32;
    let mut s_dyxc = 0.0f32;
    let mut j = u;
    while j < hw {
        let g = dy[base + j];
        s_dy += g;
        s_dyxc += g * (x[base + j] - mu);
        j += BLOCK;
    }
    sh[u] = s_dy;
    sh[BLOCK + u] = s_dyxc;
    tree_sum_rows(&mut sh, 2usize);
    let t_dy = sh[0];
    let t_dyxc = sh[BLOCK];

    let k = gamma[pl % d.c] * r;
    let k0 = -k * t_dy / mf;
    let kx = -k * r * r * t_dyxc / mf;
    if CUBE_POS < np {
        let mut j = u;
        while j < hw {
            grads.dx[base + j] = k * dy[base + j] + kx * (x[base + j] - mu) + k0;
            j += BLOCK;
        }
        if u == 0 {
            grads.dgamma[pl] = t_dyxc * r;
            grads.dbeta[pl] = t_dy;
        }
    }
}

/// Instance norm's forward-mode derivative, one cube per plane: ẏ = γ·(r·(ẋ − mean ẋ) − x̂·r·mean(x̂ ẋ))
/// = k·(ẋ − mean ẋ) + kx·xc with k = γr, kx = −k·r²·P/M, P = Σ xc·ẋ.
#[cube(launch)]
pub fn instance_norm2d_jvp(
    x: &Array<f32>,
    x_dot: &Array<f32>,
    gamma: &Array<f32>,
    stats: &NormStatsArgs,
    y_dot: &mut Array<f32>,
    d: NormDims,
) {
    let mut sh = SharedMemory::<f32>::new(2 * BLOCK);
    let np = d.n * d.c;
    let hw = d.hw;
    let pl = cube_group(np);
    let base = pl * hw;
    let u = UNIT_POS as usize;
    let mf = f32::cast_from(hw);
    let mu = stats.mean[pl];
    let r = stats.invstd[pl];

    let mut s_xd = 0.0f32;
    let mut p = 0.0f32;
    let mut j = u;
    while j < hw {
        let dv = x_dot[base + j];
        s_xd += dv;
        p += (x[base + j] - mu) * dv;
        j += BLOCK;
    }
    sh[u] = s_xd;
    sh[BLOCK + u] = p;
    tree_sum_rows(&mut sh, 2usize);
    let mean_xd = sh[0] / mf;
    let t_p = sh[BLOCK];

    let k = gamma[pl % d.c] * r;
    let kx = -k * r * r * t_p / mf;
    if CUBE_POS < np {
        let mut j = u;
        while j < hw {
            y_dot[base + j] = k * (x_dot[base + j] - mean_xd) + kx * (x[base + j] - mu);
            j += BLOCK;
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
pub fn instance_norm2d_jvp_bwd(
    x: &Array<f32>,
    x_dot: &Array<f32>,
    gamma: &Array<f32>,
    stats: &NormStatsArgs,
    cot: &JvpCotangentsArgs,
    out: &mut InstanceNormJvpGradsArgs,
    d: NormDims,
) {
    let mut sh = SharedMemory::<f32>::new(4 * BLOCK);
    let np = d.n * d.c;
    let hw = d.hw;
    let pl = cube_group(np);
    let base = pl * hw;
    let u = UNIT_POS as usize;
    let mf = f32::cast_from(hw);
    let mu = stats.mean[pl];
    let r = stats.invstd[pl];
    let gm = gamma[pl % d.c];

    // Pass 1: the means.
    let mut s_yb = 0.0f32;
    let mut s_ydb = 0.0f32;
    let mut s_xd = 0.0f32;
    let mut j = u;
    while j < hw {
        s_yb += cot.y_bar[base + j];
        s_ydb += cot.y_dot_bar[base + j];
        s_xd += x_dot[base + j];
        j += BLOCK;
    }
    sh[u] = s_yb;
    sh[BLOCK + u] = s_ydb;
    sh[2 * BLOCK + u] = s_xd;
    tree_sum_rows(&mut sh, 3usize);
    let t_yb = sh[0];
    let mean_yb = t_yb / mf;
    let mean_ydb = sh[BLOCK] / mf;
    let mean_xd = sh[2 * BLOCK] / mf;
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
        let ydb = cot.y_dot_bar[base + j];
        s_ybxc += cot.y_bar[base + j] * xc;
        s_ydbxc += ydb * xc;
        a_raw += ydb * (xd - mean_xd);
        p += xc * xd;
        j += BLOCK;
    }
    sh[u] = s_ybxc;
    sh[BLOCK + u] = s_ydbxc;
    sh[2 * BLOCK + u] = a_raw;
    sh[3 * BLOCK + u] = p;
    tree_sum_rows(&mut sh, 4usize);
    let t_ybxc = sh[0];
    let t_ydbxc = sh[BLOCK];
    let t_a = sh[2 * BLOCK];
    let t_p = sh[3 * BLOCK];

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
            let dxd = x_dot[base + j] - mean_xd;
            let ydbc = cot.y_dot_bar[base + j] - mean_ydb;
            out.x_bar[base + j] = k * (cot.y_bar[base + j] - mean_yb) + c_xc * xc + c_xd * dxd + c_ydb * ydbc;
            out.x_dot_bar[base + j] = k * ydbc + d_xc * xc;
            j += BLOCK;
        }
        if u == 0 {
            out.dgamma[pl] = r * t_ybxc + r * t_a - r3 * t_p * t_ydbxc / mf;
            out.dbeta[pl] = t_yb;
        }
    }
}
