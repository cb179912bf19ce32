//! The Fréchet distance between two Gaussians, as pytorch-fid's `calculate_frechet_distance`:
//!
//! `d² = ‖μ1 − μ2‖² + Tr Σ1 + Tr Σ2 − 2·Tr √(Σ1·Σ2)`.
//!
//! pytorch-fid takes `Tr √(Σ1Σ2)` from `scipy.linalg.sqrtm` of the non-symmetric product. Here it comes from a
//! symmetric eigenvalue problem instead: for any factor `B` with `B·Bᵀ = Σ1`, the matrix `Bᵀ·Σ2·B` is symmetric
//! positive semi-definite and has the same non-zero eigenvalues as `Σ1·Σ2`, so
//! `Tr √(Σ1Σ2) = Σ √max(λᵢ, 0)` over the eigenvalues λ of `Bᵀ·Σ2·B`. With `B = √Σ1` that is the matrix
//! `√Σ1·Σ2·√Σ1`.
//!
//! - [`frechet_distance_eigen`], the reference route, takes the orthogonally similar `B = V·diag(√λ⁺)` from the
//!   symmetric eigendecomposition `Σ1 = V·diag(λ)·Vᵀ` (negative eigenvalues, and those within rounding noise of
//!   0, clipped to 0 and their zero columns dropped).
//! - [`frechet_distance`] takes `B` from a pivoted (rank-revealing) Cholesky factorization of the covariance of
//!   fewer samples: no eigenvectors are needed at all, only the eigenvalues of `Bᵀ·Σ2·B`, which is r × r for a
//!   covariance of rank r. At d = 2048 that is about 2.5× faster for full-rank covariances, and 6× faster for
//!   covariances of fewer than d samples. Both factorizations are backward stable; the two routes agree to
//!   rounding (1e-15 relative for full rank, ~1e-9 where the product is singular).
//!
//! ## The 1e-6·I retry
//! pytorch-fid retries with `sqrtm((Σ1 + εI)(Σ2 + εI))`, ε = 1e-6, when `sqrtm` returns non-finite values
//! (the traces stay those of Σ1 and Σ2). scipy's Schur-based `sqrtm` fails that way only when its triangular
//! Schur factor has two diagonal entries that are exactly 0 joined by a non-zero entry above them, which happens
//! for exactly structured, low-rank products (small integer-valued covariances, for instance), not for
//! covariances of real-valued features: none of the golden `frechet_*` cases triggered it (recomputed with
//! scipy 1.10.1 as the goldens were) — each golden `fid` is the un-offset value (ours agree to 1e-14 for full
//! rank, to 1.4e-8 and 5.2e-8 for the rank-deficient d = 64 and d = 768 cases, the rounding noise a singular
//! product leaves in `sqrtm`), while the offset would have moved them by 2e-6 … 3e-4 relative. Our routes
//! cannot fail on a singular product, so the offset is applied under pytorch-fid's own condition: only when our
//! trace comes out non-finite. Where scipy alone fails, our result is the un-offset distance, the exact value
//! the retry approximates.

use nalgebra::{DMatrix, DMatrixView, DVector};
use rayon::prelude::*;

use super::stats::Statistics;
use crate::error::{Error, Result};

/// pytorch-fid's `eps` for the retry with `Σ + εI`.
pub const RETRY_EPS: f64 = 1e-6;

/// How `Tr √(Σ1Σ2)` is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// `B` from the pivoted Cholesky factorization of Σ1 or Σ2 (the one of fewer samples, when known).
    Auto,
    /// Always `√Σ1` from the symmetric eigendecomposition of Σ1.
    Eigen,
}

/// The Fréchet distance between two sets of statistics (pytorch-fid's `calculate_frechet_distance`).
///
/// Errors when the dimensions differ, when either is malformed or non-finite, or when the result is not finite.
/// The result is not clamped: like pytorch-fid's, it can be a tiny negative number for identical statistics.
pub fn frechet_distance(s1: &Statistics, s2: &Statistics) -> Result<f64> {
    distance(s1, s2, Route::Auto)
}

