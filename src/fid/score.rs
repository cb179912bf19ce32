//! One FID with what makes it readable: its bootstrap interval, the real-vs-real floor at the same feature
//! size, and KID beside it. From feature rows, so every number comes from one Inception pass per image.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::frechet::frechet_distance;
use super::kid::{kid, Kid, KID_SUBSETS, KID_SUBSET_SIZE};
use super::stats::Statistics;
use super::uncertainty::{bootstrap_interval, real_floor, Interval, MeanSd, BOOTSTRAP_RESAMPLES, FLOOR_SPLITS};
use crate::error::Result;

/// Seeds the floor's splits, the bootstrap's resamples and KID's subsets apart from each other.
const FLOOR_STREAM: u64 = 0xf1_00;
const BOOTSTRAP_STREAM: u64 = 0xb0_07;
const KID_STREAM: u64 = 0x4b_1d;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub dims: usize,
    pub generated: usize,
    pub real: usize,
    pub fid: f64,
    /// 95 % bootstrap interval over the generated images.
    pub fid_ci: Interval,
    /// FID between random halves of the real images (mean ± sd over splits).
    pub floor: MeanSd,
    pub kid: Kid,
}

impl Score {
    /// The score of `generated` against `real` feature rows (row-major `[n, dims]`); `seed` fixes the
    /// random splits, resamples and subsets.
    pub fn of_features(generated: &[f64], real: &[f64], dims: usize, seed: u64) -> Result<Score> {
        let reference = Statistics::from_features(real, dims)?;
        let fid = frechet_distance(&Statistics::from_features(generated, dims)?, &reference)?;
        Ok(Score {
            dims,
            generated: generated.len() / dims,
            real: real.len() / dims,
            fid,
            fid_ci: bootstrap_interval(generated, &reference, BOOTSTRAP_RESAMPLES, seed ^ BOOTSTRAP_STREAM)?,
            floor: real_floor(real, dims, FLOOR_SPLITS, seed ^ FLOOR_STREAM)?,
            kid: kid(generated, real, dims, KID_SUBSETS, KID_SUBSET_SIZE, seed ^ KID_STREAM)?,
        })
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FID{} {:.4} (95% CI {:.4}–{:.4}; real-vs-real floor {:.4} ± {:.4}; {} generated vs {} real); KID {:.5} ± {:.5}",
            self.dims,
            self.fid,
            self.fid_ci.lo,
            self.fid_ci.hi,
            self.floor.mean,
            self.floor.sd,
            self.generated,
            self.real,
            self.kid.mean,
            self.kid.std
        )
    }
}
