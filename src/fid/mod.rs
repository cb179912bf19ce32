//! Fréchet Inception Distance, computed as pytorch-fid computes it, in f64.
//!
//! - [`stats`]: the mean and ddof-1 covariance of feature vectors ([`Statistics`]), one-shot or batch by batch
//!   ([`StreamingStats`]), as `np.mean(axis=0)` / `np.cov(rowvar=False)`.
//! - [`frechet`]: the Fréchet distance between two [`Statistics`] ([`frechet_distance`]), pytorch-fid's
//!   `calculate_frechet_distance` through symmetric eigenproblems instead of `scipy.linalg.sqrtm`.
//! - [`npz`]: statistics as pytorch-fid's `.npz` files (`mu`, `sigma`), readable by `np.load`.
//! - [`inception`]: pytorch-fid's FID InceptionV3 over the `Backend` trait ([`InceptionV3`]), and where its
//!   weights are found.
//! - [`features`]: images (in memory or a folder) → batched Inception features → [`Statistics`], and
//!   [`fid_of_images`] against precomputed reference statistics; [`features_of_images`] for the rows.
//! - [`kid`]: the Kernel Inception Distance as torch-fidelity computes it ([`kid::kid`]).
//! - [`uncertainty`]: the real-vs-real floor and the bootstrap interval that make one FID readable;
//!   [`score`]: FID, interval, floor and KID together ([`Score`]).

pub mod features;
pub mod frechet;
pub mod inception;
pub mod kid;
pub mod npz;
pub mod score;
pub mod stats;
pub mod uncertainty;

pub use features::{features_of_images, fid_of_images, statistics_of_files, statistics_of_folder, statistics_of_images};
pub use frechet::{frechet_distance, frechet_distance_eigen};
pub use inception::InceptionV3;
pub use npz::{load_stats_npz, save_stats_npz};
pub use score::Score;
pub use stats::{Statistics, StreamingStats};

use crate::error::Result;

/// The FID between two feature sets, each a flat row-major `[n, dims]` slice (f32 or f64; `n ≥ 2`).
///
/// ```
/// # use cxr_gan::fid::fid_from_features;
/// let a = [0.0f32, 0.0, 1.0, 1.0, 2.0, 0.0];
/// let fid = fid_from_features(&a, &a, 2).unwrap();
/// assert!(fid.abs() < 1e-9);
/// ```
pub fn fid_from_features<T: Copy + Into<f64>>(features1: &[T], features2: &[T], dims: usize) -> Result<f64> {
    let s1 = Statistics::from_features(features1, dims)?;
    let s2 = Statistics::from_features(features2, dims)?;
    frechet_distance(&s1, &s2)
}
