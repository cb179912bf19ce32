//! Every op of the f32 CPU backend against the f64 oracle (`cxr-gan-reference`), on fresh seeded random
//! inputs, with a poisoned backend (fresh buffers start as NaN, so an element a kernel forgets to write
//! fails the comparison). The inputs are f32 values fed to both sides, so the only difference measured is
//! the backend's own arithmetic: ‖ours − ref‖₂ / ‖ref‖₂ ≤ 1e-5 per output tensor.
//!
//! Also: conv_transpose2d through the trait's provided methods at DCGAN generator shapes, and bad input
//! that must come back as `Error::Shape` naming both shapes, never as a panic.

use cxr_gan::backend::cpu::CpuBackend;
use cxr_gan::backend::{Activation, AdamConfig, Backend, Conv2dParams, NormStats};
use cxr_gan::{Error, Tensor};
use cxr_gan_reference as oracle;
use cxr_gan_reference::Array;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod common;
use common::compare::{assert_close, assert_close_scalar};

const TOL: f64 = 1e-5;


fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Uniform in [lo, hi), as f32 (the values both sides see).
fn rand_tensor(rng: &mut ChaCha8Rng, shape: &[usize], lo: f32, hi: f32) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(shape, (0..n).map(|_| rng.gen_range(lo..hi)).collect()).unwrap()
}

fn arr(t: &Tensor) -> Array {
    Array::new(t.shape(), t.to_f64())
}

fn f64s(t: &Tensor) -> Vec<f64> {
    t.to_f64()
}

fn be() -> CpuBackend {
    CpuBackend::poisoned()
}

// ------------------------------------------------------------------ convolution

/// conv2d, conv2d_bwd_data and conv2d_bwd_weight at one shape against the oracle.
fn check_conv(seed: u64, xs: [usize; 4], ws: [usize; 4], stride: [usize; 2], padding: [usize; 2]) {
    let b = be();
    let mut r = rng(seed);
    let p = Conv2dParams::new(stride, padding);
    let x = rand_tensor(&mut r, &xs, -1.0, 1.0);
    let w = rand_tensor(&mut r, &ws, -1.0, 1.0);
    let tag = format!("x {xs:?} w {ws:?} s {stride:?} p {padding:?}");

    let y = b.conv2d(&x, &w, p).unwrap();
    let y_ref = oracle::conv2d(&arr(&x), &arr(&w), stride, padding);
    assert_eq!(y.shape(), &y_ref.shape[..], "conv2d {tag}");
    assert_close(&format!("conv2d {tag}"), y.data(), &y_ref.data, TOL);

    let dy = rand_tensor(&mut r, &y_ref.shape, -1.0, 1.0);
    let dx = b.conv2d_bwd_data(&dy, &w, xs, p).unwrap();
    let dx_ref = oracle::conv2d_bwd_data(&arr(&dy), &arr(&w), xs, stride, padding);
    assert_eq!(dx.shape(), &xs[..]);
    assert_close(&format!("conv2d_bwd_data {tag}"), dx.data(), &dx_ref.data, TOL);

    let dw = b.conv2d_bwd_weight(&x, &dy, ws, p).unwrap();
    let dw_ref = oracle::conv2d_bwd_weight(&arr(&x), &arr(&dy), ws, stride, padding);
    assert_eq!(dw.shape(), &ws[..]);
    assert_close(&format!("conv2d_bwd_weight {tag}"), dw.data(), &dw_ref.data, TOL);
}

#[test]
fn conv2d_small_shapes() {
    check_conv(1, [2, 3, 7, 9], [4, 3, 3, 3], [1, 1], [1, 1]);
    check_conv(2, [1, 3, 8, 8], [4, 3, 3, 3], [2, 2], [0, 0]);
    check_conv(3, [5, 3, 5, 5], [2, 3, 3, 3], [3, 3], [0, 0]);
    check_conv(4, [2, 3, 10, 13], [5, 3, 4, 4], [2, 2], [1, 1]);
    check_conv(5, [3, 2, 9, 12], [4, 2, 3, 5], [2, 3], [2, 1]);
    // A kernel as large as the padded input, and padding wider than the kernel reach.
    check_conv(6, [2, 2, 3, 4], [3, 2, 5, 6], [1, 1], [1, 1]);
    check_conv(7, [2, 2, 3, 3], [3, 2, 2, 2], [1, 1], [2, 2]);
}

