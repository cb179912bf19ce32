//! Feature statistics for FID: the mean and the ddof-1 covariance of a set of feature vectors, in f64,
//! computed as numpy does for pytorch-fid (`np.mean(f, axis=0)`, `np.cov(f, rowvar=False)`).
//!
//! Accuracy comes first: rows are stored (as f64) and the covariance is a two-pass computation, the mean
//! first and then the centred cross-product, so no catastrophic cancellation from `Σx² − n·x̄²` can occur.
//! FID feature sets hold at most a few thousand rows of 2048 values, so storing them is cheap.

use nalgebra::{DMatrix, DMatrixView};
use rayon::prelude::*;

use crate::error::{Error, Result};

/// The mean `mu` (length `dims`) and covariance `sigma` (`dims × dims`, row-major, symmetric) of `count`
/// feature vectors. `count` is 0 when unknown (statistics read from an `.npz`, which does not record it).
#[derive(Clone, Debug, PartialEq)]
pub struct Statistics {
    pub mu: Vec<f64>,
    pub sigma: Vec<f64>,
    pub dims: usize,
    pub count: usize,
}

impl Statistics {
    /// Statistics from a mean and a row-major covariance, checked by [`Statistics::validate`].
    pub fn new(mu: Vec<f64>, sigma: Vec<f64>, count: usize) -> Result<Self> {
        let s = Statistics { dims: mu.len(), mu, sigma, count };
        s.validate()?;
        Ok(s)
    }

    /// One-shot statistics of `rows`, a flat row-major `[n, dims]` slice (f32 or f64).
    pub fn from_features<T: Copy + Into<f64>>(rows: &[T], dims: usize) -> Result<Self> {
        let mut s = StreamingStats::new(dims);
        s.push(rows)?;
        s.finish()
    }

