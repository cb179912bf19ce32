//! The training loop behind `cxr-gan train`: data, models, iterations, metrics, samples, checkpoints,
//! resume and Ctrl-C. Generic over the backend; everything the loop writes goes under RUN_DIR.
//!
//! Determinism: the data order of epoch e is a shuffle seeded by (seed, e); noise and α come from one
//! ChaCha8 stream whose position is saved in every checkpoint. So a resumed run replays exactly the
//! draws an uninterrupted run makes, and on `cpu` ends with the same weights bit for bit.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::data::{Dataset, PreprocessConfig, ResizeMode};
use crate::error::{Error, Result};
use crate::nn::dcgan::{discriminator, generator, Head, Widths};
use crate::nn::{Mode, Sequential};
use crate::tensor::Tensor;
use crate::fsio::write_atomic;
use crate::train::checkpoint::Checkpoint;
use crate::train::dcgan::Dcgan;
use crate::train::optim::Adam;
use crate::train::plots::{plot_losses, Series};
use crate::fid::inception::find_weights;
use crate::fid::{fid_of_images, statistics_of_images, InceptionV3, Statistics};
use crate::train::samples::{save_grid, to_u8};
use crate::train::wgan_gp::WganGp;

/// Images in the fixed-noise sample grid (8×8, as the paper's figures).
pub const SAMPLE_COUNT: usize = 64;
/// The generator's batch when sampling: BN uses batch statistics, as the tutorial (it never calls eval()).
pub const SAMPLE_BATCH: usize = 64;

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
#[derive(Clone, Debug, Serialize, Deserialize)]
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
    pub fn preprocess(&self) -> Result<PreprocessConfig> {
        let resize = match self.resize.as_str() {
            "linear" => ResizeMode::Linear,
            "area" => ResizeMode::Area,
            other => return Err(Error::invalid("train", format!("--resize {other}: expected linear or area"))),
        };
        Ok(PreprocessConfig { clahe: self.clahe, size: crate::nn::dcgan::IMAGE_SIZE, resize })
    }
}

/// Where a run stands; saved in every checkpoint's metadata.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Progress {
    /// The epoch being run (0-based) and the next batch in it.
    epoch: usize,
    batch: usize,
    /// Iterations done (D/critic iterations).
    iteration: u64,
    /// The noise stream's position (ChaCha8 word position).
    rng_word_pos: u128,
}

enum Gan<T> {
    Dcgan(Dcgan<T>),
    WganGp(WganGp<T>),
}

impl<T: Clone> Gan<T> {
    fn nets(&self) -> [(&'static str, &Sequential<T>, &Adam<T>); 2] {
        match self {
            Gan::Dcgan(g) => [("G", &g.g, &g.opt_g), ("D", &g.d, &g.opt_d)],
            Gan::WganGp(g) => [("G", &g.g, &g.opt_g), ("C", &g.c, &g.opt_c)],
        }
    }
    fn nets_mut(&mut self) -> [(&'static str, &mut Sequential<T>, &mut Adam<T>); 2] {
        match self {
            Gan::Dcgan(g) => [("G", &mut g.g, &mut g.opt_g), ("D", &mut g.d, &mut g.opt_d)],
            Gan::WganGp(g) => [("G", &mut g.g, &mut g.opt_g), ("C", &mut g.c, &mut g.opt_c)],
        }
    }
    fn generator(&self) -> &Sequential<T> {
        match self {
            Gan::Dcgan(g) => &g.g,
            Gan::WganGp(g) => &g.g,
        }
    }
}

/// One row of metrics.csv.
struct Row {
    epoch: usize,
    iteration: u64,
    loss_d: f64,
    loss_g: Option<f64>,
    d_real: f64,
    d_fake: f64,
    gp: Option<f64>,
    seconds: f64,
}

const METRICS_HEADER: &str = "epoch,iteration,loss_d,loss_g,d_real,d_fake,gp,seconds";

fn opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v}")).unwrap_or_default()
}

