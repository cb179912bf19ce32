//! Every op of the `cube` backend (our CubeCL kernels) against the f64 oracle (`cxr-gan-reference`), on
//! fresh seeded random inputs, on a poisoned backend (fresh output buffers start as NaN, so an element a
//! kernel forgets to write fails the comparison): ‖ours − ref‖₂ / ‖ref‖₂ ≤ 1e-5 per output tensor.
//!
//! The same checks are instantiated twice: on CubeCL's wgpu runtime (in CI: Mesa's lavapipe, a CPU Vulkan
//! driver, so the shapes stay small) and on its CUDA runtime. A runtime without a device here prints why
//! and skips. Bad input must come back as the same `Error::Shape` the cpu backend gives, never a panic.

use cubecl::Runtime;
use cxr_gan::backend::cpu::CpuBackend;
use cxr_gan::backend::cube::{CubeBackend, CubeTensor, CudaBackend, WgpuBackend};
use cxr_gan::backend::{Activation, AdamConfig, Backend, Conv2dParams, NormStats, Pool2dParams};
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

/// The device side of a test: upload / download on one backend.
struct Dev<'a, R: Runtime>(&'a CubeBackend<R>);

impl<R: Runtime> Dev<'_, R> {
    fn up(&self, t: &Tensor) -> CubeTensor {
        self.0.upload(t).unwrap()
    }
    fn down(&self, t: &CubeTensor) -> Tensor {
        self.0.download(t).unwrap()
    }
}

fn wgpu_backend() -> Option<WgpuBackend> {
    match WgpuBackend::wgpu() {
        Ok(b) => Some(b.poisoned()),
        Err(e) => {
            println!("skipped: {e}");
            None
        }
    }
}

fn cuda_backend() -> Option<CudaBackend> {
    match CudaBackend::cuda() {
        Ok(b) => Some(b.poisoned()),
        Err(e) => {
            println!("skipped: {e}");
            None
        }
    }
}

// ------------------------------------------------------------------ convolution

/// conv2d, conv2d_bwd_data and conv2d_bwd_weight at one shape against the oracle.
fn check_conv<R: Runtime>(b: &CubeBackend<R>, seed: u64, xs: [usize; 4], ws: [usize; 4], stride: [usize; 2], padding: [usize; 2]) {
    let d = Dev(b);
    let mut r = rng(seed);
    let p = Conv2dParams::new(stride, padding);
    let x = rand_tensor(&mut r, &xs, -1.0, 1.0);
    let w = rand_tensor(&mut r, &ws, -1.0, 1.0);
    let tag = format!("x {xs:?} w {ws:?} s {stride:?} p {padding:?}");

    let y = d.down(&b.conv2d(&d.up(&x), &d.up(&w), p).unwrap());
    let y_ref = oracle::conv2d(&arr(&x), &arr(&w), stride, padding);
    assert_eq!(y.shape(), &y_ref.shape[..], "conv2d {tag}");
    assert_close(&format!("conv2d {tag}"), y.data(), &y_ref.data, TOL);

    let dy = rand_tensor(&mut r, &y_ref.shape, -1.0, 1.0);
    let dx = d.down(&b.conv2d_bwd_data(&d.up(&dy), &d.up(&w), xs, p).unwrap());
    let dx_ref = oracle::conv2d_bwd_data(&arr(&dy), &arr(&w), xs, stride, padding);
    assert_eq!(dx.shape(), &xs[..]);
    assert_close(&format!("conv2d_bwd_data {tag}"), dx.data(), &dx_ref.data, TOL);

    let dw = d.down(&b.conv2d_bwd_weight(&d.up(&x), &d.up(&dy), ws, p).unwrap());
    let dw_ref = oracle::conv2d_bwd_weight(&arr(&x), &arr(&dy), ws, stride, padding);
    assert_eq!(dw.shape(), &ws[..]);
    assert_close(&format!("conv2d_bwd_weight {tag}"), dw.data(), &dw_ref.data, TOL);
}

fn conv2d_small_shapes<R: Runtime>(b: &CubeBackend<R>) {
    check_conv(b, 1, [2, 3, 7, 9], [4, 3, 3, 3], [1, 1], [1, 1]);
    check_conv(b, 2, [1, 3, 8, 8], [4, 3, 3, 3], [2, 2], [0, 0]);
    check_conv(b, 3, [5, 3, 5, 5], [2, 3, 3, 3], [3, 3], [0, 0]);
    check_conv(b, 4, [2, 3, 10, 13], [5, 3, 4, 4], [2, 2], [1, 1]);
    check_conv(b, 5, [3, 2, 9, 12], [4, 2, 3, 5], [2, 3], [2, 1]);
    // A kernel as large as the padded input, and padding wider than the kernel reach.
    check_conv(b, 6, [2, 2, 3, 4], [3, 2, 5, 6], [1, 1], [1, 1]);
    check_conv(b, 7, [2, 2, 3, 3], [3, 2, 2, 2], [1, 1], [2, 2]);
    // A stride larger than the kernel: some input positions get no tap (a phase of zeros).
    check_conv(b, 8, [2, 3, 9, 9], [4, 3, 2, 2], [3, 3], [0, 0]);
}

fn conv2d_non_square_kernels<R: Runtime>(b: &CubeBackend<R>) {
    // Inception's factorised 1x7 / 7x1 (and 1x3 / 3x1) convolutions keep the spatial size.
    check_conv(b, 11, [3, 5, 11, 8], [6, 5, 1, 7], [1, 1], [0, 3]);
    check_conv(b, 12, [2, 4, 9, 10], [3, 4, 7, 1], [1, 1], [3, 0]);
    check_conv(b, 14, [2, 6, 8, 8], [4, 6, 3, 1], [2, 1], [1, 0]);
}

