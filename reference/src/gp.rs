//! The WGAN-GP critic and its gradient penalty, with the penalty's exact parameter gradient (a double
//! backward, written by hand from the ops of conv.rs, norm.rs and act.rs; no autodiff).
//!
//! The critic is the PyTorch DCGAN tutorial's discriminator with InstanceNorm2d(affine=True) in place
//! of BatchNorm2d and no final Sigmoid:
//!
//!   conv0 (s2 p1) → LeakyReLU → [conv_l (s2 p1) → IN_l → LeakyReLU] for l = 1, 2, 3 → conv4 (s1 p0)
//!
//! with weights conv_w[l] (conv_w[4] is [1, 8·ndf, 4, 4]) and IN_l's affine parameters in_gamma[l − 1],
//! in_beta[l − 1]. In the state_dict: conv_w[0..5] = main.{0,2,5,8,11}.weight, in_gamma[0..3] =
//! main.{3,6,9}.weight, in_beta[0..3] = main.{3,6,9}.bias. The critic's value for sample n is the SUM of conv4's outputs over its spatial
//! positions: for the 64×64 input the critic is built for, conv4 yields 1×1 and this is exactly
//! PyTorch's `output.view(-1)`; larger inputs (e.g. 64×80 → 1×2) stay well defined. An input needs
//! H, W ≥ 64 for conv4's 4×4 window to fit, since four stride-2 layers shrink it 16-fold.

use crate::act::{activation, activation_bwd, Activation};
use crate::conv::{conv2d, conv2d_bwd_data, conv2d_bwd_weight};
use crate::norm::{instance_norm2d, instance_norm2d_bwd, instance_norm2d_jvp, instance_norm2d_jvp_bwd, NormStats};
use crate::Array;

#[derive(Clone, Debug)]
pub struct Critic {
    pub conv_w: [Array; 5],
    pub in_gamma: [Vec<f64>; 3],
    pub in_beta: [Vec<f64>; 3],
    /// LeakyReLU's negative slope (0.2 in the tutorial).
    pub slope: f64,
    /// InstanceNorm2d's eps (1e-5 in PyTorch).
    pub eps: f64,
}

/// Gradients with the Critic's parameter layout.
#[derive(Clone, Debug)]
pub struct CriticGrads {
    pub conv_w: [Array; 5],
    pub in_gamma: [Vec<f64>; 3],
    pub in_beta: [Vec<f64>; 3],
}

#[derive(Clone, Debug)]
pub struct GradientPenalty {
    /// λ·mean_n((‖g_n‖₂ − 1)²).
    pub gp: f64,
    /// ‖g_n‖₂ per sample.
    pub grad_norm: Vec<f64>,
    /// C(x̂)_n per sample.
    pub critic_x_hat: Vec<f64>,
    /// The interpolates x̂ = α_n·real + (1 − α_n)·fake.
    pub x_hat: Array,
    /// dGP/dθ.
    pub grads: CriticGrads,
    /// dGP/dx̂ (x̂ as the leaf, α fixed).
    pub grad_x_hat: Array,
}

/// Stride and padding of conv l.
fn conv_geometry(l: usize) -> ([usize; 2], [usize; 2]) {
    if l < 4 {
        ([2, 2], [1, 1])
    } else {
        ([1, 1], [0, 0])
    }
}

/// What the forward pass keeps for the backwards. For l = 0..4: z[l] = conv_l(a[l]), n[l] = IN_l(z[l])
/// (n[0] = z[0]: no norm after conv0), a[l + 1] = LeakyReLU(n[l]); z[4] = conv4(a[4]) is the output map.
struct Tape {
    a: Vec<Array>,
    z: Vec<Array>,
    n: Vec<Array>,
    /// stats[l] for l = 1, 2, 3 (None at l = 0).
    stats: Vec<Option<NormStats>>,
}

impl Critic {
    fn act(&self) -> Activation {
        Activation::LeakyRelu { slope: self.slope }
    }

    fn forward_tape(&self, x: &Array) -> Tape {
        assert_eq!(self.conv_w[4].dims4()[0], 1, "the critic's last conv must have 1 output channel");
        let mut t = Tape { a: vec![x.clone()], z: Vec::new(), n: Vec::new(), stats: Vec::new() };
        for l in 0..5 {
            let (s, p) = conv_geometry(l);
            let z = conv2d(&t.a[l], &self.conv_w[l], s, p);
            if l < 4 {
                let (n, stats) = if l == 0 {
                    (z.clone(), None)
                } else {
                    let (n, st) = instance_norm2d(&z, &self.in_gamma[l - 1], &self.in_beta[l - 1], self.eps);
                    (n, Some(st))
                };
                t.a.push(activation(self.act(), &n));
                t.n.push(n);
                t.stats.push(stats);
            }
            t.z.push(z);
        }
        t
    }
}

