//! One full-size DCGAN iteration and one WGAN-GP critic iteration (and generator iteration) at batch 128
//! (nz 100, ngf = ndf = 64, 64×64 images) on every backend present here, each iteration ended by
//! `Backend::sync`. The in-run baselines are PyTorch on the same machine: `scripts/pytorch_train_step.py`
//! (CPU) and `scripts/pytorch_step_baseline.py` (GPU, eager), run by hand beside this bench (BENCHMARKS.md).
//!
//!   cargo bench --bench train_step          (CXR_GAN_BENCH_BATCH=32 for a quicker look;
//!                                            CXR_GAN_BENCH_BACKENDS=cpu for one backend)

#[macro_use]
mod common;
use common::{batch, timed, Rand};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use cxr_gan::backend::Backend;
use cxr_gan::nn::dcgan::{discriminator, generator, Head, Widths};
use cxr_gan::train::dcgan::Dcgan;
use cxr_gan::train::wgan_gp::WganGp;
use rand::SeedableRng;

fn bench_steps<B: Backend>(c: &mut Criterion, b: &B) {
    let n = batch();
    let w = Widths::default();
    let mut rng = Rand::new(0);
    let real = rng.normal(b, &[n, 3, 64, 64]);
    let noise = rng.normal(b, &[n, w.nz, 1, 1]);
    let mut init = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut g = c.benchmark_group(format!("{}/train_step", b.name()));
    g.sample_size(10);
    let batch = format!("batch {n}");

    let mut dcgan = Dcgan::new(b, generator(b, w, &mut init).unwrap(), discriminator(b, w.ndf, Head::Dcgan, &mut init).unwrap()).unwrap();
    timed(&mut g, b, BenchmarkId::new("dcgan iteration", &batch), || dcgan.step(b, &real, &noise).unwrap());

    let mut wgan = WganGp::new(b, generator(b, w, &mut init).unwrap(), discriminator(b, w.ndf, Head::Critic, &mut init).unwrap()).unwrap();
    let alpha: Vec<f32> = (0..n).map(|i| (i as f32 + 0.5) / n as f32).collect();
    timed(&mut g, b, BenchmarkId::new("wgan-gp critic iteration", &batch), || wgan.critic_step(b, &real, &noise, &alpha).unwrap());
    timed(&mut g, b, BenchmarkId::new("wgan-gp generator iteration", &batch), || wgan.generator_step(b, &noise).unwrap());
    g.finish();
}

fn bench_all(c: &mut Criterion) {
    bench_every_backend!(c, bench_steps);
}

criterion_group!(benches, bench_all);
criterion_main!(benches);