fn conv2d_pointwise_dense_and_tiled<R: Runtime>(b: &CubeBackend<R>) {
    check_conv(b, 21, [3, 8, 6, 5], [16, 8, 1, 1], [1, 1], [0, 0]);
    // A kernel covering the whole unpadded input is a fully connected layer (the discriminator's last).
    check_conv(b, 26, [5, 8, 4, 4], [3, 8, 4, 4], [1, 1], [0, 0]);
    check_conv(b, 27, [3, 4, 5, 3], [2, 4, 5, 3], [2, 3], [0, 0]);
    // More than one tile along every axis (rows > 64, columns > 64, K > 16 with a ragged last step), and a
    // batch reduction long enough that conv2d_bwd_weight splits it (8·8·8 = 512 positions → 2 chunks).
    check_conv(b, 28, [2, 70, 5, 5], [80, 70, 3, 3], [1, 1], [1, 1]);
    check_conv(b, 29, [8, 16, 16, 16], [32, 16, 4, 4], [2, 2], [1, 1]);
    // Few output tiles over a long reduction: conv2d and conv2d_bwd_data split K (the discriminator's last
    // layer has O = 1 and K = 8192; here K = 1024 → 4 splits).
    check_conv(b, 30, [3, 64, 4, 4], [2, 64, 4, 4], [1, 1], [0, 0]);
    // Outputs of 16 rows or fewer take the 16-row tile; 17 rows the 64-row one.
    check_conv(b, 31, [2, 16, 9, 9], [16, 16, 3, 3], [1, 1], [1, 1]);
    check_conv(b, 32, [2, 17, 9, 9], [17, 17, 3, 3], [2, 2], [1, 1]);
}

fn conv2d_empty_batch<R: Runtime>(b: &CubeBackend<R>) {
    let d = Dev(b);
    let p = Conv2dParams::new([2, 2], [1, 1]);
    let x = d.up(&Tensor::zeros(&[0, 3, 8, 8]));
    let w = d.up(&Tensor::full(&[4, 3, 4, 4], 1.0));
    assert_eq!(b.shape(&b.conv2d(&x, &w, p).unwrap()), vec![0, 4, 4, 4]);
    let dy = d.up(&Tensor::zeros(&[0, 4, 4, 4]));
    assert_eq!(b.shape(&b.conv2d_bwd_data(&dy, &w, [0, 3, 8, 8], p).unwrap()), vec![0, 3, 8, 8]);
    let dw = d.down(&b.conv2d_bwd_weight(&x, &dy, [4, 3, 4, 4], p).unwrap());
    assert!(dw.data().iter().all(|&v| v == 0.0), "an empty batch contributes no gradient");
}

fn conv_transpose2d_dcgan_generator_shapes<R: Runtime>(b: &CubeBackend<R>) {
    let d = Dev(b);
    let mut r = rng(41);
    let n = 2;
    // (Cin, Cout, H, stride, padding): 100 → 512 (1x1 → 4x4), then doubling to 3x64x64 (narrowed to keep
    // lavapipe fast; the full widths run in benches/cube_ops.rs).
    let layers = [(100, 128, 1, 1, 0), (128, 64, 4, 2, 1), (64, 32, 8, 2, 1), (32, 3, 32, 2, 1)];
    for (cin, cout, h, s, pd) in layers {
        let (stride, padding) = ([s, s], [pd, pd]);
        let p = Conv2dParams::new(stride, padding);
        let x = rand_tensor(&mut r, &[n, cin, h, h], -1.0, 1.0);
        let ws = [cin, cout, 4, 4];
        let w = rand_tensor(&mut r, &ws, -0.1, 0.1);
        let tag = format!("x {:?} w {ws:?} s {s} p {pd}", x.shape());
        let (xd, wd) = (d.up(&x), d.up(&w));

        let y = d.down(&b.conv_transpose2d(&xd, &wd, p).unwrap());
        let y_ref = oracle::conv_transpose2d(&arr(&x), &arr(&w), stride, padding);
        assert_eq!(y.shape(), &y_ref.shape[..], "conv_transpose2d {tag}");
        assert_close(&format!("conv_transpose2d {tag}"), y.data(), &y_ref.data, TOL);

        let dy = rand_tensor(&mut r, &y_ref.shape, -1.0, 1.0);
        let dyd = d.up(&dy);
        let dx = d.down(&b.conv_transpose2d_bwd_data(&dyd, &wd, p).unwrap());
        let dx_ref = oracle::conv_transpose2d_bwd_data(&arr(&dy), &arr(&w), stride, padding);
        assert_eq!(dx.shape(), x.shape());
        assert_close(&format!("conv_transpose2d_bwd_data {tag}"), dx.data(), &dx_ref.data, TOL);

        let dw = d.down(&b.conv_transpose2d_bwd_weight(&xd, &dyd, ws, p).unwrap());
        let dw_ref = oracle::conv_transpose2d_bwd_weight(&arr(&x), &arr(&dy), ws, stride, padding);
        assert_close(&format!("conv_transpose2d_bwd_weight {tag}"), dw.data(), &dw_ref.data, TOL);
    }
}

fn conv_is_deterministic_and_poison_free<R: Runtime>(b: &CubeBackend<R>) {
    // A poisoned and a normal backend must agree bit for bit: no kernel reads memory it did not write.
    let plain = b.clone().unpoisoned();
    let poisoned = b.clone().poisoned();
    let mut r = rng(51);
    let p = Conv2dParams::new([2, 2], [1, 1]);
    let x = rand_tensor(&mut r, &[6, 16, 16, 16], -1.0, 1.0);
    let w = rand_tensor(&mut r, &[32, 16, 4, 4], -1.0, 1.0);
    let dy = rand_tensor(&mut r, &[6, 32, 8, 8], -1.0, 1.0);
    let run = |be: &CubeBackend<R>| {
        let d = Dev(be);
        let (x, w, dy) = (d.up(&x), d.up(&w), d.up(&dy));
        (
            d.down(&be.conv2d(&x, &w, p).unwrap()),
            d.down(&be.conv2d_bwd_data(&dy, &w, [6, 16, 16, 16], p).unwrap()),
            d.down(&be.conv2d_bwd_weight(&x, &dy, [32, 16, 4, 4], p).unwrap()),
        )
    };
    assert_eq!(run(&plain), run(&poisoned));
}

// ------------------------------------------------------------------ normalization

fn stats_ref<R: Runtime>(d: &Dev<R>, s: &NormStats<CubeTensor>) -> oracle::NormStats {
    oracle::NormStats { mean: f64s(&d.down(&s.mean)), invstd: f64s(&d.down(&s.invstd)) }
}

