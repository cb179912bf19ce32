//! The WGAN-GP critic and gradient penalty: the forward against a composition of the public ops,
//! critic_backward by finite differences of critic_forward, and the penalty's gradient with respect to
//! every critic parameter and to x̂ by finite differences of the whole penalty (g recomputed by
//! critic_backward at each perturbed point).
//!
//! The critic needs H, W ≥ 64 (four stride-2 convs, then a 4×4 window), so the tests run 64×64 and
//! 64×80 (conv4 then yields 1×2, summed per sample) with ndf 1–2.

mod common;

use common::{check, dot, fd_grad_at, fd_grad_at_step, pick, Rng, FD_TOL};
use cxr_gan_reference::*;

fn make_critic(rng: &mut Rng, ndf: usize) -> Critic {
    let chans = [3, ndf, 2 * ndf, 4 * ndf, 8 * ndf, 1];
    // He-like scale so activations stay O(1) and ‖g‖ is not ≈ 1 (a nonzero penalty gradient).
    let conv_w = std::array::from_fn(|l| {
        let shape = [chans[l + 1], chans[l], 4, 4];
        let scale = (2.0 / (chans[l] * 16) as f64).sqrt();
        let w = rng.randn(&shape);
        Array::new(&shape, w.data.iter().map(|v| v * scale).collect())
    });
    let in_gamma = std::array::from_fn(|l| rng.normals(chans[l + 2]).iter().map(|g| 1.0 + 0.3 * g).collect());
    let in_beta = std::array::from_fn(|l| rng.normals(chans[l + 2]).iter().map(|b| 0.3 * b).collect());
    Critic { conv_w, in_gamma, in_beta, slope: 0.2, eps: 1e-5 }
}

/// The 11 parameter tensors as flat slices: conv_w[0..5], in_gamma[0..3], in_beta[0..3].
fn param_mut(c: &mut Critic, k: usize) -> &mut Vec<f64> {
    match k {
        0..=4 => &mut c.conv_w[k].data,
        5..=7 => &mut c.in_gamma[k - 5],
        _ => &mut c.in_beta[k - 8],
    }
}

fn grad_of(g: &CriticGrads, k: usize) -> &[f64] {
    match k {
        0..=4 => &g.conv_w[k].data,
        5..=7 => &g.in_gamma[k - 5],
        _ => &g.in_beta[k - 8],
    }
}

const PARAM_NAMES: [&str; 11] = [
    "main.0.weight",
    "main.2.weight",
    "main.5.weight",
    "main.8.weight",
    "main.11.weight",
    "main.3.weight (IN1 gamma)",
    "main.6.weight (IN2 gamma)",
    "main.9.weight (IN3 gamma)",
    "main.3.bias (IN1 beta)",
    "main.6.bias (IN2 beta)",
    "main.9.bias (IN3 beta)",
];

/// λ·mean((‖g_n‖ − 1)²) with g from critic_backward: the penalty's value only, computed independently
/// of gradient_penalty's double backward.
fn gp_value(c: &Critic, x_hat: &Array, lambda: f64) -> f64 {
    let n = x_hat.shape[0];
    let (_, g) = critic_backward(c, x_hat, &vec![1.0; n]);
    let per = g.len() / n;
    (0..n).map(|i| (g.data[i * per..(i + 1) * per].iter().map(|v| v * v).sum::<f64>().sqrt() - 1.0).powi(2)).sum::<f64>() * lambda
        / n as f64
}

/// FD of `f(critic with parameter tensor k replaced)` at the given coordinates.
fn fd_param(c: &Critic, k: usize, coords: &[usize], f: impl Fn(&Critic) -> f64) -> Vec<f64> {
    let mut c0 = c.clone();
    let p = param_mut(&mut c0, k).clone();
    fd_grad_at(&p, coords, |v| {
        let mut cp = c.clone();
        *param_mut(&mut cp, k) = v.to_vec();
        f(&cp)
    })
}

#[test]
fn critic_forward_is_the_layer_composition() {
    let mut rng = Rng::new(30);
    let c = make_critic(&mut rng, 2);
    let x = rng.randn(&[3, 3, 64, 80]);
    let act = Activation::LeakyRelu { slope: c.slope };
    let mut a = activation(act, &conv2d(&x, &c.conv_w[0], [2, 2], [1, 1]));
    for l in 1..4 {
        let z = conv2d(&a, &c.conv_w[l], [2, 2], [1, 1]);
        a = activation(act, &instance_norm2d(&z, &c.in_gamma[l - 1], &c.in_beta[l - 1], c.eps).0);
    }
    let out = conv2d(&a, &c.conv_w[4], [1, 1], [0, 0]);
    assert_eq!(out.shape, vec![3, 1, 1, 2]);
    let want: Vec<f64> = (0..3).map(|n| out.data[2 * n] + out.data[2 * n + 1]).collect();
    assert_eq!(critic_forward(&c, &x), want);
    // On 64×64 the output is 1×1: the sum is PyTorch's view(-1).
    let x = rng.randn(&[2, 3, 64, 64]);
    assert_eq!(critic_forward(&c, &x).len(), 2);
}

