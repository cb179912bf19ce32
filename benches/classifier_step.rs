//! One full training step of the Table 4 classifiers (forward in training mode, cross-entropy, backward,
//! Adam), 2 classes, each step ended by `Backend::sync`, on every backend present here:
//! - InceptionV3 from scratch at batch 32 × 3 × 299 × 299 (one step is tens of seconds on 2 CPU cores, so
//!   criterion's 10-sample minimum would take a quarter of an hour: it is timed by hand instead, one warm-up
//!   step then `CXR_GAN_BENCH_STEPS` timed ones, median and min, with forward / backward / Adam split out);
//! - the small CNN at batch 32 × 3 × 64 × 64, through criterion ("elem/s" is images per second).
//!
//! The in-run baseline is PyTorch on the same machine, `scripts/pytorch_classifier_step.py` (torchvision's
//! inception_v3 and the same small CNN), run by hand beside this bench (BENCHMARKS.md).
//!
//!   cargo bench --bench classifier_step              (CXR_GAN_BENCH_BATCH=8 for a quicker look;
//!                                                      CXR_GAN_BENCH_STEPS=3 timed Inception steps;
//!                                                      CXR_GAN_BENCH_BACKENDS=cpu for one backend;
//!                                                      `-- inception` or `-- small` for one network)

#[macro_use]
mod common;
use common::{timed, Rand};

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use cxr_gan::backend::{AdamConfig, Backend};
use cxr_gan::nn::classifier::{Classifier, InceptionInit, SMALL_INPUT};
use cxr_gan::nn::inception_v3::INPUT_SIZE;
use cxr_gan::train::optim::Adam;

const CLASSES: usize = 2;
/// `cxr-gan classify`'s defaults (torch.optim.Adam's, lr 1e-3).
const ADAM: AdamConfig = AdamConfig { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 };

/// The batch: 32 (`cxr-gan classify`'s), or `CXR_GAN_BENCH_BATCH` for a quicker look.
fn batch() -> usize {
    std::env::var("CXR_GAN_BENCH_BATCH").ok().and_then(|v| v.parse().ok()).unwrap_or(32)
}

/// Timed InceptionV3 steps after the warm-up: 3, or `CXR_GAN_BENCH_STEPS`.
fn steps() -> usize {
    std::env::var("CXR_GAN_BENCH_STEPS").ok().and_then(|v| v.parse().ok()).unwrap_or(3).max(1)
}

/// Whether the command line's filters (its arguments that are not flags; none: all) match `id`, as
/// criterion's own filter does for the criterion cases.
fn selected(id: &str) -> bool {
    // Criterion's options that take a separate value (`--measurement-time 3`): that value is no filter.
    const VALUED: [&str; 18] = [
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--output-format",
        "--plotting-backend",
        "--profile-time",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--nresamples",
        "--color",
        "-s",
        "-b",
        "-c",
    ];
    let (mut filters, mut skip) = (Vec::new(), false);
    for a in std::env::args().skip(1) {
        if std::mem::take(&mut skip) {
            continue;
        }
        if a.starts_with('-') {
            skip = VALUED.contains(&a.as_str());
        } else {
            filters.push(a);
        }
    }
    filters.is_empty() || filters.iter().any(|f| id.contains(f.as_str()))
}

/// A network, its optimizer, one batch and its targets: what one step needs.
struct Step<B: Backend> {
    net: Classifier<B::Tensor>,
    opt: Adam<B::Tensor>,
    x: B::Tensor,
    target: Vec<usize>,
    iteration: u64,
}

/// Seconds spent in each phase of one step.
#[derive(Clone, Copy)]
struct Phases {
    forward: f64,
    backward: f64,
    adam: f64,
}

impl<B: Backend> Step<B> {
    fn new(b: &B, mut net: Classifier<B::Tensor>, n: usize, size: usize) -> Self {
        let opt = Adam::new(b, &mut net, ADAM).unwrap();
        let x = Rand::new(0).tensor(b, &[n, 3, size, size], -1.0, 1.0);
        let target = (0..n).map(|i| i % CLASSES).collect();
        Step { net, opt, x, target, iteration: 0 }
    }

    /// One step as `cxr-gan classify` takes it, each phase ended by `Backend::sync` and timed.
    fn run(&mut self, b: &B) -> Phases {
        let t0 = Instant::now();
        let (logits, tape) = self.net.forward_train(b, &self.x, self.iteration).unwrap();
        let (loss, dlogits) = b.cross_entropy(&logits, &self.target).unwrap();
        assert!(loss.is_finite(), "loss {loss}");
        b.sync().unwrap();
        let t1 = Instant::now();
        let grads = self.net.backward(b, tape, &dlogits).unwrap();
        b.sync().unwrap();
        let t2 = Instant::now();
        self.opt.step(b, &mut self.net, &grads).unwrap();
        b.sync().unwrap();
        let t3 = Instant::now();
        self.iteration += 1;
        Phases { forward: (t1 - t0).as_secs_f64(), backward: (t2 - t1).as_secs_f64(), adam: (t3 - t2).as_secs_f64() }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// InceptionV3's step, timed by hand: one warm-up step, then `steps()` timed ones.
fn bench_inception<B: Backend>(b: &B, n: usize) {
    let id = format!("{}/classifier_step/inception_v3 step/batch {n}", b.name());
    if !selected(&id) {
        return;
    }
    let net = Classifier::new_inception(b, CLASSES, InceptionInit::Scratch, 0).unwrap();
    let mut step = Step::new(b, net, n, INPUT_SIZE);
    let warm = step.run(b);
    println!("{id}: warm-up step {:.2} s", warm.forward + warm.backward + warm.adam);
    let runs: Vec<Phases> = (0..steps()).map(|_| step.run(b)).collect();
    let total: Vec<f64> = runs.iter().map(|p| p.forward + p.backward + p.adam).collect();
    let (med, min) = (median(total.clone()), total.iter().copied().fold(f64::INFINITY, f64::min));
    let phase = |f: fn(&Phases) -> f64| median(runs.iter().map(f).collect());
    println!(
        "{id}\n                        time:   median {med:.2} s, min {min:.2} s ({} steps)\n                        thrpt:  {:.2} images/s\n                        split:  forward + loss {:.2} s, backward {:.2} s, Adam {:.3} s (medians)",
        runs.len(),
        n as f64 / med,
        phase(|p| p.forward),
        phase(|p| p.backward),
        phase(|p| p.adam),
    );
}

/// The small CNN's step, through criterion.
fn bench_small<B: Backend>(c: &mut Criterion, b: &B, n: usize) {
    let net = Classifier::new_small(b, CLASSES, 0).unwrap();
    let mut step = Step::new(b, net, n, SMALL_INPUT);
    let mut g = c.benchmark_group(format!("{}/classifier_step", b.name()));
    g.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(n as u64));
    timed(&mut g, b, BenchmarkId::new("small_cnn step", format!("batch {n}")), || step.run(b));
    g.finish();
}

fn bench_steps<B: Backend>(c: &mut Criterion, b: &B) {
    let n = batch();
    bench_inception(b, n);
    bench_small(c, b, n);
}

fn bench_all(c: &mut Criterion) {
    bench_every_backend!(c, bench_steps);
}

criterion_group!(benches, bench_all);
criterion_main!(benches);
