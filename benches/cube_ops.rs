//! Every op of the `cube` backend (our CubeCL kernels) at the full DCGAN's shapes (batch 128, nz 100,
//! ngf = ndf = 64, 64×64 images; FID's Inception ops at Inception's shapes), on every CubeCL runtime with a
//! device here: CUDA, and wgpu on a hardware adapter (or, with CXR_GAN_BENCH_WGPU_CPU=1, on a CPU adapter
//! such as lavapipe: slow, for a smoke run at a small batch). Convolutions report FLOP/s (criterion's
//! "elem/s", 2 FLOPs per multiply-add as benches/ops.rs), the other ops elements/s. Then one full DCGAN
//! iteration and the WGAN-GP critic / generator iterations, the numbers to set beside PyTorch eager on the
//! same GPU (scripts/pytorch_step_baseline.py; scripts/gpu-check.sh runs both).
//!
//! Every measured call ends with a device synchronization, so a time is the op's, not its launch's.
//!
//!   cargo bench --bench cube_ops                 (CXR_GAN_BENCH_BATCH=16 for a quicker look)
//!   CXR_GAN_BENCH_WGPU_CPU=1 CXR_GAN_BENCH_BATCH=4 cargo bench --bench cube_ops -- --quick

mod common;
use common::{batch, dcgan_convs};

use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use criterion::measurement::WallTime;
use cubecl::Runtime;
use cxr_gan::backend::cube::{CubeBackend, CubeTensor, CudaBackend, WgpuBackend};
use cxr_gan::backend::{Activation, AdamConfig, Backend, Pool2dParams};
use cxr_gan::nn::dcgan::{discriminator, generator, Head, Widths};
use cxr_gan::train::dcgan::Dcgan;
use cxr_gan::train::wgan_gp::WganGp;
use cxr_gan::Tensor;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;


/// The runtimes with a device here, each as a closure that benches on it.
fn backends() -> (Option<CudaBackend>, Option<WgpuBackend>) {
    let cuda = match CudaBackend::cuda() {
        Ok(b) => Some(b),
        Err(e) => {
            println!("cube_ops: cuda skipped: {e}");
            None
        }
    };
    let allow_cpu = std::env::var("CXR_GAN_BENCH_WGPU_CPU").is_ok_and(|v| v == "1");
    let wgpu = match if allow_cpu { WgpuBackend::wgpu() } else { WgpuBackend::wgpu_hardware() } {
        Ok(b) => Some(b),
        Err(e) => {
            println!("cube_ops: wgpu skipped: {e} (CXR_GAN_BENCH_WGPU_CPU=1 benches a CPU adapter)");
            None
        }
    };
    (cuda, wgpu)
}

struct Rand(rand_chacha::ChaCha8Rng);

impl Rand {
    fn tensor<R: Runtime>(&mut self, b: &CubeBackend<R>, shape: &[usize], lo: f32, hi: f32) -> CubeTensor {
        let n = shape.iter().product();
        b.upload(&Tensor::new(shape, (0..n).map(|_| self.0.gen_range(lo..hi)).collect()).unwrap()).unwrap()
    }
    fn normal<R: Runtime>(&mut self, b: &CubeBackend<R>, shape: &[usize]) -> CubeTensor {
        let n = shape.iter().product();
        b.upload(&Tensor::new(shape, (0..n).map(|_| self.0.sample::<f32, _>(StandardNormal)).collect()).unwrap()).unwrap()
    }
}

/// Times `f` followed by a device synchronization.
fn timed<R: Runtime, T>(g: &mut BenchmarkGroup<WallTime>, b: &CubeBackend<R>, id: BenchmarkId, mut f: impl FnMut() -> T) {
    g.bench_function(id, |bench| {
        bench.iter(|| {
            let out = f();
            b.sync().unwrap();
            out
        })
    });
}



