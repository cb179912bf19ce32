//! What the benches share: the backends to bench, the batch size, seeded inputs, a timed call that waits
//! for the device, and the DCGAN's and InceptionV3's convolutions with their FLOP counts.
#![allow(dead_code)]

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId};
use cxr_gan::backend::cube::WgpuBackend;
use cxr_gan::backend::{shapes, Backend, Conv2dParams};
use cxr_gan::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// Runs `$bench(c, &backend)` (a fn generic over `B: Backend`) on every backend present here that
/// `CXR_GAN_BENCH_BACKENDS` (a comma list; default all) names. A new backend is one line. (`#[macro_use]`
/// on `mod common` brings it into a bench.)
macro_rules! bench_every_backend {
    ($c:expr, $bench:ident) => {{
        if let Some(b) = common::present("cpu", || Ok(cxr_gan::backend::cpu::CpuBackend::new())) {
            $bench($c, &b);
        }
        if let Some(b) = common::present("cuda", cxr_gan::backend::cube::CudaBackend::cuda) {
            $bench($c, &b);
        }
        if let Some(b) = common::present("wgpu", common::wgpu) {
            $bench($c, &b);
        }
        // if let Some(b) = common::present("cuda_native", cxr_gan::backend::cuda_native::CudaNativeBackend::cuda) { $bench($c, &b); }
    }};
}

/// Whether `CXR_GAN_BENCH_BACKENDS` (a comma list; default all) names the backend `name`.
pub fn wanted(name: &str) -> bool {
    std::env::var("CXR_GAN_BENCH_BACKENDS").map_or(true, |list| list.split(',').any(|w| w.trim() == name))
}

/// The backend `name` if it is wanted and can run here; otherwise says why not.
pub fn present<B: Backend>(name: &str, make: impl FnOnce() -> cxr_gan::Result<B>) -> Option<B> {
    if !wanted(name) {
        return None;
    }
    match make() {
        Ok(b) => {
            println!("benching {name}");
            Some(b)
        }
        Err(e) => {
            println!("{name} skipped: {e}");
            None
        }
    }
}

/// wgpu on a hardware adapter, or (with CXR_GAN_BENCH_WGPU_CPU=1) on a CPU adapter such as lavapipe: slow,
/// for a smoke run at a small batch.
pub fn wgpu() -> cxr_gan::Result<WgpuBackend> {
    if std::env::var("CXR_GAN_BENCH_WGPU_CPU").is_ok_and(|v| v == "1") {
        WgpuBackend::wgpu()
    } else {
        WgpuBackend::wgpu_hardware().map_err(|e| cxr_gan::Error::Other(format!("{e} (CXR_GAN_BENCH_WGPU_CPU=1 benches a CPU adapter)")))
    }
}

/// The batch: 128 (the paper's), or `CXR_GAN_BENCH_BATCH` for a quicker look.
pub fn batch() -> usize {
    std::env::var("CXR_GAN_BENCH_BATCH").ok().and_then(|v| v.parse().ok()).unwrap_or(128)
}

/// Seeded inputs, uploaded to the backend.
pub struct Rand(ChaCha8Rng);

impl Rand {
    pub fn new(seed: u64) -> Self {
        Rand(ChaCha8Rng::seed_from_u64(seed))
    }
    pub fn host(&mut self, shape: &[usize], lo: f32, hi: f32) -> Tensor {
        let n = shape.iter().product();
        Tensor::new(shape, (0..n).map(|_| self.0.gen_range(lo..hi)).collect()).unwrap()
    }
    pub fn tensor<B: Backend>(&mut self, b: &B, shape: &[usize], lo: f32, hi: f32) -> B::Tensor {
        b.upload(&self.host(shape, lo, hi)).unwrap()
    }
    pub fn normal<B: Backend>(&mut self, b: &B, shape: &[usize]) -> B::Tensor {
        let n = shape.iter().product();
        b.upload(&Tensor::new(shape, (0..n).map(|_| self.0.sample::<f32, _>(StandardNormal)).collect()).unwrap()).unwrap()
    }
}

