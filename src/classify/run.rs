//! `cxr-gan classify`: split, train (checkpointed per epoch, resumable), pick the epoch with the best
//! validation accuracy, and score it on the test set.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::metrics::{bootstrap, Metrics};
use super::split::{stratified_split, Example, Split, POSITIVE};
use crate::backend::{AdamConfig, Backend};
use crate::data::phantom::{write_class_set, PhantomClass};
use crate::data::preprocess::PreprocessConfig;
use crate::data::{list_images, Dataset};
use crate::error::{Error, Result};
use crate::fid::inception::{find_weights, read_tensors};
use crate::fsio::{copy_atomic, write_atomic};
use crate::nn::classifier::{Arch, Classifier, InceptionInit, SMALL_INPUT};
use crate::tensor::Tensor;
use crate::train::checkpoint::Checkpoint;
use crate::train::metrics::{keep_rows_before, CsvLog};
use crate::train::optim::Adam;
use crate::train::run::epoch_order;
use crate::train::RunDir;

/// Two classes: COVID-19 (1) and not (0).
pub const CLASSES: usize = 2;
/// train / validation / test fractions of each class's real images.
pub const SPLIT: [f64; 3] = [0.7, 0.15, 0.15];
/// Adam's betas and eps (PyTorch's defaults).
const BETAS: (f64, f64) = (0.9, 0.999);
const ADAM_EPS: f64 = 1e-8;
/// Bootstrap resamples of the test set for the metrics' intervals.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;
/// Phantom images per class of the demo data.
pub const DEMO_IMAGES: usize = 100;
/// Images per batch when predicting (eval mode keeps no activations).
const EVAL_BATCH: usize = 32;

const METRICS_HEADER: &str = "epoch,iteration,loss,train_accuracy,val_accuracy,seconds";
/// Mixed into the run's seed: dropout masks, the fc head's initialisation, bootstrap.
const DROPOUT_STREAM: u64 = 0xd50_0000;
const HEAD_STREAM: u64 = 0x4ead;
const BOOTSTRAP_STREAM: u64 = 0xb007;

/// Everything that defines a classify run; saved as RUN_DIR/classify.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifyConfig {
    pub positive: PathBuf,
    pub negative: PathBuf,
    /// Folders of generated images added to the positive class of the training split only.
    pub augment: Vec<PathBuf>,
    /// At most this many generated images (all when `None`).
    pub augment_count: Option<usize>,
    /// `inception` or `small`.
    pub arch: String,
    /// `fid` (InceptionV3 from pytorch-fid's weights) or `scratch`.
    pub init: String,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub seed: u64,
    pub backend: String,
}

impl ClassifyConfig {
    pub fn validate(&self) -> Result<Arch> {
        let arch = Arch::parse(&self.arch)?;
        if !matches!(self.init.as_str(), "fid" | "scratch") {
            return Err(Error::invalid("classify", format!("--init {:?}: expected fid or scratch", self.init)));
        }
        if arch == Arch::Small && self.init == "fid" {
            return Err(Error::invalid("classify", "--init fid needs --arch inception (the FID weights are InceptionV3's)"));
        }
        if self.epochs == 0 || self.batch_size == 0 {
            return Err(Error::invalid("classify", "--epochs and --batch-size must be at least 1"));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::invalid("classify", format!("--lr {} must be positive", self.lr)));
        }
        Ok(arch)
    }
}

/// The run's files beside [`RunDir`]'s checkpoints and metrics.
fn config_path(run: &RunDir) -> PathBuf {
    run.0.join("classify.json")
}
fn split_path(run: &RunDir) -> PathBuf {
    run.0.join("split.csv")
}
fn best_path(run: &RunDir) -> PathBuf {
    run.checkpoints().join("best.safetensors")
}
pub fn results_path(run: &RunDir) -> PathBuf {
    run.0.join("results.json")
}

/// Whether `dir` is a classify run directory (what `--force` may replace).
pub fn is_classify_dir(dir: &Path) -> bool {
    dir.join("classify.json").is_file()
}

/// What a finished run reports; RUN_DIR/results.json.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClassifyResult {
    pub arch: String,
    pub train_images: usize,
    pub generated_images: usize,
    pub val_images: usize,
    pub test_images: usize,
    /// The epoch (0-based) whose weights were tested: the best validation accuracy.
    pub best_epoch: usize,
    pub best_val_accuracy: f64,
    pub test: Metrics,
}

