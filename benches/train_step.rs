//! One full-size DCGAN iteration and one WGAN-GP critic iteration (and generator iteration) at batch 128
//! on `cpu`: nz 100, ngf = ndf = 64, 64×64 images. The in-run baseline is PyTorch on the same machine:
//! `scripts/pytorch_train_step.py` (run by hand beside this bench; see BENCHMARKS.md).
//!
//!   cargo bench --bench train_step          (CXR_GAN_BENCH_BATCH=32 for a quicker look)

mod common;
use common::batch;

use criterion::{criterion_group, criterion_main, Criterion};
use cxr_gan::backend::{cpu::CpuBackend, Backend};
use cxr_gan::nn::dcgan::{discriminator, generator, Head, Widths};
use cxr_gan::train::dcgan::Dcgan;
use cxr_gan::train::wgan_gp::WganGp;
use cxr_gan::Tensor;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;


fn bench_steps(c: &mut Criterion) {
    let cpu = CpuBackend::new();
    let n = batch();
    let w = Widths::default();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut normal = |shape: &[usize]| {
        let len = shape.iter().product();
        cpu.upload(&Tensor::new(shape, (0..len).map(|_| rng.sample::<f32, _>(StandardNormal)).collect()).unwrap()).unwrap()
    };
    let real = normal(&[n, 3, 64, 64]);
    let noise = normal(&[n, w.nz, 1, 1]);
    let mut init = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut g = c.benchmark_group("train_step");
    g.sample_size(10);

    let mut dcgan = Dcgan::new(&cpu, generator(&cpu, w, &mut init).unwrap(), discriminator(&cpu, w.ndf, Head::Dcgan, &mut init).unwrap()).unwrap();
    g.bench_function(format!("dcgan iteration (batch {n})"), |b| b.iter(|| dcgan.step(&cpu, &real, &noise).unwrap()));

    let mut wgan = WganGp::new(&cpu, generator(&cpu, w, &mut init).unwrap(), discriminator(&cpu, w.ndf, Head::Critic, &mut init).unwrap()).unwrap();
    let alpha: Vec<f32> = (0..n).map(|i| (i as f32 + 0.5) / n as f32).collect();
    g.bench_function(format!("wgan-gp critic iteration (batch {n})"), |b| b.iter(|| wgan.critic_step(&cpu, &real, &noise, &alpha).unwrap()));
    g.bench_function(format!("wgan-gp generator iteration (batch {n})"), |b| b.iter(|| wgan.generator_step(&cpu, &noise).unwrap()));
    g.finish();
}

criterion_group!(benches, bench_steps);
criterion_main!(benches);