#[test]
fn conv2d_non_square_kernels() {
    // Inception's factorised 1x7 / 7x1 (and 1x3 / 3x1) convolutions keep the spatial size.
    check_conv(11, [3, 5, 11, 8], [6, 5, 1, 7], [1, 1], [0, 3]);
    check_conv(12, [2, 4, 9, 10], [3, 4, 7, 1], [1, 1], [3, 0]);
    check_conv(13, [2, 6, 8, 8], [4, 6, 1, 3], [1, 1], [0, 1]);
    check_conv(14, [2, 6, 8, 8], [4, 6, 3, 1], [2, 1], [1, 0]);
}

#[test]
fn conv2d_pointwise_and_batched_chunks() {
    // 1x1 stride 1: the column matrix is the input itself.
    check_conv(21, [3, 8, 6, 5], [16, 8, 1, 1], [1, 1], [0, 0]);
    check_conv(22, [1, 8, 6, 5], [16, 8, 1, 1], [1, 1], [0, 0]);
    // Tiny outputs: many samples share one GEMM (gather / scatter path).
    check_conv(23, [40, 4, 4, 4], [6, 4, 4, 4], [2, 2], [1, 1]);
    check_conv(24, [37, 8, 4, 4], [16, 8, 4, 4], [1, 1], [0, 0]);
    check_conv(25, [9, 3, 6, 7], [5, 3, 3, 3], [1, 1], [1, 1]);
}

#[test]
fn conv2d_dense_kernels() {
    // A kernel covering the whole unpadded input is a fully connected layer (the discriminator's last conv;
    // as conv_transpose2d, the generator's first), with or without a stride.
    check_conv(26, [5, 8, 4, 4], [3, 8, 4, 4], [1, 1], [0, 0]);
    check_conv(27, [3, 4, 5, 3], [2, 4, 5, 3], [2, 3], [0, 0]);
    check_conv(28, [1, 6, 2, 2], [7, 6, 2, 2], [1, 1], [0, 0]);
}

#[test]
fn conv2d_any_thread_count() {
    // The batch split (chunks, bwd_weight workers, GEMM threads) depends on the pool size: check several.
    for threads in [1, 3, 8] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            check_conv(200 + threads as u64, [12, 16, 8, 8], [32, 16, 4, 4], [2, 2], [1, 1]);
            check_conv(300 + threads as u64, [6, 8, 20, 20], [8, 8, 3, 3], [1, 1], [1, 1]);
            check_conv(400 + threads as u64, [9, 8, 4, 4], [5, 8, 4, 4], [1, 1], [0, 0]);
        });
    }
}

#[test]
fn conv2d_empty_batch() {
    let b = be();
    let p = Conv2dParams::new([2, 2], [1, 1]);
    let x = Tensor::zeros(&[0, 3, 8, 8]);
    let w = Tensor::full(&[4, 3, 4, 4], 1.0);
    assert_eq!(b.conv2d(&x, &w, p).unwrap().shape(), &[0, 4, 4, 4]);
    let dy = Tensor::zeros(&[0, 4, 4, 4]);
    assert_eq!(b.conv2d_bwd_data(&dy, &w, [0, 3, 8, 8], p).unwrap().shape(), &[0, 3, 8, 8]);
    let dw = b.conv2d_bwd_weight(&x, &dy, [4, 3, 4, 4], p).unwrap();
    assert!(dw.data().iter().all(|&v| v == 0.0), "an empty batch contributes no gradient");
}

#[test]
fn conv2d_dcgan_size() {
    // The discriminator's second layer at batch 16.
    check_conv(31, [16, 64, 32, 32], [128, 64, 4, 4], [2, 2], [1, 1]);
}