/// critic_backward against FD of Σ dout·critic_forward: `per_tensor` coordinates of each parameter
/// tensor (all of them for usize::MAX) and `x_coords` of the input.
fn check_critic_backward(seed: u64, ndf: usize, shape: [usize; 4], per_tensor: usize, x_coords: usize) {
    let mut rng = Rng::new(seed);
    let c = make_critic(&mut rng, ndf);
    let x = rng.randn(&shape);
    let dout = rng.normals(shape[0]);
    let (grads, dx) = critic_backward(&c, &x, &dout);
    let tag = format!("ndf {ndf} {shape:?}");
    for (k, name) in PARAM_NAMES.iter().enumerate() {
        let coords = rng.sample(grad_of(&grads, k).len(), per_tensor);
        let fd = fd_param(&c, k, &coords, |cp| dot(&dout, &critic_forward(cp, &x)));
        check(&format!("critic_backward {name} {tag}"), &pick(grad_of(&grads, k), &coords), &fd, FD_TOL);
    }
    let coords = rng.sample(x.len(), x_coords);
    let fd = fd_grad_at(&x.data, &coords, |v| dot(&dout, &critic_forward(&c, &Array::new(&shape, v.to_vec()))));
    check(&format!("critic_backward dx {tag}"), &pick(&dx.data, &coords), &fd, FD_TOL);
}

#[test]
fn critic_backward_by_finite_differences_64x64_every_parameter() {
    check_critic_backward(31, 1, [1, 3, 64, 64], usize::MAX, 100);
}

#[test]
fn critic_backward_by_finite_differences_64x80_sampled() {
    check_critic_backward(32, 2, [3, 3, 64, 80], 15, 60);
}

/// gradient_penalty's forward quantities against direct computations, and its gradients against FD of
/// the whole penalty (gp_value, which recomputes g by critic_backward at each perturbed point).
fn check_gradient_penalty(seed: u64, ndf: usize, shape: [usize; 4], per_tensor: usize, x_coords: usize) {
    let mut rng = Rng::new(seed);
    let lambda = 10.0;
    let c = make_critic(&mut rng, ndf);
    let (real, fake) = (rng.randn(&shape), rng.randn(&shape));
    let alpha: Vec<f64> = (0..shape[0]).map(|_| rng.uniform()).collect();
    let r = gradient_penalty(&c, &real, &fake, &alpha, lambda);
    let tag = format!("ndf {ndf} {shape:?}");

    let per = real.len() / shape[0];
    for i in 0..real.len() {
        let a = alpha[i / per];
        assert!((r.x_hat.data[i] - (a * real.data[i] + (1.0 - a) * fake.data[i])).abs() < 1e-15);
    }
    assert_eq!(r.critic_x_hat, critic_forward(&c, &r.x_hat));
    let (_, g) = critic_backward(&c, &r.x_hat, &vec![1.0; shape[0]]);
    for (n, k) in r.grad_norm.iter().enumerate() {
        let gn = &g.data[n * per..(n + 1) * per];
        assert!((k - dot(gn, gn).sqrt()).abs() < 1e-14 * k);
    }
    assert!((r.gp - gp_value(&c, &r.x_hat, lambda)).abs() < 1e-14 * r.gp);
    println!("gp {tag}: {} (grad norms {:?})", r.gp, r.grad_norm);
    assert!(r.grad_norm.iter().all(|k| (k - 1.0).abs() > 0.1), "want a penalty with a real gradient");

    for (k, name) in PARAM_NAMES.iter().enumerate() {
        let coords = rng.sample(grad_of(&r.grads, k).len(), per_tensor);
        let fd = fd_param(&c, k, &coords, |cp| gp_value(cp, &r.x_hat, lambda));
        if k == 10 {
            // IN3's beta only shifts the input of the last LeakyReLU; g = ∇x C depends on it only
            // through that layer's mask, which is locally constant. So dGP/dβ3 is exactly 0, and
            // both sides must say so bit for bit (the perturbed g is the very same computation).
            assert!(fd.iter().all(|&v| v == 0.0), "FD of GP along IN3 beta is not 0: {fd:?}");
            assert!(grad_of(&r.grads, k).iter().all(|&v| v == 0.0), "dGP/d IN3 beta is not 0");
            continue;
        }
        check(&format!("gradient_penalty d/d {name} {tag}"), &pick(grad_of(&r.grads, k), &coords), &fd, FD_TOL);
    }
    // Step 1e-4 for x̂: GP is O(10) while its x̂-gradient entries are O(0.1), so at step 1e-6 the FD
    // is rounding-bound (a sweep gave rel. errors 8e-6, 8e-7, 9e-8, 7e-9, 3e-9 at steps 1e-7 .. 1e-3:
    // ∝ 1/h, not h²); at 1e-4 both rounding and truncation sit well under the 1e-6 bar.
    let coords = rng.sample(r.x_hat.len(), x_coords);
    let fd = fd_grad_at_step(&r.x_hat.data, &coords, 1e-4, |v| gp_value(&c, &Array::new(&shape, v.to_vec()), lambda));
    check(&format!("gradient_penalty d/dx_hat {tag}"), &pick(&r.grad_x_hat.data, &coords), &fd, FD_TOL);
}

#[test]
fn gradient_penalty_by_finite_differences_64x64_every_parameter() {
    check_gradient_penalty(33, 1, [1, 3, 64, 64], usize::MAX, 100);
}

#[test]
fn gradient_penalty_by_finite_differences_64x80_sampled() {
    // ndf 2, batch 3, and a 1×2 output map per sample (the spatial sum).
    check_gradient_penalty(34, 2, [3, 3, 64, 80], 10, 60);
}
