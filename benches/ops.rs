//! Every primitive op on every backend present here, at the full DCGAN's shapes (batch 128, nz 100,
//! ngf = ndf = 64, 64×64 images) and FID's InceptionV3 ops at Inception's shapes. Convolutions report
//! FLOP/s (criterion's "elem/s": 2 FLOPs per multiply-add), the other ops elements/s. On cpu, beside the
//! convolutions, the in-run baseline: a plain square f32 GEMM of the same FLOPs through the `gemm` crate.
//! Every timed call ends with `Backend::sync`, so a GPU time is the op's, not its launch's.
//!
//!   cargo bench --bench ops                      (CXR_GAN_BENCH_BATCH=32 for a quicker look)
//!   CXR_GAN_BENCH_BACKENDS=cuda cargo bench --bench ops          (only some backends: a comma list)
//!   CXR_GAN_BENCH_WGPU_CPU=1 CXR_GAN_BENCH_BATCH=4 cargo bench --bench ops -- --quick   (wgpu on lavapipe)

#[macro_use]
mod common;
use common::{batch, dcgan_convs, inception_convs, timed, Rand};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use cxr_gan::backend::{Activation, AdamConfig, Backend, Pool2dParams};

/// Every DCGAN convolution forward and both backward passes; FID's convolutions forward.
fn bench_convs<B: Backend>(c: &mut Criterion, b: &B) {
    let mut rng = Rand::new(0);
    let mut g = c.benchmark_group(format!("{}/conv", b.name()));
    g.sample_size(10);
    for layer in dcgan_convs(batch()) {
        let (name, xs, ws, p, transposed) = (layer.name, layer.x, layer.w, layer.p, layer.transposed);
        let x = rng.tensor(b, &xs, -1.0, 1.0);
        let w = rng.tensor(b, &ws, -1.0, 1.0);
        let dy = rng.tensor(b, &layer.y().unwrap(), -1.0, 1.0);
        g.throughput(Throughput::Elements(layer.flops(&layer.y().unwrap())));
        timed(&mut g, b, BenchmarkId::new("fwd", name), || {
            if transposed { b.conv_transpose2d(&x, &w, p) } else { b.conv2d(&x, &w, p) }.unwrap()
        });
        timed(&mut g, b, BenchmarkId::new("bwd_data", name), || {
            if transposed { b.conv_transpose2d_bwd_data(&dy, &w, p) } else { b.conv2d_bwd_data(&dy, &w, xs, p) }.unwrap()
        });
        timed(&mut g, b, BenchmarkId::new("bwd_weight", name), || {
            if transposed { b.conv_transpose2d_bwd_weight(&x, &dy, ws, p) } else { b.conv2d_bwd_weight(&x, &dy, ws, p) }.unwrap()
        });
    }
    // FID's batches are smaller than training's: a quarter of the bench batch, at least 1.
    for layer in inception_convs((batch() / 4).max(1)) {
        let x = rng.tensor(b, &layer.x, -1.0, 1.0);
        let w = rng.tensor(b, &layer.w, -1.0, 1.0);
        g.throughput(Throughput::Elements(layer.flops(&layer.y().unwrap())));
        timed(&mut g, b, BenchmarkId::new("fwd", layer.name), || b.conv2d(&x, &w, layer.p).unwrap());
    }
    g.finish();
}

/// The cpu convolutions' in-run baseline: one square GEMM of each DCGAN layer's FLOPs (2·m³ = flops).
fn bench_square_gemm(c: &mut Criterion) {
    let mut rng = Rand::new(0);
    let mut g = c.benchmark_group("cpu/square_gemm");
    g.sample_size(10);
    for layer in dcgan_convs(batch()) {
        let m = ((layer.flops(&layer.y().unwrap()) as f64 / 2.0).cbrt().round() as usize).max(1);
        let (a, bm) = (rng.host(&[m, m], -1.0, 1.0), rng.host(&[m, m], -1.0, 1.0));
        let mut out = vec![0f32; m * m];
        g.throughput(Throughput::Elements(2 * (m * m * m) as u64));
        g.bench_function(BenchmarkId::new(layer.name, format!("m={m}")), |bench| {
            bench.iter(|| unsafe {
                gemm::gemm(
                    m,
                    m,
                    m,
                    out.as_mut_ptr(),
                    1,
                    m as isize,
                    false,
                    a.data().as_ptr(),
                    1,
                    m as isize,
                    bm.data().as_ptr(),
                    1,
                    m as isize,
                    0.0f32,
                    1.0f32,
                    false,
                    false,
                    false,
                    gemm::Parallelism::Rayon(rayon::current_num_threads()),
                )
            })
        });
    }
    g.finish();
}

