//! A run's configuration: every setting of `cxr-gan train`, written to RUN_DIR/config.json and read back
//! by `--resume`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::{PreprocessConfig, ResizeMode};
use crate::error::{Error, Result};
use crate::fsio::write_atomic;
use crate::nn::dcgan::{Widths, IMAGE_SIZE};
use crate::train::wgan_gp::{LAMBDA, N_CRITIC};

/// The paper's settings (the PyTorch DCGAN tutorial's, where the paper follows it).
pub mod paper {
    /// Images per iteration.
    pub const BATCH: usize = 128;
    /// Table 1's training length.
    pub const EPOCHS: usize = 500;
    /// Feature maps of G (ngf) and D (ndf).
    pub const WIDTH: usize = 64;
    /// The noise size.
    pub const NZ: usize = 100;
    /// OpenCV CLAHE's clip limit and tile grid (N × N) of the preprocessing.
    pub const CLAHE_CLIP: f64 = 2.0;
    pub const CLAHE_TILES: usize = 8;
    /// Generated images per FID, and the Inception feature size the paper reports.
    pub const FID_COUNT: usize = 1000;
    pub const FID_DIMS: usize = 768;
}

/// Keep checkpoints/epoch_NNNN.safetensors every this many epochs, unless asked otherwise.
pub const CHECKPOINT_EVERY: usize = 10;

/// What wrote a file: crate version and git commit.
pub fn version() -> String {
    format!("cxr-gan {} (git {})", env!("CARGO_PKG_VERSION"), env!("CXR_GAN_GIT_COMMIT"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    Dcgan,
    WganGp,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Dcgan => "dcgan",
            ModelKind::WganGp => "wgan-gp",
        }
    }
}

/// Every setting of a run; written to RUN_DIR/config.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub model: ModelKind,
    /// The folder the images came from.
    pub data: PathBuf,
    /// True when `data` is the generated phantom demo set.
    pub synthetic_data: bool,
    pub images: Option<usize>,
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    pub widths: Widths,
    pub n_critic: usize,
    pub lambda: f32,
    pub clahe: Option<(f64, usize)>,
    pub resize: String,
    /// Also keep checkpoints/epoch_NNNN.safetensors every this many epochs (last.safetensors: every epoch).
    pub checkpoint_every: usize,
    pub backend: String,
    /// FID during training: every `fid_every` epochs (0: never), `fid_count` generated images against the
    /// run's preprocessed training images, both quantized to 8 bits as `generate` writes them.
    #[serde(default)]
    pub fid_every: usize,
    #[serde(default = "default_fid_count")]
    pub fid_count: usize,
    #[serde(default = "default_fid_dims")]
    pub fid_dims: usize,
    #[serde(default)]
    pub fid_weights: Option<PathBuf>,
    pub version: String,
    /// The training images, in the order chosen.
    pub files: Vec<PathBuf>,
}

fn default_fid_count() -> usize {
    1000
}
fn default_fid_dims() -> usize {
    768
}

impl TrainConfig {
    /// The paper's run of `model` on `files` (from the folder `data`), on the backend named `backend`;
    /// callers change what they set differently.
    pub fn paper(model: ModelKind, data: PathBuf, files: Vec<PathBuf>, backend: String) -> TrainConfig {
        TrainConfig {
            model,
            data,
            synthetic_data: false,
            images: Some(files.len()),
            epochs: paper::EPOCHS,
            batch_size: paper::BATCH,
            seed: 0,
            widths: Widths { nz: paper::NZ, ngf: paper::WIDTH, ndf: paper::WIDTH },
            n_critic: N_CRITIC,
            lambda: LAMBDA,
            clahe: Some((paper::CLAHE_CLIP, paper::CLAHE_TILES)),
            resize: "linear".into(),
            checkpoint_every: CHECKPOINT_EVERY,
            backend,
            fid_every: 0,
            fid_count: paper::FID_COUNT,
            fid_dims: paper::FID_DIMS,
            fid_weights: None,
            version: version(),
            files,
        }
    }

    pub fn preprocess(&self) -> Result<PreprocessConfig> {
        let resize = match self.resize.as_str() {
            "linear" => ResizeMode::Linear,
            "area" => ResizeMode::Area,
            other => return Err(Error::invalid("train", format!("--resize {other}: expected linear or area"))),
        };
        Ok(PreprocessConfig { clahe: self.clahe, size: IMAGE_SIZE, resize })
    }

    /// Refuses settings that cannot make a run, before any work: every message names the option.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("--epochs", self.epochs),
            ("--batch-size", self.batch_size),
            ("--nz", self.widths.nz),
            ("--ngf", self.widths.ngf),
            ("--ndf", self.widths.ndf),
            ("--n-critic", self.n_critic),
            ("--checkpoint-every", self.checkpoint_every),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(Error::invalid("train", format!("{name} must be at least 1")));
            }
        }
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return Err(Error::invalid("train", format!("the gradient penalty weight {} must be finite and ≥ 0", self.lambda)));
        }
        if self.fid_every > 0 {
            crate::fid::inception::block_for_dims(self.fid_dims)?;
            if self.fid_count < 2 {
                return Err(Error::invalid("train", "--fid-count must be at least 2 (FID needs a covariance)"));
            }
        }
        self.preprocess()?.validate()
    }
}

/// Writes config.json atomically.
pub fn save_config(path: &Path, cfg: &TrainConfig) -> Result<()> {
    let json = serde_json::to_string_pretty(cfg).map_err(|e| Error::format(path, format!("cannot write the config: {e}")))?;
    write_atomic(path, json.as_bytes())
}

pub fn load_config(path: &Path) -> Result<TrainConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::format(path, format!("not a cxr-gan config: {e}")))
}
