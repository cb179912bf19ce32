//! `nn.Sequential` over a [`Backend`]: layers with explicit forward and backward passes, indexed as
//! PyTorch's `main.{i}` so state_dict names (`main.0.weight`, `main.3.running_mean`) match the tutorial's.

use crate::backend::{Activation, Backend, Conv2dParams, NormStats, Pool2dParams};
use crate::error::{Error, Result};

/// One layer; parameters live in the backend's memory.
#[derive(Clone, Debug)]
pub enum Layer<T> {
    /// nn.Conv2d(bias=False); weight [O, C, kh, kw].
    Conv2d {
        weight: T,
        p: Conv2dParams,
    },
    /// nn.ConvTranspose2d(bias=False); weight [Cin, Cout, kh, kw].
    ConvTranspose2d {
        weight: T,
        p: Conv2dParams,
    },
    /// nn.BatchNorm2d: weight (gamma), bias (beta), running statistics.
    BatchNorm2d {
        weight: T,
        bias: T,
        running_mean: T,
        running_var: T,
        eps: f32,
        momentum: f32,
    },
    /// nn.InstanceNorm2d(affine=True), no running statistics.
    InstanceNorm2d {
        weight: T,
        bias: T,
        eps: f32,
    },
    Act(Activation),
    /// nn.MaxPool2d.
    MaxPool2d(Pool2dParams),
    /// nn.AdaptiveAvgPool2d(1) then flatten: [N, C, H, W] → [N, C].
    GlobalAvgPool2d,
    /// nn.Dropout(p): in training, a keep-mask drawn from `seed` (which the trainer sets per step, so a
    /// resumed run draws the same masks); the identity in eval.
    Dropout {
        p: f32,
        seed: u64,
    },
    /// nn.Linear: weight [out, in], bias [out].
    Linear {
        weight: T,
        bias: T,
    },
}

/// Batch norm uses batch statistics (and updates its running ones) in `Train`, running ones in `Eval`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// What a layer's forward keeps for its backward.
#[derive(Clone, Debug)]
pub enum Saved<T> {
    /// A convolution's input.
    Input(T),
    /// A normalization's input and statistics.
    Norm { x: T, stats: NormStats<T> },
    /// An activation's input and output.
    Act { x: T, y: T },
    /// A pool's input shape (global average pool).
    Shape([usize; 4]),
    /// Dropout's keep-mask.
    Mask(T),
    /// Nothing (an eval-mode dropout).
    Nothing,
}

/// The forward pass's record, one entry per layer.
#[derive(Clone, Debug)]
pub struct Tape<T> {
    pub saved: Vec<Saved<T>>,
}

/// Parameter gradients by state_dict name, in parameter order.
#[derive(Clone, Debug)]
pub struct Grads<T> {
    pub entries: Vec<(String, T)>,
}

impl<T> Default for Grads<T> {
    fn default() -> Self {
        Grads { entries: Vec::new() }
    }
}

impl<T: Clone> Grads<T> {
    /// Adds `g` to the gradient of `name` (PyTorch's accumulation across backward calls).
    pub fn accumulate<B: Backend<Tensor = T>>(&mut self, b: &B, name: String, g: T) -> Result<()> {
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some((_, acc)) => b.add_assign(acc, &g),
            None => {
                self.entries.push((name, g));
                Ok(())
            }
        }
    }
    pub fn get(&self, name: &str) -> Option<&T> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, g)| g)
    }
}

/// The state_dict entries of a Sequential, by shared or mutable reference (one body for both).
macro_rules! named_tensors {
    ($layers:expr) => {{
        let mut out = Vec::new();
        for (i, layer) in $layers.into_iter().enumerate() {
            match layer {
                Layer::Conv2d { weight, .. } | Layer::ConvTranspose2d { weight, .. } => out.push((format!("main.{i}.weight"), weight)),
                Layer::BatchNorm2d { weight, bias, running_mean, running_var, .. } => {
                    out.push((format!("main.{i}.weight"), weight));
                    out.push((format!("main.{i}.bias"), bias));
                    out.push((format!("main.{i}.running_mean"), running_mean));
                    out.push((format!("main.{i}.running_var"), running_var));
                }
                Layer::InstanceNorm2d { weight, bias, .. } => {
                    out.push((format!("main.{i}.weight"), weight));
                    out.push((format!("main.{i}.bias"), bias));
                }
                Layer::Linear { weight, bias } => {
                    out.push((format!("main.{i}.weight"), weight));
                    out.push((format!("main.{i}.bias"), bias));
                }
                Layer::Act(_) | Layer::MaxPool2d(_) | Layer::GlobalAvgPool2d | Layer::Dropout { .. } => {}
            }
        }
        out
    }};
}

#[derive(Clone, Debug)]
pub struct Sequential<T> {
    pub layers: Vec<Layer<T>>,
}

impl<T: Clone> Sequential<T> {
    /// Every tensor of the state_dict (parameters and buffers) with its PyTorch name.
    pub fn state_dict(&self) -> Vec<(String, &T)> {
        named_tensors!(&self.layers)
    }