/// Normalizations, activations, elementwise ops, losses and Adam at the DCGAN's largest shapes.
fn bench_norm_act_loss<B: Backend>(c: &mut Criterion, b: &B) {
    let mut rng = Rand::new(1);
    let n = batch();
    let mut g = c.benchmark_group(format!("{}/norm_act_loss", b.name()));
    g.sample_size(10);
    // The largest activations of G / D: [N, 64, 32, 32] (BN in G, IN in the critic).
    let shape = [n, 64, 32, 32];
    let x = rng.tensor(b, &shape, -1.0, 1.0);
    let dy = rng.tensor(b, &shape, -1.0, 1.0);
    let (gamma, beta) = (b.full(&[64], 1.0).unwrap(), b.zeros(&[64]).unwrap());
    let (mut rm, mut rv) = (b.zeros(&[64]).unwrap(), b.full(&[64], 1.0).unwrap());
    let s = "[N,64,32,32]";
    g.throughput(Throughput::Elements(shape.iter().product::<usize>() as u64));
    timed(&mut g, b, BenchmarkId::new("batch_norm2d_train", s), || {
        b.batch_norm2d_train(&x, &gamma, &beta, &mut rm, &mut rv, 1e-5, 0.1).unwrap()
    });
    let (_, stats) = b.batch_norm2d_train(&x, &gamma, &beta, &mut rm, &mut rv, 1e-5, 0.1).unwrap();
    timed(&mut g, b, BenchmarkId::new("batch_norm2d_eval", s), || b.batch_norm2d_eval(&x, &gamma, &beta, &rm, &rv, 1e-5).unwrap());
    timed(&mut g, b, BenchmarkId::new("batch_norm2d_bwd", s), || b.batch_norm2d_bwd(&dy, &x, &gamma, &stats).unwrap());
    timed(&mut g, b, BenchmarkId::new("instance_norm2d", s), || b.instance_norm2d(&x, &gamma, &beta, 1e-5).unwrap());
    let (_, istats) = b.instance_norm2d(&x, &gamma, &beta, 1e-5).unwrap();
    timed(&mut g, b, BenchmarkId::new("instance_norm2d_bwd", s), || b.instance_norm2d_bwd(&dy, &x, &gamma, &istats).unwrap());
    timed(&mut g, b, BenchmarkId::new("instance_norm2d_jvp", s), || b.instance_norm2d_jvp(&x, &dy, &gamma, &istats).unwrap());
    timed(&mut g, b, BenchmarkId::new("instance_norm2d_jvp_bwd", s), || {
        b.instance_norm2d_jvp_bwd(&x, &dy, &gamma, &istats, &dy, &x).unwrap()
    });
    for act in [Activation::Relu, Activation::LeakyRelu { slope: 0.2 }, Activation::Tanh, Activation::Sigmoid] {
        let y = b.activation(act, &x).unwrap();
        timed(&mut g, b, BenchmarkId::new("activation", format!("{act:?}")), || b.activation(act, &x).unwrap());
        timed(&mut g, b, BenchmarkId::new("activation_bwd", format!("{act:?}")), || b.activation_bwd(act, &x, &y, &dy).unwrap());
    }
    timed(&mut g, b, BenchmarkId::new("add", s), || b.add(&x, &dy).unwrap());
    let mut acc = x.clone();
    timed(&mut g, b, BenchmarkId::new("add_assign", s), || b.add_assign(&mut acc, &dy).unwrap());
    timed(&mut g, b, BenchmarkId::new("scale", s), || b.scale(&x, 0.5).unwrap());
    let alpha: Vec<f32> = (0..n).map(|i| (i as f32 + 0.5) / n as f32).collect();
    timed(&mut g, b, BenchmarkId::new("lerp_per_sample", s), || b.lerp_per_sample(&x, &dy, &alpha).unwrap());
    timed(&mut g, b, BenchmarkId::new("full", s), || b.full(&shape, 0.5).unwrap());
    timed(&mut g, b, BenchmarkId::new("mean", s), || b.mean(&x).unwrap());
    // The gradient penalty's head over the critic's input gradient [N, 3, 64, 64].
    let gx = rng.tensor(b, &[n, 3, 64, 64], -0.05, 0.05);
    g.throughput(Throughput::Elements((n * 3 * 64 * 64) as u64));
    timed(&mut g, b, BenchmarkId::new("gradient_penalty_head", "[N,3,64,64]"), || b.gradient_penalty_head(&gx, 10.0).unwrap());
    // The losses over the discriminator's N outputs.
    let probs = rng.tensor(b, &[n], 0.01, 0.99);
    let ones = b.full(&[n], 1.0).unwrap();
    g.throughput(Throughput::Elements(n as u64));
    timed(&mut g, b, BenchmarkId::new("bce", "[N]"), || b.bce(&probs, &ones).unwrap());
    timed(&mut g, b, BenchmarkId::new("bce_logits", "[N]"), || b.bce_logits(&probs, &ones).unwrap());
    // Adam over all of G's parameters (3.58 M).
    let count = 3_576_704;
    let (mut p, grad) = (rng.tensor(b, &[count], -1.0, 1.0), rng.tensor(b, &[count], -1.0, 1.0));
    let (mut m, mut v) = (b.zeros(&[count]).unwrap(), b.zeros(&[count]).unwrap());
    let cfg = AdamConfig { lr: 2e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8 };
    g.throughput(Throughput::Elements(count as u64));
    let mut step = 0;
    timed(&mut g, b, BenchmarkId::new("adam_step", "G, 3.58M params"), || {
        step += 1;
        b.adam_step(&mut p, &grad, &mut m, &mut v, &cfg, step).unwrap()
    });
    g.finish();
}

