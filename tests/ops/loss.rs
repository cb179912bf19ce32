//! bce, bce_logits, cross_entropy and gradient_penalty_head against the oracle (saturated inputs, logits of
//! ±50, confidently right rows whose loss is tiny, a zero gradient, sums over more than one GPU cube); bad
//! input.

use crate::common::backends::BackendUnderTest;
use crate::common::compare::{assert_close, assert_close_scalar, TOL};
use crate::common::random::{arr, rand_tensor, rng};
use crate::common::reference_backend::ReferenceBackend;
use crate::common::rejection::{assert_oracle_rejects_alike, assert_rejected, Rejection::*};
use cxr_gan::backend::cpu::CpuBackend;
use cxr_gan::backend::Backend;
use cxr_gan::Tensor;
use cxr_gan_reference as oracle;
use rand::Rng;

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

/// cross_entropy of logits [n, k] and targets against the oracle: the loss and dlogits.
fn check_cross_entropy<B: Backend>(b: &BackendUnderTest<B>, tag: &str, logits: &Tensor, target: &[usize]) {
    let (loss, dz) = b.cross_entropy(&b.up(logits), target).unwrap();
    let (loss_ref, dz_ref) = oracle::cross_entropy(&arr(logits), target);
    assert_close_scalar(&format!("cross_entropy loss {tag}"), loss, loss_ref, TOL);
    let dz = b.down(&dz);
    assert_eq!(dz.shape(), logits.shape(), "cross_entropy dlogits {tag}");
    assert_close(&format!("cross_entropy dlogits {tag}"), dz.data(), &dz_ref.data, TOL);
}

pub fn cross_entropy_matches_the_oracle<B: Backend>(b: &BackendUnderTest<B>) {
    let mut r = rng(92);
    // Logits of ±50 (softmax saturated: e^{−100} underflows f32's normal range), K = 2 and the classifier's
    // 10; 300 rows are more than one GPU cube's.
    for (n, k) in [(64, 2), (64, 10), (300, 10), (1, 10), (5, 1)] {
        let z = rand_tensor(&mut r, &[n, k], -50.0, 50.0);
        let t: Vec<usize> = (0..n).map(|_| r.gen_range(0..k)).collect();
        check_cross_entropy(b, &format!("[{n}, {k}] ±50"), &z, &t);
    }
    // Confidently right rows (the target's logit 8–16 above the rest): each loss is about e^{−margin}, which
    // ln(Σ e^{z − m}) in f32 rounds away; so is 1 − softmax at the target.
    for k in [2, 10] {
        let n = 40;
        let mut z = rand_tensor(&mut r, &[n, k], -1.0, 1.0);
        let t: Vec<usize> = (0..n).map(|_| r.gen_range(0..k)).collect();
        for (row, &tr) in t.iter().enumerate() {
            z.data_mut()[row * k + tr] += r.gen_range(8.0..16.0);
        }
        check_cross_entropy(b, &format!("[{n}, {k}] confidently right"), &z, &t);
    }
    // Ties: equal logits (the loss is ln K), and a row whose maximum is shared by the target and another.
    let z = Tensor::new(&[2, 4], vec![3.0, 3.0, 3.0, 3.0, 1.0, 7.0, -2.0, 7.0]).unwrap();
    check_cross_entropy(b, "ties", &z, &[2, 3]);
}

pub fn cross_entropy_bad_input<B: Backend>(b: &BackendUnderTest<B>) {
    let (c, o) = (CpuBackend::new(), ReferenceBackend);
    let z = Tensor::zeros(&[3, 4]);
    let (zt, zo) = (b.up(&z), o.upload(&z).unwrap());
    let what = "cross_entropy target not a class";
    let msg = assert_rejected(what, InvalidArgument, b.cross_entropy(&zt, &[0, 4, 1]), c.cross_entropy(&z, &[0, 4, 1]), &["target[1] = 4"]);
    assert_oracle_rejects_alike(what, o.cross_entropy(&zo, &[0, 4, 1]), &msg);
    let what = "cross_entropy too few targets";
    let msg = assert_rejected(what, Shape, b.cross_entropy(&zt, &[0, 1]), c.cross_entropy(&z, &[0, 1]), &["[3, 4]"]);
    assert_oracle_rejects_alike(what, o.cross_entropy(&zo, &[0, 1]), &msg);
    let z4 = Tensor::zeros(&[3, 4, 1, 1]);
    let what = "cross_entropy 4-d logits";
    let msg = assert_rejected(what, Shape, b.cross_entropy(&b.up(&z4), &[0, 1, 2]), c.cross_entropy(&z4, &[0, 1, 2]), &["[3, 4, 1, 1]"]);
    assert_oracle_rejects_alike(what, o.cross_entropy(&o.upload(&z4).unwrap(), &[0, 1, 2]), &msg);
    let empty = Tensor::zeros(&[0, 4]);
    let what = "cross_entropy empty batch";
    let msg = assert_rejected(what, Shape, b.cross_entropy(&b.up(&empty), &[]), c.cross_entropy(&empty, &[]), &["[0, 4]"]);
    assert_oracle_rejects_alike(what, o.cross_entropy(&o.upload(&empty).unwrap(), &[]), &msg);
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
