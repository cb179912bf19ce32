//! One WGAN-GP critic iteration and one generator iteration (Gulrajani et al., Algorithm 1).

use crate::backend::{AdamConfig, Backend, Deferred};
use crate::error::Result;
use crate::nn::critic::{gradient_penalty_pending, PendingGradientPenalty};
use crate::nn::{Grads, Mode, Sequential};
use crate::tensor::Tensor;
use crate::train::optim::Adam;

/// Adam for both networks: learning rate 1e-4, betas (0.5, 0.9), as the paper.
pub const ADAM: AdamConfig = AdamConfig { lr: 1e-4, beta1: 0.5, beta2: 0.9, eps: 1e-8 };
/// The gradient penalty's weight λ.
pub const LAMBDA: f32 = 10.0;
/// Critic iterations per generator iteration.
pub const N_CRITIC: usize = 5;

pub struct WganGp<T> {
    pub g: Sequential<T>,
    pub c: Sequential<T>,
    pub opt_g: Adam<T>,
    pub opt_c: Adam<T>,
    pub lambda: f32,
}

pub struct CriticStep<T> {
    /// C(fake) mean − C(real) mean + GP.
    pub loss_c: f64,
    pub gp: f64,
    pub grad_norm: Vec<f64>,
    /// C(real) mean − C(fake) mean: the Wasserstein estimate.
    pub wasserstein: f64,
    /// Mean critic scores on the real and the fake batch.
    pub c_real: f64,
    pub c_fake: f64,
    pub fake: T,
    pub grads_c: Grads<T>,
}

pub struct GeneratorStep<T> {
    /// −C(G(z)) mean.
    pub loss_g: f64,
    pub grads_g: Grads<T>,
}

/// A [`CriticStep`] with its scalars still on the device (no host read inside: capturable as a graph).
#[derive(Clone)]
pub struct PendingCriticStep<T> {
    pub c_real: Deferred<T>,
    pub c_fake: Deferred<T>,
    pub penalty: PendingGradientPenalty<T>,
    pub fake: T,
    pub grads_c: Grads<T>,
}

impl<T> PendingCriticStep<T> {
    pub fn resolve<B: Backend<Tensor = T>>(self, b: &B) -> Result<CriticStep<T>> {
        let (c_real, c_fake) = (self.c_real.resolve(b)?, self.c_fake.resolve(b)?);
        let gp = self.penalty.resolve(b)?;
        Ok(CriticStep {
            loss_c: c_fake - c_real + gp.gp,
            gp: gp.gp,
            grad_norm: gp.grad_norm,
            wasserstein: c_real - c_fake,
            c_real,
            c_fake,
            fake: self.fake,
            grads_c: self.grads_c,
        })
    }
}

/// A [`GeneratorStep`] with its loss still on the device.
#[derive(Clone)]
pub struct PendingGeneratorStep<T> {
    /// C(G(z)) mean (the loss is its negation).
    pub score: Deferred<T>,
    pub grads_g: Grads<T>,
}

impl<T> PendingGeneratorStep<T> {
    pub fn resolve<B: Backend<Tensor = T>>(self, b: &B) -> Result<GeneratorStep<T>> {
        Ok(GeneratorStep { loss_g: -self.score.resolve(b)?, grads_g: self.grads_g })
    }
}

impl<T: Clone> WganGp<T> {
    pub fn new<B: Backend<Tensor = T>>(b: &B, mut g: Sequential<T>, mut c: Sequential<T>) -> Result<Self> {
        let opt_g = Adam::new(b, &mut g, ADAM)?;
        let opt_c = Adam::new(b, &mut c, ADAM)?;
        Ok(WganGp { g, c, opt_g, opt_c, lambda: LAMBDA })
    }

    /// One critic iteration: real [N, 3, 64, 64], noise [N, nz, 1, 1], α [N] for the interpolates.
    pub fn critic_step<B: Backend<Tensor = T>>(&mut self, b: &B, real: &T, noise: &T, alpha: &[f32]) -> Result<CriticStep<T>> {
        let alpha = b.upload(&Tensor::new(&[alpha.len()], alpha.to_vec())?)?;
        self.critic_step_pending(b, real, noise, &alpha)?.resolve(b)
    }

    /// [`WganGp::critic_step`] with α [N] on the device and the scalars read later.
    pub fn critic_step_pending<B: Backend<Tensor = T>>(&mut self, b: &B, real: &T, noise: &T, alpha: &T) -> Result<PendingCriticStep<T>> {
        // Fakes from G in training mode (its BN running statistics move, as in PyTorch), detached.
        let (fake, _) = self.g.forward(b, noise, Mode::Train)?;
        let n = b.shape(real)[0] as f32;
        let mut grads_c = Grads::default();
        // d/dθ [mean C(fake) − mean C(real)]
        let (c_real, tape) = self.c.forward(b, real, Mode::Train)?;
        self.c.backward(b, &tape, &b.full(&b.shape(&c_real), -1.0 / n)?, Some(&mut grads_c), false)?;
        let (c_fake, tape) = self.c.forward(b, &fake, Mode::Train)?;
        self.c.backward(b, &tape, &b.full(&b.shape(&c_fake), 1.0 / n)?, Some(&mut grads_c), false)?;
        // + d/dθ GP on the interpolates
        let penalty = gradient_penalty_pending(b, &mut self.c, real, &fake, alpha, self.lambda, &mut grads_c, false)?;
        let (c_real, c_fake) = (b.mean_deferred(&c_real)?, b.mean_deferred(&c_fake)?);
        self.opt_c.step(b, &mut self.c, &grads_c)?;
        Ok(PendingCriticStep { c_real, c_fake, penalty, fake, grads_c })
    }

    /// One generator iteration through the current critic.
    pub fn generator_step<B: Backend<Tensor = T>>(&mut self, b: &B, noise: &T) -> Result<GeneratorStep<T>> {
        self.generator_step_pending(b, noise)?.resolve(b)
    }

    /// [`WganGp::generator_step`] with the loss read later.
    pub fn generator_step_pending<B: Backend<Tensor = T>>(&mut self, b: &B, noise: &T) -> Result<PendingGeneratorStep<T>> {
        let (fake, g_tape) = self.g.forward(b, noise, Mode::Train)?;
        let (score, tape) = self.c.forward(b, &fake, Mode::Train)?;
        let n = b.shape(&score)[0] as f32;
        let mean_score = b.mean_deferred(&score)?;
        let dfake = self.c.backward(b, &tape, &b.full(&b.shape(&score), -1.0 / n)?, None, true)?.expect("input gradient was asked for");
        let mut grads_g = Grads::default();
        self.g.backward(b, &g_tape, &dfake, Some(&mut grads_g), false)?;
        self.opt_g.step(b, &mut self.g, &grads_g)?;
        Ok(PendingGeneratorStep { score: mean_score, grads_g })
    }
}