/// Options of one call that are not part of the run's configuration.
pub struct ClassifyOptions {
    pub progress: bool,
    /// Write the phantom demo classes to `positive` and `negative` (inside the run directory) first.
    pub demo: bool,
    pub stop: Arc<AtomicBool>,
    pub fid_weights: Option<PathBuf>,
}

/// Labeled images as one tensor per image plus labels.
struct Labeled {
    data: Dataset,
    labels: Vec<usize>,
}

impl Labeled {
    fn load(examples: &[Example], pre: &PreprocessConfig, stop: &AtomicBool) -> Result<Self> {
        let files: Vec<PathBuf> = examples.iter().map(|e| e.path.clone()).collect();
        Ok(Labeled { data: Dataset::load_cancellable(&files, pre, stop)?, labels: examples.iter().map(|e| e.label).collect() })
    }
}

/// Starts (or, with `resume`, continues) the run in `out` and returns its test-set result.
pub fn classify<B: Backend>(
    b: &B,
    cfg: &ClassifyConfig,
    out: &Path,
    resume: bool,
    force: bool,
    o: &ClassifyOptions,
) -> Result<ClassifyResult> {
    let arch = cfg.validate()?;
    let run = if resume {
        let run = RunDir(out.to_path_buf());
        let saved: ClassifyConfig = read_json(&config_path(&run))?;
        if saved != (ClassifyConfig { epochs: saved.epochs, backend: saved.backend.clone(), ..cfg.clone() }) {
            return Err(Error::Other(format!(
                "--resume {}: the run was made with other settings ({}); only --epochs and --backend may change",
                out.display(),
                config_path(&run).display()
            )));
        }
        write_json(&config_path(&run), cfg)?;
        run
    } else {
        let data = if o.demo { None } else { Some(cfg.positive.as_path()) };
        let created = RunDir::create_kind(out, force, data, is_classify_dir, "classify run directory (one with classify.json)")?;
        if o.demo {
            write_class_set(&cfg.positive, DEMO_IMAGES, SMALL_INPUT, cfg.seed, PhantomClass::Opacities)?;
            write_class_set(&cfg.negative, DEMO_IMAGES, SMALL_INPUT, cfg.seed + DEMO_IMAGES as u64, PhantomClass::Clear)?;
        }
        let split = make_split(cfg)?;
        split.write_csv(&split_path(&created.run))?;
        write_json(&config_path(&created.run), cfg)?;
        created.keep()
    };
    let split = Split::read_csv(&split_path(&run))?;
    let generated = generated_examples(cfg)?;
    let pre = PreprocessConfig { size: arch.input_size(), ..PreprocessConfig::default() };
    println!(
        "classify: {} (init {}), {} train + {} generated, {} validation, {} test images at {}px; out {}",
        arch.name(),
        cfg.init,
        split.train.len(),
        generated.len(),
        split.val.len(),
        split.test.len(),
        pre.size,
        out.display()
    );
    let train_set = Labeled::load(&[split.train.clone(), generated.clone()].concat(), &pre, &o.stop)?;
    let val_set = Labeled::load(&split.val, &pre, &o.stop)?;
    let mut net = match arch {
        Arch::Small => Classifier::new_small(b, CLASSES, cfg.seed ^ HEAD_STREAM)?,
        Arch::Inception if cfg.init == "fid" => {
            let weights = read_tensors(&find_weights(o.fid_weights.as_deref())?)?;
            Classifier::new_inception(b, CLASSES, InceptionInit::Pretrained(&weights), cfg.seed ^ HEAD_STREAM)?
        }
        Arch::Inception => Classifier::new_inception(b, CLASSES, InceptionInit::Scratch, cfg.seed ^ HEAD_STREAM)?,
    };
    let adam_cfg = AdamConfig { lr: cfg.lr, beta1: BETAS.0, beta2: BETAS.1, eps: ADAM_EPS };
    let mut opt = Adam::new(b, &mut net, adam_cfg)?;
    let mut state = TrainState::default();
    if resume && run.last().exists() {
        state = load_state(b, &run.last(), &mut net, &mut opt)?;
    }
    train_epochs(b, cfg, &run, &mut net, &mut opt, &mut state, &train_set, &val_set, o)?;

    // Test the best epoch's weights.
    let test_set = Labeled::load(&split.test, &pre, &o.stop)?;
    load_state(b, &best_path(&run), &mut net, &mut opt)?;
    let predictions = predict(b, &mut net, &test_set.data)?;
    let test = bootstrap(&test_set.labels, &predictions, BOOTSTRAP_RESAMPLES, cfg.seed ^ BOOTSTRAP_STREAM)?;
    let result = ClassifyResult {
        arch: arch.name().into(),
        train_images: split.train.len(),
        generated_images: generated.len(),
        val_images: split.val.len(),
        test_images: split.test.len(),
        best_epoch: state.best_epoch,
        best_val_accuracy: state.best_val_accuracy,
        test,
    };
    write_json(&results_path(&run), &result)?;
    write_atomic(&run.0.join("results.md"), result.test.to_string().as_bytes())?;
    Ok(result)
}