    /// Mutable access to every state_dict tensor (loading checkpoints, optimizer steps).
    pub fn state_dict_mut(&mut self) -> Vec<(String, &mut T)> {
        named_tensors!(&mut self.layers)
    }

    /// The trainable parameters (no running statistics), as `named_parameters()`.
    pub fn parameters_mut(&mut self) -> Vec<(String, &mut T)> {
        self.state_dict_mut().into_iter().filter(|(n, _)| !n.contains("running_")).collect()
    }

    pub fn forward<B: Backend<Tensor = T>>(&mut self, b: &B, x: &T, mode: Mode) -> Result<(T, Tape<T>)> {
        let mut saved = Vec::with_capacity(self.layers.len());
        let mut x = x.clone();
        let mut i = 0;
        while i < self.layers.len() {
            // A normalization followed by ReLU / LeakyReLU runs as one fused op (one pass over the activations
            // on backends that fuse); the tape is the same as unfused, except that the activation's record
            // holds its output as its input: for these activations both have the same sign, which is all
            // their backward reads (Activation::sign_preserving).
            let next_act = match self.layers.get(i + 1) {
                Some(Layer::Act(a)) if a.sign_preserving() => Some(*a),
                _ => None,
            };
            let fused = match (&mut self.layers[i], next_act, mode) {
                (Layer::BatchNorm2d { weight, bias, running_mean, running_var, eps, momentum }, Some(a), Mode::Train) => {
                    Some(b.batch_norm2d_train_act(&x, weight, bias, running_mean, running_var, *eps, *momentum, a)?)
                }
                (Layer::InstanceNorm2d { weight, bias, eps }, Some(a), _) => Some(b.instance_norm2d_act(&x, weight, bias, *eps, a)?),
                _ => None,
            };
            if let Some((y, stats)) = fused {
                saved.push(Saved::Norm { x, stats });
                saved.push(Saved::Act { x: y.clone(), y: y.clone() });
                x = y;
                i += 2;
                continue;
            }
            let (y, s) = match &mut self.layers[i] {
                Layer::Conv2d { weight, p } => (b.conv2d(&x, weight, *p)?, Saved::Input(x)),
                Layer::ConvTranspose2d { weight, p } => (b.conv_transpose2d(&x, weight, *p)?, Saved::Input(x)),
                Layer::BatchNorm2d { weight, bias, running_mean, running_var, eps, momentum } => match mode {
                    Mode::Train => {
                        let (y, stats) = b.batch_norm2d_train(&x, weight, bias, running_mean, running_var, *eps, *momentum)?;
                        (y, Saved::Norm { x, stats })
                    }
                    Mode::Eval => (b.batch_norm2d_eval(&x, weight, bias, running_mean, running_var, *eps)?, Saved::Input(x)),
                },
                Layer::InstanceNorm2d { weight, bias, eps } => {
                    let (y, stats) = b.instance_norm2d(&x, weight, bias, *eps)?;
                    (y, Saved::Norm { x, stats })
                }
                Layer::Act(a) => {
                    let y = b.activation(*a, &x)?;
                    (y.clone(), Saved::Act { x, y })
                }
                Layer::MaxPool2d(p) => (b.max_pool2d(&x, *p)?, Saved::Input(x)),
                Layer::GlobalAvgPool2d => (b.global_avg_pool2d(&x)?, Saved::Shape(dims(b, &x)?)),
                Layer::Dropout { p, seed } => match mode {
                    Mode::Train => {
                        let mask = dropout_mask(b, &b.shape(&x), *p, *seed)?;
                        (b.dropout(&x, &mask, *p)?, Saved::Mask(mask))
                    }
                    Mode::Eval => (x, Saved::Nothing),
                },
                Layer::Linear { weight, bias } => (b.linear(&x, weight, bias)?, Saved::Input(x)),
            };
            saved.push(s);
            x = y;
            i += 1;
        }
        Ok((x, Tape { saved }))
    }

