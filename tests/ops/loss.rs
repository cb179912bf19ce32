//! bce, bce_logits and gradient_penalty_head against the oracle (saturated inputs, a zero gradient, sums
//! over more than one GPU cube); bad input.

use crate::common::backends::BackendUnderTest;
use crate::common::compare::{assert_close, assert_close_scalar, TOL};
use crate::common::random::{arr, rand_tensor, rng};
use crate::common::rejection::{assert_rejected, Rejection::*};
use cxr_gan::backend::cpu::CpuBackend;
use cxr_gan::backend::Backend;
use cxr_gan::Tensor;
use cxr_gan_reference as oracle;

pub fn bce_and_bce_logits<B: Backend>(b: &BackendUnderTest<B>) {
    let mut r = rng(91);
    let shape = [64, 1, 1, 1];
    let mut p = rand_tensor(&mut r, &shape, 0.0, 1.0);
    let t = Tensor::new(
        &shape,
        (0..64)
            .map(|i| {
                if i % 3 == 0 {
                    1.0
                } else if i % 3 == 1 {
                    0.0
                } else {
                    0.9
                }
            })
            .collect(),
    )
    .unwrap();
    // Saturated probabilities: the clamps at −100 and 1e-12 keep both the loss and the gradient finite.
    p.data_mut()[0] = 0.0;
    p.data_mut()[1] = 1.0;
    p.data_mut()[3] = 1.0;
    let (loss, dp) = b.bce(&b.up(&p), &b.up(&t)).unwrap();
    let (loss_ref, dp_ref) = oracle::bce(&arr(&p), &arr(&t));
    assert_close_scalar("bce loss", loss, loss_ref, TOL);
    assert_close("bce dp", b.down(&dp).data(), &dp_ref.data, TOL);

    let z = rand_tensor(&mut r, &shape, -30.0, 30.0);
    let (loss, dz) = b.bce_logits(&b.up(&z), &b.up(&t)).unwrap();
    let (loss_ref, dz_ref) = oracle::bce_logits(&arr(&z), &arr(&t));
    assert_close_scalar("bce_logits loss", loss, loss_ref, TOL);
    assert_close("bce_logits dz", b.down(&dz).data(), &dz_ref.data, TOL);

    // More elements than one GPU cube: several partial sums.
    let big = [3, 1, 30, 30];
    let z = rand_tensor(&mut r, &big, -30.0, 30.0);
    let tb = rand_tensor(&mut r, &big, 0.0, 1.0);
    let (loss, dz) = b.bce_logits(&b.up(&z), &b.up(&tb)).unwrap();
    let (loss_ref, dz_ref) = oracle::bce_logits(&arr(&z), &arr(&tb));
    assert_close_scalar("bce_logits loss [3, 1, 30, 30]", loss, loss_ref, TOL);
    assert_close("bce_logits dz [3, 1, 30, 30]", b.down(&dz).data(), &dz_ref.data, TOL);
}

pub fn gradient_penalty_head_matches_f64<B: Backend>(b: &BackendUnderTest<B>) {
    let mut r = rng(101);
    let shape = [6, 3, 8, 8];
    let mut g = rand_tensor(&mut r, &shape, -0.05, 0.05);
    // One sample with a zero gradient: v must be 0 there (PyTorch's norm subgradient), not NaN.
    let per = 3 * 8 * 8;
    g.data_mut()[2 * per..3 * per].fill(0.0);
    let lambda = 10.0f32;
    let head = b.gradient_penalty_head(&b.up(&g), lambda).unwrap();

    let gd = g.to_f64();
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
    let vd = b.down(&head.v);
    assert_close("gradient_penalty_head v", vd.data(), &v, TOL);
    assert!(vd.data()[2 * per..3 * per].iter().all(|&x| x == 0.0));
}

pub fn loss_bad_input<B: Backend>(b: &BackendUnderTest<B>) {
    let c = CpuBackend::new();
    let mut r = rng(131);
    let x = rand_tensor(&mut r, &[2, 3, 8, 8], -1.0, 1.0);
    let dy_short = rand_tensor(&mut r, &[2, 3, 8, 7], -1.0, 1.0);
    let (xt, dt) = (b.up(&x), b.up(&dy_short));
    assert_rejected("bce", Shape, b.bce(&xt, &dt), c.bce(&x, &dy_short), &["[2, 3, 8, 8]", "[2, 3, 8, 7]"]);
    assert_rejected("bce_logits", Shape, b.bce_logits(&xt, &dt), c.bce_logits(&x, &dy_short), &["[2, 3, 8, 8]", "[2, 3, 8, 7]"]);
}
