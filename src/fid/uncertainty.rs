//! What makes one FID readable: the real-vs-real floor and a bootstrap interval.
//!
//! FID is biased upwards by an amount that shrinks like 1/n and grows with the feature size, so a number on
//! its own says little. Two references make it readable:
//! - [`real_floor`]: the FID between two disjoint random halves of the real set, at the same feature size:
//!   what a generator that reproduced the real distribution exactly would score against half of it. It is
//!   computed over several random splits (mean ± sd). Halves of n/2 carry a somewhat larger bias than the
//!   full set of n, so the floor is a slightly generous lower bound.
//! - [`bootstrap_interval`]: a 95 % interval from resamples (with replacement) of the generated features
//!   against the fixed real statistics: how much the number moves with the particular generated images.
//!   Variation between training runs is what `--seeds` measures.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::frechet::frechet_distance;
use super::stats::Statistics;
use crate::error::{Error, Result};

/// Random half/half splits of the real set for [`real_floor`].
pub const FLOOR_SPLITS: usize = 10;
/// Resamples for [`bootstrap_interval`].
pub const BOOTSTRAP_RESAMPLES: usize = 50;

/// Mean and sample standard deviation (ddof 1; 0 for one value) of some values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeanSd {
    pub mean: f64,
    pub sd: f64,
    pub n: usize,
}

impl MeanSd {
    pub fn of(values: &[f64]) -> MeanSd {
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n.max(1) as f64;
        let sd = if n > 1 { (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() } else { 0.0 };
        MeanSd { mean, sd, n }
    }
}

/// A percentile interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
    /// The coverage it aims at (0.95).
    pub level: f64,
}

fn rows(features: &[f64], dims: usize, what: &str) -> Result<usize> {
    if dims == 0 || !features.len().is_multiple_of(dims) {
        return Err(Error::shape("fid", format!("{what}: {} values are not whole rows of {dims} features", features.len())));
    }
    Ok(features.len() / dims)
}

fn gather(features: &[f64], dims: usize, idx: &[usize]) -> Vec<f64> {
    idx.iter().flat_map(|&i| features[i * dims..(i + 1) * dims].iter().copied()).collect()
}

/// The FID between disjoint random halves (⌊n/2⌋ rows each) of the real features, over `splits` seeded
/// splits.
pub fn real_floor(real: &[f64], dims: usize, splits: usize, seed: u64) -> Result<MeanSd> {
    let n = rows(real, dims, "the real features")?;
    if n < 4 {
        return Err(Error::invalid("fid", format!("the real-vs-real floor needs at least 4 real images (two halves of 2), got {n}")));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut values = Vec::with_capacity(splits);
    for _ in 0..splits {
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        let half = n / 2;
        let a = Statistics::from_features(&gather(real, dims, &order[..half]), dims)?;
        let b = Statistics::from_features(&gather(real, dims, &order[half..2 * half]), dims)?;
        values.push(frechet_distance(&a, &b)?);
    }
    Ok(MeanSd::of(&values))
}

/// A 95 % interval for the FID of `generated` features against `reference`: the 2.5 % and 97.5 %
/// percentiles of the FIDs of `resamples` seeded resamples of the generated rows (with replacement),
/// shifted by the resamples' mean bias (`FID − mean`), so that it measures the spread around the estimate.
pub fn bootstrap_interval(generated: &[f64], reference: &Statistics, resamples: usize, seed: u64) -> Result<Interval> {
    let dims = reference.dims;
    let n = rows(generated, dims, "the generated features")?;
    if n < 2 || resamples == 0 {
        return Err(Error::invalid("fid", format!("a bootstrap needs at least 2 generated images and 1 resample (got {n}, {resamples})")));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut values = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        let idx: Vec<usize> = (0..n).map(|_| rng.gen_range(0..n)).collect();
        values.push(frechet_distance(&Statistics::from_features(&gather(generated, dims, &idx), dims)?, reference)?);
    }
    values.sort_by(f64::total_cmp);
    let level = 0.95;
    let (q_lo, q_hi) = (percentile(&values, (1.0 - level) / 2.0), percentile(&values, 1.0 - (1.0 - level) / 2.0));
    // A resample repeats images, which raises its FID by about the same amount every time (often more
    // than the resamples scatter): the percentiles would sit wholly above the estimate, and the basic
    // interval (2·FID − q) wholly below it. The spread is what the bootstrap measures; it is kept, centred
    // on the estimate.
    let fid = frechet_distance(&Statistics::from_features(generated, dims)?, reference)?;
    let shift = fid - values.iter().sum::<f64>() / values.len() as f64;
    Ok(Interval { lo: q_lo + shift, hi: q_hi + shift, level })
}

/// numpy's default (linear) percentile of sorted values, `q` in [0, 1].
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos - pos.floor());
    if i + 1 < sorted.len() {
        sorted[i] + frac * (sorted[i + 1] - sorted[i])
    } else {
        sorted[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_numpys_linear_interpolation() {
        // np.percentile([1, 2, 4, 8], [0, 25, 50, 97.5, 100]) = 1, 1.75, 3, 7.7, 8
        let v = [1.0, 2.0, 4.0, 8.0];
        for (q, want) in [(0.0, 1.0), (0.25, 1.75), (0.5, 3.0), (0.975, 7.7), (1.0, 8.0)] {
            assert!((percentile(&v, q) - want).abs() < 1e-12, "q {q}: {} vs {want}", percentile(&v, q));
        }
    }

    #[test]
    fn mean_sd_uses_ddof_1() {
        let m = MeanSd::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m.mean, 2.5);
        assert!((m.sd - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
        assert_eq!(MeanSd::of(&[7.0]).sd, 0.0);
    }
}