#[test]
fn conv_transpose2d_dcgan_generator_shapes() {
    let b = be();
    let mut r = rng(41);
    let n = 3;
    // (Cin, Cout, H, stride, padding): 100 → 512 (1x1 → 4x4), then doubling to 3x64x64.
    let layers = [(100, 512, 1, 1, 0), (512, 256, 4, 2, 1), (256, 128, 8, 2, 1), (128, 64, 16, 2, 1), (64, 3, 32, 2, 1)];
    for (cin, cout, h, s, pd) in layers {
        let (stride, padding) = ([s, s], [pd, pd]);
        let p = Conv2dParams::new(stride, padding);
        let x = rand_tensor(&mut r, &[n, cin, h, h], -1.0, 1.0);
        let ws = [cin, cout, 4, 4];
        let w = rand_tensor(&mut r, &ws, -0.1, 0.1);
        let tag = format!("x {:?} w {ws:?} s {s} p {pd}", x.shape());

        let y = b.conv_transpose2d(&x, &w, p).unwrap();
        let y_ref = oracle::conv_transpose2d(&arr(&x), &arr(&w), stride, padding);
        assert_eq!(y.shape(), &y_ref.shape[..], "conv_transpose2d {tag}");
        assert_close(&format!("conv_transpose2d {tag}"), y.data(), &y_ref.data, TOL);

        let dy = rand_tensor(&mut r, &y_ref.shape, -1.0, 1.0);
        let dx = b.conv_transpose2d_bwd_data(&dy, &w, p).unwrap();
        let dx_ref = oracle::conv_transpose2d_bwd_data(&arr(&dy), &arr(&w), stride, padding);
        assert_eq!(dx.shape(), x.shape());
        assert_close(&format!("conv_transpose2d_bwd_data {tag}"), dx.data(), &dx_ref.data, TOL);

        let dw = b.conv_transpose2d_bwd_weight(&x, &dy, ws, p).unwrap();
        let dw_ref = oracle::conv_transpose2d_bwd_weight(&arr(&x), &arr(&dy), ws, stride, padding);
        assert_close(&format!("conv_transpose2d_bwd_weight {tag}"), dw.data(), &dw_ref.data, TOL);
    }
}

#[test]
fn conv_is_deterministic_and_poison_free() {
    // The poisoned and the normal backend must agree bit for bit: no kernel reads memory it did not write.
    let mut r = rng(51);
    let p = Conv2dParams::new([2, 2], [1, 1]);
    let x = rand_tensor(&mut r, &[12, 16, 8, 8], -1.0, 1.0);
    let w = rand_tensor(&mut r, &[32, 16, 4, 4], -1.0, 1.0);
    let dy = rand_tensor(&mut r, &[12, 32, 4, 4], -1.0, 1.0);
    let (a, c) = (CpuBackend::new(), CpuBackend::poisoned());
    assert_eq!(a.conv2d(&x, &w, p).unwrap(), c.conv2d(&x, &w, p).unwrap());
    assert_eq!(a.conv2d_bwd_data(&dy, &w, [12, 16, 8, 8], p).unwrap(), c.conv2d_bwd_data(&dy, &w, [12, 16, 8, 8], p).unwrap());
    assert_eq!(a.conv2d_bwd_weight(&x, &dy, [32, 16, 4, 4], p).unwrap(), c.conv2d_bwd_weight(&x, &dy, [32, 16, 4, 4], p).unwrap());
}

// ------------------------------------------------------------------ normalization

fn stats_ref(s: &NormStats<Tensor>) -> oracle::NormStats {
    oracle::NormStats { mean: f64s(&s.mean), invstd: f64s(&s.invstd) }
}