    /// Checks that `dims` is positive, `mu` has `dims` values, `sigma` has `dims²`, and all are finite.
    pub fn validate(&self) -> Result<()> {
        const OP: &str = "Statistics";
        if self.dims == 0 {
            return Err(Error::invalid(OP, "statistics have 0 dimensions"));
        }
        if self.mu.len() != self.dims {
            return Err(Error::shape(OP, format!("mu has {} values but dims is {}", self.mu.len(), self.dims)));
        }
        if self.sigma.len() != self.dims * self.dims {
            return Err(Error::shape(
                OP,
                format!("sigma has {} values but a {d}×{d} covariance needs {}", self.sigma.len(), self.dims * self.dims, d = self.dims),
            ));
        }
        if let Some(i) = self.mu.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite(format!("mu[{i}] = {}", self.mu[i])));
        }
        if let Some(i) = self.sigma.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite(format!("sigma[{}, {}] = {}", i / self.dims, i % self.dims, self.sigma[i])));
        }
        // What every covariance satisfies, checkable in O(d²): variances ≥ 0 and |σij| ≤ √(σii·σjj) (up to
        // rounding). A full positive-semi-definiteness test is O(d³); the Fréchet distance refuses a negative
        // result instead.
        let d = self.dims;
        let var = |i: usize| self.sigma[i * d + i];
        if let Some(i) = (0..d).find(|&i| var(i) < 0.0) {
            return Err(Error::invalid(OP, format!("sigma is not a covariance: the variance sigma[{i}, {i}] = {} is negative", var(i))));
        }
        for i in 0..d {
            for j in 0..i {
                let bound = (var(i) * var(j)).sqrt() * (1.0 + 1e-6) + 1e-12;
                if self.sigma[i * d + j].abs() > bound {
                    return Err(Error::invalid(
                        OP,
                        format!(
                            "sigma is not a covariance: |sigma[{i}, {j}]| = {} exceeds √(sigma[{i}, {i}]·sigma[{j}, {j}]) = {}",
                            self.sigma[i * d + j].abs(),
                            (var(i) * var(j)).sqrt()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Tr Σ.
    pub fn trace(&self) -> f64 {
        (0..self.dims).map(|i| self.sigma[i * self.dims + i]).sum()
    }
}

/// Accumulates feature vectors batch by batch, then computes their [`Statistics`].
///
/// ```
/// # use cxr_gan::fid::StreamingStats;
/// let mut s = StreamingStats::new(2);
/// s.push(&[1.0f32, 2.0, 3.0, 5.0]).unwrap(); // two rows of 2
/// s.push(&[5.0f64, 8.0]).unwrap();
/// let st = s.finish().unwrap();
/// assert_eq!(st.mu, vec![3.0, 5.0]);
/// assert_eq!(st.count, 3);
/// ```
#[derive(Clone, Debug)]
pub struct StreamingStats {
    dims: usize,
    /// The rows pushed so far, row-major `[count, dims]`.
    rows: Vec<f64>,
}

impl StreamingStats {
    pub fn new(dims: usize) -> Self {
        StreamingStats { dims, rows: Vec::new() }
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    /// The number of feature vectors pushed so far.
    pub fn count(&self) -> usize {
        self.rows.len().checked_div(self.dims).unwrap_or(0)
    }

    /// The rows pushed so far, row-major `[count, dims]`.
    pub fn into_rows(self) -> Vec<f64> {
        self.rows
    }

    /// Adds a batch: a flat row-major slice of whole rows of `dims` values. Nothing is added when the batch is
    /// rejected (a partial row, a non-finite value).
    pub fn push<T: Copy + Into<f64>>(&mut self, batch: &[T]) -> Result<()> {
        const OP: &str = "StreamingStats::push";
        if self.dims == 0 {
            return Err(Error::invalid(OP, "statistics need at least 1 dimension, got 0"));
        }
        if !batch.len().is_multiple_of(self.dims) {
            return Err(Error::shape(
                OP,
                format!("a batch of {} values is not a whole number of rows of {} features", batch.len(), self.dims),
            ));
        }
        let start = self.rows.len();
        self.rows.extend(batch.iter().map(|&v| v.into()));
        if let Some(i) = self.rows[start..].iter().position(|v| !v.is_finite()) {
            let v = self.rows[start + i];
            self.rows.truncate(start);
            return Err(Error::NonFinite(format!("{OP}: feature {} of row {} of the batch is {v}", i % self.dims, i / self.dims)));
        }
        Ok(())
    }

    /// The mean and the ddof-1 covariance (`np.cov(rowvar=False)`) of every row pushed. Needs at least 2 rows.
    pub fn finish(self) -> Result<Statistics> {
        let d = self.dims;
        let n = self.count();
        if d == 0 {
            return Err(Error::invalid("StreamingStats::finish", "statistics need at least 1 dimension, got 0"));
        }
        if n < 2 {
            return Err(Error::invalid("StreamingStats::finish", format!("a covariance (ddof 1) needs at least 2 samples, got {n}")));
        }
        let mut rows = self.rows;
        // Pass 1: the mean, summed row by row and divided by n, as numpy's `mean(axis=0)`.
        let mut mu = vec![0.0f64; d];
        for row in rows.chunks_exact(d) {
            for (m, &v) in mu.iter_mut().zip(row) {
                *m += v;
            }
        }
        for m in &mut mu {
            *m /= n as f64;
        }
        // Pass 2: centre in place, then Σ = Xcᵀ·Xc · (1/(n−1)) (np.cov multiplies by the reciprocal).
        rows.par_chunks_mut(d).for_each(|row| {
            for (v, m) in row.iter_mut().zip(&mu) {
                *v -= m;
            }
        });
        let mut sigma = centred_gram(&rows, d, n);
        let scale = 1.0 / (n - 1) as f64;
        for v in &mut sigma {
            *v *= scale;
        }
        Ok(Statistics { mu, sigma, dims: d, count: n })
    }
}

/// `Xcᵀ·Xc` for row-major `xc` `[n, d]`, as an exactly symmetric row-major `d × d` matrix.
///
/// The row-major `[n, d]` buffer is the column-major `d × n` matrix `A = Xcᵀ`, so the product is `A·Aᵀ`. Only
/// the upper triangle is computed, in column panels run in parallel (each panel one matrixmultiply GEMM), and
/// then mirrored.
fn centred_gram(xc: &[f64], d: usize, n: usize) -> Vec<f64> {
    const PANEL: usize = 128;
    let a = DMatrixView::from_slice(xc, d, n);
    let panels: Vec<(usize, usize)> = (0..d).step_by(PANEL).map(|j0| (j0, PANEL.min(d - j0))).collect();
    // Panel j0..j0+w of the output: rows 0..j0+w (the upper triangle and the diagonal block).
    let blocks: Vec<DMatrix<f64>> = panels
        .par_iter()
        .map(|&(j0, w)| {
            let top = a.rows(0, j0 + w);
            let right = a.rows(j0, w).transpose();
            top * right
        })
        .collect();
    let mut g = vec![0.0f64; d * d];
    for (&(j0, w), block) in panels.iter().zip(&blocks) {
        for jj in 0..w {
            let j = j0 + jj;
            for i in 0..=j {
                let v = block[(i, jj)];
                g[i * d + j] = v;
                g[j * d + i] = v;
            }
        }
    }
    g
}
