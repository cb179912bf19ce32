//! The training loop behind `cxr-gan train`: iterations, metrics, samples, checkpoints, resume and Ctrl-C.
//! Generic over the backend; everything the loop writes goes under RUN_DIR.
//!
//! Determinism: the data order of epoch e is a shuffle seeded by (seed, e); noise and α come from one
//! ChaCha8 stream whose position is saved in every checkpoint. So a resumed run replays exactly the
//! draws an uninterrupted run makes, and on `cpu` ends with the same weights, and the same metrics.csv
//! rows, bit for bit.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::fsio::{copy_atomic, write_atomic};
use crate::nn::dcgan::{discriminator, generator, Head};
use crate::nn::Sequential;
use crate::tensor::Tensor;
use crate::train::checkpoint::{load_training, save_training, NetState, NetStateMut, Progress};
use crate::train::config::{ModelKind, TrainConfig};
use crate::train::dcgan::Dcgan;
use crate::train::fid_probe::FidProbe;
use crate::train::graphed::Replayer;
use crate::train::metrics::{keep_rows_before, optional, plot_metrics, CsvLog, Row, FID_METRICS_HEADER, METRICS_HEADER};
use crate::train::quality::Quality;
use crate::train::run_dir::RunDir;
use crate::train::samples::{noise, sample, save_grid, SAMPLE_COUNT};
use crate::train::wgan_gp::WganGp;

/// Mixed into the run's seed for the sample grids' fixed noise: its own stream, so sampling never moves
/// the training draws.
const FIXED_NOISE_STREAM: u64 = 0x5a17_f1ed;
/// Spreads the run's seed before the epoch is mixed in, so (seed, epoch) pairs do not collide.
const EPOCH_SHUFFLE_MIX: u64 = 0x9e37_79b9_7f4a_7c15;

enum Gan<T> {
    Dcgan(Dcgan<T>),
    WganGp(WganGp<T>),
}

impl<T: Clone> Gan<T> {
    fn nets(&self) -> [NetState<'_, T>; 2] {
        match self {
            Gan::Dcgan(g) => [("G", &g.g, &g.opt_g), ("D", &g.d, &g.opt_d)],
            Gan::WganGp(g) => [("G", &g.g, &g.opt_g), ("C", &g.c, &g.opt_c)],
        }
    }
    fn nets_mut(&mut self) -> [NetStateMut<'_, T>; 2] {
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

/// The fixed noise of the sample grids.
fn fixed_noise(seed: u64, nz: usize) -> Tensor {
    noise(&mut ChaCha8Rng::seed_from_u64(seed ^ FIXED_NOISE_STREAM), SAMPLE_COUNT, nz)
}

pub fn epoch_order(seed: u64, epoch: usize, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed.wrapping_mul(EPOCH_SHUFFLE_MIX) ^ epoch as u64));
    order
}

/// What a finished (or interrupted) run reports; also written to RUN_DIR/summary.json.
#[derive(Debug, Serialize, Deserialize)]
pub struct Summary {
    pub epochs_done: usize,
    pub iterations: u64,
    pub interrupted: bool,
    /// The 64 fixed-noise samples against (up to 64 of) the training images: mean-image correlation and
    /// diversity ratio.
    pub quality: Quality,
    pub last_checkpoint: PathBuf,
    /// The last FID measured during training (`--fid-every`).
    pub last_fid: Option<f64>,
    /// Iterations of this call that were replays of a captured graph (see [`RunOptions::graphs`]).
    pub replayed: u64,
}

/// Options of one call that are not part of the run's configuration.
pub struct RunOptions {
    /// Show a progress bar (off in tests).
    pub progress: bool,
    /// Set by Ctrl-C: finish the iteration, write last.safetensors, stop.
    pub stop: Arc<AtomicBool>,
    /// Stop after this many iterations in this call (tests of resume); `None` runs to the end.
    pub max_iterations: Option<u64>,
    /// Capture the DCGAN iteration as a device graph and replay it, where the backend can (cuda-native);
    /// `--eager` turns this off. The results are the same either way.
    pub graphs: bool,
}

