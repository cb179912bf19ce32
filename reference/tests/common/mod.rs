//! Shared test helpers: a tiny deterministic PRNG and central finite differences.
#![allow(dead_code)]

use cxr_gan_reference::Array;

/// xorshift64* with Box–Muller normals: deterministic, dependency-free.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng((seed ^ 0x9E37_79B9_7F4A_7C15).wrapping_mul(0xBF58_476D_1CE4_E5B9) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]: ln is finite
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    pub fn normals(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.normal()).collect()
    }
    pub fn randn(&mut self, shape: &[usize]) -> Array {
        let n = shape.iter().product();
        Array::new(shape, self.normals(n))
    }
    /// `k` distinct indices below `n` (all of them when k ≥ n), sorted.
    pub fn sample(&mut self, n: usize, k: usize) -> Vec<usize> {
        if k >= n {
            return (0..n).collect();
        }
        let mut picked = std::collections::BTreeSet::new();
        while picked.len() < k {
            picked.insert(self.below(n));
        }
        picked.into_iter().collect()
    }
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// ‖a − b‖ / ‖b‖ (b is the reference, and must be nonzero so the test can fail meaningfully).
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let diff = a.iter().zip(b).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
    let norm = b.iter().map(|b| b * b).sum::<f64>().sqrt();
    assert!(norm > 0.0, "reference is all zeros");
    diff / norm
}

/// Relative FD step: 1e-6 · max(1, |x|).
pub const FD_STEP: f64 = 1e-6;
/// The bar every FD comparison must meet (‖analytic − fd‖/‖fd‖).
pub const FD_TOL: f64 = 1e-6;

/// Central differences of f at x for the listed coordinates, step FD_STEP · max(1, |x_i|).
pub fn fd_grad_at(x: &[f64], coords: &[usize], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    fd_grad_at_step(x, coords, FD_STEP, f)
}

/// Central differences with relative step `step` · max(1, |x_i|).
pub fn fd_grad_at_step(x: &[f64], coords: &[usize], step: f64, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut xp = x.to_vec();
    coords
        .iter()
        .map(|&i| {
            let h = step * x[i].abs().max(1.0);
            xp[i] = x[i] + h;
            let fp = f(&xp);
            xp[i] = x[i] - h;
            let fm = f(&xp);
            xp[i] = x[i];
            (fp - fm) / (2.0 * h)
        })
        .collect()
}

/// Central differences of f at x for every coordinate.
pub fn fd_grad(x: &[f64], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    fd_grad_at(x, &(0..x.len()).collect::<Vec<_>>(), f)
}

/// Assert rel_err(analytic, fd) ≤ tol, printing the error (`cargo test -- --nocapture` lists them all).
pub fn check(name: &str, analytic: &[f64], reference: &[f64], tol: f64) -> f64 {
    let e = rel_err(analytic, reference);
    println!("rel_err {e:.3e}  {name}");
    assert!(e <= tol, "{name}: relative error {e:.3e} > {tol:.0e}");
    e
}

/// `coords` of `v`.
pub fn pick(v: &[f64], coords: &[usize]) -> Vec<f64> {
    coords.iter().map(|&i| v[i]).collect()
}