fn bench_convs<R: Runtime>(c: &mut Criterion, b: &CubeBackend<R>) {
    let mut rng = Rand(rand_chacha::ChaCha8Rng::seed_from_u64(0));
    let mut g = c.benchmark_group(format!("{}/conv", b.name()));
    g.sample_size(10);
    for layer in dcgan_convs(batch()) {
        let (name, xs, ws, p, transposed) = (layer.name, layer.x, layer.w, layer.p, layer.transposed);
        let x = rng.tensor(b, &xs, -1.0, 1.0);
        let w = rng.tensor(b, &ws, -1.0, 1.0);
        let y = if transposed { b.conv_transpose2d(&x, &w, p) } else { b.conv2d(&x, &w, p) }.unwrap();
        let ys = b.shape(&y);
        let dy = rng.tensor(b, &ys, -1.0, 1.0);
        g.throughput(Throughput::Elements(layer.flops(&ys)));
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
    g.finish();
}

fn bench_norm_act_loss<R: Runtime>(c: &mut Criterion, b: &CubeBackend<R>) {
    let mut rng = Rand(rand_chacha::ChaCha8Rng::seed_from_u64(1));
    let n = batch();
    let mut g = c.benchmark_group(format!("{}/norm_act_loss", b.name()));
    g.sample_size(10);
    // The largest activations of G / D: [N, 64, 32, 32] (BN in G, IN in the critic).
    let shape = [n, 64, 32, 32];
    let x = rng.tensor(b, &shape, -1.0, 1.0);
    let dy = rng.tensor(b, &shape, -1.0, 1.0);
    let (gamma, beta) = (b.full(&[64], 1.0).unwrap(), b.zeros(&[64]).unwrap());
    let (mut rm, mut rv) = (b.zeros(&[64]).unwrap(), b.full(&[64], 1.0).unwrap());
    let len = shape.iter().product::<usize>() as u64;
    g.throughput(Throughput::Elements(len));
    timed(&mut g, b, BenchmarkId::new("batch_norm2d_train", "[N,64,32,32]"), || {
        b.batch_norm2d_train(&x, &gamma, &beta, &mut rm, &mut rv, 1e-5, 0.1).unwrap()
    });
    let (_, stats) = b.batch_norm2d_train(&x, &gamma, &beta, &mut rm, &mut rv, 1e-5, 0.1).unwrap();
    timed(&mut g, b, BenchmarkId::new("batch_norm2d_eval", "[N,64,32,32]"), || b.batch_norm2d_eval(&x, &gamma, &beta, &rm, &rv, 1e-5).unwrap());
    timed(&mut g, b, BenchmarkId::new("batch_norm2d_bwd", "[N,64,32,32]"), || b.batch_norm2d_bwd(&dy, &x, &gamma, &stats).unwrap());
    timed(&mut g, b, BenchmarkId::new("instance_norm2d", "[N,64,32,32]"), || b.instance_norm2d(&x, &gamma, &beta, 1e-5).unwrap());
    let (_, istats) = b.instance_norm2d(&x, &gamma, &beta, 1e-5).unwrap();
    timed(&mut g, b, BenchmarkId::new("instance_norm2d_bwd", "[N,64,32,32]"), || b.instance_norm2d_bwd(&dy, &x, &gamma, &istats).unwrap());
    timed(&mut g, b, BenchmarkId::new("instance_norm2d_jvp", "[N,64,32,32]"), || b.instance_norm2d_jvp(&x, &dy, &gamma, &istats).unwrap());
    timed(&mut g, b, BenchmarkId::new("instance_norm2d_jvp_bwd", "[N,64,32,32]"), || {
        b.instance_norm2d_jvp_bwd(&x, &dy, &gamma, &istats, &dy, &x).unwrap()
    });
    for act in [Activation::Relu, Activation::LeakyRelu { slope: 0.2 }, Activation::Tanh, Activation::Sigmoid] {
        let y = b.activation(act, &x).unwrap();
        timed(&mut g, b, BenchmarkId::new("activation", format!("{act:?}")), || b.activation(act, &x).unwrap());
        timed(&mut g, b, BenchmarkId::new("activation_bwd", format!("{act:?}")), || b.activation_bwd(act, &x, &y, &dy).unwrap());
    }
    timed(&mut g, b, BenchmarkId::new("add", "[N,64,32,32]"), || b.add(&x, &dy).unwrap());
    let mut acc = x.clone();
    timed(&mut g, b, BenchmarkId::new("add_assign", "[N,64,32,32]"), || b.add_assign(&mut acc, &dy).unwrap());
    timed(&mut g, b, BenchmarkId::new("scale", "[N,64,32,32]"), || b.scale(&x, 0.5).unwrap());
    let alpha: Vec<f32> = (0..n).map(|i| (i as f32 + 0.5) / n as f32).collect();
    timed(&mut g, b, BenchmarkId::new("lerp_per_sample", "[N,64,32,32]"), || b.lerp_per_sample(&x, &dy, &alpha).unwrap());
    timed(&mut g, b, BenchmarkId::new("full", "[N,64,32,32]"), || b.full(&shape, 0.5).unwrap());
    timed(&mut g, b, BenchmarkId::new("mean", "[N,64,32,32]"), || b.mean(&x).unwrap());
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

fn bench_inception_ops<R: Runtime>(c: &mut Criterion, b: &CubeBackend<R>) {
    let mut rng = Rand(rand_chacha::ChaCha8Rng::seed_from_u64(2));
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
    timed(&mut g, b, BenchmarkId::new("affine_channels", "[N,192,35,35] relu"), || b.affine_channels(&mut a, &scale, &shift, true).unwrap());
    let parts: Vec<CubeTensor> = [64, 64, 96, 32].iter().map(|&ch| rng.tensor(b, &[n, ch, 35, 35], -1.0, 1.0)).collect();
    g.throughput(Throughput::Elements((n * 256 * 35 * 35) as u64));
    timed(&mut g, b, BenchmarkId::new("concat_channels", "Mixed_5b [N,256,35,35]"), || {
        b.concat_channels(&parts.iter().collect::<Vec<_>>()).unwrap()
    });
    let x8 = rng.tensor(b, &[n, 2048, 8, 8], -1.0, 1.0);
    g.throughput(Throughput::Elements((n * 2048 * 64) as u64));
    timed(&mut g, b, BenchmarkId::new("global_avg_pool2d", "[N,2048,8,8]"), || b.global_avg_pool2d(&x8).unwrap());
    g.finish();
}

fn bench_train_steps<R: Runtime>(c: &mut Criterion, b: &CubeBackend<R>) {
    let n = batch();
    let w = Widths::default();
    let mut rng = Rand(rand_chacha::ChaCha8Rng::seed_from_u64(3));
    let real = rng.normal(b, &[n, 3, 64, 64]);
    let noise = rng.normal(b, &[n, w.nz, 1, 1]);
    let mut init = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    let mut g = c.benchmark_group(format!("{}/train_step", b.name()));
    g.sample_size(10);
    let mut dcgan = Dcgan::new(b, generator(b, w, &mut init).unwrap(), discriminator(b, w.ndf, Head::Dcgan, &mut init).unwrap()).unwrap();
    timed(&mut g, b, BenchmarkId::new("dcgan iteration", format!("batch {n}")), || dcgan.step(b, &real, &noise).unwrap());
    let mut wgan = WganGp::new(b, generator(b, w, &mut init).unwrap(), discriminator(b, w.ndf, Head::Critic, &mut init).unwrap()).unwrap();
    let alpha: Vec<f32> = (0..n).map(|i| (i as f32 + 0.5) / n as f32).collect();
    timed(&mut g, b, BenchmarkId::new("wgan-gp critic iteration", format!("batch {n}")), || {
        wgan.critic_step(b, &real, &noise, &alpha).unwrap()
    });
    timed(&mut g, b, BenchmarkId::new("wgan-gp generator iteration", format!("batch {n}")), || wgan.generator_step(b, &noise).unwrap());
    g.finish();
}

fn bench_all(c: &mut Criterion) {
    let (cuda, wgpu) = backends();
    if let Some(b) = &cuda {
        println!("cube_ops: cuda on {}", b.device());
        bench_convs(c, b);
        bench_norm_act_loss(c, b);
        bench_inception_ops(c, b);
        bench_train_steps(c, b);
    }
    if let Some(b) = &wgpu {
        println!("cube_ops: wgpu on {}", b.device());
        bench_convs(c, b);
        bench_norm_act_loss(c, b);
        bench_inception_ops(c, b);
        bench_train_steps(c, b);
    }
}

criterion_group!(benches, bench_all);
criterion_main!(benches);
