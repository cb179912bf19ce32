//! FID feature extraction throughput on the `cpu` backend: pytorch-fid's InceptionV3 (2048-d pool3
//! features) on a batch of 50 RGB 299×299 uint8 images, from bytes to features. Criterion's "elem/s" is
//! images per second. Compare with `scripts/fid_throughput.py` (pytorch-fid on CPU) at the same thread
//! count: `RAYON_NUM_THREADS=N cargo bench --bench fid` vs `python3 scripts/fid_throughput.py --threads N`.
//!
//!   cargo bench --bench fid                  (CXR_GAN_BENCH_FID_BATCH=10 for a quicker look)
//!
//! Needs the weights (`$CXR_GAN_FID_WEIGHTS`, else `../shared/weights/pt_inception_fid.safetensors`, else the
//! user cache); without them it says so and measures nothing.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use cxr_gan::backend::cpu::CpuBackend;
use cxr_gan::backend::Backend;
use cxr_gan::fid::inception::{conformance_weights, images_to_unit, InceptionV3};

fn batch() -> usize {
    std::env::var("CXR_GAN_BENCH_FID_BATCH").ok().and_then(|v| v.parse().ok()).unwrap_or(50)
}

fn bench_fid(c: &mut Criterion) {
    let weights = match conformance_weights() {
        Ok(p) => p,
        Err(why) => {
            eprintln!("fid bench skipped: {why}");
            return;
        }
    };
    let cpu = CpuBackend::new();
    let model = InceptionV3::load(&cpu, &weights).expect("the weights load");
    let n = batch();
    let shape = [n, 3, 299, 299];
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let images: Vec<u8> = (0..shape.iter().product::<usize>())
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 56) as u8
        })
        .collect();
    let mut g = c.benchmark_group("fid");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(format!("inception_2048_batch{n}_299px"), |b| {
        b.iter(|| {
            let x = cpu.upload(&images_to_unit(&images, shape).unwrap()).unwrap();
            model.features(&cpu, &x, 2048).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_fid);
criterion_main!(benches);
