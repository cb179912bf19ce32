//! batch_norm2d (train, eval, backward) and instance_norm2d (forward, backward, the JVP and its reverse
//! pass) against the oracle, running statistics included; bad input.

use crate::common::backends::BackendUnderTest;
use crate::common::compare::{assert_close, TOL};
use crate::common::random::{arr, rand_tensor, rng};
use crate::common::rejection::{assert_rejected, Rejection::*};
use cxr_gan::backend::cpu::CpuBackend;
use cxr_gan::backend::{Backend, NormStats};
use cxr_gan::Tensor;
use cxr_gan_reference as oracle;

fn stats_ref<B: Backend>(b: &BackendUnderTest<B>, s: &NormStats<B::Tensor>) -> oracle::NormStats {
    oracle::NormStats { mean: b.down(&s.mean).to_f64(), invstd: b.down(&s.invstd).to_f64() }
}

pub fn batch_norm2d_train_eval_bwd<B: Backend>(b: &BackendUnderTest<B>) {
    for (seed, shape, offset) in [(61u64, [4usize, 3, 5, 7], 0.0f32), (62, [16, 8, 8, 8], 3.0), (63, [2, 5, 1, 1], -1.0)] {
        let mut r = rng(seed);
        let c = shape[1];
        let x = rand_tensor(&mut r, &shape, offset - 2.0, offset + 2.0);
        let gamma = rand_tensor(&mut r, &[c], 0.5, 1.5);
        let beta = rand_tensor(&mut r, &[c], -0.5, 0.5);
        let rm0 = rand_tensor(&mut r, &[c], -0.2, 0.2);
        let rv0 = rand_tensor(&mut r, &[c], 0.5, 1.5);
        let (mut rm_ref, mut rv_ref) = (rm0.to_f64(), rv0.to_f64());
        let (eps, momentum) = (1e-5f32, 0.1f32);
        let tag = format!("{shape:?}");
        let (xd, gd, bd) = (b.up(&x), b.up(&gamma), b.up(&beta));
        let (mut rm, mut rv) = (b.up(&rm0), b.up(&rv0));
        let rm_alias = rm.clone();

        let (y, stats) = b.batch_norm2d_train(&xd, &gd, &bd, &mut rm, &mut rv, eps, momentum).unwrap();
        let (y_ref, st_ref) =
            oracle::batch_norm2d_train(&arr(&x), &gamma.to_f64(), &beta.to_f64(), &mut rm_ref, &mut rv_ref, eps as f64, momentum as f64);
        assert_close(&format!("batch_norm2d_train y {tag}"), b.down(&y).data(), &y_ref.data, TOL);
        assert_eq!(b.shape(&stats.mean), vec![c]);
        assert_close(&format!("batch_norm2d_train mean {tag}"), b.down(&stats.mean).data(), &st_ref.mean, TOL);
        assert_close(&format!("batch_norm2d_train invstd {tag}"), b.down(&stats.invstd).data(), &st_ref.invstd, TOL);
        assert_close(&format!("batch_norm2d_train running_mean {tag}"), b.down(&rm).data(), &rm_ref, TOL);
        assert_close(&format!("batch_norm2d_train running_var {tag}"), b.down(&rv).data(), &rv_ref, TOL);
        assert_eq!(b.down(&rm_alias), rm0, "a clone of the running mean is not changed by the update");

        let y_eval = b.batch_norm2d_eval(&xd, &gd, &bd, &rm, &rv, eps).unwrap();
        let (rm_now, rv_now) = (b.down(&rm), b.down(&rv));
        let y_eval_ref =
            oracle::batch_norm2d_eval(&arr(&x), &gamma.to_f64(), &beta.to_f64(), &rm_now.to_f64(), &rv_now.to_f64(), eps as f64);
        assert_close(&format!("batch_norm2d_eval {tag}"), b.down(&y_eval).data(), &y_eval_ref.data, TOL);

        let dy = rand_tensor(&mut r, &shape, -1.0, 1.0);
        let g = b.batch_norm2d_bwd(&b.up(&dy), &xd, &gd, &stats).unwrap();
        let (dx_ref, dg_ref, db_ref) = oracle::batch_norm2d_bwd(&arr(&dy), &arr(&x), &gamma.to_f64(), &stats_ref(b, &stats));
        assert_close(&format!("batch_norm2d_bwd dx {tag}"), b.down(&g.dx).data(), &dx_ref.data, TOL);
        assert_close(&format!("batch_norm2d_bwd dgamma {tag}"), b.down(&g.dgamma).data(), &dg_ref, TOL);
        assert_close(&format!("batch_norm2d_bwd dbeta {tag}"), b.down(&g.dbeta).data(), &db_ref, TOL);
    }
}

