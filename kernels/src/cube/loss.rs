//! Losses with mean reduction (nn.BCELoss, nn.BCEWithLogitsLoss, F.cross_entropy) and WGAN-GP's penalty
//! head.
//!
//! The loss kernels write the gradient and, per cube, the tree-summed loss terms of their grid-stride
//! share (elements; cross_entropy's rows); the host adds those few partials in f64 and divides by N. The penalty head is two kernels: the
//! per-sample squared norms (one cube per sample, a tree sum), then v = k[n]·g with the per-sample factor
//! k = 2λ(‖g‖ − 1)/‖g‖/N that the host forms in f64 from the norms it reports anyway.

use cubecl::prelude::*;

use super::act::sigmoid_f32;
use super::{cube_group, grid_start, grid_stride, tree_sum_rows, BLOCK};

/// torch.clamp(log, min=-100), keeping NaN.
#[cube]
fn clamp_log(v: f32) -> f32 {
    select(v < -100.0f32, -100.0f32, v)
}

/// nn.BCELoss terms: grad = (p − t)/max(p(1 − p), 1e-12)·inv_n, partial[cube] = Σ −(t·ln p + (1 − t)·ln(1 − p))
/// with both logs clamped at −100.
#[cube(launch)]
pub fn bce(p: &Array<f32>, t: &Array<f32>, grad: &mut Array<f32>, partial: &mut Array<f32>, inv_n: f32) {
    let mut sh = SharedMemory::<f32>::new(BLOCK);
    let n = grad.len();
    let mut acc = 0.0f32;
    let mut i = grid_start();
    while i < n {
        let pv = p[i];
        let tv = t[i];
        let l = tv * clamp_log(f32::ln(pv)) + (1.0f32 - tv) * clamp_log(f32::ln(1.0f32 - pv));
        acc -= l;
        let denom = f32::max(pv * (1.0f32 - pv), 1e-12f32);
        grad[i] = (pv - tv) / denom * inv_n;
        i += grid_stride();
    }
    sh[UNIT_POS as usize] = acc;
    tree_sum_rows(&mut sh, 1usize);
    if UNIT_POS == 0 {
        partial[CUBE_POS] = sh[0];
    }
}

/// nn.BCEWithLogitsLoss terms, overflow-free: max(z, 0) − z·t + ln(1 + e^{−|z|}); grad = (σ(z) − t)·inv_n.
#[cube(launch)]
pub fn bce_logits(z: &Array<f32>, t: &Array<f32>, grad: &mut Array<f32>, partial: &mut Array<f32>, inv_n: f32) {
    let mut sh = SharedMemory::<f32>::new(BLOCK);
    let n = grad.len();
    let mut acc = 0.0f32;
    let mut i = grid_start();
    while i < n {
        let zv = z[i];
        let tv = t[i];
        acc += f32::max(zv, 0.0f32) - zv * tv + f32::log1p(f32::exp(-f32::abs(zv)));
        grad[i] = (sigmoid_f32(zv) - tv) * inv_n;
        i += grid_stride();
    }
    sh[UNIT_POS as usize] = acc;
    tree_sum_rows(&mut sh, 1usize);
    if UNIT_POS == 0 {
        partial[CUBE_POS] = sh[0];
    }
}

/// ln(1 + r) for r ≥ 0 without the library's log1p, which WGSL spells ln(r + 1) (losing r below 2^-24,
/// a confidently right row's whole loss): the Taylor series through r⁷ below 1/16 (the next term is
/// < 1e-9 relative there), ln(1 + r) above (where rounding 1 + r costs < 1e-6 relative).
#[cube]
fn log1p_nonneg(r: f32) -> f32 {
    let mut out = f32::ln(1.0f32 + r);
    if r < 0.0625f32 {
        let p = 0.14285715f32;
        let p = 0.16666667f32 - r * p;
        let p = 0.2f32 - r * p;
        let p = 0.25f32 - r * p;
        let p = 0.33333334f32 - r * p;
        let p = 0.5f32 - r * p;
        out = r * (1.0f32 - r * p);
    }
    out
}

/// F.cross_entropy terms over logits z [rows, k] and class indices `target` [rows], one unit per row
/// (grid-stride): with m = z[a] the row's first maximum, r = Σ_{j≠a} e^{z_j − m} and q = Σ_{j≠t} e^{z_j − m},
/// the row's loss is (m − z_t) + ln(1 + r) and its gradient e^{z_j − m}/(1 + r)·inv_n, at j = t
/// −q/(1 + r)·inv_n (1 − softmax_t without cancelling); partial[cube] = Σ of its rows' losses. A NaN logit
/// makes its row's loss and gradient NaN.
#[cube(launch)]
pub fn cross_entropy(z: &Array<f32>, target: &Array<u32>, grad: &mut Array<f32>, partial: &mut Array<f32>, k: usize, inv_n: f32) {
    let mut sh = SharedMemory::<f32>::new(BLOCK);
    let rows = target.len();
    let mut acc = 0.0f32;
    let mut row = grid_start();
    while row < rows {
        let base = row * k;
        let t = target[row] as usize;
        let mut m = z[base];
        let mut a = 0usize;
        for j in 1..k {
            let v = z[base + j];
            if v > m {
                m = v;
                a = j;
            }
        }
        let mut r = 0.0f32;
        let mut q = 0.0f32;
        for j in 0..k {
            let e = f32::exp(z[base + j] - m);
            if j != a {
                r += e;
            }
            if j != t {
                q += e;
            }
        }
        let s = 1.0f32 + r;
        acc += (m - z[base + t]) + log1p_nonneg(r);
        for j in 0..k {
            let mut g = f32::exp(z[base + j] - m) / s;
            if j == t {
                g = -q / s;
            }
            grad[base + j] = g * inv_n;
        }
        row += grid_stride();
    }
    sh[UNIT_POS as usize] = acc;
    tree_sum_rows(&mut sh, 1usize);
    if UNIT_POS == 0 {
        partial[CUBE_POS] = sh[0];
    }
}

/// Per-sample squared norms of g [N, per]: sq[n] = Σ g[n, :]² (one cube per sample).
#[cube(launch)]
pub fn gradient_penalty_head_sq_norms(g: &Array<f32>, sq: &mut Array<f32>, samples: usize, per: usize) {
    let mut sh = SharedMemory::<f32>::new(BLOCK);
    let s = cube_group(samples);
    let base = s * per;
    let mut acc = 0.0f32;
    let mut j = UNIT_POS as usize;
    while j < per {
        let v = g[base + j];
        acc += v * v;
        j += BLOCK;
    }
    sh[UNIT_POS as usize] = acc;
    tree_sum_rows(&mut sh, 1usize);
    if UNIT_POS == 0 && CUBE_POS < samples {
        sq[s] = sh[0];
    }
}

/// The penalty's cotangent v = k[n]·g with k[n] = 2λ(‖gₙ‖ − 1)/‖gₙ‖/N (0 where ‖gₙ‖ = 0).
#[cube(launch)]
pub fn gradient_penalty_head_v(g: &Array<f32>, k: &Array<f32>, v: &mut Array<f32>, per: usize) {
    let n = v.len();
    let mut i = grid_start();
    while i < n {
        v[i] = k[i / per] * g[i];
        i += grid_stride();
    }
}