impl Row {
    fn csv(&self) -> String {
        format!("{},{},{},{},{},{},{},{:.4}", self.epoch, self.iteration, self.loss_d, opt(self.loss_g), self.d_real, self.d_fake, opt(self.gp), self.seconds)
    }
}

/// What a finished (or interrupted) run reports; also written to RUN_DIR/summary.json.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub epochs_done: usize,
    pub iterations: u64,
    pub interrupted: bool,
    /// Pearson correlation between the mean of the 64 fixed-noise samples and the mean training image.
    pub mean_image_correlation: f64,
    pub last_checkpoint: PathBuf,
    /// The last FID measured during training (`--fid-every`).
    pub last_fid: Option<f64>,
}

pub struct RunDir(pub PathBuf);

impl RunDir {
    pub fn config(&self) -> PathBuf { self.0.join("config.json") }
    pub fn metrics(&self) -> PathBuf { self.0.join("metrics.csv") }
    pub fn dataset_cache(&self) -> PathBuf { self.0.join("dataset.safetensors") }
    pub fn samples(&self) -> PathBuf { self.0.join("samples") }
    pub fn checkpoints(&self) -> PathBuf { self.0.join("checkpoints") }
    pub fn last(&self) -> PathBuf { self.checkpoints().join("last.safetensors") }
    pub fn loss_plot(&self) -> PathBuf { self.0.join("loss.png") }
    pub fn fid_metrics(&self) -> PathBuf { self.0.join("metrics_fid.csv") }
    pub fn summary(&self) -> PathBuf { self.0.join("summary.json") }
}

/// Builds fresh networks for a config (seeded init).
fn build<B: Backend>(b: &B, cfg: &TrainConfig) -> Result<Gan<B::Tensor>> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let g = generator(b, cfg.widths, &mut rng)?;
    Ok(match cfg.model {
        ModelKind::Dcgan => Gan::Dcgan(Dcgan::new(b, g, discriminator(b, cfg.widths.ndf, Head::Dcgan, &mut rng)?)?),
        ModelKind::WganGp => {
            let mut w = WganGp::new(b, g, discriminator(b, cfg.widths.ndf, Head::Critic, &mut rng)?)?;
            w.lambda = cfg.lambda;
            Gan::WganGp(w)
        }
    })
}

fn noise(rng: &mut ChaCha8Rng, n: usize, nz: usize) -> Tensor {
    let data = (0..n * nz).map(|_| rng.sample::<f32, _>(StandardNormal)).collect();
    Tensor::new(&[n, nz, 1, 1], data).expect("noise shape")
}

/// The fixed noise of the sample grids: its own stream, so sampling never moves the training draws.
fn fixed_noise(seed: u64, nz: usize) -> Tensor {
    noise(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5a17_f1ed), SAMPLE_COUNT, nz)
}

fn epoch_order(seed: u64, epoch: usize, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ epoch as u64));
    order
}

