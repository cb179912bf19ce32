//! activation and activation_bwd (relu, leaky_relu, tanh, sigmoid) against the oracle: PyTorch's gradient
//! at exactly 0, saturation, NaN as the cpu backend; dropout with a given mask; bad input.

use crate::common::backends::BackendUnderTest;
use crate::common::compare::{assert_close, TOL};
use crate::common::random::{arr, rand_tensor, rng};
use crate::common::reference_backend::ReferenceBackend;
use crate::common::rejection::{assert_oracle_rejects_alike, assert_rejected, Rejection::*};
use cxr_gan::backend::cpu::CpuBackend;
use cxr_gan::backend::{Activation, Backend};
use cxr_gan::Tensor;
use cxr_gan_reference as oracle;
use rand::Rng;

pub fn activations_fwd_bwd<B: Backend>(b: &BackendUnderTest<B>) {
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
    let (xd, dyd) = (b.up(&x), b.up(&dy));
    for (ours, theirs) in acts {
        let yd = b.activation(ours, &xd).unwrap();
        let y = b.down(&yd);
        let y_ref = oracle::activation(theirs, &arr(&x));
        assert_close(&format!("activation {ours:?}"), y.data(), &y_ref.data, TOL);
        // Elementwise too: every element within a few f32 ulps of the oracle.
        for (i, (&o, &t)) in y.data().iter().zip(&y_ref.data).enumerate() {
            assert!((o as f64 - t).abs() <= 4e-7 * t.abs().max(1e-30) + 1e-37, "activation {ours:?} at x = {}: {o} vs {t}", x.data()[i]);
        }
        // Both sides differentiate through the same (f32) y.
        let dx = b.down(&b.activation_bwd(ours, &xd, &yd, &dyd).unwrap());
        let dx_ref = oracle::activation_bwd(theirs, &arr(&x), &arr(&y), &arr(&dy));
        assert_close(&format!("activation_bwd {ours:?}"), dx.data(), &dx_ref.data, TOL);
        // NaN in, as the cpu backend: relu gives 0 (`x > 0` is false), the others NaN.
        let nan = Tensor::new(&[1, 1, 1, 3], vec![f32::NAN, 1.0, -1.0]).unwrap();
        let ours_nan = b.down(&b.activation(ours, &b.up(&nan)).unwrap());
        let cpu_nan = CpuBackend::new().activation(ours, &nan).unwrap();
        assert_eq!(
            ours_nan.data()[0].is_nan(),
            cpu_nan.data()[0].is_nan(),
            "{ours:?}(NaN): {} vs cpu {}",
            ours_nan.data()[0],
            cpu_nan.data()[0]
        );
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

pub fn activation_bad_input<B: Backend>(b: &BackendUnderTest<B>) {
    let c = CpuBackend::new();
    let mut r = rng(131);
    let x = rand_tensor(&mut r, &[2, 3, 8, 8], -1.0, 1.0);
    let dy_short = rand_tensor(&mut r, &[2, 3, 8, 7], -1.0, 1.0);
    let xt = b.up(&x);
    assert_rejected(
        "activation_bwd",
        Shape,
        b.activation_bwd(Activation::Relu, &xt, &xt, &b.up(&dy_short)),
        c.activation_bwd(Activation::Relu, &x, &x, &dy_short),
        &["[2, 3, 8, 7]", "[2, 3, 8, 8]"],
    );
}

pub fn dropout_matches_the_oracle<B: Backend>(b: &BackendUnderTest<B>) {
    let mut r = rng(82);
    // The classifier's head [N, 2048] and a feature map; p = 0.5 (scale 2: exact) and 0.2 (1/0.8 rounded
    // to f32 once); p = 0 keeps everything.
    for (shape, p) in [(vec![8, 2048], 0.5f32), (vec![3, 4, 7, 5], 0.5), (vec![3, 4, 7, 5], 0.2), (vec![2, 33], 0.0)] {
        let x = rand_tensor(&mut r, &shape, -4.0, 4.0);
        let keep = 1.0 - p as f64;
        let mask = Tensor::new(&shape, (0..x.len()).map(|_| if r.gen_bool(keep) { 1.0 } else { 0.0 }).collect()).unwrap();
        let y = b.down(&b.dropout(&b.up(&x), &b.up(&mask), p).unwrap());
        let y_ref = oracle::dropout(&arr(&x), &arr(&mask), p as f64);
        assert_eq!(y.shape(), shape.as_slice());
        assert_close(&format!("dropout p={p} {shape:?}"), y.data(), &y_ref.data, TOL);
        if p == 0.5 {
            assert_eq!(y.to_f64(), y_ref.data, "dropout p=0.5 {shape:?}: x·2 or 0, exact");
        }
        assert!(y.data().iter().zip(mask.data()).all(|(&v, &m)| m != 0.0 || v == 0.0), "dropped elements are 0");
    }
}

pub fn dropout_bad_input<B: Backend>(b: &BackendUnderTest<B>) {
    let (c, o) = (CpuBackend::new(), ReferenceBackend);
    let x = Tensor::zeros(&[2, 3, 4, 4]);
    let short = Tensor::zeros(&[2, 3, 4, 3]);
    let (xt, xo) = (b.up(&x), o.upload(&x).unwrap());
    let what = "dropout mask of the wrong shape";
    let msg =
        assert_rejected(what, Shape, b.dropout(&xt, &b.up(&short), 0.5), c.dropout(&x, &short, 0.5), &["[2, 3, 4, 4]", "[2, 3, 4, 3]"]);
    assert_oracle_rejects_alike(what, o.dropout(&xo, &o.upload(&short).unwrap(), 0.5), &msg);
    for p in [1.0f32, -0.1, f32::NAN] {
        let what = format!("dropout p = {p}");
        let msg = assert_rejected(&what, InvalidArgument, b.dropout(&xt, &xt, p), c.dropout(&x, &x, p), &[&p.to_string()]);
        assert_oracle_rejects_alike(&what, o.dropout(&xo, &xo, p), &msg);
    }
}