/// Per-sample sum over the spatial positions of a [N, 1, H, W] map.
fn per_sample_sum(z: &Array) -> Vec<f64> {
    let [n_, c_, h_, w_] = z.dims4();
    assert_eq!(c_, 1);
    (0..n_).map(|n| z.data[n * h_ * w_..(n + 1) * h_ * w_].iter().sum()).collect()
}

fn add(a: &Array, b: &Array) -> Array {
    assert_eq!(a.shape, b.shape);
    Array::new(&a.shape, a.data.iter().zip(&b.data).map(|(a, b)| a + b).collect())
}

fn zero_grads(c: &Critic) -> CriticGrads {
    CriticGrads {
        conv_w: c.conv_w.clone().map(|w| Array::zeros(&w.shape)),
        in_gamma: c.in_gamma.clone().map(|g| vec![0.0; g.len()]),
        in_beta: c.in_beta.clone().map(|b| vec![0.0; b.len()]),
    }
}

/// C(x): one value per sample (see the module doc for the spatial sum).
pub fn critic_forward(c: &Critic, x: &Array) -> Vec<f64> {
    per_sample_sum(&c.forward_tape(x).z[4])
}

/// Gradients of Σ_n dout_n·C(x)_n with respect to the parameters and to x.
pub fn critic_backward(c: &Critic, x: &Array, dout: &[f64]) -> (CriticGrads, Array) {
    let t = c.forward_tape(x);
    let [n_, _, ho, wo] = t.z[4].dims4();
    assert_eq!(dout.len(), n_, "critic_backward: dout needs one value per sample");
    // The spatial sum spreads dout_n to every output position of sample n.
    let mut dz = Array::new(&[n_, 1, ho, wo], dout.iter().flat_map(|&d| std::iter::repeat_n(d, ho * wo)).collect());
    let mut grads = zero_grads(c);
    for l in (0..5).rev() {
        if l < 4 {
            // dz currently holds the gradient of a[l + 1]; go back through LeakyReLU and IN_l.
            let dn = activation_bwd(c.act(), &t.n[l], &t.a[l + 1], &dz);
            dz = match &t.stats[l] {
                None => dn,
                Some(st) => {
                    let (dzl, dg, db) = instance_norm2d_bwd(&dn, &t.z[l], &c.in_gamma[l - 1], st);
                    grads.in_gamma[l - 1] = dg;
                    grads.in_beta[l - 1] = db;
                    dzl
                }
            };
        }
        let (s, p) = conv_geometry(l);
        grads.conv_w[l] = conv2d_bwd_weight(&t.a[l], &dz, c.conv_w[l].dims4(), s, p);
        dz = conv2d_bwd_data(&dz, &c.conv_w[l], t.a[l].dims4(), s, p); // now the gradient of a[l]
    }
    (grads, dz)
}

/// The penalty's head from the per-sample input gradients g [N, ...]: GP = λ·mean_n((‖g_n‖₂ − 1)²), the
/// norms, and v = ∂GP/∂g = 2λ(‖g_n‖ − 1)·g_n/‖g_n‖/N (0 where ‖g_n‖ = 0, as PyTorch's norm backward).
pub fn gradient_penalty_head(g: &Array, lambda: f64) -> (f64, Vec<f64>, Array) {
    let n_ = g.shape[0];
    let per = g.len() / n_;
    let grad_norm: Vec<f64> = (0..n_).map(|n| g.data[n * per..(n + 1) * per].iter().map(|v| v * v).sum::<f64>().sqrt()).collect();
    let gp = lambda * grad_norm.iter().map(|k| (k - 1.0).powi(2)).sum::<f64>() / n_ as f64;
    let v = (0..g.len())
        .map(|i| {
            let k = grad_norm[i / per];
            if k == 0.0 {
                0.0
            } else {
                2.0 * lambda * (k - 1.0) * g.data[i] / k / n_ as f64
            }
        })
        .collect();
    (gp, grad_norm, Array::new(&g.shape, v))
}