/// [`frechet_distance`] through the symmetric eigendecomposition of Σ1 (`√Σ1·Σ2·√Σ1`) instead of a pivoted
/// Cholesky factor; slower (it needs eigenvectors), kept as the reference route.
pub fn frechet_distance_eigen(s1: &Statistics, s2: &Statistics) -> Result<f64> {
    distance(s1, s2, Route::Eigen)
}

/// How far below 0, relative to the terms, rounding may leave the distance of (nearly) equal statistics.
const NEGATIVE_TOLERANCE: f64 = 1e-9;

fn distance(s1: &Statistics, s2: &Statistics, route: Route) -> Result<f64> {
    const OP: &str = "frechet_distance";
    s1.validate()?;
    s2.validate()?;
    if s1.dims != s2.dims {
        return Err(Error::shape(OP, format!("the statistics have different dimensions: {} and {}", s1.dims, s2.dims)));
    }
    let d = s1.dims;
    let diff2: f64 = s1.mu.iter().zip(&s2.mu).map(|(a, b)| (a - b) * (a - b)).sum();
    let traces = s1.trace() + s2.trace();
    let mut m1 = symmetric(&s1.sigma, d);
    let mut m2 = symmetric(&s2.sigma, d);
    let mut tr_covmean = trace_sqrt_product(&m1, &m2, s1.count, s2.count, route);
    if !tr_covmean.is_finite() {
        // pytorch-fid: "fid calculation produces singular product; adding 1e-6 to diagonal of cov estimates".
        for i in 0..d {
            m1[(i, i)] += RETRY_EPS;
            m2[(i, i)] += RETRY_EPS;
        }
        tr_covmean = trace_sqrt_product(&m1, &m2, 0, 0, route);
    }
    let fid = diff2 + traces - 2.0 * tr_covmean;
    if !fid.is_finite() {
        return Err(Error::NonFinite(format!("{OP}: ‖Δμ‖² = {diff2}, Tr Σ1 + Tr Σ2 = {traces}, Tr √(Σ1Σ2) = {tr_covmean}")));
    }
    // A distance is ≥ 0; below it by more than rounding, a Σ was not a covariance (not positive
    // semi-definite), and the number would mean nothing.
    if fid < -NEGATIVE_TOLERANCE * (diff2 + traces).max(1.0) {
        return Err(Error::invalid(OP, format!(
            "the distance came out negative ({fid}): a covariance is not positive semi-definite (Tr √(Σ1Σ2) = {tr_covmean} exceeds (Tr Σ1 + Tr Σ2)/2 = {})",
            traces / 2.0
        )));
    }
    Ok(fid)
}

/// A row-major `d × d` slice as a matrix, symmetrized as `(S + Sᵀ)/2` (a no-op for our own statistics; loaded
/// ones may be off by rounding, and the symmetric solvers read one triangle only).
fn symmetric(s: &[f64], d: usize) -> DMatrix<f64> {
    DMatrix::from_fn(d, d, |i, j| if i == j { s[i * d + i] } else { 0.5 * s[i * d + j] + 0.5 * s[j * d + i] })
}

/// `Tr √(Σ1Σ2) = Σ √λ` over the eigenvalues of `Bᵀ·Σ2·B` where `B·Bᵀ = Σ1` (or the roles swapped).
/// `n1`, `n2` are the sample counts (0: unknown): the factored covariance is the one of fewer samples, whose rank
/// bounds the size of the eigenproblem.
fn trace_sqrt_product(m1: &DMatrix<f64>, m2: &DMatrix<f64>, n1: usize, n2: usize, route: Route) -> f64 {
    if !(m1.iter().all(|v| v.is_finite()) && m2.iter().all(|v| v.is_finite())) {
        return f64::NAN;
    }
    let (m1, m2) = if route == Route::Auto && n1 != 0 && n2 != 0 && n2 < n1 { (m2, m1) } else { (m1, m2) };
    let b = match route {
        Route::Auto => pivoted_cholesky(m1),
        Route::Eigen => eigen_factor(m1),
    };
    if b.ncols() == 0 {
        return 0.0;
    }
    trace_sqrt_eigenvalues(congruence(&b, m2))
}