    /// Backpropagates `dy` through a training-mode forward's tape. Parameter gradients are accumulated
    /// into `grads` when given; the input gradient is computed only when `input_grad` is set.
    pub fn backward<B: Backend<Tensor = T>>(
        &self,
        b: &B,
        tape: &Tape<T>,
        dy: &T,
        mut grads: Option<&mut Grads<T>>,
        input_grad: bool,
    ) -> Result<Option<T>> {
        let mut dy = dy.clone();
        for (i, (layer, saved)) in self.layers.iter().zip(&tape.saved).enumerate().rev() {
            let need_dx = i > 0 || input_grad;
            let wname = || format!("main.{i}.weight");
            dy = match (layer, saved) {
                (Layer::Conv2d { weight, p }, Saved::Input(x)) => {
                    if let Some(g) = grads.as_deref_mut() {
                        g.accumulate(b, wname(), b.conv2d_bwd_weight(x, &dy, dims(b, weight)?, *p)?)?;
                    }
                    if !need_dx {
                        return Ok(None);
                    }
                    b.conv2d_bwd_data(&dy, weight, dims(b, x)?, *p)?
                }
                (Layer::ConvTranspose2d { weight, p }, Saved::Input(x)) => {
                    if let Some(g) = grads.as_deref_mut() {
                        g.accumulate(b, wname(), b.conv_transpose2d_bwd_weight(x, &dy, dims(b, weight)?, *p)?)?;
                    }
                    if !need_dx {
                        return Ok(None);
                    }
                    b.conv_transpose2d_bwd_data(&dy, weight, *p)?
                }
                (Layer::BatchNorm2d { weight, .. }, Saved::Norm { x, stats }) => {
                    let r = b.batch_norm2d_bwd(&dy, x, weight, stats)?;
                    self.accumulate_affine(b, grads.as_deref_mut(), i, r.dgamma, r.dbeta)?;
                    r.dx
                }
                (Layer::InstanceNorm2d { weight, .. }, Saved::Norm { x, stats }) => {
                    let r = b.instance_norm2d_bwd(&dy, x, weight, stats)?;
                    self.accumulate_affine(b, grads.as_deref_mut(), i, r.dgamma, r.dbeta)?;
                    r.dx
                }
                (Layer::Act(a), Saved::Act { x, y }) => b.activation_bwd(*a, x, y, &dy)?,
                (Layer::MaxPool2d(p), Saved::Input(x)) => b.max_pool2d_bwd(&dy, x, *p)?,
                (Layer::GlobalAvgPool2d, Saved::Shape(x_shape)) => b.global_avg_pool2d_bwd(&dy, *x_shape)?,
                (Layer::Dropout { p, .. }, Saved::Mask(mask)) => b.dropout(&dy, mask, *p)?,
                (Layer::Linear { weight, .. }, Saved::Input(x)) => {
                    let r = b.linear_bwd(&dy, x, weight)?;
                    self.accumulate_affine(b, grads.as_deref_mut(), i, r.dw, r.db)?;
                    r.dx
                }
                _ => return Err(Error::Other(format!("main.{i}: backward needs a training-mode forward's tape"))),
            };
        }
        Ok(Some(dy))
    }

    /// Sets the seed of every dropout layer (the trainer derives one per step).
    pub fn seed_dropout(&mut self, seed: u64) {
        for (i, layer) in self.layers.iter_mut().enumerate() {
            if let Layer::Dropout { seed: s, .. } = layer {
                *s = seed.wrapping_add(i as u64);
            }
        }
    }

    fn accumulate_affine<B: Backend<Tensor = T>>(&self, b: &B, grads: Option<&mut Grads<T>>, i: usize, dgamma: T, dbeta: T) -> Result<()> {
        if let Some(g) = grads {
            g.accumulate(b, format!("main.{i}.weight"), dgamma)?;
            g.accumulate(b, format!("main.{i}.bias"), dbeta)?;
        }
        Ok(())
    }
}

/// A tensor's shape as `[N, C, H, W]`.
pub fn dims<B: Backend>(b: &B, t: &B::Tensor) -> Result<[usize; 4]> {
    crate::tensor::dims4(&b.shape(t), "nn", "tensor")
}

impl<T: Clone> Sequential<T> {
    /// PyTorch's `load_state_dict(strict=True)`: every tensor of the model must be present in `get` with
    /// its shape; the error lists every missing or mis-shaped tensor.
    pub fn load_state_dict<B: Backend<Tensor = T>>(
        &mut self,
        b: &B,
        prefix: &str,
        get: impl Fn(&str) -> Option<crate::Tensor>,
    ) -> Result<()> {
        let mut problems = Vec::new();
        let mut loaded = Vec::new();
        for (name, t) in self.state_dict() {
            let key = format!("{prefix}{name}");
            match get(&key) {
                None => problems.push(format!("missing {key}")),
                Some(h) if h.shape() != b.shape(t).as_slice() => {
                    problems.push(format!("{key} has shape {:?}, the model needs {:?}", h.shape(), b.shape(t)))
                }
                Some(h) => loaded.push(b.upload(&h)?),
            }
        }
        if !problems.is_empty() {
            return Err(Error::Other(format!("state_dict does not fit the model: {}", problems.join("; "))));
        }
        for ((_, slot), t) in self.state_dict_mut().into_iter().zip(loaded) {
            *slot = t;
        }
        Ok(())
    }

    /// Every state_dict tensor downloaded to the host, names prefixed.
    pub fn download_state_dict<B: Backend<Tensor = T>>(&self, b: &B, prefix: &str) -> Result<Vec<(String, crate::Tensor)>> {
        self.state_dict().into_iter().map(|(n, t)| Ok((format!("{prefix}{n}"), b.download(t)?))).collect()
    }
}

/// A dropout keep-mask of `shape`: each element 1 with probability 1 − p, else 0, drawn on the host from
/// `seed` (PyTorch's bernoulli_ draws differ; golden files carry the mask).
pub fn dropout_mask<B: Backend>(b: &B, shape: &[usize], p: f32, seed: u64) -> Result<B::Tensor> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let data = (0..shape.iter().product()).map(|_| if rng.gen::<f32>() < p { 0.0 } else { 1.0 }).collect();
    b.upload(&crate::Tensor::new(shape, data)?)
}