fn make_split(cfg: &ClassifyConfig) -> Result<Split> {
    stratified_split(&list_images(&cfg.positive)?, &list_images(&cfg.negative)?, SPLIT, cfg.seed)
}

/// The generated images `--augment` names, as positive examples (at most `augment_count`, chosen by seed).
fn generated_examples(cfg: &ClassifyConfig) -> Result<Vec<Example>> {
    let mut files = Vec::new();
    for dir in &cfg.augment {
        files.extend(list_images(dir)?);
    }
    let files = match cfg.augment_count {
        Some(n) if n < files.len() => Dataset::select(&files, Some(n), cfg.seed)?,
        _ => files,
    };
    Ok(files.into_iter().map(|path| Example { path, label: POSITIVE }).collect())
}

/// Where training stands; saved in every checkpoint's metadata.
#[derive(Clone, Copy, Debug, Default)]
struct TrainState {
    /// Epochs finished.
    epoch: usize,
    iteration: u64,
    best_epoch: usize,
    best_val_accuracy: f64,
}

#[allow(clippy::too_many_arguments)]
fn train_epochs<B: Backend>(
    b: &B,
    cfg: &ClassifyConfig,
    run: &RunDir,
    net: &mut Classifier<B::Tensor>,
    opt: &mut Adam<B::Tensor>,
    s: &mut TrainState,
    train_set: &Labeled,
    val_set: &Labeled,
    o: &ClassifyOptions,
) -> Result<()> {
    let n = train_set.labels.len();
    let per_epoch = n.div_ceil(cfg.batch_size);
    // Rows after the checkpoint are redone.
    keep_rows_before(&run.metrics(), METRICS_HEADER, 1, s.iteration)?;
    let mut log = CsvLog::open(&run.metrics(), METRICS_HEADER)?;
    let bar = if o.progress { indicatif::ProgressBar::new((cfg.epochs * per_epoch) as u64) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} it  {elapsed_precise} < {eta_precise}  {msg}")
            .expect("a valid template"),
    );
    bar.set_position(s.epoch as u64 * per_epoch as u64);
    while s.epoch < cfg.epochs {
        let order = epoch_order(cfg.seed, s.epoch, n);
        let (mut correct, mut seen) = (0usize, 0usize);
        for batch in order.chunks(cfg.batch_size) {
            if o.stop.load(Ordering::SeqCst) {
                bar.finish_and_clear();
                return Err(Error::Interrupted(format!(
                    "stopped; epochs 0..{} are checkpointed in {}: continue with --resume {}",
                    s.epoch,
                    run.0.display(),
                    run.0.display()
                )));
            }
            let t0 = Instant::now();
            let x = b.upload(&train_set.data.gather(batch)?)?;
            let target: Vec<usize> = batch.iter().map(|&i| train_set.labels[i]).collect();
            let (logits, tape) = net.forward_train(b, &x, cfg.seed ^ DROPOUT_STREAM ^ s.iteration.wrapping_mul(0x9e37_79b9_7f4a_7c15))?;
            let (loss, dlogits) = b.cross_entropy(&logits, &target)?;
            if !loss.is_finite() {
                return Err(Error::NonFinite(format!("loss became {loss} at epoch {} iteration {}", s.epoch, s.iteration)));
            }
            correct += argmax_rows(&b.download(&logits)?).iter().zip(&target).filter(|(p, t)| p == t).count();
            seen += batch.len();
            let grads = net.backward(b, tape, &dlogits)?;
            opt.step(b, net, &grads)?;
            log.append(&format!("{},{},{loss},,,{:.3}", s.epoch, s.iteration, t0.elapsed().as_secs_f64()))?;
            bar.set_message(format!("epoch {} loss {loss:.4}", s.epoch));
            bar.inc(1);
            s.iteration += 1;
        }
        let val_predictions = predict(b, net, &val_set.data)?;
        let val_accuracy = accuracy(&val_predictions, &val_set.labels);
        let train_accuracy = correct as f64 / seen.max(1) as f64;
        // Keyed by the epoch's last iteration, so that a resume (which drops rows from its checkpoint's
        // iteration on) keeps it.
        log.append(&format!("{},{},,{train_accuracy},{val_accuracy},", s.epoch, s.iteration - 1))?;
        bar.suspend(|| println!("epoch {}: train accuracy {train_accuracy:.3}, validation accuracy {val_accuracy:.3}", s.epoch));
        let best = s.epoch == 0 || val_accuracy > s.best_val_accuracy;
        if best {
            (s.best_epoch, s.best_val_accuracy) = (s.epoch, val_accuracy);
        }
        s.epoch += 1;
        save_state(b, &run.last(), net, opt, s)?;
        if best {
            copy_atomic(&run.last(), &best_path(run))?;
        }
    }
    bar.finish_and_clear();
    Ok(())
}

