//! The work whose kernels the check compiles: what `train` and `fid` run, at their real shapes, through the
//! same library code (the `Backend` trait only), so that every kernel and specialization they launch is
//! seen. Values are irrelevant (the recording runtime runs nothing); shapes decide the launches.

use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::backend::{AdamConfig, Backend};
use crate::error::Result;
use crate::fid::inception::InceptionV3;
use crate::nn::classifier::{Arch, Classifier, InceptionInit};
use crate::nn::dcgan::{discriminator, generator, Head, Widths, IMAGE_SIZE};
use crate::tensor::Tensor;
use crate::train::dcgan::Dcgan;
use crate::train::optim::Adam;
use crate::train::samples::{noise, sample};
use crate::train::wgan_gp::WganGp;

/// One piece of work: a name for the report and what it runs.
pub struct Workload {
    /// A few words for the table.
    pub short: &'static str,
    pub name: String,
    pub kind: Kind,
}

pub enum Kind {
    /// One DCGAN iteration (D on real and fake, G) and a sample grid from G.
    Dcgan { widths: Widths, batch: usize },
    /// One WGAN-GP critic iteration (with the gradient penalty) and one generator iteration.
    WganGp { widths: Widths, batch: usize },
    /// InceptionV3's forward to the 2048-d pool features for `batch` images of `size`² (resized to 299²).
    Inception { batch: usize, size: usize },
    /// The `Backend` ops no model calls (scale, bce_logits, batch_norm2d_eval, avg_pool2d counting the
    /// padding), at the shape of D's first feature map [batch, channels, 32, 32].
    OtherOps { batch: usize, channels: usize },
    /// One training step of a Table 4 classifier (forward, cross-entropy, backward, Adam): the pools' and
    /// concat's backward, dropout, linear. InceptionV3 from scratch (no weights file needed).
    Classifier { arch: Arch, batch: usize },
}

/// The paper's settings and the demo's (`cxr-gan train` without --data), whose narrower networks give
/// other channel counts and so other conv specializations, and FID's (`fid` and the training probe).
pub fn standard() -> Vec<Workload> {
    let paper = Widths { nz: 100, ngf: 64, ndf: 64 };
    let demo = Widths { nz: 100, ngf: 16, ndf: 16 };
    vec![
        Workload {
            short: "DCGAN",
            name: "DCGAN iteration and samples (batch 128, widths 64)".into(),
            kind: Kind::Dcgan { widths: paper, batch: 128 },
        },
        Workload { short: "DCGAN demo", name: "DCGAN demo (batch 16, widths 16)".into(), kind: Kind::Dcgan { widths: demo, batch: 16 } },
        Workload {
            short: "WGAN-GP",
            name: "WGAN-GP critic and generator iterations (batch 128, widths 64)".into(),
            kind: Kind::WganGp { widths: paper, batch: 128 },
        },
        Workload {
            short: "WGAN-GP demo",
            name: "WGAN-GP demo (batch 16, widths 16)".into(),
            kind: Kind::WganGp { widths: demo, batch: 16 },
        },
        Workload {
            short: "FID",
            name: "InceptionV3 to the 2048-d features (batch 50, 64² resized to 299²)".into(),
            kind: Kind::Inception { batch: 50, size: IMAGE_SIZE },
        },
        Workload {
            short: "other ops",
            name: "the Backend ops no model calls, at [128, 64, 32, 32]".into(),
            kind: Kind::OtherOps { batch: 128, channels: 64 },
        },
        Workload {
            short: "classifier",
            name: "Table 4's small CNN training step (batch 32, 64²)".into(),
            kind: Kind::Classifier { arch: Arch::Small, batch: 32 },
        },
        Workload {
            short: "InceptionV3 training",
            name: "Table 4's InceptionV3 training step (batch 32, 299²)".into(),
            kind: Kind::Classifier { arch: Arch::Inception, batch: 32 },
        },
    ]
}

fn zeros(shape: &[usize]) -> Tensor {
    Tensor::new(shape, vec![0.0; shape.iter().product()]).expect("a zero tensor of its own shape")
}

/// Runs `w` on `b`; Inception needs its weights file (`inception_weights`).
pub fn run<B: Backend>(b: &B, w: &Workload, inception_weights: Option<&Path>) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    match w.kind {
        Kind::Dcgan { widths, batch } => {
            let g = generator(b, widths, &mut rng)?;
            let d = discriminator(b, widths.ndf, Head::Dcgan, &mut rng)?;
            let mut gan = Dcgan::new(b, g, d)?;
            let real = b.upload(&zeros(&[batch, 3, IMAGE_SIZE, IMAGE_SIZE]))?;
            let z = b.upload(&noise(&mut rng, batch, widths.nz))?;
            gan.step(b, &real, &z)?;
            sample(b, &gan.g, &noise(&mut rng, batch, widths.nz))?;
        }
        Kind::WganGp { widths, batch } => {
            let g = generator(b, widths, &mut rng)?;
            let c = discriminator(b, widths.ndf, Head::Critic, &mut rng)?;
            let mut gan = WganGp::new(b, g, c)?;
            let real = b.upload(&zeros(&[batch, 3, IMAGE_SIZE, IMAGE_SIZE]))?;
            let z = b.upload(&noise(&mut rng, batch, widths.nz))?;
            gan.critic_step(b, &real, &z, &vec![0.5; batch])?;
            gan.generator_step(b, &z)?;
        }
        Kind::Inception { batch, size } => {
            let path = inception_weights.ok_or_else(|| crate::Error::Other("InceptionV3 needs its weights file".into()))?;
            let model = InceptionV3::load(b, path)?;
            let x = b.upload(&zeros(&[batch, 3, size, size]))?;
            model.pooled(b, &x, 3)?;
        }
        Kind::OtherOps { batch, channels } => {
            let x = b.upload(&zeros(&[batch, channels, 32, 32]))?;
            let ones = b.full(&[channels], 1.0)?;
            b.scale(&x, 0.5)?;
            b.bce_logits(&x, &x)?;
            b.batch_norm2d_eval(&x, &ones, &ones, &ones, &ones, 1e-5)?;
            b.avg_pool2d(&x, crate::backend::Pool2dParams::new([3, 3], [1, 1], [1, 1]), true)?;
        }
        Kind::Classifier { arch, batch } => {
            let mut net = match arch {
                Arch::Small => Classifier::new_small(b, 2, 0)?,
                Arch::Inception => Classifier::new_inception(b, 2, InceptionInit::Scratch, 0)?,
            };
            let mut opt = Adam::new(b, &mut net, AdamConfig { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 })?;
            let x = b.upload(&zeros(&[batch, 3, arch.input_size(), arch.input_size()]))?;
            let (logits, tape) = net.forward_train(b, &x, 0)?;
            let (_, dlogits) = b.cross_entropy(&logits, &vec![0; batch])?;
            let grads = net.backward(b, tape, &dlogits)?;
            opt.step(b, &mut net, &grads)?;
            net.predict(b, &x)?;
        }
    }
    b.sync()
}
