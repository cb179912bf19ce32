//! Two numbers that say whether a generator's samples look like the training set, cheaply enough to print
//! after every run (FID needs the Inception weights; these need nothing):
//!
//! - the **mean-image correlation**: Pearson's r between the per-pixel mean of the samples and of the
//!   training images. It sees whether G learned the average anatomy (about 0 untrained), but a generator
//!   that draws one image for every noise (mode collapse) scores as high as a good one.
//! - the **diversity ratio**: the mean pairwise distance among the samples over the same among training
//!   images. About 1 when the samples vary as much as the data; near 0 for a collapsed generator.
//!
//! A run passes when both clear their thresholds ([`Quality::passes`]).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// The mean image of a trained generator correlates with the data's at least this much.
pub const MIN_MEAN_IMAGE_CORRELATION: f64 = 0.8;
/// Samples vary at least this fraction as much as the training images (a collapsed generator: < 0.3).
pub const MIN_DIVERSITY_RATIO: f64 = 0.5;

/// The two numbers of a run's samples against its training images.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    pub mean_image_correlation: f64,
    pub diversity_ratio: f64,
}

impl Quality {
    /// Both numbers for `generated` and `training` image batches [N, C, H, W] of one image shape.
    pub fn measure(generated: &Tensor, training: &Tensor) -> Result<Quality> {
        Ok(Quality {
            mean_image_correlation: pearson(&mean_image(generated)?, &mean_image(training)?),
            diversity_ratio: diversity_ratio(generated, training)?,
        })
    }

    pub fn passes(&self) -> bool {
        self.mean_image_correlation >= MIN_MEAN_IMAGE_CORRELATION && self.diversity_ratio >= MIN_DIVERSITY_RATIO
    }

    /// Two lines, each with its threshold and verdict.
    pub fn report(&self) -> String {
        let verdict = |ok: bool| if ok { "ok" } else { "LOW" };
        format!(
            "mean-image correlation (generated vs training mean): {:.3} (≥ {MIN_MEAN_IMAGE_CORRELATION}: {})\n\
             diversity ratio (pairwise distance, generated / training): {:.3} (≥ {MIN_DIVERSITY_RATIO}: {}{})",
            self.mean_image_correlation,
            verdict(self.mean_image_correlation >= MIN_MEAN_IMAGE_CORRELATION),
            self.diversity_ratio,
            verdict(self.diversity_ratio >= MIN_DIVERSITY_RATIO),
            if self.diversity_ratio < MIN_DIVERSITY_RATIO { "; the samples are near copies of each other: mode collapse" } else { "" }
        )
    }
}

/// Pearson correlation of two equally long vectors.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// The per-pixel mean over a batch [N, C, H, W], averaged over channels: [H·W].
pub fn mean_image(batch: &Tensor) -> Result<Vec<f64>> {
    let [n, c, h, w] = batch.dims4("mean_image", "images")?;
    let mut m = vec![0.0; h * w];
    for (i, v) in batch.data().iter().enumerate() {
        m[i % (h * w)] += *v as f64 / (n * c) as f64;
    }
    Ok(m)
}

/// The root-mean-square per-pixel distance between two images, averaged over all pairs of a batch
/// [N, C, H, W] (N ≥ 2).
pub fn mean_pairwise_distance(batch: &Tensor) -> Result<f64> {
    let [n, c, h, w] = batch.dims4("mean_pairwise_distance", "images")?;
    if n < 2 {
        return Err(Error::invalid("mean_pairwise_distance", format!("needs at least 2 images, got {:?}", batch.shape())));
    }
    let per = c * h * w;
    let img = |i: usize| &batch.data()[i * per..(i + 1) * per];
    let mut total = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            let sq: f64 = img(i).iter().zip(img(j)).map(|(a, b)| (*a as f64 - *b as f64).powi(2)).sum();
            total += (sq / per as f64).sqrt();
        }
    }
    Ok(total / (n * (n - 1) / 2) as f64)
}

/// [`mean_pairwise_distance`] of the generated images over that of the training images.
pub fn diversity_ratio(generated: &Tensor, training: &Tensor) -> Result<f64> {
    if generated.shape()[1..] != training.shape()[1..] {
        return Err(Error::shape(
            "diversity_ratio",
            format!("generated {:?} and training {:?} images differ in shape", generated.shape(), training.shape()),
        ));
    }
    Ok(mean_pairwise_distance(generated)? / mean_pairwise_distance(training)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_distance_by_hand() {
        // Three 1-pixel images 0, 1, 3: distances 1, 3, 2 → mean 2.
        let t = Tensor::new(&[3, 1, 1, 1], vec![0.0, 1.0, 3.0]).unwrap();
        assert!((mean_pairwise_distance(&t).unwrap() - 2.0).abs() < 1e-12);
        // RMS over pixels: images (0, 0) and (3, 4): √((9 + 16) / 2).
        let t = Tensor::new(&[2, 1, 1, 2], vec![0.0, 0.0, 3.0, 4.0]).unwrap();
        assert!((mean_pairwise_distance(&t).unwrap() - 12.5f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn pearson_by_hand() {
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 7.0]) - 0.993_399_267_798_783).abs() < 1e-12);
    }
}
