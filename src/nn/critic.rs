//! WGAN-GP's gradient penalty GP = λ·mean_n((‖∇x̂ C(x̂)_n‖₂ − 1)²) and its exact gradient, by hand.
//!
//! With g = ∇x̂ C and v = ∂GP/∂g = 2λ(‖g‖ − 1)·g/‖g‖/N held constant, ∂GP/∂θ = ∂/∂θ ⟨∇x C(x; θ), v⟩, and
//! ⟨∇x C, v⟩ is the output tangent of a forward-mode pass of the critic along ẋ = v. So: (1) forward and
//! backward with ones give g; (2) a tangent pass carries ẋ = v through every layer; (3) a reverse pass
//! through the primal+tangent graph, with cotangent 0 on the output and 1 on its tangent, yields ∂GP/∂θ
//! and ∂GP/∂x̂. Conv and piecewise-linear activations are linear in the tangent; instance norm's tangent
//! map depends on x, which gives its reverse pass a second-order term (`instance_norm2d_jvp_bwd`).

use super::sequential::{dims, Grads, Layer, Mode, Saved, Sequential};
use crate::backend::{host_math, Activation, Backend, GradNorms};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// The penalty and what the WGAN-GP step reports.
#[derive(Clone, Debug)]
pub struct GradientPenalty<T> {
    pub gp: f64,
    /// ‖∇x̂ C(x̂)_n‖₂ per sample.
    pub grad_norm: Vec<f64>,
    /// C(x̂) [N, 1, 1, 1].
    pub critic_x_hat: T,
    /// ∂GP/∂x̂, when asked for.
    pub grad_x_hat: Option<T>,
}

/// [`GradientPenalty`] with the per-sample norms (and so the penalty) not yet read from the device.
#[derive(Clone, Debug)]
pub struct PendingGradientPenalty<T> {
    pub grad_norm: GradNorms<T>,
    pub lambda: f32,
    pub critic_x_hat: T,
    pub grad_x_hat: Option<T>,
}

impl<T> PendingGradientPenalty<T> {
    pub fn resolve<B: Backend<Tensor = T>>(self, b: &B) -> Result<GradientPenalty<T>> {
        let grad_norm = self.grad_norm.resolve(b)?;
        let gp = host_math::gradient_penalty(&grad_norm, self.lambda);
        Ok(GradientPenalty { gp, grad_norm, critic_x_hat: self.critic_x_hat, grad_x_hat: self.grad_x_hat })
    }
}

fn unsupported(i: usize, what: &str) -> Error {
    Error::Other(format!(
        "gradient penalty: main.{i} is {what}, which has no tangent pass (the critic uses conv, instance norm and (leaky) ReLU)"
    ))
}

/// Computes the penalty on x̂ = α·real + (1 − α)·fake and accumulates ∂GP/∂θ into `grads`.
#[allow(clippy::too_many_arguments)]
pub fn gradient_penalty<B: Backend>(
    b: &B,
    critic: &mut Sequential<B::Tensor>,
    real: &B::Tensor,
    fake: &B::Tensor,
    alpha: &[f32],
    lambda: f32,
    grads: &mut Grads<B::Tensor>,
    want_grad_x_hat: bool,
) -> Result<GradientPenalty<B::Tensor>> {
    let alpha = b.upload(&Tensor::new(&[alpha.len()], alpha.to_vec())?)?;
    gradient_penalty_pending(b, critic, real, fake, &alpha, lambda, grads, want_grad_x_hat)?.resolve(b)
}