/// G's images for `noise` [N, nz, 1, 1], in batches of [`SAMPLE_BATCH`] with batch statistics, on a copy
/// of G so that its running statistics do not move.
pub fn sample<B: Backend>(b: &B, g: &Sequential<B::Tensor>, noise: &Tensor) -> Result<Tensor> {
    let [n, nz, _, _] = noise.dims4("sample", "noise")?;
    let mut out = Vec::with_capacity(n * 3 * 64 * 64);
    let mut shape = vec![0, 0, 0, 0];
    for start in (0..n).step_by(SAMPLE_BATCH) {
        let m = SAMPLE_BATCH.min(n - start);
        let z = Tensor::new(&[m, nz, 1, 1], noise.data()[start * nz..(start + m) * nz].to_vec())?;
        let (y, _) = g.clone().forward(b, &b.upload(&z)?, Mode::Train)?;
        let y = b.download(&y)?;
        shape = y.shape().to_vec();
        out.extend_from_slice(y.data());
    }
    shape[0] = n;
    Tensor::new(&shape, out)
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

fn save_checkpoint<B: Backend>(b: &B, cfg: &TrainConfig, gan: &Gan<B::Tensor>, p: Progress, path: &Path) -> Result<()> {
    let mut tensors = Vec::new();
    let mut meta = std::collections::HashMap::new();
    for (tag, net, adam) in gan.nets() {
        tensors.extend(net.download_state_dict(b, &format!("{tag}."))?);
        for (name, m, v) in &adam.state {
            tensors.push((format!("adam.{tag}.{name}.exp_avg"), b.download(m)?));
            tensors.push((format!("adam.{tag}.{name}.exp_avg_sq"), b.download(v)?));
        }
        meta.insert(format!("adam.{tag}.step"), adam.step.to_string());
    }
    for (k, v) in [
        ("format", "cxr-gan checkpoint v1".to_string()),
        ("model", cfg.model.name().to_string()),
        ("nz", cfg.widths.nz.to_string()),
        ("ngf", cfg.widths.ngf.to_string()),
        ("ndf", cfg.widths.ndf.to_string()),
        ("epoch", p.epoch.to_string()),
        ("batch", p.batch.to_string()),
        ("iteration", p.iteration.to_string()),
        ("rng_word_pos", p.rng_word_pos.to_string()),
        ("seed", cfg.seed.to_string()),
    ] {
        meta.insert(k.to_string(), v);
    }
    Checkpoint { tensors, meta }.save(path)
}

/// Checks that a checkpoint belongs to `model` with `widths`; a clear error otherwise.
pub fn check_compatible(ck: &Checkpoint, path: &Path, model: Option<ModelKind>, widths: Option<Widths>) -> Result<(ModelKind, Widths)> {
    let m = match ck.meta(path, "model")? {
        "dcgan" => ModelKind::Dcgan,
        "wgan-gp" => ModelKind::WganGp,
        other => return Err(Error::format(path, format!("unknown model `{other}` in checkpoint"))),
    };
    let w = Widths { nz: ck.meta_parse(path, "nz")?, ngf: ck.meta_parse(path, "ngf")?, ndf: ck.meta_parse(path, "ndf")? };
    if let Some(want) = model.filter(|&x| x != m) {
        return Err(Error::format(path, format!("checkpoint is a {} model, this run is {}", m.name(), want.name())));
    }
    if let Some(want) = widths.filter(|&x| x != w) {
        return Err(Error::format(path, format!("checkpoint has widths {w:?}, this run needs {want:?}")));
    }
    Ok((m, w))
}

fn load_checkpoint<B: Backend>(b: &B, cfg: &TrainConfig, gan: &mut Gan<B::Tensor>, path: &Path) -> Result<Progress> {
    let ck = Checkpoint::load(path)?;
    check_compatible(&ck, path, Some(cfg.model), Some(cfg.widths))?;
    for (tag, net, adam) in gan.nets_mut() {
        net.load_state_dict(b, &format!("{tag}."), |k| ck.get(k).cloned()).map_err(|e| Error::format(path, e.to_string()))?;
        for (name, m, v) in adam.state.iter_mut() {
            for (suffix, slot) in [("exp_avg", m), ("exp_avg_sq", v)] {
                let key = format!("adam.{tag}.{name}.{suffix}");
                let t = ck.get(&key).ok_or_else(|| Error::format(path, format!("checkpoint has no {key}")))?;
                *slot = b.upload(t)?;
            }
        }
        adam.step = ck.meta_parse(path, &format!("adam.{tag}.step"))?;
    }
    Ok(Progress {
        epoch: ck.meta_parse(path, "epoch")?,
        batch: ck.meta_parse(path, "batch")?,
        iteration: ck.meta_parse(path, "iteration")?,
        rng_word_pos: ck.meta_parse(path, "rng_word_pos")?,
    })
}

/// Keeps the metrics rows up to `iteration` (a resumed run rewrites what came after its checkpoint).
fn truncate_metrics(path: &Path, iteration: u64) -> Result<()> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut out = String::from(METRICS_HEADER);
    out.push('\n');
    for line in text.lines().skip(1) {
        let it: u64 = line.split(',').nth(1).and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
        if it <= iteration {
            out.push_str(line);
            out.push('\n');
        }
    }
    write_atomic(path, out.as_bytes())
}

