//! The Table 4 classifiers behind one interface: torchvision's InceptionV3 at 299×299 (the paper's) and a
//! small 64×64 CNN for CPU-sized runs, each with a `classes`-way head trained by cross-entropy.

use std::collections::HashMap;

use crate::backend::{Activation, Backend, Conv2dParams, Pool2dParams};
use crate::error::{Error, Result};
use crate::nn::inception_v3::{self, InceptionV3};
use crate::nn::{default_init, Grads, Layer, Mode, Parameters, Sequential, Tape};
use crate::tensor::Tensor;

/// Which network `cxr-gan classify --arch` trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// torchvision's InceptionV3 at 299×299.
    Inception,
    /// Four conv → BN → ReLU stages at 64×64, for CPU-sized runs.
    Small,
}

impl Arch {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "inception" => Ok(Arch::Inception),
            "small" => Ok(Arch::Small),
            other => Err(Error::Other(format!("--arch {other:?}: expected inception or small"))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Arch::Inception => "inception",
            Arch::Small => "small",
        }
    }
    /// The square input size the network is trained at.
    pub fn input_size(self) -> usize {
        match self {
            Arch::Inception => inception_v3::INPUT_SIZE,
            Arch::Small => SMALL_INPUT,
        }
    }
}

/// The small CNN's input size (the GANs' image size).
pub const SMALL_INPUT: usize = 64;
/// The small CNN's stage widths: 64 → 32 → 16 → 8 pixels.
const SMALL_WIDTHS: [usize; 4] = [16, 32, 64, 128];
const SMALL_CONV: Conv2dParams = Conv2dParams::new([1, 1], [1, 1]);
const SMALL_POOL: Pool2dParams = Pool2dParams::new([2, 2], [2, 2], [0, 0]);
/// BatchNorm2d's defaults.
const BN_EPS: f32 = 1e-5;
const BN_MOMENTUM: f32 = 0.1;

/// The small CNN as `nn.Sequential`: 4 × (conv 3×3 → BN → ReLU, then a 2×2 max pool but after the last),
/// global average pool, dropout 0.5, linear.
pub fn small_cnn<B: Backend>(b: &B, classes: usize, seed: u64) -> Result<Sequential<B::Tensor>> {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut layers = Vec::new();
    let mut cin = 3;
    for (i, &cout) in SMALL_WIDTHS.iter().enumerate() {
        layers.push(Layer::Conv2d { weight: b.upload(&default_init(&mut rng, &[cout, cin, 3, 3], cin * 9)?)?, p: SMALL_CONV });
        layers.push(Layer::BatchNorm2d {
            weight: b.full(&[cout], 1.0)?,
            bias: b.zeros(&[cout])?,
            running_mean: b.zeros(&[cout])?,
            running_var: b.full(&[cout], 1.0)?,
            eps: BN_EPS,
            momentum: BN_MOMENTUM,
        });
        layers.push(Layer::Act(Activation::Relu));
        if i + 1 < SMALL_WIDTHS.len() {
            layers.push(Layer::MaxPool2d(SMALL_POOL)); // 64 → 32 → 16 → 8
        }
        cin = cout;
    }
    layers.push(Layer::GlobalAvgPool2d); // [N, 128]
    layers.push(Layer::Dropout { p: inception_v3::DROPOUT, seed: 0 });
    let weight = default_init(&mut rng, &[classes, cin], cin)?;
    let bias = default_init(&mut rng, &[classes], cin)?;
    layers.push(Layer::Linear { weight: b.upload(&weight)?, bias: b.upload(&bias)? }); // [N, classes]
    Ok(Sequential { layers })
}

/// One of the two networks.
pub enum Classifier<T> {
    Small(Sequential<T>),
    Inception(Box<InceptionV3<T>>),
}

/// A training forward's record.
pub enum ClassifierTape<T> {
    Small(Tape<T>),
    Inception(Box<inception_v3::Tape<T>>),
}

/// Where InceptionV3's starting weights come from.
pub enum InceptionInit<'a> {
    /// pytorch-fid's FID weights (every layer but the new head).
    Pretrained(&'a HashMap<String, std::result::Result<Tensor, String>>),
    Scratch,
}

impl<T: Clone> Classifier<T> {
    pub fn new_small<B: Backend<Tensor = T>>(b: &B, classes: usize, seed: u64) -> Result<Self> {
        Ok(Classifier::Small(small_cnn(b, classes, seed)?))
    }

    pub fn new_inception<B: Backend<Tensor = T>>(b: &B, classes: usize, init: InceptionInit, seed: u64) -> Result<Self> {
        let net = match init {
            InceptionInit::Pretrained(w) => InceptionV3::from_pretrained(b, classes, w, seed)?,
            InceptionInit::Scratch => InceptionV3::scratch(b, classes, seed)?,
        };
        Ok(Classifier::Inception(Box::new(net)))
    }

    pub fn arch(&self) -> Arch {
        match self {
            Classifier::Small(_) => Arch::Small,
            Classifier::Inception(_) => Arch::Inception,
        }
    }

    /// Logits [N, classes] in training mode (batch statistics, dropout drawn from `dropout_seed`) and the tape.
    pub fn forward_train<B: Backend<Tensor = T>>(&mut self, b: &B, x: &T, dropout_seed: u64) -> Result<(T, ClassifierTape<T>)> {
        match self {
            Classifier::Small(net) => {
                net.seed_dropout(dropout_seed);
                let (y, tape) = net.forward(b, x, Mode::Train)?;
                Ok((y, ClassifierTape::Small(tape)))
            }
            Classifier::Inception(net) => {
                net.dropout_seed = dropout_seed;
                let (y, tape) = net.forward(b, x, Mode::Train)?;
                Ok((y, ClassifierTape::Inception(Box::new(tape.expect("a training forward keeps its tape")))))
            }
        }
    }

    /// Logits in eval mode (running statistics, no dropout).
    pub fn predict<B: Backend<Tensor = T>>(&mut self, b: &B, x: &T) -> Result<T> {
        match self {
            Classifier::Small(net) => Ok(net.forward(b, x, Mode::Eval)?.0),
            Classifier::Inception(net) => Ok(net.forward(b, x, Mode::Eval)?.0),
        }
    }

    /// Every parameter's gradient from dL/dlogits.
    pub fn backward<B: Backend<Tensor = T>>(&self, b: &B, tape: ClassifierTape<T>, dlogits: &T) -> Result<Grads<T>> {
        match (self, tape) {
            (Classifier::Small(net), ClassifierTape::Small(tape)) => {
                let mut grads = Grads::default();
                net.backward(b, &tape, dlogits, Some(&mut grads), false)?;
                Ok(grads)
            }
            (Classifier::Inception(net), ClassifierTape::Inception(tape)) => net.backward(b, *tape, dlogits),
            _ => Err(Error::Other("classifier backward: the tape is another network's".into())),
        }
    }

    /// Every state_dict tensor (parameters and running statistics) by PyTorch name.
    pub fn state_dict_mut(&mut self) -> Vec<(String, &mut T)> {
        match self {
            Classifier::Small(net) => net.state_dict_mut(),
            Classifier::Inception(net) => net.state_dict_mut(),
        }
    }
}

impl<T: Clone> Parameters<T> for Classifier<T> {
    fn parameters_mut(&mut self) -> Vec<(String, &mut T)> {
        self.state_dict_mut().into_iter().filter(|(n, _)| !n.contains("running_")).collect()
    }
}
