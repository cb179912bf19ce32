//! The paper's preprocessing as one step: CLAHE → square resize → [−1, 1] → three channels.
//! Three channels because the DCGAN/WGAN-GP models and the Inception network behind FID take RGB.

use super::clahe::clahe;
use super::resize::{resize, ResizeMode};
use super::GrayImage;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// How a gray radiograph becomes a training tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct PreprocessConfig {
    /// CLAHE as `(clip_limit, tiles)` with a square `tiles × tiles` grid; `None` skips equalisation.
    pub clahe: Option<(f64, usize)>,
    /// Output side in pixels (the paper trains at 64).
    pub size: usize,
    /// Resampling filter for the resize.
    pub resize: ResizeMode,
}

impl Default for PreprocessConfig {
    /// The paper's settings: `cv2.createCLAHE(2.0, (8, 8))`, then INTER_LINEAR to 64×64.
    fn default() -> Self {
        PreprocessConfig { clahe: Some((2.0, 8)), size: 64, resize: ResizeMode::Linear }
    }
}

impl PreprocessConfig {
    /// Rejects settings [`preprocess`] cannot run with (it panics on them rather than return an error).
    pub fn validate(&self) -> Result<()> {
        if self.size == 0 {
            return Err(Error::invalid("preprocess", "size must be positive"));
        }
        if let Some((clip, tiles)) = self.clahe {
            if tiles == 0 {
                return Err(Error::invalid("preprocess", "CLAHE tile grid must be at least 1×1"));
            }
            // OpenCV reads a clip limit ≤ 0 as "no clipping" (plain AHE, which amplifies noise): refuse it
            // rather than silently run something other than CLAHE.
            if !(clip.is_finite() && clip > 0.0) {
                return Err(Error::invalid(
                    "preprocess",
                    format!("CLAHE clip limit {clip} must be a positive number (--no-clahe skips CLAHE)"),
                ));
            }
        }
        Ok(())
    }
}

/// `img` → a `[3, size, size]` tensor with values `v / 127.5 − 1` in [−1, 1], the gray plane repeated
/// three times. Panics on a configuration [`PreprocessConfig::validate`] rejects or an empty image.
pub fn preprocess(img: &GrayImage, cfg: &PreprocessConfig) -> Tensor {
    let equalised;
    let src = match cfg.clahe {
        Some((clip, tiles)) => {
            equalised = clahe(img, clip, [tiles, tiles]);
            &equalised
        }
        None => img,
    };
    let small = resize(src, cfg.size, cfg.size, cfg.resize);
    let plane: Vec<f32> = small.pixels.iter().map(|&v| v as f32 / 127.5 - 1.0).collect();
    let mut data = Vec::with_capacity(plane.len() * 3);
    for _ in 0..3 {
        data.extend_from_slice(&plane);
    }
    Tensor::new(&[3, cfg.size, cfg.size], data).expect("3 planes of size² values")
}
