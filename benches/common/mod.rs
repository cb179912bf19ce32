//! What the benches share: the backends to bench, the batch size, seeded inputs, a timed call that waits
//! for the device, and (from `cxr_gan::bench::cases`, the list `cxr-gan bench` measures too) the DCGAN's
//! and InceptionV3's convolutions with their FLOP counts.
#![allow(dead_code, unused_imports)]

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId};
use cxr_gan::backend::cube::WgpuBackend;
use cxr_gan::backend::Backend;
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

pub use cxr_gan::bench::cases::{dcgan_convs, inception_convs, ConvLayer};