/// [`gradient_penalty`] with α [N] on the device and the norms read later (no host copy inside).
#[allow(clippy::too_many_arguments)]
pub fn gradient_penalty_pending<B: Backend>(
    b: &B,
    critic: &mut Sequential<B::Tensor>,
    real: &B::Tensor,
    fake: &B::Tensor,
    alpha: &B::Tensor,
    lambda: f32,
    grads: &mut Grads<B::Tensor>,
    want_grad_x_hat: bool,
) -> Result<PendingGradientPenalty<B::Tensor>> {
    // (1) g = ∇x̂ Σ_n C(x̂)_n: each sample's score depends on its own image only (instance norm).
    let x_hat = b.lerp_per_sample_tensor(real, fake, alpha)?;
    let (score, tape) = critic.forward(b, &x_hat, Mode::Train)?;
    let ones = b.full(&b.shape(&score), 1.0)?;
    let g = critic.backward(b, &tape, &ones, None, true)?.expect("input gradient was asked for");
    let head = b.gradient_penalty_head_deferred(&g, lambda)?;

    // (2) Tangent pass: tangents[i] is the tangent of layer i's input.
    let mut tangents = Vec::with_capacity(critic.layers.len());
    let mut t = head.v;
    for (i, (layer, saved)) in critic.layers.iter().zip(&tape.saved).enumerate() {
        let next = match (layer, saved) {
            (Layer::Conv2d { weight, p }, _) => b.conv2d(&t, weight, *p)?,
            (Layer::ConvTranspose2d { weight, p }, _) => b.conv_transpose2d(&t, weight, *p)?,
            (Layer::InstanceNorm2d { weight, .. }, Saved::Norm { x, stats }) => b.instance_norm2d_jvp(x, &t, weight, stats)?,
            (Layer::Act(a @ (Activation::Relu | Activation::LeakyRelu { .. })), Saved::Act { x, y }) => b.activation_bwd(*a, x, y, &t)?,
            (Layer::Act(a), _) => return Err(unsupported(i, &format!("{a:?}"))),
            (Layer::BatchNorm2d { .. }, _) => return Err(unsupported(i, "batch norm")),
            _ => return Err(unsupported(i, "a layer without a training-mode record")),
        };
        tangents.push(std::mem::replace(&mut t, next));
    }

    // (3) Reverse pass. `primal_bar` stays None (zero) until the first instance norm makes it non-zero.
    let mut primal_bar: Option<B::Tensor> = None;
    let mut tangent_bar = b.full(&b.shape(&t), 1.0)?;
    for (i, ((layer, saved), t_in)) in critic.layers.iter().zip(&tape.saved).zip(&tangents).enumerate().rev() {
        let first = i == 0;
        match (layer, saved) {
            (Layer::Conv2d { weight, p }, Saved::Input(x)) => {
                let w_shape = dims(b, weight)?;
                let mut dw = b.conv2d_bwd_weight(t_in, &tangent_bar, w_shape, *p)?;
                if let Some(pb) = &primal_bar {
                    b.add_assign(&mut dw, &b.conv2d_bwd_weight(x, pb, w_shape, *p)?)?;
                }
                grads.accumulate(b, format!("main.{i}.weight"), dw)?;
                let x_shape = dims(b, x)?;
                primal_bar = match &primal_bar {
                    Some(pb) if !first || want_grad_x_hat => Some(b.conv2d_bwd_data(pb, weight, x_shape, *p)?),
                    _ => None,
                };
                if !first {
                    tangent_bar = b.conv2d_bwd_data(&tangent_bar, weight, x_shape, *p)?;
                }
            }
            (Layer::ConvTranspose2d { weight, p }, Saved::Input(x)) => {
                let w_shape = dims(b, weight)?;
                let mut dw = b.conv_transpose2d_bwd_weight(t_in, &tangent_bar, w_shape, *p)?;
                if let Some(pb) = &primal_bar {
                    b.add_assign(&mut dw, &b.conv_transpose2d_bwd_weight(x, pb, w_shape, *p)?)?;
                }
                grads.accumulate(b, format!("main.{i}.weight"), dw)?;
                primal_bar = match &primal_bar {
                    Some(pb) if !first || want_grad_x_hat => Some(b.conv_transpose2d_bwd_data(pb, weight, *p)?),
                    _ => None,
                };
                if !first {
                    tangent_bar = b.conv_transpose2d_bwd_data(&tangent_bar, weight, *p)?;
                }
            }
            (Layer::InstanceNorm2d { weight, .. }, Saved::Norm { x, stats }) => {
                let y_bar = match primal_bar.take() {
                    Some(pb) => pb,
                    None => b.zeros(&b.shape(x))?,
                };
                let r = b.instance_norm2d_jvp_bwd(x, t_in, weight, stats, &y_bar, &tangent_bar)?;
                grads.accumulate(b, format!("main.{i}.weight"), r.dgamma)?;
                grads.accumulate(b, format!("main.{i}.bias"), r.dbeta)?;
                primal_bar = Some(r.x_bar);
                tangent_bar = r.x_dot_bar;
            }
            (Layer::Act(a), Saved::Act { x, y }) => {
                // The mask of a piecewise-linear activation has zero derivative: both cotangents pass through it.
                if let Some(pb) = &primal_bar {
                    primal_bar = Some(b.activation_bwd(*a, x, y, pb)?);
                }
                tangent_bar = b.activation_bwd(*a, x, y, &tangent_bar)?;
            }
            _ => return Err(unsupported(i, "a layer without a training-mode record")),
        }
    }
    let grad_x_hat = match (want_grad_x_hat, primal_bar) {
        (false, _) => None,
        (true, Some(pb)) => Some(pb),
        (true, None) => Some(b.zeros(&b.shape(&x_hat))?),
    };
    Ok(PendingGradientPenalty { grad_norm: head.grad_norm, lambda, critic_x_hat: score, grad_x_hat })
}