#[test]
fn batch_norm2d_train_eval_bwd() {
    let b = be();
    for (seed, shape, offset) in [(61u64, [4usize, 3, 5, 7], 0.0f32), (62, [16, 8, 8, 8], 3.0), (63, [2, 5, 1, 1], -1.0)] {
        let mut r = rng(seed);
        let c = shape[1];
        let x = rand_tensor(&mut r, &shape, offset - 2.0, offset + 2.0);
        let gamma = rand_tensor(&mut r, &[c], 0.5, 1.5);
        let beta = rand_tensor(&mut r, &[c], -0.5, 0.5);
        let mut rm = rand_tensor(&mut r, &[c], -0.2, 0.2);
        let mut rv = rand_tensor(&mut r, &[c], 0.5, 1.5);
        let (mut rm_ref, mut rv_ref) = (f64s(&rm), f64s(&rv));
        let (eps, momentum) = (1e-5f32, 0.1f32);
        let tag = format!("{shape:?}");

        let (y, stats) = b.batch_norm2d_train(&x, &gamma, &beta, &mut rm, &mut rv, eps, momentum).unwrap();
        let (y_ref, st_ref) =
            oracle::batch_norm2d_train(&arr(&x), &f64s(&gamma), &f64s(&beta), &mut rm_ref, &mut rv_ref, eps as f64, momentum as f64);
        assert_close(&format!("batch_norm2d_train y {tag}"), y.data(), &y_ref.data, TOL);
        assert_eq!(stats.mean.shape(), &[c]);
        assert_close(&format!("batch_norm2d_train mean {tag}"), stats.mean.data(), &st_ref.mean, TOL);
        assert_close(&format!("batch_norm2d_train invstd {tag}"), stats.invstd.data(), &st_ref.invstd, TOL);
        assert_close(&format!("batch_norm2d_train running_mean {tag}"), rm.data(), &rm_ref, TOL);
        assert_close(&format!("batch_norm2d_train running_var {tag}"), rv.data(), &rv_ref, TOL);

        let y_eval = b.batch_norm2d_eval(&x, &gamma, &beta, &rm, &rv, eps).unwrap();
        let y_eval_ref = oracle::batch_norm2d_eval(&arr(&x), &f64s(&gamma), &f64s(&beta), &f64s(&rm), &f64s(&rv), eps as f64);
        assert_close(&format!("batch_norm2d_eval {tag}"), y_eval.data(), &y_eval_ref.data, TOL);

        let dy = rand_tensor(&mut r, &shape, -1.0, 1.0);
        let g = b.batch_norm2d_bwd(&dy, &x, &gamma, &stats).unwrap();
        let (dx_ref, dg_ref, db_ref) = oracle::batch_norm2d_bwd(&arr(&dy), &arr(&x), &f64s(&gamma), &stats_ref(&stats));
        assert_close(&format!("batch_norm2d_bwd dx {tag}"), g.dx.data(), &dx_ref.data, TOL);
        assert_close(&format!("batch_norm2d_bwd dgamma {tag}"), g.dgamma.data(), &dg_ref, TOL);
        assert_close(&format!("batch_norm2d_bwd dbeta {tag}"), g.dbeta.data(), &db_ref, TOL);
    }
}

#[test]
fn instance_norm2d_fwd_bwd_jvp() {
    let b = be();
    for (seed, shape, offset) in [(71u64, [3usize, 4, 5, 6], 0.0f32), (72, [2, 3, 8, 8], 2.0), (73, [4, 2, 16, 16], -0.5)] {
        let mut r = rng(seed);
        let c = shape[1];
        let x = rand_tensor(&mut r, &shape, offset - 1.0, offset + 1.0);
        let gamma = rand_tensor(&mut r, &[c], 0.5, 1.5);
        let beta = rand_tensor(&mut r, &[c], -0.5, 0.5);
        let eps = 1e-5f32;
        let tag = format!("{shape:?}");
        let (g64, b64) = (f64s(&gamma), f64s(&beta));

        let (y, stats) = b.instance_norm2d(&x, &gamma, &beta, eps).unwrap();
        let (y_ref, st_ref) = oracle::instance_norm2d(&arr(&x), &g64, &b64, eps as f64);
        assert_close(&format!("instance_norm2d y {tag}"), y.data(), &y_ref.data, TOL);
        assert_eq!(stats.mean.shape(), &[shape[0] * c]);
        assert_close(&format!("instance_norm2d mean {tag}"), stats.mean.data(), &st_ref.mean, TOL);
        assert_close(&format!("instance_norm2d invstd {tag}"), stats.invstd.data(), &st_ref.invstd, TOL);
        let st = stats_ref(&stats);

        let dy = rand_tensor(&mut r, &shape, -1.0, 1.0);
        let g = b.instance_norm2d_bwd(&dy, &x, &gamma, &stats).unwrap();
        let (dx_ref, dg_ref, db_ref) = oracle::instance_norm2d_bwd(&arr(&dy), &arr(&x), &g64, &st);
        assert_close(&format!("instance_norm2d_bwd dx {tag}"), g.dx.data(), &dx_ref.data, TOL);
        assert_close(&format!("instance_norm2d_bwd dgamma {tag}"), g.dgamma.data(), &dg_ref, TOL);
        assert_close(&format!("instance_norm2d_bwd dbeta {tag}"), g.dbeta.data(), &db_ref, TOL);

        let x_dot = rand_tensor(&mut r, &shape, -1.0, 1.0);
        let y_dot = b.instance_norm2d_jvp(&x, &x_dot, &gamma, &stats).unwrap();
        let y_dot_ref = oracle::instance_norm2d_jvp(&arr(&x), &arr(&x_dot), &g64, &st);
        assert_close(&format!("instance_norm2d_jvp {tag}"), y_dot.data(), &y_dot_ref.data, TOL);

        let y_bar = rand_tensor(&mut r, &shape, -1.0, 1.0);
        let y_dot_bar = rand_tensor(&mut r, &shape, -1.0, 1.0);
        let j = b.instance_norm2d_jvp_bwd(&x, &x_dot, &gamma, &stats, &y_bar, &y_dot_bar).unwrap();
        let j_ref = oracle::instance_norm2d_jvp_bwd(&arr(&x), &arr(&x_dot), &g64, &st, &arr(&y_bar), &arr(&y_dot_bar));
        assert_close(&format!("instance_norm2d_jvp_bwd x_bar {tag}"), j.x_bar.data(), &j_ref.x_bar.data, TOL);
        assert_close(&format!("instance_norm2d_jvp_bwd x_dot_bar {tag}"), j.x_dot_bar.data(), &j_ref.x_dot_bar.data, TOL);
        assert_close(&format!("instance_norm2d_jvp_bwd dgamma {tag}"), j.dgamma.data(), &j_ref.dgamma, TOL);
        assert_close(&format!("instance_norm2d_jvp_bwd dbeta {tag}"), j.dbeta.data(), &j_ref.dbeta, TOL);
    }
}

