//! `cxr-gan train`: the paper's runs, or with nothing given, a short demo on generated phantoms.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{Args, ValueEnum};

use crate::backend::{dispatch, Backend, BackendTask};
use crate::data::{list_images, write_demo_set, Dataset};
use crate::error::{Error, Result};
use crate::nn::dcgan::Widths;
use crate::train::run::{load_config, save_config, train, ModelKind, RunDir, RunOptions, TrainConfig};

/// The demo set: phantoms written into RUN_DIR when no data is given.
const DEMO_IMAGES: usize = 48;
const DEMO_SIZE: usize = 256;
/// Demo settings that finish in about two minutes on 2 cores (the paper's are 128 and hundreds of epochs).
const DEMO_BATCH: usize = 16;
const DEMO_EPOCHS: usize = 250;
/// Narrow networks for the demo (the paper's are 64): 16× fewer FLOPs, so enough iterations fit.
const DEMO_WIDTH: usize = 16;
/// The paper's batch size.
const PAPER_BATCH: usize = 128;
const PAPER_EPOCHS: usize = 500;

#[derive(Clone, Copy, ValueEnum)]
pub enum Model {
    Dcgan,
    WganGp,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Resize {
    Linear,
    Area,
}

#[derive(Args)]
pub struct TrainArgs {
    #[arg(long, value_enum, default_value = "dcgan")]
    pub model: Model,
    /// Folder of chest X-rays (flat, or the Radiography Database's COVID/ with images/). Default:
    /// $CXR_GAN_DATA_DIR, else a generated demo set of synthetic phantoms.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Train on this many images, chosen by a seeded shuffle (the paper: 500/1000/1500/2000).
    #[arg(long)]
    pub images: Option<usize>,
    /// Default: 500 with data, 250 on the demo set.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Default: 128 (the paper's) with data, 16 on the demo set.
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// Run directory. Default: runs/<model>-<unix time>.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint (settings from its config.json;
    /// --epochs may extend it).
    #[arg(long, conflicts_with_all = ["data", "images", "out", "force"])]
    pub resume: Option<PathBuf>,
    /// Overwrite an existing run directory.
    #[arg(long)]
    pub force: bool,
    #[arg(long, default_value_t = 100)]
    pub nz: usize,
    /// Generator feature maps. Default: 64 (the paper's) with data, 16 on the demo set.
    #[arg(long)]
    pub ngf: Option<usize>,
    /// Discriminator / critic feature maps. Default: 64 with data, 16 on the demo set.
    #[arg(long)]
    pub ndf: Option<usize>,
    /// WGAN-GP: critic iterations per generator iteration.
    #[arg(long, default_value_t = crate::train::wgan_gp::N_CRITIC)]
    pub n_critic: usize,
    #[arg(long, default_value_t = 2.0)]
    pub clahe_clip: f64,
    #[arg(long, default_value_t = 8)]
    pub clahe_tiles: usize,
    #[arg(long)]
    pub no_clahe: bool,
    #[arg(long, value_enum, default_value = "linear")]
    pub resize: Resize,
    /// Measure FID every K epochs (0: never): --fid-count generated images against the training images.
    #[arg(long, default_value_t = 0)]
    pub fid_every: usize,
    #[arg(long, default_value_t = 1000)]
    pub fid_count: usize,
    /// Inception feature size for the FID during training (the paper reports 768).
    #[arg(long, default_value_t = 768)]
    pub fid_dims: usize,
    /// The FID Inception weights (default: $CXR_GAN_FID_WEIGHTS, then the user cache).
    #[arg(long)]
    pub fid_weights: Option<PathBuf>,
    /// Keep checkpoints/epoch_NNNN.safetensors every this many epochs (last.safetensors: every epoch).
    #[arg(long, default_value_t = 10)]
    pub checkpoint_every: usize,
}

/// The whole subcommand runs inside the backend task, so a missing device is reported before any work.
struct Train(TrainArgs);

impl BackendTask for Train {
    type Output = ();
    fn run<B: Backend>(self, b: &B) -> Result<()> {
        let (cfg, run, dataset, resume) = prepare(self.0, b.name())?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        // Ctrl-C: finish the iteration, write last.safetensors, exit cleanly. (Ignored if a handler exists.)
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
        let opts = RunOptions { progress: true, stop, max_iterations: None };
        println!("training {} on {} images ({}) with backend {}, {} epochs, batch {}",
            cfg.model.name(), dataset.len(), cfg.data.display(), b.name(), cfg.epochs, cfg.batch_size);
        let s = train(b, &cfg, &run, &dataset, resume, &opts)?;
        let dir = run.0.display();
        if s.interrupted {
            println!("interrupted after {} iterations; resume with: cxr-gan train --resume {dir}", s.iterations);
        }
        println!("done: {} epochs, {} iterations", s.epochs_done, s.iterations);
        println!("outputs in {dir}: metrics.csv, loss.png, samples/epoch_NNNN.png, checkpoints/ (last: {})", s.last_checkpoint.display());
        println!("mean-image correlation (64 generated vs training mean): {:.3}", s.mean_image_correlation);
        if let Some(f) = s.last_fid {
            println!("last FID{} ({} generated vs the training images): {f:.4}; all values in metrics_fid.csv", cfg.fid_dims, cfg.fid_count);
        }
        Ok(())
    }
}

fn default_out(model: ModelKind) -> PathBuf {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    PathBuf::from("runs").join(format!("{}-{secs}", model.name()))
}

fn prepare_dir(out: &Path, force: bool) -> Result<()> {
    if out.exists() {
        if !force {
            return Err(Error::Other(format!("{} exists; pass --resume {} to continue it or --force to overwrite", out.display(), out.display())));
        }
        std::fs::remove_dir_all(out).map_err(|e| Error::io(out, e))?;
    }
    std::fs::create_dir_all(out.join("checkpoints")).map_err(|e| Error::io(out, e))
}

pub fn run(a: TrainArgs) -> Result<()> {
    let backend = a.backend.clone();
    dispatch(&backend, Train(a))
}

/// The run's configuration, directory and preprocessed images: fresh, or from a run being resumed.
fn prepare(a: TrainArgs, backend: String) -> Result<(TrainConfig, RunDir, Dataset, bool)> {
    if let Some(dir) = &a.resume {
        let run = RunDir(dir.clone());
        let mut cfg = load_config(&run)?;
        if let Some(e) = a.epochs {
            cfg.epochs = e;
        }
        cfg.backend = backend;
        let dataset = Dataset::load_cache(&run.dataset_cache())?;
        save_config(&run, &cfg)?;
        return Ok((cfg, run, dataset, true));
    }
    let model = match a.model {
        Model::Dcgan => ModelKind::Dcgan,
        Model::WganGp => ModelKind::WganGp,
    };
    let out = a.out.clone().unwrap_or_else(|| default_out(model));
    let data = a.data.clone().or_else(|| std::env::var_os("CXR_GAN_DATA_DIR").map(PathBuf::from));
    if a.n_critic == 0 {
        return Err(Error::invalid("train", "--n-critic must be at least 1"));
    }
    if a.fid_every > 0 {
        crate::fid::inception::block_for_dims(a.fid_dims)?;
        if a.fid_count < 2 {
            return Err(Error::invalid("train", "--fid-count must be at least 2 (FID needs a covariance)"));
        }
    }
    prepare_dir(&out, a.force)?;
    let synthetic = data.is_none();
    let data = match data {
        Some(d) => d,
        None => {
            let dir = out.join("demo_data");
            println!("no --data and no CXR_GAN_DATA_DIR: generating {DEMO_IMAGES} SYNTHETIC chest-radiograph phantoms in {}", dir.display());
            write_demo_set(&dir, DEMO_IMAGES, DEMO_SIZE, a.seed)?;
            dir
        }
    };
    let files = Dataset::select(&list_images(&data)?, a.images, a.seed)?;
    let (batch, epochs, width) = if synthetic { (DEMO_BATCH, DEMO_EPOCHS, DEMO_WIDTH) } else { (PAPER_BATCH, PAPER_EPOCHS, 64) };
    let cfg = TrainConfig {
        model,
        data,
        synthetic_data: synthetic,
        images: a.images,
        epochs: a.epochs.unwrap_or(epochs),
        batch_size: a.batch_size.unwrap_or(batch),
        seed: a.seed,
        widths: Widths { nz: a.nz, ngf: a.ngf.unwrap_or(width), ndf: a.ndf.unwrap_or(width) },
        n_critic: a.n_critic,
        lambda: crate::train::wgan_gp::LAMBDA,
        clahe: (!a.no_clahe).then_some((a.clahe_clip, a.clahe_tiles)),
        resize: match a.resize {
            Resize::Linear => "linear".into(),
            Resize::Area => "area".into(),
        },
        checkpoint_every: a.checkpoint_every,
        backend,
        fid_every: a.fid_every,
        fid_count: a.fid_count,
        fid_dims: a.fid_dims,
        fid_weights: a.fid_weights.clone(),
        version: format!("cxr-gan {} (git {})", env!("CARGO_PKG_VERSION"), env!("CXR_GAN_GIT_COMMIT")),
        files,
    };
    let pre = cfg.preprocess()?;
    pre.validate()?;
    let dataset = Dataset::load(&cfg.files, &pre)?;
    let run = RunDir(out);
    dataset.save_cache(&run.dataset_cache())?;
    save_config(&run, &cfg)?;
    Ok((cfg, run, dataset, false))
}
