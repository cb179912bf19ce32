//! `cxr-gan classify`: the paper's Table 4 classifier, with and without generated images.

use std::path::PathBuf;

use clap::Args;

use crate::backend::{dispatch, Backend, BackendTask, BACKEND_NAMES};
use crate::classify::run::{classify, read_json, ClassifyConfig, ClassifyOptions, ClassifyResult};
use crate::error::Result;

/// Train a COVID-19 vs. normal classifier on real X-rays (a stratified train/validation/test split by file),
/// optionally adding generated images to the positive training set, and report its test metrics.
#[derive(Args)]
pub struct ClassifyArgs {
    /// Folder of positive (COVID-19) images.
    #[arg(long)]
    pub positive: Option<PathBuf>,
    /// Folder of negative (normal) images.
    #[arg(long)]
    pub negative: Option<PathBuf>,
    /// Folder of generated images added to the positive training set (repeatable).
    #[arg(long)]
    pub augment: Vec<PathBuf>,
    /// Use at most this many generated images (chosen by seed).
    #[arg(long)]
    pub augment_count: Option<usize>,
    /// The run directory to create.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory (its settings; --epochs may grow).
    #[arg(long, conflicts_with_all = ["out", "force"])]
    pub resume: Option<PathBuf>,
    /// Replace an existing classify run directory at --out.
    #[arg(long)]
    pub force: bool,
    /// `inception` (InceptionV3 at 299×299, as the paper) or `small` (a 64×64 CNN for CPU-sized runs).
    #[arg(long, default_value = "small", value_parser = ["inception", "small"])]
    pub arch: String,
    /// InceptionV3's starting weights: `fid` (pytorch-fid's, all but the new head) or `scratch`.
    #[arg(long, default_value = "fid", value_parser = ["fid", "scratch"])]
    pub init: String,
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The FID Inception weights (for --init fid).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    #[arg(long, default_value = "cpu", value_parser = BACKEND_NAMES.to_vec())]
    pub backend: String,
}

struct Task {
    cfg: ClassifyConfig,
    out: PathBuf,
    resume: bool,
    force: bool,
    opts: ClassifyOptions,
}

impl BackendTask for Task {
    type Output = ClassifyResult;
    fn run<B: Backend>(self, b: &B) -> Result<ClassifyResult> {
        classify(b, &self.cfg, &self.out, self.resume, self.force, &self.opts)
    }
}

pub fn run(a: ClassifyArgs) -> Result<()> {
    let (cfg, out, resume) = match (&a.resume, &a.out) {
        (Some(dir), _) => {
            let saved: ClassifyConfig = read_json(&dir.join("classify.json"))?;
            (ClassifyConfig { epochs: a.epochs.max(saved.epochs), backend: a.backend.clone(), ..saved }, dir.clone(), true)
        }
        (None, Some(out)) => {
            // Without data: the phantom demo classes, written into the run directory.
            let (positive, negative) = match (&a.positive, &a.negative) {
                (Some(p), Some(n)) => (p.clone(), n.clone()),
                (None, None) => (out.join("demo_data/opacities"), out.join("demo_data/clear")),
                _ => return Err(crate::Error::invalid("classify", "give both --positive and --negative, or neither (phantom demo data)")),
            };
            let cfg = ClassifyConfig {
                positive,
                negative,
                augment: a.augment.clone(),
                augment_count: a.augment_count,
                arch: a.arch.clone(),
                init: if a.arch == "small" { "scratch".into() } else { a.init.clone() },
                epochs: a.epochs,
                batch_size: a.batch_size,
                lr: a.lr,
                seed: a.seed,
                backend: a.backend.clone(),
            };
            (cfg, out.clone(), false)
        }
        (None, None) => return Err(crate::Error::invalid("classify", "--out DIR (a new run) or --resume DIR is required")),
    };
    let demo = !resume && a.positive.is_none();
    let opts =
        ClassifyOptions { progress: true, demo, stop: super::stop_on_ctrl_c("after this iteration"), fid_weights: a.weights.clone() };
    let result = dispatch(&a.backend, Task { cfg, out: out.clone(), resume, force: a.force, opts })?;
    println!("{}", result.test);
    println!(
        "classify: best validation accuracy {:.3} at epoch {}; results in {}",
        result.best_val_accuracy,
        result.best_epoch,
        out.display()
    );
    Ok(())
}