/// `B = V·diag(√λ)` from `Σ = V·diag(λ)·Vᵀ`, keeping only the columns with λ above the noise floor (the others
/// are zero, or rounding noise around zero, and add only zero eigenvalues): `B·Bᵀ = √Σ·√Σ` with the negative
/// eigenvalues clipped.
fn eigen_factor(m: &DMatrix<f64>) -> DMatrix<f64> {
    let d = m.nrows();
    let eig = m.clone().symmetric_eigen();
    let cut = noise_floor(eig.eigenvalues.as_slice());
    let keep: Vec<usize> = (0..d).filter(|&i| eig.eigenvalues[i] > cut).collect();
    let mut b = DMatrix::zeros(d, keep.len());
    for (k, &i) in keep.iter().enumerate() {
        let s = eig.eigenvalues[i].sqrt();
        b.column_mut(k).copy_from(&(eig.eigenvectors.column(i) * s));
    }
    b
}

/// `B = Pᵀ·L` (d × r) with `B·Bᵀ ≈ Σ`: the rank-revealing Cholesky factorization with complete (diagonal)
/// pivoting of a symmetric PSD matrix, as LAPACK's `dpstf2`, stopped when the largest remaining pivot is at most
/// `d·ε·max Σᵢᵢ` (LAPACK's default tolerance). For a positive definite Σ it is the plain Cholesky factor of the
/// permuted matrix, backward stable; for a rank-deficient one (fewer samples than dimensions) it stops at the
/// numerical rank r, so the eigenproblem that follows is only r × r.
fn pivoted_cholesky(a: &DMatrix<f64>) -> DMatrix<f64> {
    let d = a.nrows();
    let diag: Vec<f64> = (0..d).map(|i| a[(i, i)]).collect();
    let tol = d as f64 * f64::EPSILON * diag.iter().cloned().fold(0.0, f64::max);
    let mut perm: Vec<usize> = (0..d).collect();
    // L in pivoted order, row-major: row i holds L[i, 0..k] after k steps (zeros beyond).
    let mut l = vec![0.0f64; d * d];
    // Σ_{p<k} L[i, p]², so that the remaining pivot of row i is Σ[perm i, perm i] − work[i].
    let mut work = vec![0.0f64; d];
    let mut rank = 0;
    for k in 0..d {
        let (q, pivot) =
            (k..d).map(|i| (i, diag[perm[i]] - work[i])).fold((k, f64::NEG_INFINITY), |best, c| if c.1 > best.1 { c } else { best });
        if pivot.partial_cmp(&tol) != Some(std::cmp::Ordering::Greater) {
            break;
        }
        if q != k {
            perm.swap(k, q);
            work.swap(k, q);
            let (lo, hi) = l.split_at_mut(q * d);
            lo[k * d..k * d + k].swap_with_slice(&mut hi[..k]);
        }
        let ljj = pivot.sqrt();
        l[k * d + k] = ljj;
        // Column k: L[i, k] = (Σ[perm i, perm k] − L[i, ..k]·L[k, ..k]) / L[k, k] for i > k. Σ is symmetric and
        // column-major, so its column perm[k] is the row needed, contiguous.
        let col = a.column(perm[k]);
        let col = col.as_slice();
        let (head, tail) = l.split_at_mut((k + 1) * d);
        let lk = &head[k * d..k * d + k];
        let perm = &perm;
        tail.par_chunks_mut(d).zip(work[k + 1..].par_iter_mut()).enumerate().with_min_len(32).for_each(|(t, (row, w))| {
            let v = (col[perm[k + 1 + t]] - dot(&row[..k], lk)) / ljj;
            row[k] = v;
            *w += v * v;
        });
        rank = k + 1;
    }
    let mut b = DMatrix::zeros(d, rank);
    for (i, &p) in perm.iter().enumerate() {
        for c in 0..rank.min(i + 1) {
            b[(p, c)] = l[i * d + c];
        }
    }
    b
}

