//! batch_norm2d and instance_norm2d: forwards against direct formulas, running statistics, every
//! backward by finite differences, and instance norm's jvp and its reverse pass by finite differences.

mod common;

use common::{check, dot, fd_grad, Rng, FD_TOL};
use cxr_gan_reference::*;

const SHAPES: &[[usize; 4]] = &[[2, 3, 4, 5], [3, 2, 3, 3], [1, 4, 2, 7], [4, 2, 1, 3]];
const EPS: &[f64] = &[1e-5, 0.1];

/// x with a per-channel offset and scale, so the statistics are not all ≈ (0, 1).
fn input(rng: &mut Rng, shape: [usize; 4]) -> Array {
    let mut x = rng.randn(&shape);
    let per = shape[2] * shape[3];
    for (i, v) in x.data.iter_mut().enumerate() {
        let c = (i / per) % shape[1];
        *v = *v * (0.5 + c as f64) + c as f64 - 1.0;
    }
    x
}

fn affine(rng: &mut Rng, c: usize) -> (Vec<f64>, Vec<f64>) {
    (rng.normals(c).iter().map(|g| 1.0 + 0.5 * g).collect(), rng.normals(c))
}

/// Elements of channel c of x, optionally only of sample n.
fn group(x: &Array, c: usize, n: Option<usize>) -> Vec<f64> {
    let [n_, _, h_, w_] = x.dims4();
    let mut v = Vec::new();
    for nn in 0..n_ {
        if n.is_some_and(|n| n != nn) {
            continue;
        }
        for h in 0..h_ {
            for w in 0..w_ {
                v.push(x.data[x.idx4(nn, c, h, w)]);
            }
        }
    }
    v
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn biased_var(v: &[f64]) -> f64 {
    let m = mean(v);
    v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64
}

#[test]
fn batch_norm_train_forward_and_running_stats() {
    let mut rng = Rng::new(10);
    for &shape in SHAPES {
        let c_ = shape[1];
        let x = input(&mut rng, shape);
        let (gamma, beta) = affine(&mut rng, c_);
        let rm0: Vec<f64> = rng.normals(c_);
        let rv0: Vec<f64> = rng.normals(c_).iter().map(|v| 1.0 + v.abs()).collect();
        let (mut rm, mut rv) = (rm0.clone(), rv0.clone());
        let (eps, momentum) = (1e-5, 0.1);
        let (y, stats) = batch_norm2d_train(&x, &gamma, &beta, &mut rm, &mut rv, eps, momentum);
        for c in 0..c_ {
            let g = group(&x, c, None);
            let (m, var, k) = (mean(&g), biased_var(&g), g.len() as f64);
            let unbiased = g.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (k - 1.0);
            assert!((stats.mean[c] - m).abs() < 1e-12 && (stats.invstd[c] - 1.0 / (var + eps).sqrt()).abs() < 1e-12);
            assert!((rm[c] - (0.9 * rm0[c] + 0.1 * m)).abs() < 1e-12, "running_mean");
            assert!((rv[c] - (0.9 * rv0[c] + 0.1 * unbiased)).abs() < 1e-12, "running_var");
            let yc = group(&y, c, None);
            let want: Vec<f64> = g.iter().map(|x| gamma[c] * (x - m) / (var + eps).sqrt() + beta[c]).collect();
            check(&format!("batch_norm2d_train fwd {shape:?} c{c}"), &yc, &want, 1e-13);
        }
        // Eval with the batch's own (biased) statistics as running statistics is the training forward.
        let bm: Vec<f64> = (0..c_).map(|c| mean(&group(&x, c, None))).collect();
        let bv: Vec<f64> = (0..c_).map(|c| biased_var(&group(&x, c, None))).collect();
        check(&format!("batch_norm2d_eval = train {shape:?}"), &batch_norm2d_eval(&x, &gamma, &beta, &bm, &bv, eps).data, &y.data, 1e-13);
    }
}

#[test]
fn batch_norm_eval_forward() {
    let mut rng = Rng::new(11);
    let x = input(&mut rng, [2, 3, 2, 2]);
    let (gamma, beta) = affine(&mut rng, 3);
    let (rm, rv) = (vec![0.5, -1.0, 2.0], vec![0.25, 4.0, 1.0]);
    let y = batch_norm2d_eval(&x, &gamma, &beta, &rm, &rv, 1e-3);
    for (i, &v) in x.data.iter().enumerate() {
        let c = (i / 4) % 3;
        assert!((y.data[i] - (gamma[c] * (v - rm[c]) / (rv[c] + 1e-3).sqrt() + beta[c])).abs() < 1e-14);
    }
}

#[test]
fn batch_norm_backward_by_finite_differences() {
    let mut rng = Rng::new(12);
    for &shape in SHAPES {
        for &eps in EPS {
            let c_ = shape[1];
            let x = input(&mut rng, shape);
            let (gamma, beta) = affine(&mut rng, c_);
            let r = rng.randn(&shape);
            let loss = |x: &[f64], g: &[f64], b: &[f64]| {
                let (mut rm, mut rv) = (vec![0.0; c_], vec![1.0; c_]);
                dot(&r.data, &batch_norm2d_train(&Array::new(&shape, x.to_vec()), g, b, &mut rm, &mut rv, eps, 0.1).0.data)
            };
            let (mut rm, mut rv) = (vec![0.0; c_], vec![1.0; c_]);
            let (_, stats) = batch_norm2d_train(&x, &gamma, &beta, &mut rm, &mut rv, eps, 0.1);
            let (dx, dgamma, dbeta) = batch_norm2d_bwd(&r, &x, &gamma, &stats);
            let tag = format!("{shape:?} eps {eps}");
            check(&format!("batch_norm2d_bwd dx {tag}"), &dx.data, &fd_grad(&x.data, |v| loss(v, &gamma, &beta)), FD_TOL);
            check(&format!("batch_norm2d_bwd dgamma {tag}"), &dgamma, &fd_grad(&gamma, |v| loss(&x.data, v, &beta)), FD_TOL);
            check(&format!("batch_norm2d_bwd dbeta {tag}"), &dbeta, &fd_grad(&beta, |v| loss(&x.data, &gamma, v)), FD_TOL);
        }
    }
}

#[test]
fn instance_norm_forward() {
    let mut rng = Rng::new(13);
    for &shape in SHAPES {
        let [n_, c_, _, _] = shape;
        let x = input(&mut rng, shape);
        let (gamma, beta) = affine(&mut rng, c_);
        let (y, stats) = instance_norm2d(&x, &gamma, &beta, 1e-5);
        for n in 0..n_ {
            for c in 0..c_ {
                let g = group(&x, c, Some(n));
                let (m, var) = (mean(&g), biased_var(&g));
                assert!((stats.mean[n * c_ + c] - m).abs() < 1e-12);
                assert!((stats.invstd[n * c_ + c] - 1.0 / (var + 1e-5).sqrt()).abs() < 1e-9);
                let want: Vec<f64> = g.iter().map(|x| gamma[c] * (x - m) / (var + 1e-5).sqrt() + beta[c]).collect();
                check(&format!("instance_norm2d fwd {shape:?} n{n} c{c}"), &group(&y, c, Some(n)), &want, 1e-13);
            }
        }
    }
}

#[test]
fn instance_norm_backward_by_finite_differences() {
    let mut rng = Rng::new(14);
    for &shape in SHAPES {
        for &eps in EPS {
            let x = input(&mut rng, shape);
            let (gamma, beta) = affine(&mut rng, shape[1]);
            let r = rng.randn(&shape);
            let loss = |x: &[f64], g: &[f64], b: &[f64]| dot(&r.data, &instance_norm2d(&Array::new(&shape, x.to_vec()), g, b, eps).0.data);
            let (_, stats) = instance_norm2d(&x, &gamma, &beta, eps);
            let (dx, dgamma, dbeta) = instance_norm2d_bwd(&r, &x, &gamma, &stats);
            let tag = format!("{shape:?} eps {eps}");
            check(&format!("instance_norm2d_bwd dx {tag}"), &dx.data, &fd_grad(&x.data, |v| loss(v, &gamma, &beta)), FD_TOL);
            check(&format!("instance_norm2d_bwd dgamma {tag}"), &dgamma, &fd_grad(&gamma, |v| loss(&x.data, v, &beta)), FD_TOL);
            check(&format!("instance_norm2d_bwd dbeta {tag}"), &dbeta, &fd_grad(&beta, |v| loss(&x.data, &gamma, v)), FD_TOL);
        }
    }
}

#[test]
fn instance_norm_jvp_by_finite_differences() {
    let mut rng = Rng::new(15);
    for &shape in SHAPES {
        for &eps in EPS {
            let x = input(&mut rng, shape);
            let x_dot = rng.randn(&shape);
            let (gamma, beta) = affine(&mut rng, shape[1]);
            let (_, stats) = instance_norm2d(&x, &gamma, &beta, eps);
            let jvp = instance_norm2d_jvp(&x, &x_dot, &gamma, &stats);
            // (IN(x + hẋ) − IN(x − hẋ)) / 2h
            let h = common::FD_STEP;
            let shifted = |sign: f64| {
                let xs = Array::new(&shape, x.data.iter().zip(&x_dot.data).map(|(x, d)| x + sign * h * d).collect());
                instance_norm2d(&xs, &gamma, &beta, eps).0
            };
            let (yp, ym) = (shifted(1.0), shifted(-1.0));
            let fd: Vec<f64> = yp.data.iter().zip(&ym.data).map(|(p, m)| (p - m) / (2.0 * h)).collect();
            check(&format!("instance_norm2d_jvp {shape:?} eps {eps}"), &jvp.data, &fd, FD_TOL);
        }
    }
}

#[test]
fn instance_norm_jvp_bwd_by_finite_differences() {
    // L(x, ẋ, γ, β) = ⟨ȳ, IN(x)⟩ + ⟨ẏ̄, jvp(x, ẋ)⟩, with the statistics recomputed at every x.
    let mut rng = Rng::new(16);
    for &shape in SHAPES {
        for &eps in EPS {
            let x = input(&mut rng, shape);
            let x_dot = rng.randn(&shape);
            let (gamma, beta) = affine(&mut rng, shape[1]);
            let (y_bar, y_dot_bar) = (rng.randn(&shape), rng.randn(&shape));
            let loss = |x: &[f64], xd: &[f64], g: &[f64], b: &[f64]| {
                let x = Array::new(&shape, x.to_vec());
                let (y, stats) = instance_norm2d(&x, g, b, eps);
                let y_dot = instance_norm2d_jvp(&x, &Array::new(&shape, xd.to_vec()), g, &stats);
                dot(&y_bar.data, &y.data) + dot(&y_dot_bar.data, &y_dot.data)
            };
            let (_, stats) = instance_norm2d(&x, &gamma, &beta, eps);
            let r = instance_norm2d_jvp_bwd(&x, &x_dot, &gamma, &stats, &y_bar, &y_dot_bar);
            let (xv, xdv) = (&x.data, &x_dot.data);
            let tag = format!("{shape:?} eps {eps}");
            check(&format!("instance_norm2d_jvp_bwd x_bar {tag}"), &r.x_bar.data, &fd_grad(xv, |v| loss(v, xdv, &gamma, &beta)), FD_TOL);
            check(
                &format!("instance_norm2d_jvp_bwd x_dot_bar {tag}"),
                &r.x_dot_bar.data,
                &fd_grad(xdv, |v| loss(xv, v, &gamma, &beta)),
                FD_TOL,
            );
            check(&format!("instance_norm2d_jvp_bwd dgamma {tag}"), &r.dgamma, &fd_grad(&gamma, |v| loss(xv, xdv, v, &beta)), FD_TOL);
            check(&format!("instance_norm2d_jvp_bwd dbeta {tag}"), &r.dbeta, &fd_grad(&beta, |v| loss(xv, xdv, &gamma, v)), FD_TOL);
        }
    }
}