/// Runs (or, with `resume`, continues from its last checkpoint) the training described by `cfg` in
/// `run`, on `b`. A resumed run without a checkpoint starts from the beginning.
pub fn train<B: Backend>(b: &B, cfg: &TrainConfig, run: &RunDir, dataset: &Dataset, resume: bool, opts: &RunOptions) -> Result<Summary> {
    cfg.validate()?;
    if dataset.is_empty() {
        return Err(Error::Other(format!("{}: no training images", cfg.data.display())));
    }
    if cfg.batch_size > dataset.len() {
        return Err(Error::invalid(
            "train",
            format!("--batch-size {} must be between 1 and the number of training images ({})", cfg.batch_size, dataset.len()),
        ));
    }
    let mut gan = build(b, cfg)?;
    let mut p = Progress::default();
    if resume && run.last().exists() {
        p = load_training(b, cfg, gan.nets_mut(), &run.last())?;
        if p.epoch >= cfg.epochs {
            return Err(Error::Other(format!(
                "{} has already finished its {} epochs; pass --epochs N (N > {}) to train it further",
                run.0.display(),
                p.epoch,
                p.epoch
            )));
        }
    }
    // What an earlier process wrote after this checkpoint is redone: drop it (and any partial last line).
    keep_rows_before(&run.metrics(), METRICS_HEADER, 1, p.iteration)?;
    keep_rows_before(&run.fid_metrics(), FID_METRICS_HEADER, 0, p.epoch as u64)?;
    let mut metrics = CsvLog::open(&run.metrics(), METRICS_HEADER)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    rng.set_word_pos(p.rng_word_pos);
    let fixed = fixed_noise(cfg.seed, cfg.widths.nz);
    std::fs::create_dir_all(run.samples()).map_err(|e| Error::io(run.samples(), e))?;

    let per_epoch = dataset.len().div_ceil(cfg.batch_size);
    let total = (cfg.epochs * per_epoch) as u64;
    let bar = if opts.progress { indicatif::ProgressBar::new(total) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} it  {elapsed_precise} < {eta_precise}  {msg}")
            .expect("a valid template"),
    );
    bar.set_position(p.iteration);
    let fid = if cfg.fid_every > 0 { Some(FidProbe::new(b, cfg, dataset)?) } else { None };
    let mut fid_log = if fid.is_some() { Some(CsvLog::open(&run.fid_metrics(), FID_METRICS_HEADER)?) } else { None };
    let mut last_fid = None;
    let mut done_here = 0u64;
    let mut interrupted = false;
    let should_stop = |done: u64| opts.stop.load(Ordering::SeqCst) || opts.max_iterations.is_some_and(|m| done >= m);
    // Each kind of iteration is captured and replayed on its own (backends that capture graphs).
    let mut dcgan_steps = Replayer::new(opts.graphs);
    let (mut critic_steps, mut generator_steps) = (Replayer::new(opts.graphs), Replayer::new(opts.graphs));
    'epochs: while p.epoch < cfg.epochs {
        let order = epoch_order(cfg.seed, p.epoch, dataset.len());
        let batches: Vec<&[usize]> = order.chunks(cfg.batch_size).collect(); // the last partial batch is kept
        while p.batch < batches.len() {
            let t0 = Instant::now();
            let real = dataset.gather(batches[p.batch])?;
            let n = batches[p.batch].len();
            let row = match &mut gan {
                Gan::Dcgan(gan) => {
                    let z = noise(&mut rng, n, cfg.widths.nz);
                    let s = dcgan_steps.step(b, gan, &[&real, &z], |gan, x| gan.step_pending(b, &x[0], &x[1]))?.resolve(b)?;
                    Row {
                        epoch: p.epoch,
                        iteration: p.iteration,
                        loss_d: s.loss_d,
                        loss_g: Some(s.loss_g),
                        d_real: s.d_x,
                        d_fake: s.d_g_z1,
                        gp: None,
                        seconds: 0.0,
                    }
                }
                Gan::WganGp(gan) => {
                    let z = noise(&mut rng, n, cfg.widths.nz);
                    let alpha = Tensor::new(&[n], (0..n).map(|_| rng.gen::<f32>()).collect())?;
                    let run = |gan: &mut WganGp<B::Tensor>, x: &[B::Tensor]| gan.critic_step_pending(b, &x[0], &x[1], &x[2]);
                    let c = critic_steps.step(b, gan, &[&real, &z, &alpha], run)?.resolve(b)?;
                    // One generator iteration after every n_critic-th critic iteration, counting across epochs.
                    let loss_g = if (p.iteration + 1) % cfg.n_critic as u64 == 0 {
                        let z = noise(&mut rng, n, cfg.widths.nz);
                        let run = |gan: &mut WganGp<B::Tensor>, x: &[B::Tensor]| gan.generator_step_pending(b, &x[0]);
                        Some(generator_steps.step(b, gan, &[&z], run)?.resolve(b)?.loss_g)
                    } else {
                        None
                    };
                    Row {
                        epoch: p.epoch,
                        iteration: p.iteration,
                        loss_d: c.loss_c,
                        loss_g,
                        d_real: c.c_real,
                        d_fake: c.c_fake,
                        gp: Some(c.gp),
                        seconds: 0.0,
                    }
                }
            };
            let row = Row { seconds: t0.elapsed().as_secs_f64(), ..row };
            if !row.loss_d.is_finite() || row.loss_g.is_some_and(|v| !v.is_finite()) {
                return Err(Error::NonFinite(format!(
                    "loss became {} / {} at epoch {} iteration {}; stopped, the last good checkpoint is {}",
                    row.loss_d,
                    optional(row.loss_g),
                    p.epoch,
                    p.iteration,
                    run.last().display()
                )));
            }
            metrics.append(&row.csv())?;
            bar.set_message(format!(
                "epoch {} loss_d {:.3} loss_g {}",
                p.epoch,
                row.loss_d,
                row.loss_g.map_or("-".into(), |v| format!("{v:.3}"))
            ));
            bar.inc(1);
            p.iteration += 1;
            p.batch += 1;
            done_here += 1;
            if should_stop(done_here) && p.batch < batches.len() {
                p.rng_word_pos = rng.get_word_pos();
                save_training(b, cfg, gan.nets(), p, &run.last())?;
                interrupted = true;
                break 'epochs;
            }
        }
        // End of epoch: sample grid, loss curves, FID, checkpoints.
        save_grid(&sample(b, gan.generator(), &fixed)?, &run.sample_grid(p.epoch))?;
        plot_metrics(run, cfg.model)?;
        if let (Some(probe), Some(log)) = (&fid, &mut fid_log) {
            if (p.epoch + 1) % cfg.fid_every == 0 {
                bar.set_message(format!("epoch {}: FID of {} samples", p.epoch, cfg.fid_count));
                let sc = probe.measure(b, cfg, gan.generator(), p.epoch)?;
                log.append(&format!(
                    "{},{},{},{},{},{},{},{},{},{},{}",
                    p.epoch,
                    p.iteration,
                    sc.fid,
                    cfg.fid_dims,
                    cfg.fid_count,
                    sc.fid_ci.lo,
                    sc.fid_ci.hi,
                    sc.floor.mean,
                    sc.floor.sd,
                    sc.kid.mean,
                    sc.kid.std
                ))?;
                bar.println(format!("epoch {}: {sc}", p.epoch));
                last_fid = Some(sc.fid);
            }
        }
        p.epoch += 1;
        p.batch = 0;
        p.rng_word_pos = rng.get_word_pos();
        save_training(b, cfg, gan.nets(), p, &run.last())?;
        if p.epoch % cfg.checkpoint_every == 0 || p.epoch == cfg.epochs {
            copy_atomic(&run.last(), &run.epoch_checkpoint(p.epoch - 1))?;
        }
        if should_stop(done_here) {
            interrupted = p.epoch < cfg.epochs;
            break;
        }
    }
    bar.finish_and_clear();
    let generated = sample(b, gan.generator(), &fixed)?;
    let training = dataset.gather(&(0..dataset.len().min(SAMPLE_COUNT)).collect::<Vec<_>>())?;
    let quality = Quality::measure(&generated, &training)?;
    let summary = Summary {
        epochs_done: p.epoch,
        iterations: p.iteration,
        interrupted,
        quality,
        last_checkpoint: run.last(),
        last_fid,
        replayed: dcgan_steps.replays() + critic_steps.replays() + generator_steps.replays(),
    };
    let json = serde_json::to_string_pretty(&summary).map_err(|e| Error::Other(e.to_string()))?;
    write_atomic(&run.summary(), json.as_bytes())?;
    Ok(summary)
}