/// Draws loss.png from metrics.csv: the discriminator's (critic's) and the generator's loss per iteration.
pub fn plot_metrics(run: &RunDir, model: ModelKind) -> Result<()> {
    let text = fs::read_to_string(run.metrics()).map_err(|e| Error::io(run.metrics(), e))?;
    let (mut d, mut g) = (Vec::new(), Vec::new());
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
        if let (Some(it), Some(ld)) = (num(1), num(2)) {
            d.push((it, ld));
            if let Some(lg) = num(3) {
                g.push((it, lg));
            }
        }
    }
    let (d_name, title) = match model {
        ModelKind::Dcgan => ("discriminator", "DCGAN: generator and discriminator loss"),
        ModelKind::WganGp => ("critic", "WGAN-GP: generator and critic loss"),
    };
    plot_losses(&[Series { name: "generator", points: g }, Series { name: d_name, points: d }], title, &run.loss_plot())
}

/// 8-bit images [N, 3, H, W] as `generate` writes them (torchvision's save_image mapping).
fn quantize(batch: &Tensor) -> (Vec<u8>, [usize; 4]) {
    let s = batch.shape();
    (batch.data().iter().map(|&v| to_u8(v)).collect(), [s[0], s[1], s[2], s[3]])
}

/// FID during training: Inception, and the statistics of the training images (the 64×64 tensors the
/// discriminator sees, quantized to 8 bits: the paper's protocol), computed once per call.
struct FidProbe<T> {
    model: InceptionV3<T>,
    reference: Statistics,
}

/// Images per Inception forward pass.
const FID_BATCH: usize = 50;

impl<T: Clone> FidProbe<T> {
    fn new<B: Backend<Tensor = T>>(b: &B, cfg: &TrainConfig, dataset: &Dataset) -> Result<Self> {
        let model = InceptionV3::load(b, &find_weights(cfg.fid_weights.as_deref())?)?;
        let (images, shape) = quantize(&dataset.to_batch_tensor()?);
        let reference = statistics_of_images(b, &model, &images, shape, cfg.fid_dims, FID_BATCH)?;
        Ok(FidProbe { model, reference })
    }

    /// FID of `count` fresh samples (noise seeded by the epoch, so resumed runs measure the same images).
    fn measure<B: Backend<Tensor = T>>(&self, b: &B, cfg: &TrainConfig, g: &Sequential<T>, epoch: usize) -> Result<f64> {
        let z = noise(&mut ChaCha8Rng::seed_from_u64(cfg.seed ^ 0xf1d0_0000 ^ epoch as u64), cfg.fid_count, cfg.widths.nz);
        let (images, shape) = quantize(&sample(b, g, &z)?);
        fid_of_images(b, &self.model, &images, shape, &self.reference, FID_BATCH)
    }
}

/// Options of one call that are not part of the run's configuration.
pub struct RunOptions {
    /// Show a progress bar (off in tests).
    pub progress: bool,
    /// Set by Ctrl-C: finish the iteration, write last.safetensors, stop.
    pub stop: Arc<AtomicBool>,
    /// Stop after this many iterations in this call (tests of resume); `None` runs to the end.
    pub max_iterations: Option<u64>,
}