fn batch_norm2d_train_eval_bwd<R: Runtime>(b: &CubeBackend<R>) {
    let d = Dev(b);
    for (seed, shape, offset) in [(61u64, [4usize, 3, 5, 7], 0.0f32), (62, [16, 8, 8, 8], 3.0), (63, [2, 5, 1, 1], -1.0)] {
        let mut r = rng(seed);
        let c = shape[1];
        let x = rand_tensor(&mut r, &shape, offset - 2.0, offset + 2.0);
        let gamma = rand_tensor(&mut r, &[c], 0.5, 1.5);
        let beta = rand_tensor(&mut r, &[c], -0.5, 0.5);
        let rm0 = rand_tensor(&mut r, &[c], -0.2, 0.2);
        let rv0 = rand_tensor(&mut r, &[c], 0.5, 1.5);
        let (mut rm_ref, mut rv_ref) = (f64s(&rm0), f64s(&rv0));
        let (eps, momentum) = (1e-5f32, 0.1f32);
        let tag = format!("{shape:?}");
        let (xd, gd, bd) = (d.up(&x), d.up(&gamma), d.up(&beta));
        let (mut rm, mut rv) = (d.up(&rm0), d.up(&rv0));
        let rm_alias = rm.clone();

        let (y, stats) = b.batch_norm2d_train(&xd, &gd, &bd, &mut rm, &mut rv, eps, momentum).unwrap();
        let (y_ref, st_ref) =
            oracle::batch_norm2d_train(&arr(&x), &f64s(&gamma), &f64s(&beta), &mut rm_ref, &mut rv_ref, eps as f64, momentum as f64);
        assert_close(&format!("batch_norm2d_train y {tag}"), d.down(&y).data(), &y_ref.data, TOL);
        assert_eq!(b.shape(&stats.mean), vec![c]);
        assert_close(&format!("batch_norm2d_train mean {tag}"), d.down(&stats.mean).data(), &st_ref.mean, TOL);
        assert_close(&format!("batch_norm2d_train invstd {tag}"), d.down(&stats.invstd).data(), &st_ref.invstd, TOL);
        assert_close(&format!("batch_norm2d_train running_mean {tag}"), d.down(&rm).data(), &rm_ref, TOL);
        assert_close(&format!("batch_norm2d_train running_var {tag}"), d.down(&rv).data(), &rv_ref, TOL);
        assert_eq!(d.down(&rm_alias), rm0, "a clone of the running mean is not changed by the update");

        let y_eval = b.batch_norm2d_eval(&xd, &gd, &bd, &rm, &rv, eps).unwrap();
        let (rm_now, rv_now) = (d.down(&rm), d.down(&rv));
        let y_eval_ref =
            oracle::batch_norm2d_eval(&arr(&x), &f64s(&gamma), &f64s(&beta), &f64s(&rm_now), &f64s(&rv_now), eps as f64);
        assert_close(&format!("batch_norm2d_eval {tag}"), d.down(&y_eval).data(), &y_eval_ref.data, TOL);

        let dy = rand_tensor(&mut r, &shape, -1.0, 1.0);
        let g = b.batch_norm2d_bwd(&d.up(&dy), &xd, &gd, &stats).unwrap();
        let (dx_ref, dg_ref, db_ref) = oracle::batch_norm2d_bwd(&arr(&dy), &arr(&x), &f64s(&gamma), &stats_ref(&d, &stats));
        assert_close(&format!("batch_norm2d_bwd dx {tag}"), d.down(&g.dx).data(), &dx_ref.data, TOL);
        assert_close(&format!("batch_norm2d_bwd dgamma {tag}"), d.down(&g.dgamma).data(), &dg_ref, TOL);
        assert_close(&format!("batch_norm2d_bwd dbeta {tag}"), d.down(&g.dbeta).data(), &db_ref, TOL);
    }
}

fn instance_norm2d_fwd_bwd_jvp<R: Runtime>(b: &CubeBackend<R>) {
    let d = Dev(b);
    for (seed, shape, offset) in [(71u64, [3usize, 4, 5, 6], 0.0f32), (72, [2, 3, 8, 8], 2.0), (73, [4, 2, 24, 24], -0.5)] {
        let mut r = rng(seed);
        let c = shape[1];
        let x = rand_tensor(&mut r, &shape, offset - 1.0, offset + 1.0);
        let gamma = rand_tensor(&mut r, &[c], 0.5, 1.5);
        let beta = rand_tensor(&mut r, &[c], -0.5, 0.5);
        let eps = 1e-5f32;
        let tag = format!("{shape:?}");
        let (g64, b64) = (f64s(&gamma), f64s(&beta));
        let (xd, gd, bd) = (d.up(&x), d.up(&gamma), d.up(&beta));

        let (y, stats) = b.instance_norm2d(&xd, &gd, &bd, eps).unwrap();
        let (y_ref, st_ref) = oracle::instance_norm2d(&arr(&x), &g64, &b64, eps as f64);
        assert_close(&format!("instance_norm2d y {tag}"), d.down(&y).data(), &y_ref.data, TOL);
        assert_eq!(b.shape(&stats.mean), vec![shape[0] * c]);
        assert_close(&format!("instance_norm2d mean {tag}"), d.down(&stats.mean).data(), &st_ref.mean, TOL);
        assert_close(&format!("instance_norm2d invstd {tag}"), d.down(&stats.invstd).data(), &st_ref.invstd, TOL);
        let st = stats_ref(&d, &stats);

        let dy = rand_tensor(&mut r, &shape, -1.0, 1.0);
        let g = b.instance_norm2d_bwd(&d.up(&dy), &xd, &gd, &stats).unwrap();
        let (dx_ref, dg_ref, db_ref) = oracle::instance_norm2d_bwd(&arr(&dy), &arr(&x), &g64, &st);
        assert_close(&format!("instance_norm2d_bwd dx {tag}"), d.down(&g.dx).data(), &dx_ref.data, TOL);
        assert_close(&format!("instance_norm2d_bwd dgamma {tag}"), d.down(&g.dgamma).data(), &dg_ref, TOL);
        assert_close(&format!("instance_norm2d_bwd dbeta {tag}"), d.down(&g.dbeta).data(), &db_ref, TOL);

        let x_dot = rand_tensor(&mut r, &shape, -1.0, 1.0);
        let xdd = d.up(&x_dot);
        let y_dot = b.instance_norm2d_jvp(&xd, &xdd, &gd, &stats).unwrap();
        let y_dot_ref = oracle::instance_norm2d_jvp(&arr(&x), &arr(&x_dot), &g64, &st);
        assert_close(&format!("instance_norm2d_jvp {tag}"), d.down(&y_dot).data(), &y_dot_ref.data, TOL);

        let y_bar = rand_tensor(&mut r, &shape, -1.0, 1.0);
        let y_dot_bar = rand_tensor(&mut r, &shape, -1.0, 1.0);
        let j = b.instance_norm2d_jvp_bwd(&xd, &xdd, &gd, &stats, &d.up(&y_bar), &d.up(&y_dot_bar)).unwrap();
        let j_ref = oracle::instance_norm2d_jvp_bwd(&arr(&x), &arr(&x_dot), &g64, &st, &arr(&y_bar), &arr(&y_dot_bar));
        assert_close(&format!("instance_norm2d_jvp_bwd x_bar {tag}"), d.down(&j.x_bar).data(), &j_ref.x_bar.data, TOL);
        assert_close(&format!("instance_norm2d_jvp_bwd x_dot_bar {tag}"), d.down(&j.x_dot_bar).data(), &j_ref.x_dot_bar.data, TOL);
        assert_close(&format!("instance_norm2d_jvp_bwd dgamma {tag}"), d.down(&j.dgamma).data(), &j_ref.dgamma, TOL);
        assert_close(&format!("instance_norm2d_jvp_bwd dbeta {tag}"), d.down(&j.dbeta).data(), &j_ref.dbeta, TOL);
    }
}

