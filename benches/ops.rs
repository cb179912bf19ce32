//! Every primitive op on the `cpu` backend at the full DCGAN's shapes (batch 128, nz 100, ngf = ndf = 64,
//! 64×64 images), reported by criterion as FLOP/s (its "elem/s"), beside the in-run baseline: a plain
//! square f32 GEMM of the same FLOPs through the `gemm` crate.
//!
//!   cargo bench --bench ops            (CXR_GAN_BENCH_BATCH=32 for a quicker look)

mod common;
use common::{batch, dcgan_convs};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use cxr_gan::backend::{cpu::CpuBackend, Activation, AdamConfig, Backend};
use cxr_gan::Tensor;
use rand::{Rng, SeedableRng};


fn random(shape: &[usize], rng: &mut impl Rng) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(shape, (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()).unwrap()
}



fn bench_convs(c: &mut Criterion) {
    let cpu = CpuBackend::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut g = c.benchmark_group("conv");
    g.sample_size(10);
    for layer in dcgan_convs(batch()) {
        let (name, xs, ws, p, transposed) = (layer.name, layer.x, layer.w, layer.p, layer.transposed);
        let x = random(&xs, &mut rng);
        let w = random(&ws, &mut rng);
        let y = if transposed { cpu.conv_transpose2d(&x, &w, p) } else { cpu.conv2d(&x, &w, p) }.unwrap();
        let dy = random(y.shape(), &mut rng);
        let flops = layer.flops(y.shape());
        g.throughput(Throughput::Elements(flops));
        g.bench_function(BenchmarkId::new("fwd", name), |b| {
            b.iter(|| if transposed { cpu.conv_transpose2d(&x, &w, p) } else { cpu.conv2d(&x, &w, p) }.unwrap())
        });
        g.bench_function(BenchmarkId::new("bwd_data", name), |b| {
            b.iter(|| if transposed { cpu.conv_transpose2d_bwd_data(&dy, &w, p) } else { cpu.conv2d_bwd_data(&dy, &w, xs, p) }.unwrap())
        });
        g.bench_function(BenchmarkId::new("bwd_weight", name), |b| {
            b.iter(|| if transposed { cpu.conv_transpose2d_bwd_weight(&x, &dy, ws, p) } else { cpu.conv2d_bwd_weight(&x, &dy, ws, p) }.unwrap())
        });
        // The baseline: one square GEMM of the same FLOPs (2·m³ = flops).
        let m = ((flops as f64 / 2.0).cbrt().round() as usize).max(1);
        let (a, bm) = (random(&[m, m], &mut rng), random(&[m, m], &mut rng));
        let mut out = vec![0f32; m * m];
        g.throughput(Throughput::Elements(2 * (m * m * m) as u64));
        g.bench_function(BenchmarkId::new("square_gemm", format!("{name} (m={m})")), |b| {
            b.iter(|| unsafe {
                gemm::gemm(
                    m, m, m, out.as_mut_ptr(), 1, m as isize, false, a.data().as_ptr(), 1, m as isize,
                    bm.data().as_ptr(), 1, m as isize, 0.0f32, 1.0f32, false, false, false,
                    gemm::Parallelism::Rayon(rayon::current_num_threads()),
                )
            })
        });
    }
    g.finish();
}

fn bench_elementwise(c: &mut Criterion) {
    let cpu = CpuBackend::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let n = batch();
    let mut g = c.benchmark_group("norm_act");
    g.sample_size(10);
    // The largest activations of G / D: [N, 64, 32, 32] (BN in G, IN in the critic), [N, 3, 64, 64] tanh.
    let x = random(&[n, 64, 32, 32], &mut rng);
    let dy = random(&[n, 64, 32, 32], &mut rng);
    let (gamma, beta) = (Tensor::full(&[64], 1.0), Tensor::zeros(&[64]));
    g.throughput(Throughput::Elements(x.len() as u64));
    let (mut rm, mut rv) = (Tensor::zeros(&[64]), Tensor::full(&[64], 1.0));
    g.bench_function("batch_norm2d_train [N,64,32,32]", |b| b.iter(|| cpu.batch_norm2d_train(&x, &gamma, &beta, &mut rm, &mut rv, 1e-5, 0.1).unwrap()));
    let (_, stats) = cpu.batch_norm2d_train(&x, &gamma, &beta, &mut rm, &mut rv, 1e-5, 0.1).unwrap();
    g.bench_function("batch_norm2d_bwd [N,64,32,32]", |b| b.iter(|| cpu.batch_norm2d_bwd(&dy, &x, &gamma, &stats).unwrap()));
    g.bench_function("instance_norm2d [N,64,32,32]", |b| b.iter(|| cpu.instance_norm2d(&x, &gamma, &beta, 1e-5).unwrap()));
    let (_, istats) = cpu.instance_norm2d(&x, &gamma, &beta, 1e-5).unwrap();
    g.bench_function("instance_norm2d_bwd [N,64,32,32]", |b| b.iter(|| cpu.instance_norm2d_bwd(&dy, &x, &gamma, &istats).unwrap()));
    g.bench_function("instance_norm2d_jvp_bwd [N,64,32,32]", |b| {
        b.iter(|| cpu.instance_norm2d_jvp_bwd(&x, &dy, &gamma, &istats, &dy, &x).unwrap())
    });
    for act in [Activation::Relu, Activation::LeakyRelu { slope: 0.2 }, Activation::Tanh, Activation::Sigmoid] {
        let y = cpu.activation(act, &x).unwrap();
        g.bench_function(format!("{act:?} fwd"), |b| b.iter(|| cpu.activation(act, &x).unwrap()));
        g.bench_function(format!("{act:?} bwd"), |b| b.iter(|| cpu.activation_bwd(act, &x, &y, &dy).unwrap()));
    }
    // Adam over all of G's parameters (3.58 M).
    let count = 3_576_704;
    let (mut p, grad) = (random(&[count], &mut rng), random(&[count], &mut rng));
    let (mut m, mut v) = (Tensor::zeros(&[count]), Tensor::zeros(&[count]));
    let cfg = AdamConfig { lr: 2e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8 };
    g.throughput(Throughput::Elements(count as u64));
    let mut step = 0;
    g.bench_function("adam_step (G, 3.58M params)", |b| {
        b.iter(|| {
            step += 1;
            cpu.adam_step(&mut p, &grad, &mut m, &mut v, &cfg, step).unwrap()
        })
    });
    let probs = Tensor::full(&[n], 0.3);
    let ones = Tensor::full(&[n], 1.0);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("bce [N]", |b| b.iter(|| cpu.bce(&probs, &ones).unwrap()));
    g.finish();
}

criterion_group!(benches, bench_convs, bench_elementwise);
criterion_main!(benches);