/// Runs (or resumes) the training described by `cfg` in `run`, on `b`.
pub fn train<B: Backend>(b: &B, cfg: &TrainConfig, run: &RunDir, dataset: &Dataset, resume: bool, opts: &RunOptions) -> Result<Summary> {
    if dataset.is_empty() {
        return Err(Error::Other(format!("{}: no training images", cfg.data.display())));
    }
    if cfg.batch_size == 0 || cfg.batch_size > dataset.len() {
        return Err(Error::invalid("train", format!(
            "--batch-size {} must be between 1 and the number of training images ({})", cfg.batch_size, dataset.len())));
    }
    let mut gan = build(b, cfg)?;
    let mut p = Progress::default();
    if resume {
        p = load_checkpoint(b, cfg, &mut gan, &run.last())?;
        truncate_metrics(&run.metrics(), p.iteration)?;
    } else {
        write_atomic(&run.metrics(), format!("{METRICS_HEADER}\n").as_bytes())?;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    rng.set_word_pos(p.rng_word_pos);
    let fixed = fixed_noise(cfg.seed, cfg.widths.nz);
    fs::create_dir_all(run.samples()).map_err(|e| Error::io(run.samples(), e))?;
    let mut metrics = fs::OpenOptions::new().append(true).open(run.metrics()).map_err(|e| Error::io(run.metrics(), e))?;

    let per_epoch = dataset.len().div_ceil(cfg.batch_size);
    let total = (cfg.epochs * per_epoch) as u64;
    let bar = if opts.progress { indicatif::ProgressBar::new(total) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} it  {elapsed_precise} < {eta_precise}  {msg}").unwrap());
    bar.set_position(p.iteration);
    let fid = if cfg.fid_every > 0 { Some(FidProbe::new(b, cfg, dataset)?) } else { None };
    if fid.is_some() && !run.fid_metrics().exists() {
        write_atomic(&run.fid_metrics(), b"epoch,iteration,fid,dims,count\n")?;
    }
    let mut last_fid = None;
    let mut done_here = 0u64;
    let mut interrupted = false;
    'epochs: while p.epoch < cfg.epochs {
        let order = epoch_order(cfg.seed, p.epoch, dataset.len());
        let batches: Vec<&[usize]> = order.chunks(cfg.batch_size).collect(); // the last partial batch is kept
        while p.batch < batches.len() {
            let t0 = Instant::now();
            let real = b.upload(&dataset.gather(batches[p.batch])?)?;
            let n = batches[p.batch].len();
            let row = match &mut gan {
                Gan::Dcgan(gan) => {
                    let s = gan.step(b, &real, &b.upload(&noise(&mut rng, n, cfg.widths.nz))?)?;
                    Row { epoch: p.epoch, iteration: p.iteration, loss_d: s.loss_d, loss_g: Some(s.loss_g), d_real: s.d_x, d_fake: s.d_g_z1, gp: None, seconds: 0.0 }
                }
                Gan::WganGp(gan) => {
                    let z = noise(&mut rng, n, cfg.widths.nz);
                    let alpha: Vec<f32> = (0..n).map(|_| rng.gen::<f32>()).collect();
                    let c = gan.critic_step(b, &real, &b.upload(&z)?, &alpha)?;
                    // One generator iteration after every n_critic-th critic iteration, counting across epochs.
                    let loss_g = if (p.iteration + 1) % cfg.n_critic as u64 == 0 {
                        Some(gan.generator_step(b, &b.upload(&noise(&mut rng, n, cfg.widths.nz))?)?.loss_g)
                    } else {
                        None
                    };
                    Row { epoch: p.epoch, iteration: p.iteration, loss_d: c.loss_c, loss_g, d_real: c.c_real, d_fake: c.c_fake, gp: Some(c.gp), seconds: 0.0 }
                }
            };
            let row = Row { seconds: t0.elapsed().as_secs_f64(), ..row };
            if !row.loss_d.is_finite() || row.loss_g.is_some_and(|v| !v.is_finite()) {
                return Err(Error::NonFinite(format!(
                    "loss became {} / {} at epoch {} iteration {}; stopped, the last good checkpoint is {}",
                    row.loss_d, opt(row.loss_g), p.epoch, p.iteration, run.last().display())));
            }
            writeln!(metrics, "{}", row.csv()).map_err(|e| Error::io(run.metrics(), e))?;
            bar.set_message(format!("epoch {} loss_d {:.3} loss_g {}", p.epoch, row.loss_d, row.loss_g.map_or("-".into(), |v| format!("{v:.3}"))));
            bar.inc(1);
            p.iteration += 1;
            p.batch += 1;
            done_here += 1;
            let stop = opts.stop.load(Ordering::SeqCst) || opts.max_iterations.is_some_and(|m| done_here >= m);
            if stop && p.batch < batches.len() {
                p.rng_word_pos = rng.get_word_pos();
                save_checkpoint(b, cfg, &gan, p, &run.last())?;
                interrupted = true;
                break 'epochs;
            }
        }
        // End of epoch: sample grid, loss curves, checkpoints.
        save_grid(&sample(b, gan.generator(), &fixed)?, &run.samples().join(format!("epoch_{:04}.png", p.epoch)))?;
        metrics.flush().map_err(|e| Error::io(run.metrics(), e))?;
        plot_metrics(run, cfg.model)?;
        if let Some(probe) = fid.as_ref().filter(|_| (p.epoch + 1) % cfg.fid_every == 0) {
            bar.set_message(format!("epoch {}: FID of {} samples", p.epoch, cfg.fid_count));
            let value = probe.measure(b, cfg, gan.generator(), p.epoch)?;
            let mut f = fs::OpenOptions::new().append(true).open(run.fid_metrics()).map_err(|e| Error::io(run.fid_metrics(), e))?;
            writeln!(f, "{},{},{value},{},{}", p.epoch, p.iteration, cfg.fid_dims, cfg.fid_count).map_err(|e| Error::io(run.fid_metrics(), e))?;
            bar.println(format!("epoch {}: FID{} = {value:.4}", p.epoch, cfg.fid_dims));
            last_fid = Some(value);
        }
        p.epoch += 1;
        p.batch = 0;
        p.rng_word_pos = rng.get_word_pos();
        save_checkpoint(b, cfg, &gan, p, &run.last())?;
        if p.epoch % cfg.checkpoint_every.max(1) == 0 || p.epoch == cfg.epochs {
            fs::copy(run.last(), run.checkpoints().join(format!("epoch_{:04}.safetensors", p.epoch - 1))).map_err(|e| Error::io(run.last(), e))?;
        }
        if opts.stop.load(Ordering::SeqCst) || opts.max_iterations.is_some_and(|m| done_here >= m) {
            interrupted = p.epoch < cfg.epochs;
            break;
        }
    }
    bar.finish_and_clear();
    let generated = sample(b, gan.generator(), &fixed)?;
    let corr = pearson(&mean_image(&generated)?, &mean_image(&dataset.to_batch_tensor()?)?);
    let summary = Summary { epochs_done: p.epoch, iterations: p.iteration, interrupted, mean_image_correlation: corr, last_checkpoint: run.last(), last_fid };
    let json = serde_json::to_string_pretty(&summary).map_err(|e| Error::Other(e.to_string()))?;
    write_atomic(&run.summary(), json.as_bytes())?;
    Ok(summary)
}

/// Writes config.json atomically.
pub fn save_config(run: &RunDir, cfg: &TrainConfig) -> Result<()> {
    let json = serde_json::to_string_pretty(cfg).map_err(|e| Error::Other(e.to_string()))?;
    write_atomic(&run.config(), json.as_bytes())
}

pub fn load_config(run: &RunDir) -> Result<TrainConfig> {
    let path = run.config();
    let text = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::format(&path, format!("not a cxr-gan config: {e}")))
}

/// The last checkpoint path of a run directory given on the command line.
pub fn last_checkpoint(run_dir: &Path) -> PathBuf {
    RunDir(run_dir.to_path_buf()).last()
}