/// The predicted class of every image, in eval mode, in batches.
fn predict<B: Backend>(b: &B, net: &mut Classifier<B::Tensor>, data: &Dataset) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(data.len());
    let all: Vec<usize> = (0..data.len()).collect();
    for batch in all.chunks(EVAL_BATCH) {
        let logits = net.predict(b, &b.upload(&data.gather(batch)?)?)?;
        out.extend(argmax_rows(&b.download(&logits)?));
    }
    Ok(out)
}

/// The index of each row's largest value (the first on ties) of a [N, K] tensor.
fn argmax_rows(t: &Tensor) -> Vec<usize> {
    let k = t.shape()[1];
    t.data().chunks(k).map(|r| r.iter().enumerate().fold(0, |best, (i, &v)| if v > r[best] { i } else { best })).collect()
}

fn accuracy(predictions: &[usize], labels: &[usize]) -> f64 {
    predictions.iter().zip(labels).filter(|(p, l)| p == l).count() as f64 / labels.len().max(1) as f64
}

fn save_state<B: Backend>(b: &B, path: &Path, net: &mut Classifier<B::Tensor>, opt: &Adam<B::Tensor>, s: &TrainState) -> Result<()> {
    let mut tensors = Vec::new();
    for (name, t) in net.state_dict_mut() {
        tensors.push((format!("model.{name}"), b.download(t)?));
    }
    for (name, m, v) in &opt.state {
        tensors.push((format!("adam.{name}.exp_avg"), b.download(m)?));
        tensors.push((format!("adam.{name}.exp_avg_sq"), b.download(v)?));
    }
    let meta = [
        ("arch", net.arch().name().to_string()),
        ("epoch", s.epoch.to_string()),
        ("iteration", s.iteration.to_string()),
        ("adam_step", opt.step.to_string()),
        ("best_epoch", s.best_epoch.to_string()),
        ("best_val_accuracy", s.best_val_accuracy.to_string()),
    ];
    Checkpoint { tensors, meta: meta.into_iter().map(|(k, v)| (k.to_string(), v)).collect() }.save(path)
}

fn load_state<B: Backend>(b: &B, path: &Path, net: &mut Classifier<B::Tensor>, opt: &mut Adam<B::Tensor>) -> Result<TrainState> {
    let ck = Checkpoint::load(path)?;
    if ck.meta(path, "arch")? != net.arch().name() {
        return Err(Error::format(path, format!("a checkpoint of --arch {}, not {}", ck.meta(path, "arch")?, net.arch().name())));
    }
    let put = |name: String, slot: &mut B::Tensor| -> Result<()> {
        let t = ck.get(&name).ok_or_else(|| Error::format(path, format!("checkpoint has no {name}")))?;
        if t.shape() != b.shape(slot).as_slice() {
            return Err(Error::format(path, format!("{name} has shape {:?}, the model needs {:?}", t.shape(), b.shape(slot))));
        }
        *slot = b.upload(t)?;
        Ok(())
    };
    for (name, slot) in net.state_dict_mut() {
        put(format!("model.{name}"), slot)?;
    }
    for (name, m, v) in &mut opt.state {
        put(format!("adam.{name}.exp_avg"), m)?;
        put(format!("adam.{name}.exp_avg_sq"), v)?;
    }
    opt.step = ck.meta_parse(path, "adam_step")?;
    Ok(TrainState {
        epoch: ck.meta_parse(path, "epoch")?,
        iteration: ck.meta_parse(path, "iteration")?,
        best_epoch: ck.meta_parse(path, "best_epoch")?,
        best_val_accuracy: ck.meta_parse(path, "best_val_accuracy")?,
    })
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    let json = serde_json::to_string_pretty(v).map_err(|e| Error::Other(e.to_string()))?;
    write_atomic(path, json.as_bytes())
}

pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::format(path, e.to_string()))
}