/// WGAN-GP's penalty on x̂ = α_n·real + (1 − α_n)·fake: g_n = ∇x̂ Σ C(x̂) (sample n's block),
/// GP = λ·mean_n((‖g_n‖₂ − 1)²), and its gradients with respect to θ and x̂.
///
/// GP depends on θ and x̂ only through g, and dGP/dg_n = v_n = 2λ(‖g_n‖ − 1)·g_n/‖g_n‖/N (0 where
/// ‖g_n‖ = 0, as PyTorch's norm backward). Holding v constant, dGP/d(θ, x̂) = ∂/∂(θ, x̂) ⟨g(θ, x̂), v⟩,
/// and ⟨g, v⟩ = Σ_n ⟨∇C_n, v_n⟩ is the directional derivative of Σ C along v. So:
/// 1. a forward pass carrying tangents (ȧ[0] = v; conv: ż = conv(ȧ, w), linear in its input;
///    LeakyReLU: ȧ = mask ⊙ ṅ; IN: ṅ = instance_norm2d_jvp) whose output tangent sums to ⟨g, v⟩;
/// 2. a reverse pass through the combined primal + tangent graph, cotangent 0 on the primal output and 1
///    on every tangent output position (the same spatial sum as the primal).
pub fn gradient_penalty(c: &Critic, real: &Array, fake: &Array, alpha: &[f64], lambda: f64) -> GradientPenalty {
    assert_eq!(real.shape, fake.shape, "gradient_penalty: real and fake shapes differ");
    let [n_, ch, h_, w_] = real.dims4();
    assert_eq!(alpha.len(), n_, "gradient_penalty: one alpha per sample");
    let per = ch * h_ * w_;
    let x_hat =
        Array::new(&real.shape, (0..real.len()).map(|i| alpha[i / per] * real.data[i] + (1.0 - alpha[i / per]) * fake.data[i]).collect());

    // g = ∇x̂ Σ_n C(x̂)_n; samples do not interact (instance norm), so block n is ∇C_n.
    let (_, g) = critic_backward(c, &x_hat, &vec![1.0; n_]);
    let (gp, grad_norm, v) = gradient_penalty_head(&g, lambda);

    // 1. Primal and tangent forward.
    let t = c.forward_tape(&x_hat);
    let mut a_dot = vec![v];
    let mut z_dot = Vec::new();
    for l in 0..5 {
        let (s, p) = conv_geometry(l);
        let zd = conv2d(&a_dot[l], &c.conv_w[l], s, p);
        if l < 4 {
            let nd = match &t.stats[l] {
                None => zd.clone(),
                Some(st) => instance_norm2d_jvp(&t.z[l], &zd, &c.in_gamma[l - 1], st),
            };
            a_dot.push(activation_bwd(c.act(), &t.n[l], &t.a[l + 1], &nd));
        }
        z_dot.push(zd);
    }

    // 2. Reverse through (primal, tangent): bar / dot_bar are the cotangents of the current primal /
    //    tangent node, starting at (z[4], ż[4]).
    let mut grads = zero_grads(c);
    let mut bar = Array::zeros(&t.z[4].shape);
    let mut dot_bar = Array::new(&t.z[4].shape, vec![1.0; t.z[4].len()]);
    for l in (0..5).rev() {
        if l < 4 {
            // bar / dot_bar are now the cotangents of a[l + 1] / ȧ[l + 1]. LeakyReLU's mask is locally
            // constant, so both go back through the same mask and there is no second-order term.
            let n_bar = activation_bwd(c.act(), &t.n[l], &t.a[l + 1], &bar);
            let n_dot_bar = activation_bwd(c.act(), &t.n[l], &t.a[l + 1], &dot_bar);
            (bar, dot_bar) = match &t.stats[l] {
                None => (n_bar, n_dot_bar),
                Some(st) => {
                    let r = instance_norm2d_jvp_bwd(&t.z[l], &z_dot[l], &c.in_gamma[l - 1], st, &n_bar, &n_dot_bar);
                    grads.in_gamma[l - 1] = r.dgamma;
                    grads.in_beta[l - 1] = r.dbeta;
                    (r.x_bar, r.x_dot_bar)
                }
            };
        }
        // z = conv(a, w) and ż = conv(ȧ, w): w is shared, so it collects from both.
        let (s, p) = conv_geometry(l);
        let w_shape = c.conv_w[l].dims4();
        grads.conv_w[l] = add(&conv2d_bwd_weight(&t.a[l], &bar, w_shape, s, p), &conv2d_bwd_weight(&a_dot[l], &dot_bar, w_shape, s, p));
        bar = conv2d_bwd_data(&bar, &c.conv_w[l], t.a[l].dims4(), s, p);
        dot_bar = conv2d_bwd_data(&dot_bar, &c.conv_w[l], t.a[l].dims4(), s, p);
    }
    // bar is now the cotangent of a[0] = x̂ (v held constant, so ȧ[0]'s cotangent is dropped).
    GradientPenalty { gp, grad_norm, critic_x_hat: per_sample_sum(&t.z[4]), x_hat, grads, grad_x_hat: bar }
}