/// FID's InceptionV3 ops other than convolutions, at Inception's shapes.
fn bench_inception_ops<B: Backend>(c: &mut Criterion, b: &B) {
    let mut rng = Rand::new(2);
    // FID's batches are smaller than training's: a quarter of the bench batch, at least 1.
    let n = (batch() / 4).max(1);
    let mut g = c.benchmark_group(format!("{}/inception", b.name()));
    g.sample_size(10);
    let img = rng.tensor(b, &[n, 3, 64, 64], -1.0, 1.0);
    g.throughput(Throughput::Elements((n * 3 * 299 * 299) as u64));
    timed(&mut g, b, BenchmarkId::new("resize_bilinear", "64->299"), || b.resize_bilinear(&img, 299, 299).unwrap());
    let s2 = Pool2dParams::new([3, 3], [2, 2], [0, 0]);
    let s1 = Pool2dParams::new([3, 3], [1, 1], [1, 1]);
    let x147 = rng.tensor(b, &[n, 64, 147, 147], -1.0, 1.0);
    g.throughput(Throughput::Elements((n * 64 * 147 * 147) as u64));
    timed(&mut g, b, BenchmarkId::new("max_pool2d", "[N,64,147,147] 3x3 s2"), || b.max_pool2d(&x147, s2).unwrap());
    let x35 = rng.tensor(b, &[n, 192, 35, 35], -1.0, 1.0);
    g.throughput(Throughput::Elements((n * 192 * 35 * 35) as u64));
    timed(&mut g, b, BenchmarkId::new("avg_pool2d", "[N,192,35,35] 3x3 s1 p1"), || b.avg_pool2d(&x35, s1, false).unwrap());
    let (scale, shift) = (rng.tensor(b, &[192], 0.5, 1.5), rng.tensor(b, &[192], -0.5, 0.5));
    let mut a = x35.clone();
    timed(&mut g, b, BenchmarkId::new("affine_channels", "[N,192,35,35] relu"), || {
        b.affine_channels(&mut a, &scale, &shift, true).unwrap()
    });
    let parts: Vec<B::Tensor> = [64, 64, 96, 32].iter().map(|&ch| rng.tensor(b, &[n, ch, 35, 35], -1.0, 1.0)).collect();
    g.throughput(Throughput::Elements((n * 256 * 35 * 35) as u64));
    timed(&mut g, b, BenchmarkId::new("concat_channels", "Mixed_5b [N,256,35,35]"), || {
        b.concat_channels(&parts.iter().collect::<Vec<_>>()).unwrap()
    });
    let x8 = rng.tensor(b, &[n, 2048, 8, 8], -1.0, 1.0);
    g.throughput(Throughput::Elements((n * 2048 * 64) as u64));
    timed(&mut g, b, BenchmarkId::new("global_avg_pool2d", "[N,2048,8,8]"), || b.global_avg_pool2d(&x8).unwrap());
    g.finish();
}

fn bench_ops<B: Backend>(c: &mut Criterion, b: &B) {
    bench_convs(c, b);
    bench_norm_act_loss(c, b);
    bench_inception_ops(c, b);
}

fn bench_all(c: &mut Criterion) {
    bench_every_backend!(c, bench_ops);
    if common::wanted("cpu") {
        bench_square_gemm(c);
    }
}

criterion_group!(benches, bench_all);
criterion_main!(benches);
