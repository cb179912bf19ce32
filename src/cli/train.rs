//! `cxr-gan train`: the paper's runs, or with nothing given, a short demo on generated phantoms.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{Args, ValueEnum};

use crate::backend::{dispatch, Backend, BackendTask};
use crate::data::{ignored_entries, list_images, write_demo_set, Dataset};
use crate::error::{Error, Result};
use crate::fsio::remove_stale_temps;
use crate::nn::dcgan::Widths;
use crate::train::config::paper;
use crate::train::{load_config, save_config, train, ModelKind, RunDir, RunOptions, TrainConfig};

/// The demo set: phantoms written into RUN_DIR when no data is given.
const DEMO_IMAGES: usize = 48;
const DEMO_SIZE: usize = 256;
/// Demo settings that finish in about two minutes on 2 cores (the paper's are 128 and hundreds of epochs).
const DEMO_BATCH: usize = 16;
const DEMO_EPOCHS: usize = 250;
/// Narrow networks for the demo (the paper's are 64): 16× fewer FLOPs, so enough iterations fit.
const DEMO_WIDTH: usize = 16;
/// WGAN-GP: at this size and budget the DCGAN collapses to one image (diversity ratio 0.35 at 48 phantoms,
/// 0.31 at 192), while WGAN-GP's samples vary as the phantoms do (0.70), at the same mean-image correlation.
const DEMO_MODEL: ModelKind = ModelKind::WganGp;

#[derive(Clone, Copy, ValueEnum)]
pub enum Model {
    Dcgan,
    WganGp,
}