// ------------------------------------------------------------------ activations

#[test]
fn activations_fwd_bwd() {
    let b = be();
    let mut r = rng(81);
    let shape = [3, 4, 7, 5];
    let mut x = rand_tensor(&mut r, &shape, -4.0, 4.0);
    // Exact zeros exercise PyTorch's gradient convention at 0; large values the sigmoid's saturation.
    for i in (0..x.len()).step_by(7) {
        x.data_mut()[i] = 0.0;
    }
    x.data_mut()[1] = 40.0;
    x.data_mut()[2] = -40.0;
    let dy = rand_tensor(&mut r, &shape, -1.0, 1.0);
    let acts = [
        (Activation::Relu, oracle::Activation::Relu),
        (Activation::LeakyRelu { slope: 0.2 }, oracle::Activation::LeakyRelu { slope: 0.2f32 as f64 }),
        (Activation::Tanh, oracle::Activation::Tanh),
        (Activation::Sigmoid, oracle::Activation::Sigmoid),
    ];
    for (ours, theirs) in acts {
        let y = b.activation(ours, &x).unwrap();
        let y_ref = oracle::activation(theirs, &arr(&x));
        assert_close(&format!("activation {ours:?}"), y.data(), &y_ref.data, TOL);
        // Both sides differentiate through the same (f32) y.
        let dx = b.activation_bwd(ours, &x, &y, &dy).unwrap();
        let dx_ref = oracle::activation_bwd(theirs, &arr(&x), &arr(&y), &arr(&dy));
        assert_close(&format!("activation_bwd {ours:?}"), dx.data(), &dx_ref.data, TOL);
        if !matches!(ours, Activation::Tanh | Activation::Sigmoid) {
            for (i, &v) in x.data().iter().enumerate() {
                if v == 0.0 {
                    let expect = if let Activation::LeakyRelu { slope } = ours { slope * dy.data()[i] } else { 0.0 };
                    assert_eq!(dx.data()[i], expect, "{ours:?} gradient at exactly 0");
                }
            }
        }
    }
}

// ------------------------------------------------------------------ losses

