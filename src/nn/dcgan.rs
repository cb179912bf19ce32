//! The PyTorch DCGAN tutorial's generator and discriminator, and the WGAN-GP critic (the discriminator
//! with InstanceNorm2d(affine) in place of BatchNorm2d and no Sigmoid). Layer indices are the tutorial's,
//! so state_dict names match: `main.0.weight`, `main.1.running_mean`, ...

use rand::Rng;
use rand_distr::{Distribution, Normal};

use super::sequential::{Layer, Sequential};
use crate::backend::{Activation, Backend, Conv2dParams};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Channels of the training images (the X-rays are replicated to RGB, as the paper does).
pub const NC: usize = 3;
/// Side of the training images.
pub const IMAGE_SIZE: usize = 64;
/// LeakyReLU's negative slope in the discriminator / critic.
pub const LEAKY_SLOPE: f32 = 0.2;
/// BatchNorm2d's defaults.
pub const BN_EPS: f32 = 1e-5;
pub const BN_MOMENTUM: f32 = 0.1;
/// InstanceNorm2d's default eps.
pub const IN_EPS: f32 = 1e-5;
/// The tutorial's weights_init: conv weights ~ N(0, 0.02), norm weights ~ N(1, 0.02), norm biases 0.
pub const INIT_STD: f32 = 0.02;

/// 4×4 kernels everywhere; the first/last layers use stride 1 and no padding, the others stride 2, padding 1.
const UP: Conv2dParams = Conv2dParams::new([2, 2], [1, 1]);
const EDGE: Conv2dParams = Conv2dParams::new([1, 1], [0, 0]);

/// Widths of the two networks: noise size and feature maps of G and D.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Widths {
    pub nz: usize,
    pub ngf: usize,
    pub ndf: usize,
}

impl Default for Widths {
    fn default() -> Self {
        Widths { nz: 100, ngf: 64, ndf: 64 }
    }
}

/// The discriminator's two flavours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Head {
    /// DCGAN: BatchNorm2d and a final Sigmoid (probabilities for BCELoss).
    Dcgan,
    /// WGAN-GP critic: InstanceNorm2d(affine=True) and a raw score.
    Critic,
}

struct Init<'a, B: Backend, R: Rng> {
    b: &'a B,
    rng: &'a mut R,
}

impl<B: Backend, R: Rng> Init<'_, B, R> {
    fn normal(&mut self, shape: &[usize], mean: f32) -> Result<B::Tensor> {
        let dist = Normal::new(mean, INIT_STD).map_err(|e| Error::Other(e.to_string()))?;
        let data = (0..shape.iter().product()).map(|_| dist.sample(self.rng)).collect();
        self.b.upload(&Tensor::new(shape, data)?)
    }
    fn conv(&mut self, shape: [usize; 4], p: Conv2dParams, transposed: bool) -> Result<Layer<B::Tensor>> {
        let weight = self.normal(&shape, 0.0)?;
        Ok(if transposed { Layer::ConvTranspose2d { weight, p } } else { Layer::Conv2d { weight, p } })
    }
    fn batch_norm(&mut self, c: usize) -> Result<Layer<B::Tensor>> {
        Ok(Layer::BatchNorm2d {
            weight: self.normal(&[c], 1.0)?,
            bias: self.b.zeros(&[c])?,
            running_mean: self.b.zeros(&[c])?,
            running_var: self.b.full(&[c], 1.0)?,
            eps: BN_EPS,
            momentum: BN_MOMENTUM,
        })
    }
    fn instance_norm(&mut self, c: usize) -> Result<Layer<B::Tensor>> {
        Ok(Layer::InstanceNorm2d { weight: self.normal(&[c], 1.0)?, bias: self.b.zeros(&[c])?, eps: IN_EPS })
    }
}

/// G: noise [N, nz, 1, 1] → image [N, 3, 64, 64] in (−1, 1).
pub fn generator<B: Backend>(b: &B, w: Widths, rng: &mut impl Rng) -> Result<Sequential<B::Tensor>> {
    let (nz, ngf) = (w.nz, w.ngf);
    let mut i = Init { b, rng };
    let relu = || Layer::Act(Activation::Relu);
    Ok(Sequential {
        layers: vec![
            i.conv([nz, ngf * 8, 4, 4], EDGE, true)?, // main.0: [N, ngf*8, 4, 4]
            i.batch_norm(ngf * 8)?,
            relu(),
            i.conv([ngf * 8, ngf * 4, 4, 4], UP, true)?, // main.3: [N, ngf*4, 8, 8]
            i.batch_norm(ngf * 4)?,
            relu(),
            i.conv([ngf * 4, ngf * 2, 4, 4], UP, true)?, // main.6: [N, ngf*2, 16, 16]
            i.batch_norm(ngf * 2)?,
            relu(),
            i.conv([ngf * 2, ngf, 4, 4], UP, true)?, // main.9: [N, ngf, 32, 32]
            i.batch_norm(ngf)?,
            relu(),
            i.conv([ngf, NC, 4, 4], UP, true)?, // main.12: [N, 3, 64, 64]
            Layer::Act(Activation::Tanh),
        ],
    })
}

/// D (or the critic): image [N, 3, 64, 64] → [N, 1, 1, 1] (a probability for `Head::Dcgan`, a score for `Head::Critic`).
pub fn discriminator<B: Backend>(b: &B, ndf: usize, head: Head, rng: &mut impl Rng) -> Result<Sequential<B::Tensor>> {
    let mut i = Init { b, rng };
    let lrelu = || Layer::Act(Activation::LeakyRelu { slope: LEAKY_SLOPE });
    let norm = |i: &mut Init<B, _>, c| match head {
        Head::Dcgan => i.batch_norm(c),
        Head::Critic => i.instance_norm(c),
    };
    let mut layers = vec![
        i.conv([ndf, NC, 4, 4], UP, false)?, // main.0: [N, ndf, 32, 32]
        lrelu(),
        i.conv([ndf * 2, ndf, 4, 4], UP, false)?, // main.2: [N, ndf*2, 16, 16]
        norm(&mut i, ndf * 2)?,
        lrelu(),
        i.conv([ndf * 4, ndf * 2, 4, 4], UP, false)?, // main.5: [N, ndf*4, 8, 8]
        norm(&mut i, ndf * 4)?,
        lrelu(),
        i.conv([ndf * 8, ndf * 4, 4, 4], UP, false)?, // main.8: [N, ndf*8, 4, 4]
        norm(&mut i, ndf * 8)?,
        lrelu(),
        i.conv([1, ndf * 8, 4, 4], EDGE, false)?, // main.11: [N, 1, 1, 1]
    ];
    if head == Head::Dcgan {
        layers.push(Layer::Act(Activation::Sigmoid)); // main.12
    }
    Ok(Sequential { layers })
}
