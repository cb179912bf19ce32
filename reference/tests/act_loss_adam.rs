//! Activations, BCE losses and Adam: gradients by finite differences, PyTorch's edge conventions, and a
//! hand-computed Adam example.

mod common;

use common::{check, dot, fd_grad, Rng, FD_TOL};
use cxr_gan_reference::*;

const ACTS: &[Activation] = &[Activation::Relu, Activation::LeakyRelu { slope: 0.2 }, Activation::Tanh, Activation::Sigmoid];

#[test]
fn activation_backward_by_finite_differences() {
    let mut rng = Rng::new(20);
    for &act in ACTS {
        for shape in [[2, 3, 4, 5], [1, 1, 3, 7]] {
            // Keep away from relu's kink at 0, where a central difference straddles it.
            let mut x = rng.randn(&shape);
            x.data.iter_mut().filter(|v| v.abs() < 0.05).for_each(|v| *v += 0.1);
            let x = Array::new(&shape, x.data.iter().map(|v| 2.0 * v).collect());
            let r = rng.randn(&shape);
            let y = activation(act, &x);
            let dx = activation_bwd(act, &x, &y, &r);
            let fd = fd_grad(&x.data, |v| dot(&r.data, &activation(act, &Array::new(&shape, v.to_vec())).data));
            check(&format!("activation_bwd {act:?} {shape:?}"), &dx.data, &fd, FD_TOL);
        }
    }
}

#[test]
fn activation_values_and_zero_convention() {
    let x = Array::new(&[1, 1, 1, 5], vec![-2.0, -0.0, 0.0, 0.5, 800.0]);
    let leaky = Activation::LeakyRelu { slope: 0.2 };
    assert_eq!(activation(Activation::Relu, &x).data, vec![0.0, 0.0, 0.0, 0.5, 800.0]);
    assert_eq!(activation(leaky, &x).data, vec![-0.4, 0.0, 0.0, 0.5, 800.0]);
    let s = activation(Activation::Sigmoid, &Array::new(&[1, 1, 1, 3], vec![-800.0, 0.0, 800.0]));
    assert_eq!(s.data, vec![0.0, 0.5, 1.0]); // no overflow, no NaN
    assert!((activation(Activation::Tanh, &x).data[3] - 0.5f64.tanh()).abs() == 0.0);

    // PyTorch at exactly 0: relu passes nothing, leaky_relu passes `slope`.
    let z = Array::new(&[1, 1, 1, 2], vec![0.0, -0.0]);
    let dy = Array::new(&[1, 1, 1, 2], vec![3.0, 3.0]);
    assert_eq!(activation_bwd(Activation::Relu, &z, &activation(Activation::Relu, &z), &dy).data, vec![0.0, 0.0]);
    assert_eq!(activation_bwd(leaky, &z, &activation(leaky, &z), &dy).data, vec![3.0 * 0.2, 3.0 * 0.2]);
    // tanh and sigmoid read y.
    let y = Array::new(&[1, 1, 1, 2], vec![0.5, -0.25]);
    assert_eq!(activation_bwd(Activation::Tanh, &z, &y, &dy).data, vec![3.0 * 0.75, 3.0 * (1.0 - 0.0625)]);
    assert_eq!(activation_bwd(Activation::Sigmoid, &z, &y, &dy).data, vec![3.0 * 0.25, 3.0 * -0.25 * 1.25]);
}

#[test]
fn bce_gradient_by_finite_differences() {
    let mut rng = Rng::new(21);
    let shape = [3, 1, 2, 5];
    let n: usize = shape.iter().product();
    let p = Array::new(&shape, (0..n).map(|_| 0.05 + 0.9 * rng.uniform()).collect());
    // Hard and soft targets.
    let t = Array::new(&shape, (0..n).map(|i| if i % 3 == 2 { rng.uniform() } else { (i % 2) as f64 }).collect());
    let (loss, dp) = bce(&p, &t);
    let want: f64 = -p.data.iter().zip(&t.data).map(|(p, t)| t * p.ln() + (1.0 - t) * (1.0 - p).ln()).sum::<f64>() / n as f64;
    assert!((loss - want).abs() <= 1e-14 * want.abs(), "bce value {loss} vs {want}");
    let fd = fd_grad(&p.data, |v| bce(&Array::new(&shape, v.to_vec()), &t).0);
    check("bce dp", &dp.data, &fd, FD_TOL);
}

#[test]
fn bce_clamps_at_zero_and_one() {
    // p ∈ {0, 1} against both targets: the two wrong ones each cost 100 (the log clamp), the two right
    // ones 0; gradients use the clamped denominator max(p(1 − p), 1e-12).
    let p = Array::new(&[4], vec![0.0, 1.0, 0.0, 1.0]);
    let t = Array::new(&[4], vec![0.0, 0.0, 1.0, 1.0]);
    let (loss, dp) = bce(&p, &t);
    assert_eq!(loss, 100.0 * 2.0 / 4.0);
    assert_eq!(dp.data, vec![0.0, 1.0 / 1e-12 / 4.0, -1.0 / 1e-12 / 4.0, 0.0]);
    // Near (but not at) the edge the denominator is still clamped: p(1 − p) ≈ 1e-13 < 1e-12.
    let (loss, dp) = bce(&Array::new(&[1], vec![1e-13]), &Array::new(&[1], vec![1.0]));
    assert!((loss - -(1e-13f64.ln())).abs() < 1e-12);
    assert_eq!(dp.data[0], (1e-13 - 1.0) / 1e-12);
    // A plain value: −ln 0.3.
    assert!((bce(&Array::new(&[1], vec![0.3]), &Array::new(&[1], vec![1.0])).0 - 1.2039728043259361).abs() < 1e-15);
}