#[test]
fn bce_and_bce_logits() {
    let b = be();
    let mut r = rng(91);
    let shape = [64, 1, 1, 1];
    let mut p = rand_tensor(&mut r, &shape, 0.0, 1.0);
    let t = Tensor::new(&shape, (0..64).map(|i| if i % 3 == 0 { 1.0 } else if i % 3 == 1 { 0.0 } else { 0.9 }).collect()).unwrap();
    // Saturated probabilities: the clamps at −100 and 1e-12 keep both the loss and the gradient finite.
    p.data_mut()[0] = 0.0;
    p.data_mut()[1] = 1.0;
    p.data_mut()[3] = 1.0;
    let (loss, dp) = b.bce(&p, &t).unwrap();
    let (loss_ref, dp_ref) = oracle::bce(&arr(&p), &arr(&t));
    assert_close_scalar("bce loss", loss, loss_ref, TOL);
    assert_close("bce dp", dp.data(), &dp_ref.data, TOL);

    let z = rand_tensor(&mut r, &shape, -30.0, 30.0);
    let (loss, dz) = b.bce_logits(&z, &t).unwrap();
    let (loss_ref, dz_ref) = oracle::bce_logits(&arr(&z), &arr(&t));
    assert_close_scalar("bce_logits loss", loss, loss_ref, TOL);
    assert_close("bce_logits dz", dz.data(), &dz_ref.data, TOL);
}

#[test]
fn gradient_penalty_head_matches_f64() {
    let b = be();
    let mut r = rng(101);
    let shape = [6, 3, 8, 8];
    let mut g = rand_tensor(&mut r, &shape, -0.05, 0.05);
    // One sample with a zero gradient: v must be 0 there (PyTorch's norm subgradient), not NaN.
    let per = 3 * 8 * 8;
    g.data_mut()[2 * per..3 * per].fill(0.0);
    let lambda = 10.0f32;
    let head = b.gradient_penalty_head(&g, lambda).unwrap();

    let gd = f64s(&g);
    let n = shape[0];
    let norms: Vec<f64> = gd.chunks(per).map(|s| s.iter().map(|v| v * v).sum::<f64>().sqrt()).collect();
    let gp = lambda as f64 * norms.iter().map(|r| (r - 1.0) * (r - 1.0)).sum::<f64>() / n as f64;
    let v: Vec<f64> = gd
        .chunks(per)
        .zip(&norms)
        .flat_map(|(s, &r)| s.iter().map(move |&x| if r > 0.0 { 2.0 * lambda as f64 * (r - 1.0) * x / r / n as f64 } else { 0.0 }))
        .collect();
    assert_close_scalar("gradient_penalty_head gp", head.gp, gp, TOL);
    assert_close("gradient_penalty_head grad_norm", &head.grad_norm.iter().map(|&v| v as f32).collect::<Vec<_>>(), &norms, TOL);
    assert_close("gradient_penalty_head v", head.v.data(), &v, TOL);
    assert!(head.v.data()[2 * per..3 * per].iter().all(|&x| x == 0.0));
}

// ------------------------------------------------------------------ optimizer

#[test]
fn adam_matches_torch_formula() {
    let b = be();
    let mut r = rng(111);
    let shape = [7, 5, 3, 3];
    let cfg = AdamConfig { lr: 2e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8 };
    let cfg_ref = oracle::AdamConfig { lr: cfg.lr, beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps };
    let mut p = rand_tensor(&mut r, &shape, -1.0, 1.0);
    let mut m = b.zeros(&shape).unwrap();
    let mut v = b.zeros(&shape).unwrap();
    let (mut p_ref, mut m_ref, mut v_ref) = (f64s(&p), f64s(&m), f64s(&v));
    for step in 1..=5u64 {
        let g = rand_tensor(&mut r, &shape, -1.0, 1.0);
        b.adam_step(&mut p, &g, &mut m, &mut v, &cfg, step).unwrap();
        oracle::adam_step(&mut p_ref, &f64s(&g), &mut m_ref, &mut v_ref, &cfg_ref, step);
        // The update lr·m̂/denom is ~1e-4 of the parameter: check it, not just the (nearly unchanged) param.
        assert_close(&format!("adam exp_avg step {step}"), m.data(), &m_ref, TOL);
        assert_close(&format!("adam exp_avg_sq step {step}"), v.data(), &v_ref, TOL);
        assert_close(&format!("adam param step {step}"), p.data(), &p_ref, TOL);
    }
    // The accumulated update p − p0 itself, to 1e-3 of its size: p is f32 near 1, so p − p0 (~1e-3) only
    // keeps ~4 significant digits of f32 rounding; this catches a wrong step size the param check cannot.
    let mut r0 = rng(111);
    let p0 = rand_tensor(&mut r0, &shape, -1.0, 1.0);
    let upd: Vec<f32> = p.data().iter().zip(p0.data()).map(|(a, b)| a - b).collect();
    let upd_ref: Vec<f64> = p_ref.iter().zip(p0.data()).map(|(a, &b)| a - b as f64).collect();
    assert_close("adam accumulated update", &upd, &upd_ref, 1e-3);
}

