//! One DCGAN iteration, labelled as the PyTorch DCGAN tutorial's training loop.

use crate::backend::{AdamConfig, Backend, Deferred};
use crate::error::Result;
use crate::nn::{Grads, Mode, Sequential};
use crate::train::optim::Adam;

/// Adam for both networks: learning rate 2e-4, betas (0.5, 0.999), as the tutorial and the paper.
pub const ADAM: AdamConfig = AdamConfig { lr: 2e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8 };
/// Labels for BCELoss.
pub const REAL_LABEL: f32 = 1.0;
pub const FAKE_LABEL: f32 = 0.0;

pub struct Dcgan<T> {
    pub g: Sequential<T>,
    pub d: Sequential<T>,
    pub opt_g: Adam<T>,
    pub opt_d: Adam<T>,
}

/// What one iteration reports (the tutorial's printout), plus what tests compare.
pub struct DcganStep<T> {
    pub loss_d_real: f64,
    pub loss_d_fake: f64,
    pub loss_d: f64,
    pub loss_g: f64,
    /// D(x): mean output on real images.
    pub d_x: f64,
    /// D(G(z)) before and after D's update.
    pub d_g_z1: f64,
    pub d_g_z2: f64,
    pub fake: T,
    pub grads_d: Grads<T>,
    pub grads_g: Grads<T>,
}

/// A [`DcganStep`] whose scalars may still be on the device: the iteration with no host read inside, so that
/// it can be captured as a graph ([`crate::train::graphed`]); [`PendingDcganStep::resolve`] reads them.
#[derive(Clone)]
pub struct PendingDcganStep<T> {
    pub loss_d_real: Deferred<T>,
    pub loss_d_fake: Deferred<T>,
    pub loss_g: Deferred<T>,
    pub d_x: Deferred<T>,
    pub d_g_z1: Deferred<T>,
    pub d_g_z2: Deferred<T>,
    pub fake: T,
    pub grads_d: Grads<T>,
    pub grads_g: Grads<T>,
}

impl<T> PendingDcganStep<T> {
    pub fn resolve<B: Backend<Tensor = T>>(self, b: &B) -> Result<DcganStep<T>> {
        let (loss_d_real, loss_d_fake) = (self.loss_d_real.resolve(b)?, self.loss_d_fake.resolve(b)?);
        Ok(DcganStep {
            loss_d_real,
            loss_d_fake,
            loss_d: loss_d_real + loss_d_fake,
            loss_g: self.loss_g.resolve(b)?,
            d_x: self.d_x.resolve(b)?,
            d_g_z1: self.d_g_z1.resolve(b)?,
            d_g_z2: self.d_g_z2.resolve(b)?,
            fake: self.fake,
            grads_d: self.grads_d,
            grads_g: self.grads_g,
        })
    }
}

impl<T: Clone> Dcgan<T> {
    pub fn new<B: Backend<Tensor = T>>(b: &B, mut g: Sequential<T>, mut d: Sequential<T>) -> Result<Self> {
        let opt_g = Adam::new(b, &mut g, ADAM)?;
        let opt_d = Adam::new(b, &mut d, ADAM)?;
        Ok(Dcgan { g, d, opt_g, opt_d })
    }

    /// One iteration on a batch of real images [N, 3, 64, 64] and noise [N, nz, 1, 1].
    pub fn step<B: Backend<Tensor = T>>(&mut self, b: &B, real: &T, noise: &T) -> Result<DcganStep<T>> {
        self.step_pending(b, real, noise)?.resolve(b)
    }

    /// [`Dcgan::step`] with its scalars left on the device (read by [`PendingDcganStep::resolve`]).
    pub fn step_pending<B: Backend<Tensor = T>>(&mut self, b: &B, real: &T, noise: &T) -> Result<PendingDcganStep<T>> {
        // (1) Update D: maximize log(D(x)) + log(1 − D(G(z))).
        // Train with the all-real batch.
        let mut grads_d = Grads::default();
        let (out, tape) = self.d.forward(b, real, Mode::Train)?;
        let real_label = b.full(&b.shape(&out), REAL_LABEL)?;
        let fake_label = b.full(&b.shape(&out), FAKE_LABEL)?;
        let (loss_d_real, dout) = b.bce_deferred(&out, &real_label)?;
        self.d.backward(b, &tape, &dout, Some(&mut grads_d), false)?;
        let d_x = b.mean_deferred(&out)?;
        // Train with the all-fake batch: generate, classify the detached fakes, accumulate D's gradients.
        let (fake, g_tape) = self.g.forward(b, noise, Mode::Train)?;
        let (out, tape) = self.d.forward(b, &fake, Mode::Train)?;
        let (loss_d_fake, dout) = b.bce_deferred(&out, &fake_label)?;
        self.d.backward(b, &tape, &dout, Some(&mut grads_d), false)?;
        let d_g_z1 = b.mean_deferred(&out)?;
        self.opt_d.step(b, &mut self.d, &grads_d)?;

        // (2) Update G: maximize log(D(G(z))), through the just-updated D; fake labels are real for G.
        let (out, tape) = self.d.forward(b, &fake, Mode::Train)?;
        let (loss_g, dout) = b.bce_deferred(&out, &real_label)?;
        let dfake = self.d.backward(b, &tape, &dout, None, true)?.expect("input gradient was asked for");
        let mut grads_g = Grads::default();
        self.g.backward(b, &g_tape, &dfake, Some(&mut grads_g), false)?;
        let d_g_z2 = b.mean_deferred(&out)?;
        self.opt_g.step(b, &mut self.g, &grads_g)?;

        Ok(PendingDcganStep { loss_d_real, loss_d_fake, loss_g, d_x, d_g_z1, d_g_z2, fake, grads_d, grads_g })
    }
}