pub fn instance_norm2d_fwd_bwd_jvp<B: Backend>(b: &BackendUnderTest<B>) {
    let cases = [(71u64, [3usize, 4, 5, 6], 0.0f32), (72, [2, 3, 8, 8], 2.0), (73, [4, 2, 16, 16], -0.5), (74, [4, 2, 24, 24], -0.5)];
    for (seed, shape, offset) in cases {
        let mut r = rng(seed);
        let c = shape[1];
        let x = rand_tensor(&mut r, &shape, offset - 1.0, offset + 1.0);
        let gamma = rand_tensor(&mut r, &[c], 0.5, 1.5);
        let beta = rand_tensor(&mut r, &[c], -0.5, 0.5);
        let eps = 1e-5f32;
        let tag = format!("{shape:?}");
        let (g64, b64) = (gamma.to_f64(), beta.to_f64());
        let (xd, gd, bd) = (b.up(&x), b.up(&gamma), b.up(&beta));

        let (y, stats) = b.instance_norm2d(&xd, &gd, &bd, eps).unwrap();
        let (y_ref, st_ref) = oracle::instance_norm2d(&arr(&x), &g64, &b64, eps as f64);
        assert_close(&format!("instance_norm2d y {tag}"), b.down(&y).data(), &y_ref.data, TOL);
        assert_eq!(b.shape(&stats.mean), vec![shape[0] * c]);
        assert_close(&format!("instance_norm2d mean {tag}"), b.down(&stats.mean).data(), &st_ref.mean, TOL);
        assert_close(&format!("instance_norm2d invstd {tag}"), b.down(&stats.invstd).data(), &st_ref.invstd, TOL);
        let st = stats_ref(b, &stats);

        let dy = rand_tensor(&mut r, &shape, -1.0, 1.0);
        let g = b.instance_norm2d_bwd(&b.up(&dy), &xd, &gd, &stats).unwrap();
        let (dx_ref, dg_ref, db_ref) = oracle::instance_norm2d_bwd(&arr(&dy), &arr(&x), &g64, &st);
        assert_close(&format!("instance_norm2d_bwd dx {tag}"), b.down(&g.dx).data(), &dx_ref.data, TOL);
        assert_close(&format!("instance_norm2d_bwd dgamma {tag}"), b.down(&g.dgamma).data(), &dg_ref, TOL);
        assert_close(&format!("instance_norm2d_bwd dbeta {tag}"), b.down(&g.dbeta).data(), &db_ref, TOL);

        let x_dot = rand_tensor(&mut r, &shape, -1.0, 1.0);
        let xdd = b.up(&x_dot);
        let y_dot = b.instance_norm2d_jvp(&xd, &xdd, &gd, &stats).unwrap();
        let y_dot_ref = oracle::instance_norm2d_jvp(&arr(&x), &arr(&x_dot), &g64, &st);
        assert_close(&format!("instance_norm2d_jvp {tag}"), b.down(&y_dot).data(), &y_dot_ref.data, TOL);

        let y_bar = rand_tensor(&mut r, &shape, -1.0, 1.0);
        let y_dot_bar = rand_tensor(&mut r, &shape, -1.0, 1.0);
        let j = b.instance_norm2d_jvp_bwd(&xd, &xdd, &gd, &stats, &b.up(&y_bar), &b.up(&y_dot_bar)).unwrap();
        let j_ref = oracle::instance_norm2d_jvp_bwd(&arr(&x), &arr(&x_dot), &g64, &st, &arr(&y_bar), &arr(&y_dot_bar));
        assert_close(&format!("instance_norm2d_jvp_bwd x_bar {tag}"), b.down(&j.x_bar).data(), &j_ref.x_bar.data, TOL);
        assert_close(&format!("instance_norm2d_jvp_bwd x_dot_bar {tag}"), b.down(&j.x_dot_bar).data(), &j_ref.x_dot_bar.data, TOL);
        assert_close(&format!("instance_norm2d_jvp_bwd dgamma {tag}"), b.down(&j.dgamma).data(), &j_ref.dgamma, TOL);
        assert_close(&format!("instance_norm2d_jvp_bwd dbeta {tag}"), b.down(&j.dbeta).data(), &j_ref.dbeta, TOL);
    }
}

