//! activation and activation_bwd (relu, leaky_relu, tanh, sigmoid) against the oracle: PyTorch's gradient
//! at exactly 0, saturation, NaN as the cpu backend; bad input.

use crate::common::backends::BackendUnderTest;
use crate::common::compare::{assert_close, TOL};
use crate::common::random::{arr, rand_tensor, rng};
use crate::common::rejection::{assert_rejected, Rejection::*};
use cxr_gan::backend::cpu::CpuBackend;
use cxr_gan::backend::{Activation, Backend};
use cxr_gan::Tensor;
use cxr_gan_reference as oracle;

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