impl Model {
    fn kind(self) -> ModelKind {
        match self {
            Model::Dcgan => ModelKind::Dcgan,
            Model::WganGp => ModelKind::WganGp,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Resize {
    Linear,
    Area,
}

impl Resize {
    fn name(self) -> &'static str {
        match self {
            Resize::Linear => "linear",
            Resize::Area => "area",
        }
    }
}

/// Settings that have a default are optional here so that `--resume` can tell which were given: a resumed
/// run keeps its config.json, and a given setting that contradicts it is refused.
#[derive(Args)]
pub struct TrainArgs {
    /// dcgan (the default with data) or wgan-gp (the default on the demo set).
    #[arg(long, value_enum)]
    pub model: Option<Model>,
    /// Folder of chest X-rays (flat, or the Radiography Database's COVID/ with images/). Default:
    /// $CXR_GAN_DATA_DIR, else a generated demo set of synthetic phantoms.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Train on this many images, chosen by a seeded shuffle (the paper: 500/1000/1500/2000).
    #[arg(long)]
    pub images: Option<usize>,
    /// Default: 500 with data, 250 on the demo set. With --resume: the new total, to train further.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Default: 128 (the paper's) with data, 16 on the demo set.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Seeds the image choice, the initial weights, the data order and the noise (default 0).
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// Run directory. Default: runs/<model>-<unix time>.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint (settings from its config.json;
    /// --epochs may extend it, --backend may change).
    #[arg(long, conflicts_with_all = ["data", "images", "out", "force"])]
    pub resume: Option<PathBuf>,
    /// Replace --out if it is an earlier run directory (never any other folder).
    #[arg(long)]
    pub force: bool,
    /// Noise size (default 100).
    #[arg(long)]
    pub nz: Option<usize>,
    /// Generator feature maps. Default: 64 (the paper's) with data, 16 on the demo set.
    #[arg(long)]
    pub ngf: Option<usize>,
    /// Discriminator / critic feature maps. Default: 64 with data, 16 on the demo set.
    #[arg(long)]
    pub ndf: Option<usize>,
    /// WGAN-GP: critic iterations per generator iteration (default 5).
    #[arg(long)]
    pub n_critic: Option<usize>,
    /// CLAHE clip limit (default 2.0).
    #[arg(long, allow_negative_numbers = true)]
    pub clahe_clip: Option<f64>,
    /// CLAHE tile grid, N × N (default 8).
    #[arg(long)]
    pub clahe_tiles: Option<usize>,
    #[arg(long)]
    pub no_clahe: bool,
    /// Resize to 64×64 with linear (default) or area interpolation.
    #[arg(long, value_enum)]
    pub resize: Option<Resize>,
    /// Measure FID every K epochs (0, the default: never): --fid-count generated images against the
    /// training images.
    #[arg(long)]
    pub fid_every: Option<usize>,
    /// Default 1000.
    #[arg(long)]
    pub fid_count: Option<usize>,
    /// Inception feature size for the FID during training (default 768, as the paper).
    #[arg(long)]
    pub fid_dims: Option<usize>,
    /// The FID Inception weights (default: $CXR_GAN_FID_WEIGHTS, then the user cache).
    #[arg(long)]
    pub fid_weights: Option<PathBuf>,
    /// Keep checkpoints/epoch_NNNN.safetensors every this many epochs (default 10; last.safetensors: every
    /// epoch).
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Run every iteration op by op, never as a replayed graph (by default each kind of iteration, DCGAN's and
    /// WGAN-GP's critic and generator ones, is captured once as a graph and replayed on backends that can:
    /// cuda-native; the results are the same).
    #[arg(long)]
    pub eager: bool,
}

/// The whole subcommand runs inside the backend task, so a missing device is reported before any work.
struct Train {
    args: TrainArgs,
    stop: Arc<AtomicBool>,
}

impl BackendTask for Train {
    type Output = ();
    fn run<B: Backend>(self, b: &B) -> Result<()> {
        let Train { args, stop } = self;
        let graphs = !args.eager;
        let prepared = prepare(args, b.name(), &stop)?;
        let (cfg, dataset, resume) = (&prepared.cfg, &prepared.dataset, prepared.resume);
        let run = prepared.dir.run();
        let opts = RunOptions { progress: true, stop, max_iterations: None, graphs };
        println!(
            "training {} on {} images ({}) with backend {}, {} epochs, batch {}",
            cfg.model.name(),
            dataset.len(),
            cfg.data.display(),
            b.name(),
            cfg.epochs,
            cfg.batch_size
        );
        let s = train(b, cfg, run, dataset, resume, &opts)?;
        let dir = prepared.dir.keep();
        let dir = dir.display();
        if s.interrupted {
            return Err(Error::Interrupted(format!(
                "stopped after {} iterations ({} epochs done); checkpoint written; continue with: cxr-gan train --resume {dir}",
                s.iterations, s.epochs_done
            )));
        }
        match s.replayed {
            0 => println!("done: {} epochs, {} iterations", s.epochs_done, s.iterations),
            r => println!(
                "done: {} epochs, {} iterations; {r} graph replays (captured iterations, each kind counted)",
                s.epochs_done, s.iterations
            ),
        }
        println!("outputs in {dir}: metrics.csv, loss.png, samples/epoch_NNNN.png, checkpoints/ (last: {})", s.last_checkpoint.display());
        println!("{}", s.quality.report());
        if let Some(f) = s.last_fid {
            println!(
                "last FID{} ({} generated vs the training images): {f:.4}; all values in metrics_fid.csv",
                cfg.fid_dims, cfg.fid_count
            );
        }
        Ok(())
    }
}

pub fn run(a: TrainArgs) -> Result<()> {
    // Ctrl-C: the first finishes the iteration, writes last.safetensors and exits 130.
    let stop = super::stop_on_ctrl_c("after this iteration");
    let backend = a.backend.clone();
    dispatch(&backend, Train { args: a, stop })
}

/// The run directory of this call: one it created (removed again if the run fails before its first
/// checkpoint) or an existing one being resumed (never removed).
enum Dir {
    Created(crate::train::run_dir::CreatedRunDir),
    Resumed(RunDir),
}

impl Dir {
    fn run(&self) -> &RunDir {
        match self {
            Dir::Created(c) => &c.run,
            Dir::Resumed(r) => r,
        }
    }
    fn keep(self) -> PathBuf {
        match self {
            Dir::Created(c) => c.keep().0,
            Dir::Resumed(r) => r.0,
        }
    }
}

struct Prepared {
    cfg: TrainConfig,
    dir: Dir,
    dataset: Dataset,
    resume: bool,
}

fn interrupted(stop: &AtomicBool) -> Result<()> {
    if stop.load(Ordering::SeqCst) {
        return Err(Error::Interrupted("stopped while preparing the data; nothing was kept".into()));
    }
    Ok(())
}

/// The run's configuration, directory and preprocessed images: fresh, or from a run being resumed.
fn prepare(a: TrainArgs, backend: String, stop: &AtomicBool) -> Result<Prepared> {
    if let Some(dir) = &a.resume {
        return prepare_resume(&a, dir, backend);
    }
    let data = a.data.clone().or_else(|| std::env::var_os("CXR_GAN_DATA_DIR").map(PathBuf::from));
    let synthetic = data.is_none();
    let model = a.model.map_or(if synthetic { DEMO_MODEL } else { ModelKind::Dcgan }, Model::kind);
    let (batch, epochs, width) =
        if synthetic { (DEMO_BATCH, DEMO_EPOCHS, DEMO_WIDTH) } else { (paper::BATCH, paper::EPOCHS, paper::WIDTH) };
    let mut cfg = TrainConfig::paper(model, data.clone().unwrap_or_default(), Vec::new(), backend);
    cfg.synthetic_data = synthetic;
    cfg.images = a.images;
    cfg.epochs = a.epochs.unwrap_or(epochs);
    cfg.batch_size = a.batch_size.unwrap_or(batch);
    cfg.seed = a.seed.unwrap_or(0);
    cfg.widths = Widths { nz: a.nz.unwrap_or(paper::NZ), ngf: a.ngf.unwrap_or(width), ndf: a.ndf.unwrap_or(width) };
    cfg.n_critic = a.n_critic.unwrap_or(cfg.n_critic);
    cfg.clahe = (!a.no_clahe).then(|| (a.clahe_clip.unwrap_or(paper::CLAHE_CLIP), a.clahe_tiles.unwrap_or(paper::CLAHE_TILES)));
    cfg.resize = a.resize.unwrap_or(Resize::Linear).name().into();
    cfg.checkpoint_every = a.checkpoint_every.unwrap_or(cfg.checkpoint_every);
    cfg.fid_every = a.fid_every.unwrap_or(0);
    cfg.fid_count = a.fid_count.unwrap_or(cfg.fid_count);
    cfg.fid_dims = a.fid_dims.unwrap_or(cfg.fid_dims);
    cfg.fid_weights = a.fid_weights.clone();
    if a.images == Some(0) {
        return Err(Error::invalid("train", "--images must be at least 1"));
    }
    cfg.validate()?;
    let files = match &data {
        Some(d) => {
            let files = Dataset::select(&list_images(d)?, a.images, cfg.seed)?;
            let ignored = ignored_entries(d);
            if !ignored.is_empty() {
                let names: Vec<String> = ignored.iter().take(3).map(|p| p.display().to_string()).collect();
                let more = if ignored.len() > 3 { format!(" and {} more", ignored.len() - 3) } else { String::new() };
                eprintln!(
                    "note: {} holds {} entries that are not images and were skipped (sub-folders are not searched): {}{more}",
                    d.display(),
                    ignored.len(),
                    names.join(", ")
                );
            }
            Some(files)
        }
        None => None,
    };
    if let Some(b) = a.batch_size.filter(|&b| files.as_ref().is_some_and(|f| b > f.len())) {
        let n = files.as_ref().map_or(0, Vec::len);
        return Err(Error::invalid("train", format!("--batch-size {b} must be between 1 and the number of training images ({n})")));
    }
    let out = a.out.clone().unwrap_or_else(|| default_out(model));
    let created = RunDir::create(&out, a.force, data.as_deref())?;
    let files = match files {
        Some(f) => f,
        None => {
            let dir = created.run.demo_data();
            println!(
                "no --data and no CXR_GAN_DATA_DIR: generating {DEMO_IMAGES} SYNTHETIC chest-radiograph phantoms in {}",
                dir.display()
            );
            cfg.data = dir.clone();
            let written = write_demo_set(&dir, DEMO_IMAGES, DEMO_SIZE, cfg.seed)?;
            Dataset::select(&written, a.images, cfg.seed)?
        }
    };
    cfg.files = files;
    interrupted(stop)?;
    let dataset = Dataset::load_cancellable(&cfg.files, &cfg.preprocess()?, stop)?;
    interrupted(stop)?;
    let run = &created.run;
    dataset.save_cache(&run.dataset_cache())?;
    save_config(&run.config(), &cfg)?;
    Ok(Prepared { cfg, dir: Dir::Created(created), dataset, resume: false })
}

fn default_out(model: ModelKind) -> PathBuf {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    PathBuf::from("runs").join(format!("{}-{secs}", model.name()))
}

/// `--resume DIR`: the run's own config (a given setting must agree with it), its cached data set (or the
/// images again if the cache is gone), and any temp file a killed process left removed.
fn prepare_resume(a: &TrainArgs, dir: &Path, backend: String) -> Result<Prepared> {
    let run = RunDir(dir.to_path_buf());
    if !dir.is_dir() {
        return Err(Error::io(dir, std::io::Error::new(std::io::ErrorKind::NotFound, "no such run directory")));
    }
    let mut cfg = load_config(&run.config())?;
    check_resume_args(a, &cfg, &run.config())?;
    if let Some(e) = a.epochs {
        cfg.epochs = e;
    }
    cfg.backend = backend;
    cfg.validate()?;
    remove_stale_temps(dir);
    let dataset = match Dataset::load_cache(&run.dataset_cache()) {
        Ok(d) => d,
        Err(_) => {
            let d = Dataset::load(&cfg.files, &cfg.preprocess()?)?;
            d.save_cache(&run.dataset_cache())?;
            d
        }
    };
    save_config(&run.config(), &cfg)?;
    Ok(Prepared { cfg, dir: Dir::Resumed(run), dataset, resume: true })
}

/// A resumed run keeps its settings; each one given on the command line must equal the run's.
fn check_resume_args(a: &TrainArgs, cfg: &TrainConfig, config: &Path) -> Result<()> {
    let s = |v: &dyn std::fmt::Display| v.to_string();
    let clahe_on = cfg.clahe.is_some();
    let given: [(&str, Option<String>, String); 14] = [
        ("--model", a.model.map(|m| m.kind().name().to_string()), cfg.model.name().to_string()),
        ("--batch-size", a.batch_size.map(|v| s(&v)), s(&cfg.batch_size)),
        ("--seed", a.seed.map(|v| s(&v)), s(&cfg.seed)),
        ("--nz", a.nz.map(|v| s(&v)), s(&cfg.widths.nz)),
        ("--ngf", a.ngf.map(|v| s(&v)), s(&cfg.widths.ngf)),
        ("--ndf", a.ndf.map(|v| s(&v)), s(&cfg.widths.ndf)),
        ("--n-critic", a.n_critic.map(|v| s(&v)), s(&cfg.n_critic)),
        ("--clahe-clip", a.clahe_clip.map(|v| s(&v)), cfg.clahe.map_or("off".into(), |c| s(&c.0))),
        ("--clahe-tiles", a.clahe_tiles.map(|v| s(&v)), cfg.clahe.map_or("off".into(), |c| s(&c.1))),
        ("--no-clahe", a.no_clahe.then(|| "on".to_string()), if clahe_on { "off".into() } else { "on".into() }),
        ("--resize", a.resize.map(|r| r.name().to_string()), cfg.resize.clone()),
        ("--fid-every", a.fid_every.map(|v| s(&v)), s(&cfg.fid_every)),
        ("--fid-count", a.fid_count.map(|v| s(&v)), s(&cfg.fid_count)),
        ("--fid-dims", a.fid_dims.map(|v| s(&v)), s(&cfg.fid_dims)),
    ];
    let mut clashes: Vec<String> = given
        .iter()
        .filter_map(|(name, g, have)| g.as_ref().filter(|g| *g != have).map(|g| format!("{name} {g} (the run has {have})")))
        .collect();
    if let Some(w) = a.fid_weights.as_ref().filter(|w| cfg.fid_weights.as_ref() != Some(*w)) {
        clashes.push(format!("--fid-weights {}", w.display()));
    }
    if let Some(c) = a.checkpoint_every.filter(|&c| c != cfg.checkpoint_every) {
        clashes.push(format!("--checkpoint-every {c} (the run has {})", cfg.checkpoint_every));
    }
    if clashes.is_empty() {
        return Ok(());
    }
    Err(Error::Other(format!(
        "--resume keeps the run's settings ({}); these contradict them: {}. Only --epochs and --backend may change",
        config.display(),
        clashes.join(", ")
    )))
}