// ------------------------------------------------------------------ elementwise and memory

#[test]
fn elementwise_and_memory() {
    let b = be();
    let mut r = rng(121);
    let shape = [5, 3, 4, 6];
    let x = rand_tensor(&mut r, &shape, -1.0, 1.0);
    let y = rand_tensor(&mut r, &shape, -1.0, 1.0);
    let (xd, yd) = (f64s(&x), f64s(&y));

    let s = b.add(&x, &y).unwrap();
    assert_close("add", s.data(), &xd.iter().zip(&yd).map(|(a, b)| a + b).collect::<Vec<_>>(), TOL);
    let mut acc = x.clone();
    b.add_assign(&mut acc, &y).unwrap();
    assert_eq!(acc, s);
    let sc = b.scale(&x, -0.25).unwrap();
    assert_close("scale", sc.data(), &xd.iter().map(|a| -0.25 * a).collect::<Vec<_>>(), TOL);

    let alpha = [0.0f32, 1.0, 0.3, 0.75, 0.5];
    let l = b.lerp_per_sample(&x, &y, &alpha).unwrap();
    let per = 3 * 4 * 6;
    let l_ref: Vec<f64> =
        (0..xd.len()).map(|i| { let a = alpha[i / per] as f64; a * xd[i] + (1.0 - a) * yd[i] }).collect();
    assert_close("lerp_per_sample", l.data(), &l_ref, TOL);
    assert_eq!(&l.data()[..per], &y.data()[..per], "alpha 0 is b");
    assert_eq!(&l.data()[per..2 * per], &x.data()[per..2 * per], "alpha 1 is a");

    let mean = b.mean(&x).unwrap();
    assert_close_scalar("mean", mean, xd.iter().sum::<f64>() / xd.len() as f64, TOL);

    let f = b.full(&[2, 3], 1.5).unwrap();
    assert_eq!(b.shape(&f), vec![2, 3]);
    assert!(f.data().iter().all(|&v| v == 1.5));
    assert!(b.zeros(&[4]).unwrap().data().iter().all(|&v| v == 0.0));
    let rs = b.reshape(&x, &[15, 24]).unwrap();
    assert_eq!(b.shape(&rs), vec![15, 24]);
    assert_eq!(rs.data(), x.data());
    assert_eq!(b.download(&b.upload(&x).unwrap()).unwrap(), x);
    assert_eq!(b.name(), "cpu");
}

// ------------------------------------------------------------------ bad input

/// `r` must be `Error::Shape` whose message names every string in `names` (shapes as `[a, b, ..]`).
fn assert_shape_err<T: std::fmt::Debug>(what: &str, r: cxr_gan::Result<T>, names: &[&str]) {
    match r {
        Err(e @ Error::Shape { .. }) => {
            let msg = e.to_string();
            println!("{what}: {msg}");
            for n in names {
                assert!(msg.contains(n), "{what}: message {msg:?} does not name {n}");
            }
        }
        other => panic!("{what}: expected Error::Shape, got {other:?}"),
    }
}

