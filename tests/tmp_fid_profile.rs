use cxr_gan::backend::cpu::CpuBackend;
use cxr_gan::backend::{Backend, Conv2dParams};
use cxr_gan::fid::inception::{conformance_weights, InceptionV3};
use cxr_gan::Tensor;
fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = s.rsplit_once(')').unwrap().1.split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}
#[test]
fn profile() {
    let b = CpuBackend::new();
    let m = InceptionV3::load(&b, &conformance_weights().unwrap()).unwrap();
    let n: usize = std::env::var("N").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let x = b.full(&[n, 3, 299, 299], 0.5).unwrap();
    let c0 = cpu_secs();
    let t0 = std::time::Instant::now();
    let mut last = t0;
    m.forward_with(&b, &x, 3, |stage, t| {
        let now = std::time::Instant::now();
        println!("{stage:32} {:?} {:.3}s", b.shape(t), (now - last).as_secs_f64());
        last = now;
        Ok(())
    }).unwrap();
    let cpu = cpu_secs() - c0;
    println!("total {:.2}s = {:.2} img/s; cpu {:.2}s = {:.2} img/s per 2 dedicated cores", t0.elapsed().as_secs_f64(), n as f64 / t0.elapsed().as_secs_f64(), cpu, 2.0 * n as f64 / cpu);
    // single ops
    let mut y = Tensor::full(&[n, 64, 147, 147], 0.3);
    let t = std::time::Instant::now();
    let _ = b.max_pool2d(&y, cxr_gan::backend::Pool2dParams::new([3,3],[2,2],[0,0])).unwrap();
    println!("maxpool 147: {:.3}s", t.elapsed().as_secs_f64());
    let s = Tensor::full(&[64], 1.0);
    let t = std::time::Instant::now();
    let _ = b.affine_channels(&mut y, &s, &s, true).unwrap();
    println!("affine 64x147: {:.3}s", t.elapsed().as_secs_f64());
    let x2 = Tensor::full(&[n, 32, 147, 147], 0.3);
    let w = Tensor::full(&[64, 32, 3, 3], 0.01);
    let t = std::time::Instant::now();
    let _ = b.conv2d(&x2, &w, Conv2dParams::new([1,1],[1,1])).unwrap();
    let s = t.elapsed().as_secs_f64();
    println!("conv 2b: {:.3}s  {:.1} GFLOP/s", s, 2.0*(n*64*147*147*288) as f64/s/1e9);
    let x3 = Tensor::full(&[n, 1280, 8, 8], 0.3);
    let w = Tensor::full(&[448, 1280, 1, 1], 0.01);
    let t = std::time::Instant::now();
    let _ = b.conv2d(&x3, &w, Conv2dParams::new([1,1],[0,0])).unwrap();
    let s = t.elapsed().as_secs_f64();
    println!("conv 7b 1x1: {:.3}s  {:.1} GFLOP/s", s, 2.0*(n*448*64*1280) as f64/s/1e9);
    let x4 = Tensor::full(&[n, 768, 17, 17], 0.3);
    let w = Tensor::full(&[192, 768, 1, 1], 0.01);
    let t = std::time::Instant::now();
    let _ = b.conv2d(&x4, &w, Conv2dParams::new([1,1],[0,0])).unwrap();
    let s = t.elapsed().as_secs_f64();
    println!("conv 6b 1x1: {:.3}s  {:.1} GFLOP/s", s, 2.0*(n*192*289*768) as f64/s/1e9);
}