/// A dot product with four independent accumulators (vectorizable, and more accurate than one running sum).
fn dot(x: &[f64], y: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (xc, yc) = (x.chunks_exact(4), y.chunks_exact(4));
    let tail: f64 = xc.remainder().iter().zip(yc.remainder()).map(|(a, b)| a * b).sum();
    for (a, b) in xc.zip(yc) {
        for j in 0..4 {
            acc[j] += a[j] * b[j];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// `Bᵀ·S·B` for `B` d × r and symmetric `S` d × d, symmetrized.
fn congruence(b: &DMatrix<f64>, s: &DMatrix<f64>) -> DMatrix<f64> {
    let sb = par_mul(s.as_view(), b.as_view());
    let m = par_mul(b.transpose().as_view(), sb.as_view());
    let r = m.nrows();
    DMatrix::from_fn(r, r, |i, j| 0.5 * (m[(i, j)] + m[(j, i)]))
}

/// `x·y`, the columns of `y` split into panels multiplied in parallel (each one matrixmultiply GEMM).
fn par_mul(x: DMatrixView<f64>, y: DMatrixView<f64>) -> DMatrix<f64> {
    let cols = y.ncols();
    let panel = cols.div_ceil(4 * rayon::current_num_threads()).max(64);
    let starts: Vec<usize> = (0..cols).step_by(panel).collect();
    let parts: Vec<DMatrix<f64>> = starts.par_iter().map(|&c0| x * y.columns(c0, panel.min(cols - c0))).collect();
    let mut out = DMatrix::zeros(x.nrows(), cols);
    for (&c0, part) in starts.iter().zip(&parts) {
        out.columns_mut(c0, part.ncols()).copy_from(part);
    }
    out
}

/// `Σ √λ` over the eigenvalues of the symmetric PSD `m` above its noise floor; NaN if `m` is not finite
/// (overflow), which nalgebra's eigensolver must never see: it would not converge.
fn trace_sqrt_eigenvalues(m: DMatrix<f64>) -> f64 {
    if !m.iter().all(|v| v.is_finite()) {
        return f64::NAN;
    }
    let ev: DVector<f64> = m.symmetric_eigenvalues();
    let cut = noise_floor(ev.as_slice());
    ev.iter().filter(|&&l| l > cut).map(|&l| l.sqrt()).sum()
}

/// The size below which eigenvalues of a symmetric PSD matrix are rounding noise around 0: `k·ε·λmax` for k
/// eigenvalues (numpy's `matrix_rank` tolerance), never below 0.
///
/// Covariances of n < d samples have d − n + 1 zero eigenvalues that come out as ±(a few ε·λmax); each such
/// noise eigenvalue would add its square root, √(ε·λmax) ≈ 1e-8·√λmax, to `Tr √(Σ1Σ2)`. Dropping them gives
/// the rank-deficient value (the same through every route, to rounding) instead of one off by that noise;
/// scipy's `sqrtm` carries such noise too, which is why pytorch-fid's rank-deficient results differ from this
/// by about 1e-8 relative. Genuine eigenvalues under the floor change the trace by no more than the noise does.
fn noise_floor(eigenvalues: &[f64]) -> f64 {
    let max = eigenvalues.iter().cloned().fold(0.0f64, f64::max);
    eigenvalues.len() as f64 * f64::EPSILON * max
}