/// Times `f` followed by `Backend::sync`, so a time is the op's, not its launch's.
pub fn timed<B: Backend, T>(g: &mut BenchmarkGroup<WallTime>, b: &B, id: BenchmarkId, mut f: impl FnMut() -> T) {
    g.bench_function(id, |bench| {
        bench.iter(|| {
            let out = f();
            b.sync().unwrap();
            out
        })
    });
}

/// One convolution of a model, at a given batch.
pub struct ConvLayer {
    pub name: &'static str,
    pub x: [usize; 4],
    pub w: [usize; 4],
    pub p: Conv2dParams,
    /// ConvTranspose2d (the generator) rather than Conv2d (the discriminator).
    pub transposed: bool,
}

impl ConvLayer {
    /// The output's shape.
    pub fn y(&self) -> [usize; 4] {
        if self.transposed {
            shapes::conv_transpose2d_out(self.name, &self.x, &self.w, self.p).unwrap()
        } else {
            shapes::conv2d_out(self.name, &self.x, &self.w, self.p).unwrap()
        }
    }
    /// 2 · multiply-adds: every output (conv) or every input (transposed) meets a whole filter slice.
    pub fn flops(&self) -> u64 {
        let y = self.y();
        let (n, pixels) = if self.transposed { (self.x[0], self.x[2] * self.x[3]) } else { (y[0], y[2] * y[3]) };
        2 * (n * pixels * self.w.iter().product::<usize>()) as u64
    }
}

/// Every convolution of G and D (nz 100, ngf = ndf = 64, 64×64 images) at batch `n`, by state_dict prefix.
pub fn dcgan_convs(n: usize) -> Vec<ConvLayer> {
    let s2 = Conv2dParams::new([2, 2], [1, 1]);
    let s1 = Conv2dParams::new([1, 1], [0, 0]);
    let l = |name, x, w, p, transposed| ConvLayer { name, x, w, p, transposed };
    vec![
        l("G.main.0", [n, 100, 1, 1], [100, 512, 4, 4], s1, true),
        l("G.main.3", [n, 512, 4, 4], [512, 256, 4, 4], s2, true),
        l("G.main.6", [n, 256, 8, 8], [256, 128, 4, 4], s2, true),
        l("G.main.9", [n, 128, 16, 16], [128, 64, 4, 4], s2, true),
        l("G.main.12", [n, 64, 32, 32], [64, 3, 4, 4], s2, true),
        l("D.main.0", [n, 3, 64, 64], [64, 3, 4, 4], s2, false),
        l("D.main.2", [n, 64, 32, 32], [128, 64, 4, 4], s2, false),
        l("D.main.5", [n, 128, 16, 16], [256, 128, 4, 4], s2, false),
        l("D.main.8", [n, 256, 8, 8], [512, 256, 4, 4], s2, false),
        l("D.main.11", [n, 512, 4, 4], [1, 512, 4, 4], s1, false),
    ]
}

/// A few of FID's InceptionV3 convolutions at batch `n` (forward only, as FID runs them): the stem's
/// large planes and the factorised 1x7 / 1x3 kernels of the later blocks.
pub fn inception_convs(n: usize) -> Vec<ConvLayer> {
    let p = |s, pad| Conv2dParams::new(s, pad);
    let l = |name, x, w, p| ConvLayer { name, x, w, p, transposed: false };
    vec![
        l("Conv2d_1a_3x3", [n, 3, 299, 299], [32, 3, 3, 3], p([2, 2], [0, 0])),
        l("Conv2d_2b_3x3", [n, 32, 147, 147], [64, 32, 3, 3], p([1, 1], [1, 1])),
        l("Conv2d_4a_3x3", [n, 80, 73, 73], [192, 80, 3, 3], p([1, 1], [0, 0])),
        l("Mixed_6b.branch7x7_2 1x7", [n, 128, 17, 17], [128, 128, 1, 7], p([1, 1], [0, 3])),
        l("Mixed_7b.branch3x3_2a 1x3", [n, 384, 8, 8], [384, 384, 1, 3], p([1, 1], [0, 1])),
    ]
}