pub fn norm_bad_input<B: Backend>(b: &BackendUnderTest<B>) {
    let c = CpuBackend::new();
    let mut r = rng(131);
    let x = rand_tensor(&mut r, &[2, 3, 8, 8], -1.0, 1.0);
    let (gamma, gamma_bad, beta) = (Tensor::full(&[3], 1.0), Tensor::full(&[4], 1.0), Tensor::zeros(&[3]));
    let (rm, rv, rv_bad) = (Tensor::zeros(&[3]), Tensor::full(&[3], 1.0), Tensor::full(&[2], 1.0));
    let (xt, gt, gbt, bt) = (b.up(&x), b.up(&gamma), b.up(&gamma_bad), b.up(&beta));
    let (mut rmt, mut rvt, mut rv_badt) = (b.up(&rm), b.up(&rv), b.up(&rv_bad));
    let (mut rmc, mut rvc, mut rv_badc) = (rm.clone(), rv.clone(), rv_bad.clone());
    assert_rejected(
        "batch_norm2d_train gamma",
        Shape,
        b.batch_norm2d_train(&xt, &gbt, &bt, &mut rmt, &mut rvt, 1e-5, 0.1),
        c.batch_norm2d_train(&x, &gamma_bad, &beta, &mut rmc, &mut rvc, 1e-5, 0.1),
        &["[4]", "[2, 3, 8, 8]"],
    );
    assert_rejected(
        "batch_norm2d_train running_var",
        Shape,
        b.batch_norm2d_train(&xt, &gt, &bt, &mut rmt, &mut rv_badt, 1e-5, 0.1),
        c.batch_norm2d_train(&x, &gamma, &beta, &mut rmc, &mut rv_badc, 1e-5, 0.1),
        &["[2]", "[2, 3, 8, 8]"],
    );
    let one = Tensor::zeros(&[1, 3, 1, 1]);
    assert_rejected(
        "batch_norm2d_train one value per channel",
        Shape,
        b.batch_norm2d_train(&b.up(&one), &gt, &bt, &mut rmt, &mut rvt, 1e-5, 0.1),
        c.batch_norm2d_train(&one, &gamma, &beta, &mut rmc, &mut rvc, 1e-5, 0.1),
        &["[1, 3, 1, 1]"],
    );
    assert_rejected(
        "instance_norm2d beta",
        Shape,
        b.instance_norm2d(&xt, &gt, &gbt, 1e-5),
        c.instance_norm2d(&x, &gamma, &gamma_bad, 1e-5),
        &["[4]", "[2, 3, 8, 8]"],
    );
    let (_, bn_stats) = b.batch_norm2d_train(&xt, &gt, &bt, &mut rmt, &mut rvt, 1e-5, 0.1).unwrap();
    let (_, bn_stats_c) = c.batch_norm2d_train(&x, &gamma, &beta, &mut rmc, &mut rvc, 1e-5, 0.1).unwrap();
    let dy = rand_tensor(&mut r, &[2, 3, 8, 8], -1.0, 1.0);
    assert_rejected(
        "instance_norm2d_bwd with [C] stats",
        Shape,
        b.instance_norm2d_bwd(&b.up(&dy), &xt, &gt, &bn_stats),
        c.instance_norm2d_bwd(&dy, &x, &gamma, &bn_stats_c),
        &["[3]", "[2, 3, 8, 8]"],
    );
    let dy_short = rand_tensor(&mut r, &[2, 3, 8, 7], -1.0, 1.0);
    assert_rejected(
        "batch_norm2d_bwd dy",
        Shape,
        b.batch_norm2d_bwd(&b.up(&dy_short), &xt, &gt, &bn_stats),
        c.batch_norm2d_bwd(&dy_short, &x, &gamma, &bn_stats_c),
        &["[2, 3, 8, 7]", "[2, 3, 8, 8]"],
    );
}

