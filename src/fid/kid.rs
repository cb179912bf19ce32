//! Kernel Inception Distance (Bińkowski et al., 2018) as torch-fidelity's `kid_features_to_metric`
//! computes it: over `subsets` random subsets of `subset_size` rows drawn without replacement from each
//! feature set, the unbiased estimate of MMD² under the cubic polynomial kernel
//! `k(x, y) = (x·y / d + 1)³` (sklearn's `polynomial_kernel` with gamma = 1/d, coef0 = 1); reported as the
//! mean and the (population, ddof 0) standard deviation over the subsets.
//!
//! Unlike FID, the estimate is unbiased in the number of samples, so KIDs of different n compare, and two
//! sets from one distribution score 0 on average (single subsets can be negative).
//!
//! The kernel matrices of the whole sets are computed once (three GEMMs); each subset then only sums
//! entries of them, so 100 subsets cost little more than one.

use nalgebra::{DMatrix, DMatrixView};
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// torch-fidelity's defaults.
pub const KID_SUBSETS: usize = 100;
pub const KID_SUBSET_SIZE: usize = 1000;
/// The polynomial kernel's degree (torch-fidelity's `kid_degree`).
const DEGREE: i32 = 3;

/// KID's mean and standard deviation over the subsets, and the subsets it used.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Kid {
    pub mean: f64,
    pub std: f64,
    pub subsets: usize,
    pub subset_size: usize,
}

/// `k(a_i, b_j) = (a_i·b_j / d + 1)³` for row-major `a` [na, d] and `b` [nb, d]: an `na × nb` matrix.
fn polynomial_kernel(a: &[f64], b: &[f64], d: usize) -> DMatrix<f64> {
    // A row-major [n, d] slice is the column-major d × n matrix of its transpose.
    let at = DMatrixView::from_slice(a, d, a.len() / d);
    let bt = DMatrixView::from_slice(b, d, b.len() / d);
    let gamma = 1.0 / d as f64;
    (at.transpose() * bt).map(|v| (v * gamma + 1.0).powi(DEGREE))
}

/// The unbiased MMD² of the subsets `ix` of X and `iy` of Y (equal sizes m), from the full kernel matrices:
/// `(ΣK_XX − tr + ΣK_YY − tr) / (m(m−1)) − 2·ΣK_XY / m²`, as torch-fidelity's `mmd2(mmd_est='unbiased')`.
fn mmd2_unbiased(kxx: &DMatrix<f64>, kyy: &DMatrix<f64>, kxy: &DMatrix<f64>, ix: &[usize], iy: &[usize]) -> f64 {
    let m = ix.len() as f64;
    let off_diagonal = |k: &DMatrix<f64>, idx: &[usize]| -> f64 {
        let mut s = 0.0;
        for (a, &i) in idx.iter().enumerate() {
            for (b, &j) in idx.iter().enumerate() {
                if a != b {
                    s += k[(i, j)];
                }
            }
        }
        s
    };
    let cross: f64 = ix.iter().map(|&i| iy.iter().map(|&j| kxy[(i, j)]).sum::<f64>()).sum();
    (off_diagonal(kxx, ix) + off_diagonal(kyy, iy)) / (m * (m - 1.0)) - 2.0 * cross / (m * m)
}

/// The unbiased MMD² of two whole feature sets of equal size (row-major `[m, dims]`, m ≥ 2) under KID's
/// kernel: one subset of torch-fidelity's KID.
pub fn mmd2_unbiased_polynomial(x: &[f64], y: &[f64], dims: usize) -> Result<f64> {
    if dims == 0 || x.len() != y.len() || !x.len().is_multiple_of(dims) || x.len() < 2 * dims {
        return Err(Error::shape(
            "mmd2",
            format!("{} and {} values are not two equal sets of at least 2 rows of {dims}", x.len(), y.len()),
        ));
    }
    let all: Vec<usize> = (0..x.len() / dims).collect();
    let (kxx, kyy, kxy) = (polynomial_kernel(x, x, dims), polynomial_kernel(y, y, dims), polynomial_kernel(x, y, dims));
    Ok(mmd2_unbiased(&kxx, &kyy, &kxy, &all, &all))
}

/// KID between two feature sets (row-major `[n1, dims]` and `[n2, dims]`): `subsets` subsets of
/// `min(subset_size, n1, n2)` rows each, drawn with a ChaCha8 stream seeded by `seed`. torch-fidelity
/// refuses sets smaller than the subset size; here the size shrinks to fit (halved where a subset would
/// be both whole sets), and [`Kid::subset_size`] says what was used.
pub fn kid(features1: &[f64], features2: &[f64], dims: usize, subsets: usize, subset_size: usize, seed: u64) -> Result<Kid> {
    const OP: &str = "kid";
    if dims == 0 || !features1.len().is_multiple_of(dims) || !features2.len().is_multiple_of(dims) {
        return Err(Error::shape(OP, format!("{} and {} values are not whole rows of {dims} features", features1.len(), features2.len())));
    }
    let (n1, n2) = (features1.len() / dims, features2.len() / dims);
    let mut m = subset_size.min(n1).min(n2);
    if m == n1 && m == n2 {
        // Every subset would be both whole sets: the same estimate 100 times, with a std of 0 that says
        // nothing. Half-size subsets let the std show how much the estimate moves.
        m /= 2;
    }
    if m < 2 || subsets == 0 {
        return Err(Error::invalid(
            OP,
            format!(
                "KID needs subsets of at least 2 rows from each set and at least 1 subset (sets of {n1} and {n2} rows, {subsets} subsets)"
            ),
        ));
    }
    if let Some(v) = features1.iter().chain(features2).find(|v| !v.is_finite()) {
        return Err(Error::NonFinite(format!("{OP}: a feature is {v}")));
    }
    let kxx = polynomial_kernel(features1, features1, dims);
    let kyy = polynomial_kernel(features2, features2, dims);
    let kxy = polynomial_kernel(features1, features2, dims);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let values: Vec<f64> = (0..subsets)
        .map(|_| {
            let ix = sample(&mut rng, n1, m).into_vec();
            let iy = sample(&mut rng, n2, m).into_vec();
            mmd2_unbiased(&kxx, &kyy, &kxy, &ix, &iy)
        })
        .collect();
    let mean = values.iter().sum::<f64>() / subsets as f64;
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / subsets as f64).sqrt();
    Ok(Kid { mean, std, subsets, subset_size: m })
}