// ------------------------------------------------------------------ activations

fn activations_fwd_bwd<R: Runtime>(b: &CubeBackend<R>) {
    let d = Dev(b);
    let mut r = rng(81);
    let shape = [3, 4, 7, 5];
    let mut x = rand_tensor(&mut r, &shape, -4.0, 4.0);
    // Exact zeros exercise PyTorch's gradient convention at 0; large values the saturation; tiny ones
    // tanh's small-argument branch.
    for i in (0..x.len()).step_by(7) {
        x.data_mut()[i] = 0.0;
    }
    x.data_mut()[1] = 40.0;
    x.data_mut()[2] = -40.0;
    x.data_mut()[3] = 1e-3;
    x.data_mut()[4] = -0.05;
    let dy = rand_tensor(&mut r, &shape, -1.0, 1.0);
    let acts = [
        (Activation::Relu, oracle::Activation::Relu),
        (Activation::LeakyRelu { slope: 0.2 }, oracle::Activation::LeakyRelu { slope: 0.2f32 as f64 }),
        (Activation::Tanh, oracle::Activation::Tanh),
        (Activation::Sigmoid, oracle::Activation::Sigmoid),
    ];
    let (xd, dyd) = (d.up(&x), d.up(&dy));
    for (ours, theirs) in acts {
        let yd = b.activation(ours, &xd).unwrap();
        let y = d.down(&yd);
        let y_ref = oracle::activation(theirs, &arr(&x));
        assert_close(&format!("activation {ours:?}"), y.data(), &y_ref.data, TOL);
        // Elementwise too: every element within a few f32 ulps of the oracle.
        for (i, (&o, &t)) in y.data().iter().zip(&y_ref.data).enumerate() {
            assert!((o as f64 - t).abs() <= 4e-7 * t.abs().max(1e-30) + 1e-37, "activation {ours:?} at x = {}: {o} vs {t}", x.data()[i]);
        }
        let dx = d.down(&b.activation_bwd(ours, &xd, &yd, &dyd).unwrap());
        let dx_ref = oracle::activation_bwd(theirs, &arr(&x), &arr(&y), &arr(&dy));
        assert_close(&format!("activation_bwd {ours:?}"), dx.data(), &dx_ref.data, TOL);
        // NaN in, as the cpu backend: relu gives 0 (`x > 0` is false), the others NaN.
        let nan = Tensor::new(&[1, 1, 1, 3], vec![f32::NAN, 1.0, -1.0]).unwrap();
        let ours_nan = d.down(&b.activation(ours, &d.up(&nan)).unwrap());
        let cpu_nan = CpuBackend::new().activation(ours, &nan).unwrap();
        assert_eq!(ours_nan.data()[0].is_nan(), cpu_nan.data()[0].is_nan(), "{ours:?}(NaN): {} vs cpu {}", ours_nan.data()[0], cpu_nan.data()[0]);
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

fn bce_and_bce_logits<R: Runtime>(b: &CubeBackend<R>) {
    let d = Dev(b);
    let mut r = rng(91);
    let shape = [64, 1, 1, 1];
    let mut p = rand_tensor(&mut r, &shape, 0.0, 1.0);
    let t = Tensor::new(&shape, (0..64).map(|i| if i % 3 == 0 { 1.0 } else if i % 3 == 1 { 0.0 } else { 0.9 }).collect()).unwrap();
    // Saturated probabilities: the clamps at −100 and 1e-12 keep both the loss and the gradient finite.
    p.data_mut()[0] = 0.0;
    p.data_mut()[1] = 1.0;
    p.data_mut()[3] = 1.0;
    let (loss, dp) = b.bce(&d.up(&p), &d.up(&t)).unwrap();
    let (loss_ref, dp_ref) = oracle::bce(&arr(&p), &arr(&t));
    assert_close_scalar("bce loss", loss, loss_ref, TOL);
    assert_close("bce dp", d.down(&dp).data(), &dp_ref.data, TOL);

    // More elements than one cube: several partial sums.
    let big = [3, 1, 30, 30];
    let z = rand_tensor(&mut r, &big, -30.0, 30.0);
    let tb = rand_tensor(&mut r, &big, 0.0, 1.0);
    let (loss, dz) = b.bce_logits(&d.up(&z), &d.up(&tb)).unwrap();
    let (loss_ref, dz_ref) = oracle::bce_logits(&arr(&z), &arr(&tb));
    assert_close_scalar("bce_logits loss", loss, loss_ref, TOL);
    assert_close("bce_logits dz", d.down(&dz).data(), &dz_ref.data, TOL);
}

fn gradient_penalty_head_matches_f64<R: Runtime>(b: &CubeBackend<R>) {
    let d = Dev(b);
    let mut r = rng(101);
    let shape = [6, 3, 8, 8];
    let mut g = rand_tensor(&mut r, &shape, -0.05, 0.05);
    // One sample with a zero gradient: v must be 0 there (PyTorch's norm subgradient), not NaN.
    let per = 3 * 8 * 8;
    g.data_mut()[2 * per..3 * per].fill(0.0);
    let lambda = 10.0f32;
    let head = b.gradient_penalty_head(&d.up(&g), lambda).unwrap();

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
    let vd = d.down(&head.v);
    assert_close("gradient_penalty_head v", vd.data(), &v, TOL);
    assert!(vd.data()[2 * per..3 * per].iter().all(|&x| x == 0.0));
}

// ------------------------------------------------------------------ optimizer

fn adam_matches_torch_formula<R: Runtime>(b: &CubeBackend<R>) {
    let d = Dev(b);
    let mut r = rng(111);
    let shape = [7, 5, 3, 3];
    let cfg = AdamConfig { lr: 2e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8 };
    let cfg_ref = oracle::AdamConfig { lr: cfg.lr, beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps };
    let p0 = rand_tensor(&mut r, &shape, -1.0, 1.0);
    let mut p = d.up(&p0);
    let p_alias = p.clone();
    let mut m = b.zeros(&shape).unwrap();
    let mut v = b.zeros(&shape).unwrap();
    let (mut p_ref, mut m_ref, mut v_ref) = (f64s(&p0), vec![0.0; p0.len()], vec![0.0; p0.len()]);
    for step in 1..=5u64 {
        let g = rand_tensor(&mut r, &shape, -1.0, 1.0);
        b.adam_step(&mut p, &d.up(&g), &mut m, &mut v, &cfg, step).unwrap();
        oracle::adam_step(&mut p_ref, &f64s(&g), &mut m_ref, &mut v_ref, &cfg_ref, step);
        assert_close(&format!("adam exp_avg step {step}"), d.down(&m).data(), &m_ref, TOL);
        assert_close(&format!("adam exp_avg_sq step {step}"), d.down(&v).data(), &v_ref, TOL);
        assert_close(&format!("adam param step {step}"), d.down(&p).data(), &p_ref, TOL);
    }
    let pd = d.down(&p);
    let upd: Vec<f32> = pd.data().iter().zip(p0.data()).map(|(a, b)| a - b).collect();
    let upd_ref: Vec<f64> = p_ref.iter().zip(p0.data()).map(|(a, &b)| a - b as f64).collect();
    assert_close("adam accumulated update", &upd, &upd_ref, 1e-3);
    assert_eq!(d.down(&p_alias), p0, "a clone of the parameter is not changed by the step");
}

// ------------------------------------------------------------------ elementwise and memory

fn elementwise_and_memory<R: Runtime>(b: &CubeBackend<R>, name: &str) {
    let d = Dev(b);
    let mut r = rng(121);
    let shape = [5, 3, 4, 6];
    let x = rand_tensor(&mut r, &shape, -1.0, 1.0);
    let y = rand_tensor(&mut r, &shape, -1.0, 1.0);
    let (xd, yd) = (f64s(&x), f64s(&y));
    let (xt, yt) = (d.up(&x), d.up(&y));

    let s = d.down(&b.add(&xt, &yt).unwrap());
    assert_close("add", s.data(), &xd.iter().zip(&yd).map(|(a, b)| a + b).collect::<Vec<_>>(), TOL);
    let mut acc = xt.clone();
    b.add_assign(&mut acc, &yt).unwrap();
    assert_eq!(d.down(&acc), s);
    assert_eq!(d.down(&xt), x, "add_assign leaves clones alone");
    let sc = d.down(&b.scale(&xt, -0.25).unwrap());
    assert_close("scale", sc.data(), &xd.iter().map(|a| -0.25 * a).collect::<Vec<_>>(), TOL);

    let alpha = [0.0f32, 1.0, 0.3, 0.75, 0.5];
    let l = d.down(&b.lerp_per_sample(&xt, &yt, &alpha).unwrap());
    let per = 3 * 4 * 6;
    let l_ref: Vec<f64> = (0..xd.len()).map(|i| { let a = alpha[i / per] as f64; a * xd[i] + (1.0 - a) * yd[i] }).collect();
    assert_close("lerp_per_sample", l.data(), &l_ref, TOL);
    assert_eq!(&l.data()[..per], &y.data()[..per], "alpha 0 is b");
    assert_eq!(&l.data()[per..2 * per], &x.data()[per..2 * per], "alpha 1 is a");

    let mean = b.mean(&xt).unwrap();
    assert_close_scalar("mean", mean, xd.iter().sum::<f64>() / xd.len() as f64, TOL);
    // A mean over many cubes (partials added on the host).
    let big = rand_tensor(&mut r, &[3, 7, 100, 100], 2.0, 3.0);
    let big_ref = f64s(&big).iter().sum::<f64>() / big.len() as f64;
    assert_close_scalar("mean (many cubes)", b.mean(&d.up(&big)).unwrap(), big_ref, TOL);

    let f = b.full(&[2, 3], 1.5).unwrap();
    assert_eq!(b.shape(&f), vec![2, 3]);
    assert!(d.down(&f).data().iter().all(|&v| v == 1.5));
    assert!(d.down(&b.zeros(&[4]).unwrap()).data().iter().all(|&v| v == 0.0));
    let rs = b.reshape(&xt, &[15, 24]).unwrap();
    assert_eq!(b.shape(&rs), vec![15, 24]);
    assert_eq!(d.down(&rs).data(), x.data());
    assert_eq!(d.down(&d.up(&x)), x);
    let empty = d.up(&Tensor::zeros(&[0, 3]));
    assert_eq!(d.down(&empty).shape(), &[0, 3]);
    let f64_up = b.upload_f64(&[2], &[0.1, 0.2]).unwrap();
    assert_eq!(b.download_f64(&f64_up).unwrap(), vec![0.1f32 as f64, 0.2f32 as f64]);
    assert_eq!(b.name(), name);
}

// ------------------------------------------------------------------ FID's InceptionV3 ops

fn arr_close(name: &str, ours: &Tensor, reference: &Array) {
    assert_eq!(ours.shape(), reference.shape.as_slice(), "{name}: shape");
    assert_close(name, ours.data(), &reference.data, TOL);
}

fn pools_match_the_oracle<R: Runtime>(b: &CubeBackend<R>) {
    let d = Dev(b);
    let mut r = rng(141);
    // Random windows (kernel 1–5, stride 1–3, padding ≤ kernel/2), then Inception's own pools (narrowed).
    let mut cases = Vec::new();
    for _ in 0..16 {
        let kernel = [r.gen_range(1..=5), r.gen_range(1..=5)];
        let padding = [r.gen_range(0..=kernel[0] / 2), r.gen_range(0..=kernel[1] / 2)];
        let stride = [r.gen_range(1..=3), r.gen_range(1..=3)];
        let shape = [r.gen_range(1..=3), r.gen_range(1..=5), r.gen_range(kernel[0]..=kernel[0] + 12), r.gen_range(kernel[1]..=kernel[1] + 12)];
        cases.push((shape, Pool2dParams::new(kernel, stride, padding)));
    }
    cases.push(([2, 8, 147, 147], Pool2dParams::new([3, 3], [2, 2], [0, 0])));
    cases.push(([2, 16, 35, 35], Pool2dParams::new([3, 3], [1, 1], [1, 1])));
    for (shape, p) in cases {
        let x = rand_tensor(&mut r, &shape, -2.0, 2.0);
        let (xt, xa) = (d.up(&x), arr(&x));
        let tag = format!("x {shape:?} k {:?} s {:?} p {:?}", p.kernel, p.stride, p.padding);
        for include in [false, true] {
            let ours = d.down(&b.avg_pool2d(&xt, p, include).unwrap());
            let reference = oracle::avg_pool2d(&xa, p.kernel, p.stride, p.padding, include);
            arr_close(&format!("avg_pool2d count_include_pad={include} {tag}"), &ours, &reference);
        }
        let ours = d.down(&b.max_pool2d(&xt, p).unwrap());
        let reference = oracle::max_pool2d(&xa, p.kernel, p.stride, p.padding);
        assert_eq!(ours.to_f64(), reference.data, "max_pool2d {tag} (every output is an input: exact)");
    }
    for shape in [[2, 64, 8, 8], [3, 5, 37, 37], [1, 5, 1, 1]] {
        let x = rand_tensor(&mut r, &shape, -2.0, 2.0);
        let ours = d.down(&b.global_avg_pool2d(&d.up(&x)).unwrap());
        arr_close(&format!("global_avg_pool2d {shape:?}"), &ours, &oracle::global_avg_pool2d(&arr(&x)));
    }
    // NaN propagates as in PyTorch.
    let mut x = Tensor::new(&[1, 1, 3, 3], (1..=9).map(|v| v as f32).collect()).unwrap();
    x.data_mut()[4] = f32::NAN;
    let p = Pool2dParams::new([3, 3], [1, 1], [1, 1]);
    assert!(d.down(&b.max_pool2d(&d.up(&x), p).unwrap()).data().iter().all(|v| v.is_nan()), "max_pool2d keeps NaN");
}

fn resize_bilinear_matches_the_oracle<R: Runtime>(b: &CubeBackend<R>) {
    let d = Dev(b);
    let mut r = rng(151);
    let mut cases: Vec<([usize; 4], usize, usize)> =
        vec![([2, 3, 64, 64], 299, 299), ([1, 3, 80, 100], 99, 77), ([1, 2, 120, 90], 41, 60), ([1, 2, 1, 1], 5, 3), ([2, 3, 19, 23], 19, 23)];
    for _ in 0..8 {
        let shape = [r.gen_range(1..=2), r.gen_range(1..=3), r.gen_range(1..=40), r.gen_range(1..=40)];
        cases.push((shape, r.gen_range(1..=60), r.gen_range(1..=60)));
    }
    for (shape, oh, ow) in cases {
        let x = rand_tensor(&mut r, &shape, -2.0, 2.0);
        let ours = d.down(&b.resize_bilinear(&d.up(&x), oh, ow).unwrap());
        arr_close(&format!("resize_bilinear {shape:?} -> {oh}x{ow}"), &ours, &oracle::resize_bilinear(&arr(&x), oh, ow));
        if (shape[2], shape[3]) == (oh, ow) {
            assert_eq!(ours, x, "resizing to the same size is the identity");
        }
    }
}

fn concat_and_affine_channels_match_the_oracle<R: Runtime>(b: &CubeBackend<R>) {
    let d = Dev(b);
    let mut r = rng(161);
    for (n, h, w, chans) in [(2, 9, 9, vec![16, 16, 24, 8]), (1, 4, 5, vec![1]), (2, 3, 1, vec![2, 5])] {
        let xs: Vec<Tensor> = chans.iter().map(|&c| rand_tensor(&mut r, &[n, c, h, w], -2.0, 2.0)).collect();
        let xts: Vec<CubeTensor> = xs.iter().map(|x| d.up(x)).collect();
        let cat = b.concat_channels(&xts.iter().collect::<Vec<_>>()).unwrap();
        let reference = oracle::concat_channels(&xs.iter().map(arr).collect::<Vec<_>>().iter().collect::<Vec<_>>());
        assert_eq!(d.down(&cat).to_f64(), reference.data, "concat_channels {chans:?} (a copy: exact)");

        let c: usize = chans.iter().sum();
        let scale = rand_tensor(&mut r, &[c], -2.0, 2.0);
        let shift = rand_tensor(&mut r, &[c], -2.0, 2.0);
        for relu in [false, true] {
            let mut a = cat.clone();
            b.affine_channels(&mut a, &d.up(&scale), &d.up(&shift), relu).unwrap();
            let expect = oracle::affine_channels(&reference, &f64s(&scale), &f64s(&shift), relu);
            arr_close(&format!("affine_channels relu={relu} [{n}, {c}, {h}, {w}]"), &d.down(&a), &expect);
        }
        assert_eq!(d.down(&cat).to_f64(), reference.data, "affine_channels leaves clones alone");
    }
}

fn inception_bad_input_is_the_cpu_error<R: Runtime>(b: &CubeBackend<R>) {
    let c = CpuBackend::new();
    let d = Dev(b);
    let x = Tensor::zeros(&[1, 2, 5, 5]);
    let xt = d.up(&x);
    let too_much_pad = Pool2dParams::new([3, 3], [1, 1], [2, 2]);
    assert_same_err("pad > k/2", b.max_pool2d(&xt, too_much_pad), c.max_pool2d(&x, too_much_pad));
    let big = Pool2dParams::new([7, 3], [1, 1], [0, 0]);
    assert_same_err("window too big", b.avg_pool2d(&xt, big, true), c.avg_pool2d(&x, big, true));
    let flat = Tensor::zeros(&[2, 5]);
    assert_same_err("3-d pool input", b.global_avg_pool2d(&d.up(&flat)), c.global_avg_pool2d(&flat));
    assert_same_err("resize to 0", b.resize_bilinear(&xt, 0, 4), c.resize_bilinear(&x, 0, 4));
    let other = Tensor::zeros(&[1, 2, 4, 5]);
    assert_same_err("concat H mismatch", b.concat_channels(&[&xt, &d.up(&other)]), c.concat_channels(&[&x, &other]));
    let s3 = Tensor::zeros(&[3]);
    let (mut xm, mut xc) = (xt.clone(), x.clone());
    assert_same_err(
        "affine scale",
        b.affine_channels(&mut xm, &d.up(&s3), &d.up(&s3), false),
        c.affine_channels(&mut xc, &s3, &s3, false),
    );
}

// ------------------------------------------------------------------ bad input

/// `ours` must be `Error::Shape` with the same message the cpu backend gives for the same input.
fn assert_same_err<T: std::fmt::Debug, U: std::fmt::Debug>(what: &str, ours: cxr_gan::Result<T>, cpu: cxr_gan::Result<U>) {
    let cpu = match cpu {
        Err(e @ (Error::Shape { .. } | Error::InvalidArgument { .. })) => e.to_string(),
        other => panic!("{what}: the cpu backend gave {other:?}"),
    };
    match ours {
        Err(e @ (Error::Shape { .. } | Error::InvalidArgument { .. })) => {
            println!("{what}: {e}");
            assert_eq!(e.to_string(), cpu, "{what}: message differs from the cpu backend's");
        }
        other => panic!("{what}: expected {cpu:?}, got {other:?}"),
    }
}

fn bad_input_is_the_cpu_error<R: Runtime>(b: &CubeBackend<R>) {
    let c = CpuBackend::new();
    let d = Dev(b);
    let mut r = rng(131);
    let p = Conv2dParams::new([1, 1], [0, 0]);
    let x = rand_tensor(&mut r, &[2, 3, 8, 8], -1.0, 1.0);
    let w_bad_c = rand_tensor(&mut r, &[4, 5, 3, 3], -1.0, 1.0);
    let (xt, w_bad_ct) = (d.up(&x), d.up(&w_bad_c));
    assert_same_err("conv2d channels", b.conv2d(&xt, &w_bad_ct, p), c.conv2d(&x, &w_bad_c, p));
    let w_big = rand_tensor(&mut r, &[4, 3, 9, 3], -1.0, 1.0);
    assert_same_err("conv2d kernel too large", b.conv2d(&xt, &d.up(&w_big), p), c.conv2d(&x, &w_big, p));
    let w = rand_tensor(&mut r, &[4, 3, 3, 3], -1.0, 1.0);
    let dy_bad = rand_tensor(&mut r, &[2, 4, 5, 6], -1.0, 1.0);
    let (wt, dy_badt) = (d.up(&w), d.up(&dy_bad));
    assert_same_err("conv2d_bwd_data dy", b.conv2d_bwd_data(&dy_badt, &wt, [2, 3, 8, 8], p), c.conv2d_bwd_data(&dy_bad, &w, [2, 3, 8, 8], p));
    assert_same_err(
        "conv2d_bwd_weight dy",
        b.conv2d_bwd_weight(&xt, &dy_badt, [4, 3, 3, 3], p),
        c.conv2d_bwd_weight(&x, &dy_bad, [4, 3, 3, 3], p),
    );
    let x3 = rand_tensor(&mut r, &[2, 3, 8], -1.0, 1.0);
    assert_same_err("conv2d 3-d x", b.conv2d(&d.up(&x3), &wt, p), c.conv2d(&x3, &w, p));
    let wt2 = rand_tensor(&mut r, &[5, 2, 4, 4], -1.0, 1.0);
    assert_same_err("conv_transpose2d channels", b.conv_transpose2d(&xt, &d.up(&wt2), p), c.conv_transpose2d(&x, &wt2, p));
    let p0 = Conv2dParams::new([0, 1], [0, 0]);
    assert_same_err("conv2d zero stride", b.conv2d(&xt, &wt, p0), c.conv2d(&x, &w, p0));

    let gamma_bad = Tensor::full(&[4], 1.0);
    let beta = Tensor::zeros(&[3]);
    let gamma = Tensor::full(&[3], 1.0);
    let (rm, rv) = (Tensor::zeros(&[3]), Tensor::full(&[3], 1.0));
    let (gbt, bt, gt) = (d.up(&gamma_bad), d.up(&beta), d.up(&gamma));
    let (mut rmt, mut rvt) = (d.up(&rm), d.up(&rv));
    let (mut rmc, mut rvc) = (rm.clone(), rv.clone());
    assert_same_err(
        "batch_norm2d_train gamma",
        b.batch_norm2d_train(&xt, &gbt, &bt, &mut rmt, &mut rvt, 1e-5, 0.1),
        c.batch_norm2d_train(&x, &gamma_bad, &beta, &mut rmc, &mut rvc, 1e-5, 0.1),
    );
    let rv_bad = Tensor::full(&[2], 1.0);
    let (mut rv_badt, mut rv_badc) = (d.up(&rv_bad), rv_bad.clone());
    assert_same_err(
        "batch_norm2d_train running_var",
        b.batch_norm2d_train(&xt, &gt, &bt, &mut rmt, &mut rv_badt, 1e-5, 0.1),
        c.batch_norm2d_train(&x, &gamma, &beta, &mut rmc, &mut rv_badc, 1e-5, 0.1),
    );
    let one = Tensor::zeros(&[1, 3, 1, 1]);
    assert_same_err(
        "batch_norm2d_train one value per channel",
        b.batch_norm2d_train(&d.up(&one), &gt, &bt, &mut rmt, &mut rvt, 1e-5, 0.1),
        c.batch_norm2d_train(&one, &gamma, &beta, &mut rmc, &mut rvc, 1e-5, 0.1),
    );
    assert_same_err("instance_norm2d beta", b.instance_norm2d(&xt, &gt, &gbt, 1e-5), c.instance_norm2d(&x, &gamma, &gamma_bad, 1e-5));
    let (_, bn_stats) = b.batch_norm2d_train(&xt, &gt, &bt, &mut rmt, &mut rvt, 1e-5, 0.1).unwrap();
    let (_, bn_stats_c) = c.batch_norm2d_train(&x, &gamma, &beta, &mut rmc, &mut rvc, 1e-5, 0.1).unwrap();
    let dy_x = rand_tensor(&mut r, &[2, 3, 8, 8], -1.0, 1.0);
    assert_same_err(
        "instance_norm2d_bwd with [C] stats",
        b.instance_norm2d_bwd(&d.up(&dy_x), &xt, &gt, &bn_stats),
        c.instance_norm2d_bwd(&dy_x, &x, &gamma, &bn_stats_c),
    );
    let dy_short = rand_tensor(&mut r, &[2, 3, 8, 7], -1.0, 1.0);
    let dst = d.up(&dy_short);
    assert_same_err(
        "batch_norm2d_bwd dy",
        b.batch_norm2d_bwd(&dst, &xt, &gt, &bn_stats),
        c.batch_norm2d_bwd(&dy_short, &x, &gamma, &bn_stats_c),
    );
    assert_same_err("add", b.add(&xt, &dst), c.add(&x, &dy_short));
    assert_same_err("lerp_per_sample alpha", b.lerp_per_sample(&xt, &xt, &[0.5; 3]), c.lerp_per_sample(&x, &x, &[0.5; 3]));
    assert_same_err("reshape", b.reshape(&xt, &[5, 5]), c.reshape(&x, &[5, 5]));
    assert_same_err(
        "activation_bwd",
        b.activation_bwd(Activation::Relu, &xt, &xt, &dst),
        c.activation_bwd(Activation::Relu, &x, &x, &dy_short),
    );
    assert_same_err("bce", b.bce(&xt, &dst), c.bce(&x, &dy_short));
    let empty = Tensor::zeros(&[0, 3]);
    assert_same_err("mean of nothing", b.mean(&d.up(&empty)), c.mean(&empty));
    let cfg = AdamConfig { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    let (mut pp, mut m, mut v) = (xt.clone(), xt.clone(), xt.clone());
    let (mut ppc, mut mc, mut vc) = (x.clone(), x.clone(), x.clone());
    assert_same_err(
        "adam_step grad",
        b.adam_step(&mut pp, &dst, &mut m, &mut v, &cfg, 1),
        c.adam_step(&mut ppc, &dy_short, &mut mc, &mut vc, &cfg, 1),
    );
    assert_same_err("adam_step step 0", b.adam_step(&mut pp, &xt, &mut m, &mut v, &cfg, 0), c.adam_step(&mut ppc, &x, &mut mc, &mut vc, &cfg, 0));
}

// ------------------------------------------------------------------ instantiation per runtime

macro_rules! cube_tests {
    ($runtime:ident, $make:path, $name:literal) => {
        mod $runtime {
            use super::*;

            #[test]
            fn conv2d_small_shapes() {
                if let Some(b) = $make() {
                    super::conv2d_small_shapes(&b);
                }
            }
            #[test]
            fn conv2d_non_square_kernels() {
                if let Some(b) = $make() {
                    super::conv2d_non_square_kernels(&b);
                }
            }
            #[test]
            fn conv2d_pointwise_dense_and_tiled() {
                if let Some(b) = $make() {
                    super::conv2d_pointwise_dense_and_tiled(&b);
                }
            }
            #[test]
            fn conv2d_empty_batch() {
                if let Some(b) = $make() {
                    super::conv2d_empty_batch(&b);
                }
            }
            #[test]
            fn conv_transpose2d_dcgan_generator_shapes() {
                if let Some(b) = $make() {
                    super::conv_transpose2d_dcgan_generator_shapes(&b);
                }
            }
            #[test]
            fn conv_is_deterministic_and_poison_free() {
                if let Some(b) = $make() {
                    super::conv_is_deterministic_and_poison_free(&b);
                }
            }
            #[test]
            fn batch_norm2d_train_eval_bwd() {
                if let Some(b) = $make() {
                    super::batch_norm2d_train_eval_bwd(&b);
                }
            }
            #[test]
            fn instance_norm2d_fwd_bwd_jvp() {
                if let Some(b) = $make() {
                    super::instance_norm2d_fwd_bwd_jvp(&b);
                }
            }
            #[test]
            fn activations_fwd_bwd() {
                if let Some(b) = $make() {
                    super::activations_fwd_bwd(&b);
                }
            }
            #[test]
            fn bce_and_bce_logits() {
                if let Some(b) = $make() {
                    super::bce_and_bce_logits(&b);
                }
            }
            #[test]
            fn gradient_penalty_head_matches_f64() {
                if let Some(b) = $make() {
                    super::gradient_penalty_head_matches_f64(&b);
                }
            }
            #[test]
            fn adam_matches_torch_formula() {
                if let Some(b) = $make() {
                    super::adam_matches_torch_formula(&b);
                }
            }
            #[test]
            fn elementwise_and_memory() {
                if let Some(b) = $make() {
                    super::elementwise_and_memory(&b, $name);
                }
            }
            #[test]
            fn pools_match_the_oracle() {
                if let Some(b) = $make() {
                    super::pools_match_the_oracle(&b);
                }
            }
            #[test]
            fn resize_bilinear_matches_the_oracle() {
                if let Some(b) = $make() {
                    super::resize_bilinear_matches_the_oracle(&b);
                }
            }
            #[test]
            fn concat_and_affine_channels_match_the_oracle() {
                if let Some(b) = $make() {
                    super::concat_and_affine_channels_match_the_oracle(&b);
                }
            }
            #[test]
            fn inception_bad_input_is_the_cpu_error() {
                if let Some(b) = $make() {
                    super::inception_bad_input_is_the_cpu_error(&b);
                }
            }
            #[test]
            fn bad_input_is_the_cpu_error() {
                if let Some(b) = $make() {
                    super::bad_input_is_the_cpu_error(&b);
                }
            }
        }
    };
}

cube_tests!(wgpu, wgpu_backend, "wgpu");
cube_tests!(cuda, cuda_backend, "cuda");

/// `--backend auto` never takes a CPU adapter, and a missing device is an error that names what exists.
#[test]
fn device_probing_reports_what_exists() {
    let here = cxr_gan::backend::cube::devices_here();
    println!("devices here: {here}");
    assert!(here.contains("cpu: always") && here.contains("wgpu:") && here.contains("cuda:"));
    match WgpuBackend::wgpu_hardware() {
        Ok(b) => println!("hardware wgpu adapter: {}", b.device()),
        Err(e) => {
            let msg = e.to_string();
            assert!(matches!(e, Error::Backend { .. }) && msg.contains("cuda:"), "{msg}");
            println!("no hardware wgpu adapter: {msg}");
        }
    }
    if let Err(e) = CudaBackend::cuda() {
        assert!(matches!(e, Error::Backend { .. }), "{e:?}");
        assert!(e.to_string().contains("wgpu:"), "{e}");
    }
}