#[test]
fn bad_input_is_a_shape_error() {
    let b = be();
    let mut r = rng(131);
    let p = Conv2dParams::new([1, 1], [0, 0]);
    let x = rand_tensor(&mut r, &[2, 3, 8, 8], -1.0, 1.0);
    let w_bad_c = rand_tensor(&mut r, &[4, 5, 3, 3], -1.0, 1.0);
    assert_shape_err("conv2d channels", b.conv2d(&x, &w_bad_c, p), &["[2, 3, 8, 8]", "[4, 5, 3, 3]"]);

    let w_big = rand_tensor(&mut r, &[4, 3, 9, 3], -1.0, 1.0);
    assert_shape_err("conv2d kernel too large", b.conv2d(&x, &w_big, p), &["[2, 3, 8, 8]", "[4, 3, 9, 3]"]);

    let w = rand_tensor(&mut r, &[4, 3, 3, 3], -1.0, 1.0);
    let dy_bad = rand_tensor(&mut r, &[2, 4, 5, 6], -1.0, 1.0);
    assert_shape_err("conv2d_bwd_data dy", b.conv2d_bwd_data(&dy_bad, &w, [2, 3, 8, 8], p), &["[2, 4, 5, 6]", "[2, 4, 6, 6]"]);
    assert_shape_err("conv2d_bwd_weight dy", b.conv2d_bwd_weight(&x, &dy_bad, [4, 3, 3, 3], p), &["[2, 4, 5, 6]", "[2, 4, 6, 6]"]);
    let x3 = rand_tensor(&mut r, &[2, 3, 8], -1.0, 1.0);
    assert_shape_err("conv2d 3-d x", b.conv2d(&x3, &w, p), &["[2, 3, 8]"]);
    let wt = rand_tensor(&mut r, &[5, 2, 4, 4], -1.0, 1.0);
    assert_shape_err("conv_transpose2d channels", b.conv_transpose2d(&x, &wt, p), &["[2, 3, 8, 8]", "[5, 2, 4, 4]"]);

    let gamma_bad = b.full(&[4], 1.0).unwrap();
    let beta = b.full(&[3], 0.0).unwrap();
    let (mut rm, mut rv) = (b.zeros(&[3]).unwrap(), b.full(&[3], 1.0).unwrap());
    assert_shape_err(
        "batch_norm2d_train gamma",
        b.batch_norm2d_train(&x, &gamma_bad, &beta, &mut rm, &mut rv, 1e-5, 0.1),
        &["[4]", "[2, 3, 8, 8]"],
    );
    let gamma = b.full(&[3], 1.0).unwrap();
    let mut rv_bad = b.full(&[2], 1.0).unwrap();
    assert_shape_err(
        "batch_norm2d_train running_var",
        b.batch_norm2d_train(&x, &gamma, &beta, &mut rm, &mut rv_bad, 1e-5, 0.1),
        &["[2]", "[2, 3, 8, 8]"],
    );
    assert_shape_err("instance_norm2d beta", b.instance_norm2d(&x, &gamma, &gamma_bad, 1e-5), &["[4]", "[2, 3, 8, 8]"]);
    let (_, bn_stats) = b.batch_norm2d_train(&x, &gamma, &beta, &mut rm, &mut rv, 1e-5, 0.1).unwrap();
    let dy_x = rand_tensor(&mut r, &[2, 3, 8, 8], -1.0, 1.0);
    assert_shape_err("instance_norm2d_bwd with [C] stats", b.instance_norm2d_bwd(&dy_x, &x, &gamma, &bn_stats), &["[3]", "[2, 3, 8, 8]"]);
    let dy_short = rand_tensor(&mut r, &[2, 3, 8, 7], -1.0, 1.0);
    assert_shape_err("batch_norm2d_bwd dy", b.batch_norm2d_bwd(&dy_short, &x, &gamma, &bn_stats), &["[2, 3, 8, 7]", "[2, 3, 8, 8]"]);

    assert_shape_err("add", b.add(&x, &dy_short), &["[2, 3, 8, 8]", "[2, 3, 8, 7]"]);
    assert_shape_err("lerp_per_sample alpha", b.lerp_per_sample(&x, &x, &[0.5; 3]), &["[2, 3, 8, 8]"]);
    assert_shape_err("reshape", b.reshape(&x, &[5, 5]), &["[2, 3, 8, 8]", "[5, 5]"]);
    assert_shape_err("activation_bwd", b.activation_bwd(Activation::Relu, &x, &x, &dy_short), &["[2, 3, 8, 7]", "[2, 3, 8, 8]"]);
    assert_shape_err("bce", b.bce(&x, &dy_short), &["[2, 3, 8, 8]", "[2, 3, 8, 7]"]);
    let cfg = AdamConfig { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    let (mut pp, mut m, mut v) = (x.clone(), x.clone(), x.clone());
    assert_shape_err("adam_step grad", b.adam_step(&mut pp, &dy_short, &mut m, &mut v, &cfg, 1), &["[2, 3, 8, 8]", "[2, 3, 8, 7]"]);
}
