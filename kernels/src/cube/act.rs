//! Activations and their backward passes, with PyTorch's conventions: relu / leaky_relu test `x > 0` (so the
//! derivative at exactly 0 is 0, resp. `slope`); tanh and sigmoid differentiate through their output y.
//! The activation is a comptime parameter ([`ActKind`]): each one compiles to its own kernel. And dropout
//! with the caller's keep-mask (its own backward).

use cubecl::prelude::*;

use super::{grid_start, grid_stride};

/// Which activation a kernel computes (leaky_relu's slope is a runtime argument beside it).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ActKind {
    Relu,
    LeakyRelu,
    Tanh,
    Sigmoid,
}

/// tanh in f32 without the library call, whose accuracy the graphics APIs leave loose (and which some
/// drivers form as (e²ˣ − 1)/(e²ˣ + 1), NaN for |x| ≳ 44): the odd Taylor polynomial through x¹⁵ below
/// |x| = 0.5 (where 1 − e^{−2|x|} would cancel; the next term is < 1e-8 relative there),
/// (1 − e^{−2a})/(1 + e^{−2a}) up to 10, ±1 beyond (tanh 10 = 1 − 4e-9 rounds to 1).
#[cube]
pub fn tanh_f32(x: f32) -> f32 {
    let a = f32::abs(x);
    let mut r = 1.0f32;
    if a < 0.5f32 {
        let a2 = a * a;
        let p = -0.0014558344f32;
        let p = 0.003592128f32 + a2 * p;
        let p = -0.008863236f32 + a2 * p;
        let p = 0.021869488f32 + a2 * p;
        let p = -0.05396825f32 + a2 * p;
        let p = 0.13333334f32 + a2 * p;
        let p = -0.33333334f32 + a2 * p;
        r = a + a * (a2 * p);
    } else if a < 10.0f32 {
        let t = f32::exp(-2.0f32 * a);
        r = (1.0f32 - t) / (1.0f32 + t);
    }
    if f32::is_nan(x) {
        r = x;
    }
    select(x < 0.0f32, -r, r)
}

/// Logistic sigmoid that never overflows: exp only of a non-positive argument.
#[cube]
pub fn sigmoid_f32(x: f32) -> f32 {
    // e = e^{−|x|} ≤ 1: σ(x) = 1/(1 + e) for x ≥ 0, e/(1 + e) below (NaN stays NaN).
    let e = f32::exp(-f32::abs(x));
    let mut r = e / (1.0f32 + e);
    if x >= 0.0f32 {
        r = 1.0f32 / (1.0f32 + e);
    }
    r
}

/// y = act(x); `slope` is leaky_relu's negative slope (ignored by the others).
#[cube(launch)]
pub fn activation(x: &Array<f32>, y: &mut Array<f32>, slope: f32, #[comptime] act: ActKind) {
    let n = y.len();
    let mut i = grid_start();
    while i < n {
        let v = x[i];
        if comptime![act == ActKind::Relu] {
            // `v < 0` rather than `v > 0`: NaN passes through, as torch.relu.
            y[i] = select(v < 0.0f32, 0.0f32, v);
        } else if comptime![act == ActKind::LeakyRelu] {
            y[i] = select(v > 0.0f32, v, slope * v);
        } else if comptime![act == ActKind::Tanh] {
            y[i] = tanh_f32(v);
        } else {
            y[i] = sigmoid_f32(v);
        }
        i += grid_stride();
    }
}

/// dx given x, y = act(x) and dy: relu / leaky_relu read x, tanh / sigmoid read y.
#[cube(launch)]
pub fn activation_bwd(x: &Array<f32>, y: &Array<f32>, dy: &Array<f32>, dx: &mut Array<f32>, slope: f32, #[comptime] act: ActKind) {
    let n = dx.len();
    let mut i = grid_start();
    while i < n {
        let g = dy[i];
        if comptime![act == ActKind::Relu] {
            dx[i] = select(x[i] > 0.0f32, g, 0.0f32);
        } else if comptime![act == ActKind::LeakyRelu] {
            dx[i] = select(x[i] > 0.0f32, g, slope * g);
        } else if comptime![act == ActKind::Tanh] {
            let t = y[i];
            dx[i] = g * (1.0f32 - t * t);
        } else {
            let s = y[i];
            dx[i] = g * s * (1.0f32 - s);
        }
        i += grid_stride();
    }
}

/// F.dropout with the caller's keep-mask: y = x·(mask·scale), scale = 1/(1 − p) rounded to f32 once on the
/// host. Also dropout's backward, applied to dy with the same mask.
#[cube(launch)]
pub fn dropout(x: &Array<f32>, mask: &Array<f32>, y: &mut Array<f32>, scale: f32) {
    let n = y.len();
    let mut i = grid_start();
    while i < n {
        y[i] = x[i] * (mask[i] * scale);
        i += grid_stride();
    }
}