/// The fused forms (a norm and the ReLU / LeakyReLU after it in one op) against the oracle's norm then
/// activation, running statistics included; and tanh, which no backend fuses, through the same entry.
pub fn norm_act_fused_matches_norm_then_act<B: Backend>(b: &BackendUnderTest<B>) {
    use cxr_gan::backend::Activation;
    let acts = [
        (Activation::Relu, oracle::Activation::Relu),
        (Activation::LeakyRelu { slope: 0.2 }, oracle::Activation::LeakyRelu { slope: 0.2f32 as f64 }),
        (Activation::Tanh, oracle::Activation::Tanh),
    ];
    for (i, (act, act_ref)) in acts.into_iter().enumerate() {
        let shape = [4usize, 3, 6, 5];
        let mut r = rng(90 + i as u64);
        let c = shape[1];
        let x = rand_tensor(&mut r, &shape, -2.0, 2.0);
        let gamma = rand_tensor(&mut r, &[c], 0.5, 1.5);
        let beta = rand_tensor(&mut r, &[c], -0.5, 0.5);
        let rv0 = rand_tensor(&mut r, &[c], 0.5, 1.5);
        let (mut rm_ref, mut rv_ref) = (vec![0.0; c], rv0.to_f64());
        let (xd, gd, bd) = (b.up(&x), b.up(&gamma), b.up(&beta));
        let (mut rm, mut rv) = (b.zeros(&[c]).unwrap(), b.up(&rv0));
        let tag = format!("{act:?}");

        let (y, stats) = b.batch_norm2d_train_act(&xd, &gd, &bd, &mut rm, &mut rv, 1e-5, 0.1, act).unwrap();
        let (n_ref, st_ref) =
            oracle::batch_norm2d_train(&arr(&x), &gamma.to_f64(), &beta.to_f64(), &mut rm_ref, &mut rv_ref, 1e-5f32 as f64, 0.1f32 as f64);
        let y_ref = oracle::activation(act_ref, &n_ref);
        assert_close(&format!("batch_norm2d_train_act y {tag}"), b.down(&y).data(), &y_ref.data, TOL);
        assert_close(&format!("batch_norm2d_train_act mean {tag}"), b.down(&stats.mean).data(), &st_ref.mean, TOL);
        assert_close(&format!("batch_norm2d_train_act running_var {tag}"), b.down(&rv).data(), &rv_ref, TOL);

        let (y, stats) = b.instance_norm2d_act(&xd, &gd, &bd, 1e-5, act).unwrap();
        let (n_ref, st_ref) = oracle::instance_norm2d(&arr(&x), &gamma.to_f64(), &beta.to_f64(), 1e-5f32 as f64);
        let y_ref = oracle::activation(act_ref, &n_ref);
        assert_close(&format!("instance_norm2d_act y {tag}"), b.down(&y).data(), &y_ref.data, TOL);
        assert_close(&format!("instance_norm2d_act invstd {tag}"), b.down(&stats.invstd).data(), &st_ref.invstd, TOL);
    }
}
