//! FID during training (`--fid-every`): the Inception and the features of the training images (the
//! 64×64 tensors the discriminator sees, quantized to 8 bits as `generate` writes them: the paper's
//! protocol), computed once; then the FID of fresh samples at the chosen epochs, with its bootstrap
//! interval, the real-vs-real floor and KID ([`Score`]).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::backend::Backend;
use crate::data::Dataset;
use crate::error::Result;
use crate::fid::inception::find_weights;
use crate::fid::{features_of_images, InceptionV3, Score};
use crate::nn::Sequential;
use crate::train::config::TrainConfig;
use crate::train::samples::{noise, quantize, sample};

/// Images per Inception forward pass.
const FID_BATCH: usize = 50;
/// Mixed into the run's seed for the FID samples' noise: a stream apart from training's and the grids'.
const FID_NOISE_STREAM: u64 = 0xf1d0_0000;

pub struct FidProbe<T> {
    model: InceptionV3<T>,
    /// The training images' features, row-major `[n, fid_dims]`.
    real: Vec<f64>,
}

impl<T: Clone> FidProbe<T> {
    pub fn new<B: Backend<Tensor = T>>(b: &B, cfg: &TrainConfig, dataset: &Dataset) -> Result<Self> {
        let model = InceptionV3::load(b, &find_weights(cfg.fid_weights.as_deref())?)?;
        let (images, shape) = quantize(&dataset.to_batch_tensor()?);
        let real = features_of_images(b, &model, &images, shape, cfg.fid_dims, FID_BATCH)?;
        Ok(FidProbe { model, real })
    }

    /// The score of `cfg.fid_count` fresh samples (noise seeded by the epoch, so resumed runs measure the
    /// same images).
    pub fn measure<B: Backend<Tensor = T>>(&self, b: &B, cfg: &TrainConfig, g: &Sequential<T>, epoch: usize) -> Result<Score> {
        let seed = cfg.seed ^ FID_NOISE_STREAM ^ epoch as u64;
        let (images, shape) = quantize(&sample(b, g, &noise(&mut ChaCha8Rng::seed_from_u64(seed), cfg.fid_count, cfg.widths.nz))?);
        let generated = features_of_images(b, &self.model, &images, shape, cfg.fid_dims, FID_BATCH)?;
        Score::of_features(&generated, &self.real, cfg.fid_dims, seed)
    }
}