#[test]
fn bce_logits_gradient_and_stability() {
    let mut rng = Rng::new(22);
    let shape = [2, 1, 3, 4];
    let n: usize = shape.iter().product();
    let z = rng.randn(&shape);
    let z = Array::new(&shape, z.data.iter().map(|v| 3.0 * v).collect());
    let t = Array::new(&shape, (0..n).map(|i| if i % 4 == 3 { rng.uniform() } else { (i % 2) as f64 }).collect());
    let (loss, dz) = bce_logits(&z, &t);
    let fd = fd_grad(&z.data, |v| bce_logits(&Array::new(&shape, v.to_vec()), &t).0);
    check("bce_logits dz", &dz.data, &fd, FD_TOL);
    // Agrees with bce on σ(z) where that is accurate.
    let (loss_p, dp) = bce(&activation(Activation::Sigmoid, &z), &t);
    assert!((loss - loss_p).abs() <= 1e-12 * loss.abs(), "bce_logits {loss} vs bce(sigmoid) {loss_p}");
    let sig = activation(Activation::Sigmoid, &z);
    let chain: Vec<f64> = dp.data.iter().zip(&sig.data).map(|(d, s)| d * s * (1.0 - s)).collect();
    check("bce_logits dz vs bce chain rule", &dz.data, &chain, 1e-12);
    // Huge logits stay finite: ln(1 + e^{−1000}) = 0, so confidently wrong costs |z| and right costs 0.
    let (loss, dz) = bce_logits(&Array::new(&[4], vec![1000.0, -1000.0, 1000.0, -1000.0]), &Array::new(&[4], vec![0.0, 1.0, 1.0, 0.0]));
    assert_eq!(loss, 2000.0 / 4.0);
    assert_eq!(dz.data, vec![0.25, -0.25, 0.0, 0.0]);
}

#[test]
fn adam_two_steps_by_hand() {
    let cfg = AdamConfig { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    let mut p = vec![1.0, -2.0];
    let (mut m, mut v) = (vec![0.0; 2], vec![0.0; 2]);

    adam_step(&mut p, &[0.5, -3.0], &mut m, &mut v, &cfg, 1);
    // Step 1, param 0: m = 0.1·0.5 = 0.05, v = 0.001·0.25 = 0.00025, bc1 = 0.1, bc2 = 0.001,
    // denom = sqrt(0.00025)/sqrt(0.001) + 1e-8 = 0.5 + 1e-8, p = 1 − (0.1/0.1)·0.05/(0.5 + 1e-8).
    // Param 1: m = −0.3, v = 0.009, denom = 3 + 1e-8, p = −2 + 0.3/(3 + 1e-8).
    assert!((m[0] - 0.05).abs() < 1e-16 && (v[0] - 0.00025).abs() < 1e-18);
    assert!((m[1] + 0.3).abs() < 1e-15 && (v[1] - 0.009).abs() < 1e-17);
    assert!((p[0] - (1.0 - 0.05 / (0.5 + 1e-8))).abs() < 1e-15);
    assert!((p[1] - (-2.0 + 0.3 / (3.0 + 1e-8))).abs() < 1e-15);
    assert!((p[0] - 0.900000002).abs() < 1e-15 && (p[1] - -1.9000000003333333).abs() < 1e-15);

    adam_step(&mut p, &[-0.25, 1.0], &mut m, &mut v, &cfg, 2);
    // Step 2, param 0: m = 0.9·0.05 + 0.1·(−0.25) = 0.02, v = 0.999·0.00025 + 0.001·0.0625 = 0.00031225,
    // bc1 = 1 − 0.81 = 0.19, bc2 = 1 − 0.998001 = 0.001999.
    // Param 1: m = 0.9·(−0.3) + 0.1·1 = −0.17, v = 0.999·0.009 + 0.001·1 = 0.009991.
    assert!((m[0] - 0.02).abs() < 1e-16 && (v[0] - 0.00031225).abs() < 1e-18);
    assert!((m[1] + 0.17).abs() < 1e-15 && (v[1] - 0.009991).abs() < 1e-17);
    let want0 = 0.900000002 - (0.1 / 0.19) * 0.02 / (0.00031225f64.sqrt() / 0.001999f64.sqrt() + 1e-8);
    let want1 = -1.9000000003333333 - (0.1 / 0.19) * -0.17 / (0.009991f64.sqrt() / 0.001999f64.sqrt() + 1e-8);
    assert!((p[0] - want0).abs() < 1e-14 && (p[1] - want1).abs() < 1e-14);
    // The same numbers, evaluated independently in Python: 0.8733662987078463, −1.8599781433169098.
    assert!((p[0] - 0.8733662987078463).abs() < 1e-14 && (p[1] - -1.8599781433169098).abs() < 1e-14);
}
