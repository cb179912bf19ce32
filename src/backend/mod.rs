//! The `Backend` trait: the primitive ops every model, training step and FID pass is written in.
//!
//! Op names follow PyTorch's (`conv2d`, `conv_transpose2d`, `batch_norm2d`, ...); backward passes carry a
//! `_bwd_data` / `_bwd_weight` / `_bwd` suffix. The same name is used by the f64 oracle (`reference/`), the
//! f32 `cpu` backend and the GPU kernels, so `grep conv2d_bwd_weight` finds every version of one op.
//!
//! Tensors live in the backend (`Self::Tensor`); `upload` / `download` cross to the host [`Tensor`].
//! Scalars that the training loop prints (losses) come back as host `f64`. Shape checking is shared by
//! every backend through [`shapes`], so all of them reject bad input with the same error, and so is the
//! host-side scalar math their kernels take ([`host_math`]).

pub mod cpu;
pub mod cube;
pub mod cuda_env;
pub mod cuda_native;
pub mod cuda_offline;
pub mod host_math;
pub mod nvrtc_lib;
pub mod shapes;

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Stride and zero padding per axis (height, width), as `nn.Conv2d(stride=(sh, sw), padding=(ph, pw))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl Conv2dParams {
    pub const fn new(stride: [usize; 2], padding: [usize; 2]) -> Self {
        Conv2dParams { stride, padding }
    }
}

/// Window, stride and padding (per axis: height, width) of a 2-d pooling, as
/// `F.max_pool2d(x, kernel, stride, padding)` with ceil_mode False. Padding is at most half the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dParams {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl Pool2dParams {
    pub const fn new(kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2]) -> Self {
        Pool2dParams { kernel, stride, padding }
    }
}

/// An elementwise activation, with PyTorch's gradient convention at 0 (relu: 0, leaky_relu: `slope`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    LeakyRelu { slope: f32 },
    Tanh,
    Sigmoid,
}

impl Activation {
    /// Whether the activation is piecewise linear with positive slopes (ReLU, LeakyReLU with slope > 0):
    /// then its output has the sign of its input, so its backward can read the output in place of the
    /// input, and a normalization before it can be fused with it without keeping the normalized tensor.
    pub fn sign_preserving(self) -> bool {
        match self {
            Activation::Relu => true,
            Activation::LeakyRelu { slope } => slope > 0.0,
            Activation::Tanh | Activation::Sigmoid => false,
        }
    }
}

/// torch.optim.Adam's hyperparameters (no weight decay, no amsgrad). Host scalars in f64, as PyTorch's
/// Python floats: 1 − β₂ must be formed before rounding to f32 (0.001, not 1 − 0.999f32 = 0.00099998).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

/// The statistics a normalization forward saves for its backward: per channel (batch norm, `[C]`) or per
/// instance and channel (instance norm, `[N*C]`). `invstd` = 1/sqrt(var + eps) with the biased variance.
#[derive(Clone, Debug)]
pub struct NormStats<T> {
    pub mean: T,
    pub invstd: T,
}

/// Gradients of a normalization layer: input, scale (`weight`/gamma), shift (`bias`/beta).
#[derive(Clone, Debug)]
pub struct NormGrads<T> {
    pub dx: T,
    pub dgamma: T,
    pub dbeta: T,
}

/// What the reverse pass through an instance norm's tangent (forward-mode) pass yields: cotangents of the
/// primal input and of its tangent, and the parameter gradients. The gradient penalty's double backward.
#[derive(Clone, Debug)]
pub struct InstanceNormJvpGrads<T> {
    pub x_bar: T,
    pub x_dot_bar: T,
    pub dgamma: T,
    pub dbeta: T,
}

/// The gradient penalty's head: from the per-sample input gradients g = ∇x̂ C(x̂), the penalty
/// λ·mean((‖g‖₂ − 1)²), the norms, and the cotangent v = ∂GP/∂g = 2λ(‖g‖ − 1)·g/‖g‖/N.
#[derive(Clone, Debug)]
pub struct PenaltyHead<T> {
    pub gp: f64,
    pub grad_norm: Vec<f64>,
    pub v: T,
}

/// The per-sample norms ‖gₙ‖ of the penalty's gradients: on the host, or their squares still on the device.
#[derive(Clone, Debug)]
pub enum GradNorms<T> {
    Ready(Vec<f64>),
    /// ‖gₙ‖² [N] on the device; the norms are their square roots in f64, taken when read.
    Squared(T),
}

impl<T> GradNorms<T> {
    pub fn resolve<B: Backend<Tensor = T> + ?Sized>(&self, b: &B) -> Result<Vec<f64>> {
        match self {
            GradNorms::Ready(v) => Ok(v.clone()),
            GradNorms::Squared(sq) => Ok(b.download(sq)?.data().iter().map(|&s| (s as f64).sqrt()).collect()),
        }
    }
}

/// [`PenaltyHead`] with its norms (and so the penalty, [`host_math::gradient_penalty`]) read later.
#[derive(Clone, Debug)]
pub struct PendingPenaltyHead<T> {
    pub grad_norm: GradNorms<T>,
    pub v: T,
}

/// Gradients of [`Backend::linear`]: input, weight, bias.
#[derive(Clone, Debug)]
pub struct LinearGrads<T> {
    pub dx: T,
    pub dw: T,
    pub db: T,
}

/// One parameter's share of an Adam step over many ([`Backend::adam_step_all`]).
pub struct AdamSlot<'a, T> {
    pub param: &'a mut T,
    pub grad: &'a T,
    pub exp_avg: &'a mut T,
    pub exp_avg_sq: &'a mut T,
}

/// A host scalar the device may still be computing: a sum of device partials over a divisor, read when asked
/// ([`Deferred::resolve`]), or a number already. Steps report their losses this way so that no host read sits
/// inside the device work, which a captured graph cannot contain.
#[derive(Clone, Debug)]
pub enum Deferred<T> {
    Ready(f64),
    /// (Σ of `parts`' elements, added in f64) / `divisor`.
    Parts {
        parts: T,
        divisor: f64,
    },
}

impl<T> Deferred<T> {
    pub fn resolve<B: Backend<Tensor = T> + ?Sized>(&self, b: &B) -> Result<f64> {
        match self {
            Deferred::Ready(v) => Ok(*v),
            Deferred::Parts { parts, divisor } => Ok(b.download(parts)?.data().iter().map(|&v| v as f64).sum::<f64>() / divisor),
        }
    }
}

/// What a backend without graph capture names as its graph type: nothing can be one.
#[derive(Debug)]
pub enum NoGraph {}

pub trait Backend: Send + Sync {
    /// A tensor in this backend's memory; it knows its shape.
    type Tensor: Clone + Send + Sync;
    /// A captured sequence of device work, replayable as one unit ([`Backend::capture_begin`]).
    type Graph: Send + Sync;

    /// A short name for reports: `cpu`, `wgpu`, `cuda`, `reference`.
    fn name(&self) -> String;
    /// The precision this backend's convolutions compute at (`--precision`: cuda-native's tensor-core
    /// kernels round their inputs; every other backend is f32), which checks against references allow for.
    fn conv_precision(&self) -> cuda_native::Precision {
        cuda_native::Precision::Fp32
    }
    /// Waits until every op launched so far has finished (timing; device errors surface here). Host
    /// backends compute eagerly and have nothing to wait for.
    fn sync(&self) -> Result<()> {
        Ok(())
    }
    /// The largest buffer, in bytes, one tensor may occupy on this backend's device (`None`: no limit but
    /// host memory). An op whose input or output would exceed it is refused with an error naming the
    /// limit, so callers size their batches by it (FID's feature extraction, generation).
    fn max_buffer_bytes(&self) -> Option<usize> {
        None
    }

    // ------------------------------------------------------------------ graphs (torch.cuda.CUDAGraph's model)
    /// Starts capturing: until [`Backend::capture_end`], ops record their device work instead of running it,
    /// so their outputs hold nothing yet. Host reads and uploads are refused meanwhile. `Ok(false)`: this
    /// backend does not capture (ops run as always; the caller runs its work eagerly).
    fn capture_begin(&self) -> Result<bool> {
        Ok(false)
    }
    /// Ends the capture: the recorded work as a graph. The tensors the captured ops returned are the graph's
    /// outputs: each [`Backend::replay`] rewrites them in place, and the tensors it read (inputs, parameters)
    /// must stay the same buffers, so an in-place op that had to copy a shared tensor fails the capture.
    fn capture_end(&self) -> Result<Self::Graph> {
        Err(Error::Other(format!("{} does not capture graphs", self.name())))
    }
    /// Runs a captured graph's device work once more, on the current contents of the buffers it reads.
    fn replay(&self, _graph: &Self::Graph) -> Result<()> {
        Err(Error::Other(format!("{} does not capture graphs", self.name())))
    }
    /// Writes `src` into `dst`'s own buffer (seen by every clone of `dst`): a captured graph's input,
    /// refilled before each replay.
    fn overwrite(&self, dst: &Self::Tensor, src: &Tensor) -> Result<()> {
        let _ = (dst, src);
        Err(Error::Other(format!("{} has no graph inputs to overwrite", self.name())))
    }

    // ------------------------------------------------------------------ memory
    fn upload(&self, t: &Tensor) -> Result<Self::Tensor>;
    fn download(&self, t: &Self::Tensor) -> Result<Tensor>;
    /// Uploads f64 host data (golden files); backends in f32 round it, the oracle keeps it.
    fn upload_f64(&self, shape: &[usize], data: &[f64]) -> Result<Self::Tensor> {
        self.upload(&Tensor::from_f64(shape, data)?)
    }
    /// Downloads as f64 (exact for f32 backends; the oracle's own precision for it).
    fn download_f64(&self, t: &Self::Tensor) -> Result<Vec<f64>> {
        Ok(self.download(t)?.to_f64())
    }
    fn shape(&self, t: &Self::Tensor) -> Vec<usize>;
    fn full(&self, shape: &[usize], value: f32) -> Result<Self::Tensor>;
    fn zeros(&self, shape: &[usize]) -> Result<Self::Tensor> {
        self.full(shape, 0.0)
    }
    /// The same data under another shape of equal element count (PyTorch's `view`).
    fn reshape(&self, t: &Self::Tensor, shape: &[usize]) -> Result<Self::Tensor>;

    // ------------------------------------------------------------------ elementwise
    /// a + b (same shapes).
    fn add(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;
    /// a += b (same shapes): gradient accumulation.
    fn add_assign(&self, a: &mut Self::Tensor, b: &Self::Tensor) -> Result<()>;
    /// s·a.
    fn scale(&self, a: &Self::Tensor, s: f32) -> Result<Self::Tensor>;
    /// x̂ = α·a + (1 − α)·b with one α per sample (`alpha.len()` = N): the gradient penalty's interpolates.
    fn lerp_per_sample(&self, a: &Self::Tensor, b: &Self::Tensor, alpha: &[f32]) -> Result<Self::Tensor>;
    /// [`Backend::lerp_per_sample`] with α [N] already in this backend's memory (a captured graph's input).
    fn lerp_per_sample_tensor(&self, a: &Self::Tensor, b: &Self::Tensor, alpha: &Self::Tensor) -> Result<Self::Tensor> {
        self.lerp_per_sample(a, b, self.download(alpha)?.data())
    }
    /// The mean of all elements, as a host scalar.
    fn mean(&self, t: &Self::Tensor) -> Result<f64>;
    /// [`Backend::mean`], read later: no host read until [`Deferred::resolve`] (a device backend keeps its
    /// partial sums on the device).
    fn mean_deferred(&self, t: &Self::Tensor) -> Result<Deferred<Self::Tensor>> {
        Ok(Deferred::Ready(self.mean(t)?))
    }

    // ------------------------------------------------------------------ convolution (no bias)
    /// y = conv2d(x, w): x [N, C, H, W], w [O, C, kh, kw] → y [N, O, Ho, Wo].
    fn conv2d(&self, x: &Self::Tensor, w: &Self::Tensor, p: Conv2dParams) -> Result<Self::Tensor>;
    /// dx of conv2d given dy [N, O, Ho, Wo]; `x_shape` is the forward input's shape.
    fn conv2d_bwd_data(&self, dy: &Self::Tensor, w: &Self::Tensor, x_shape: [usize; 4], p: Conv2dParams) -> Result<Self::Tensor>;
    /// dw of conv2d given the forward input x and dy; `w_shape` is [O, C, kh, kw].
    fn conv2d_bwd_weight(&self, x: &Self::Tensor, dy: &Self::Tensor, w_shape: [usize; 4], p: Conv2dParams) -> Result<Self::Tensor>;

    /// y = conv_transpose2d(x, w): x [N, Cin, H, W], w [Cin, Cout, kh, kw] (PyTorch's layout) →
    /// y [N, Cout, (H−1)·s − 2p + kh, ...]. It is conv2d's backward-data with w read as [O=Cin, C=Cout].
    fn conv_transpose2d(&self, x: &Self::Tensor, w: &Self::Tensor, p: Conv2dParams) -> Result<Self::Tensor> {
        let y_shape = shapes::conv_transpose2d_out("conv_transpose2d", &self.shape(x), &self.shape(w), p)?;
        self.conv2d_bwd_data(x, w, y_shape, p)
    }
    /// dx of conv_transpose2d: conv2d of dy with the same weight.
    fn conv_transpose2d_bwd_data(&self, dy: &Self::Tensor, w: &Self::Tensor, p: Conv2dParams) -> Result<Self::Tensor> {
        self.conv2d(dy, w, p)
    }
    /// dw of conv_transpose2d: conv2d's backward-weight with the roles of input and output swapped.
    fn conv_transpose2d_bwd_weight(
        &self,
        x: &Self::Tensor,
        dy: &Self::Tensor,
        w_shape: [usize; 4],
        p: Conv2dParams,
    ) -> Result<Self::Tensor> {
        self.conv2d_bwd_weight(dy, x, w_shape, p)
    }

    // ------------------------------------------------------------------ normalization
    /// Training-mode batch norm over (N, H, W) per channel. Updates the running statistics in place as
    /// PyTorch: r ← (1 − momentum)·r + momentum·stat, with the unbiased variance for `running_var`.
    #[allow(clippy::too_many_arguments)]
    fn batch_norm2d_train(
        &self,
        x: &Self::Tensor,
        gamma: &Self::Tensor,
        beta: &Self::Tensor,
        running_mean: &mut Self::Tensor,
        running_var: &mut Self::Tensor,
        eps: f32,
        momentum: f32,
    ) -> Result<(Self::Tensor, NormStats<Self::Tensor>)>;
    /// Eval-mode batch norm with the running statistics.
    fn batch_norm2d_eval(
        &self,
        x: &Self::Tensor,
        gamma: &Self::Tensor,
        beta: &Self::Tensor,
        running_mean: &Self::Tensor,
        running_var: &Self::Tensor,
        eps: f32,
    ) -> Result<Self::Tensor>;
    /// Training-mode batch norm followed by a piecewise-linear activation (ReLU, LeakyReLU with a positive
    /// slope): `activation(act, batch_norm2d_train(..))`, with the same running-statistics update. Backends
    /// that can fuse the two (cuda-native) write the activated output in one pass; the default calls both.
    #[allow(clippy::too_many_arguments)]
    fn batch_norm2d_train_act(
        &self,
        x: &Self::Tensor,
        gamma: &Self::Tensor,
        beta: &Self::Tensor,
        running_mean: &mut Self::Tensor,
        running_var: &mut Self::Tensor,
        eps: f32,
        momentum: f32,
        act: Activation,
    ) -> Result<(Self::Tensor, NormStats<Self::Tensor>)> {
        let (y, stats) = self.batch_norm2d_train(x, gamma, beta, running_mean, running_var, eps, momentum)?;
        Ok((self.activation(act, &y)?, stats))
    }
    fn batch_norm2d_bwd(
        &self,
        dy: &Self::Tensor,
        x: &Self::Tensor,
        gamma: &Self::Tensor,
        stats: &NormStats<Self::Tensor>,
    ) -> Result<NormGrads<Self::Tensor>>;

    /// Instance norm with affine gamma/beta, statistics over (H, W) per sample and channel.
    fn instance_norm2d(
        &self,
        x: &Self::Tensor,
        gamma: &Self::Tensor,
        beta: &Self::Tensor,
        eps: f32,
    ) -> Result<(Self::Tensor, NormStats<Self::Tensor>)>;
    /// Instance norm followed by a piecewise-linear activation, fused where the backend can (see
    /// [`Backend::batch_norm2d_train_act`]).
    fn instance_norm2d_act(
        &self,
        x: &Self::Tensor,
        gamma: &Self::Tensor,
        beta: &Self::Tensor,
        eps: f32,
        act: Activation,
    ) -> Result<(Self::Tensor, NormStats<Self::Tensor>)> {
        let (y, stats) = self.instance_norm2d(x, gamma, beta, eps)?;
        Ok((self.activation(act, &y)?, stats))
    }
    fn instance_norm2d_bwd(
        &self,
        dy: &Self::Tensor,
        x: &Self::Tensor,
        gamma: &Self::Tensor,
        stats: &NormStats<Self::Tensor>,
    ) -> Result<NormGrads<Self::Tensor>>;
    /// Forward-mode derivative: ẏ = ∂IN(x)/∂x · ẋ (gamma and beta held constant).
    fn instance_norm2d_jvp(
        &self,
        x: &Self::Tensor,
        x_dot: &Self::Tensor,
        gamma: &Self::Tensor,
        stats: &NormStats<Self::Tensor>,
    ) -> Result<Self::Tensor>;
    /// Reverse pass through (y, ẏ) = (IN(x), ∂IN(x)·ẋ) given cotangents ȳ and ẏ̄.
    fn instance_norm2d_jvp_bwd(
        &self,
        x: &Self::Tensor,
        x_dot: &Self::Tensor,
        gamma: &Self::Tensor,
        stats: &NormStats<Self::Tensor>,
        y_bar: &Self::Tensor,
        y_dot_bar: &Self::Tensor,
    ) -> Result<InstanceNormJvpGrads<Self::Tensor>>;

    // ------------------------------------------------------------------ activations
    fn activation(&self, act: Activation, x: &Self::Tensor) -> Result<Self::Tensor>;
    /// dx given the forward input x, its output y and dy (each activation reads the one it needs).
    /// For piecewise-linear activations this is also the forward-mode derivative with dy = ẋ.
    fn activation_bwd(&self, act: Activation, x: &Self::Tensor, y: &Self::Tensor, dy: &Self::Tensor) -> Result<Self::Tensor>;

    // ------------------------------------------------------------------ losses (mean reduction)
    /// nn.BCELoss on probabilities (log clamped at −100): the loss and dL/dp.
    fn bce(&self, p: &Self::Tensor, target: &Self::Tensor) -> Result<(f64, Self::Tensor)>;
    /// [`Backend::bce`] with the loss read later ([`Backend::mean_deferred`]).
    fn bce_deferred(&self, p: &Self::Tensor, target: &Self::Tensor) -> Result<(Deferred<Self::Tensor>, Self::Tensor)> {
        let (loss, grad) = self.bce(p, target)?;
        Ok((Deferred::Ready(loss), grad))
    }
    /// nn.BCEWithLogitsLoss: the loss and dL/dlogits.
    fn bce_logits(&self, logits: &Self::Tensor, target: &Self::Tensor) -> Result<(f64, Self::Tensor)>;
    /// WGAN-GP's penalty head from g = ∇x̂ C(x̂) [N, ...].
    fn gradient_penalty_head(&self, g: &Self::Tensor, lambda: f32) -> Result<PenaltyHead<Self::Tensor>>;
    /// [`Backend::gradient_penalty_head`] with the norms read later (no host read inside the step).
    fn gradient_penalty_head_deferred(&self, g: &Self::Tensor, lambda: f32) -> Result<PendingPenaltyHead<Self::Tensor>> {
        let h = self.gradient_penalty_head(g, lambda)?;
        Ok(PendingPenaltyHead { grad_norm: GradNorms::Ready(h.grad_norm), v: h.v })
    }

    // ------------------------------------------------------------------ optimizer
    /// One torch.optim.Adam step (`step` is 1-based, the step being taken), fused, in place.
    fn adam_step(
        &self,
        param: &mut Self::Tensor,
        grad: &Self::Tensor,
        exp_avg: &mut Self::Tensor,
        exp_avg_sq: &mut Self::Tensor,
        cfg: &AdamConfig,
        step: u64,
    ) -> Result<()>;

    /// [`Backend::adam_step`] on every parameter of a model at once (PyTorch's `foreach` Adam): one
    /// launch over all of them where the backend can (cuda-native), else one call per parameter.
    fn adam_step_all(&self, slots: &mut [AdamSlot<'_, Self::Tensor>], cfg: &AdamConfig, step: u64) -> Result<()> {
        for s in slots.iter_mut() {
            self.adam_step(s.param, s.grad, s.exp_avg, s.exp_avg_sq, cfg, step)?;
        }
        Ok(())
    }

    // ------------------------------------------------------------------ InceptionV3's ops (FID and the classifier)

    /// F.avg_pool2d(x, kernel, stride, padding, ceil_mode=False, count_include_pad): x [N, C, H, W] →
    /// [N, C, Ho, Wo]. Without count_include_pad the divisor counts only the window's elements inside x.
    fn avg_pool2d(&self, x: &Self::Tensor, p: Pool2dParams, count_include_pad: bool) -> Result<Self::Tensor>;
    /// F.max_pool2d(x, kernel, stride, padding) (padding is −∞; NaN propagates).
    fn max_pool2d(&self, x: &Self::Tensor, p: Pool2dParams) -> Result<Self::Tensor>;
    /// F.adaptive_avg_pool2d(x, 1) flattened: the mean of every plane, x [N, C, H, W] → [N, C].
    fn global_avg_pool2d(&self, x: &Self::Tensor) -> Result<Self::Tensor>;
    /// F.interpolate(x, size=(out_h, out_w), mode='bilinear', align_corners=False): x [N, C, H, W] →
    /// [N, C, out_h, out_w], source index max((d + 0.5)·in/out − 0.5, 0).
    fn resize_bilinear(&self, x: &Self::Tensor, out_h: usize, out_w: usize) -> Result<Self::Tensor>;
    /// torch.cat(xs, dim=1): tensors [N, Cᵢ, H, W] → [N, ΣCᵢ, H, W].
    fn concat_channels(&self, xs: &[&Self::Tensor]) -> Result<Self::Tensor>;
    /// In place, x ← scale[c]·x + shift[c] per channel of x [N, C, H, W] (scale, shift [C]), then
    /// x ← max(x, 0) when `relu` (NaN stays NaN): eval-mode BatchNorm folded to an affine map, fused with the
    /// ReLU of a BasicConv2d. In place because it follows every convolution of the Inception.
    fn affine_channels(&self, x: &mut Self::Tensor, scale: &Self::Tensor, shift: &Self::Tensor, relu: bool) -> Result<()>;

    // ------------------------------------------------------------------ the classifier's backward passes
    /// dx of [`Backend::max_pool2d`] given the forward input x: each window's dy goes to its first maximum
    /// in row-major order (PyTorch's tie rule; a NaN counts as the maximum, the window's last NaN if it holds
    /// several, as PyTorch), summed where windows overlap.
    fn max_pool2d_bwd(&self, dy: &Self::Tensor, x: &Self::Tensor, p: Pool2dParams) -> Result<Self::Tensor>;
    /// dx of [`Backend::avg_pool2d`]: each window's dy divided by its divisor, spread over the window's
    /// elements inside x; `x_shape` is the forward input's.
    fn avg_pool2d_bwd(&self, dy: &Self::Tensor, x_shape: [usize; 4], p: Pool2dParams, count_include_pad: bool) -> Result<Self::Tensor>;
    /// dx of [`Backend::global_avg_pool2d`]: dy [N, C] spread evenly over each H×W plane of `x_shape`.
    fn global_avg_pool2d_bwd(&self, dy: &Self::Tensor, x_shape: [usize; 4]) -> Result<Self::Tensor>;
    /// dx of [`Backend::concat_channels`]: dy [N, ΣCᵢ, H, W] cut into [N, Cᵢ, H, W] by `channels`
    /// (torch.split(dy, channels, dim=1)).
    fn concat_channels_bwd(&self, dy: &Self::Tensor, channels: &[usize]) -> Result<Vec<Self::Tensor>>;
    /// F.cross_entropy(logits, target) with mean reduction: logits [N, K], `target` N class indices < K.
    /// The loss and dL/dlogits = (softmax(logits) − onehot(target)) / N.
    fn cross_entropy(&self, logits: &Self::Tensor, target: &[usize]) -> Result<(f64, Self::Tensor)>;
    /// F.dropout(x, p, training=True) with its keep-mask drawn by the caller: x·mask/(1 − p), `mask` of x's
    /// shape holding 0 or 1. Dropout's backward is the same map applied to dy with the same mask.
    fn dropout(&self, x: &Self::Tensor, mask: &Self::Tensor, p: f32) -> Result<Self::Tensor>;

    /// F.linear(x, w, b) = x·wᵀ + b: x [N, in], w [out, in], b [out] → [N, out]. A 1×1 convolution of
    /// x viewed as [N, in, 1, 1] (the convolution kernels are GEMMs), then the bias as a per-channel shift.
    fn linear(&self, x: &Self::Tensor, w: &Self::Tensor, bias: &Self::Tensor) -> Result<Self::Tensor> {
        let (n, [o, i]) = shapes::linear("linear", &self.shape(x), &self.shape(w), &self.shape(bias))?;
        let mut y = self.conv2d(&self.reshape(x, &[n, i, 1, 1])?, &self.reshape(w, &[o, i, 1, 1])?, LINEAR_AS_CONV)?;
        self.affine_channels(&mut y, &self.full(&[o], 1.0)?, bias, false)?;
        self.reshape(&y, &[n, o])
    }
    /// Gradients of [`Backend::linear`] given dy [N, out]: dx = dy·w, dw = dyᵀ·x, db = Σₙ dy — the bias
    /// gradient as the weight gradient of a 1×1 convolution over a constant-one input.
    fn linear_bwd(&self, dy: &Self::Tensor, x: &Self::Tensor, w: &Self::Tensor) -> Result<LinearGrads<Self::Tensor>> {
        let (n, [o, i]) = shapes::linear_bwd("linear_bwd", &self.shape(dy), &self.shape(x), &self.shape(w))?;
        let dy4 = self.reshape(dy, &[n, o, 1, 1])?;
        let w4 = self.reshape(w, &[o, i, 1, 1])?;
        let dx = self.conv2d_bwd_data(&dy4, &w4, [n, i, 1, 1], LINEAR_AS_CONV)?;
        let dw = self.conv2d_bwd_weight(&self.reshape(x, &[n, i, 1, 1])?, &dy4, [o, i, 1, 1], LINEAR_AS_CONV)?;
        let db = self.conv2d_bwd_weight(&self.full(&[n, 1, 1, 1], 1.0)?, &dy4, [o, 1, 1, 1], LINEAR_AS_CONV)?;
        Ok(LinearGrads { dx: self.reshape(&dx, &[n, i])?, dw: self.reshape(&dw, &[o, i])?, db: self.reshape(&db, &[o])? })
    }
}

/// [`Backend::linear`] as a convolution: 1×1, stride 1, no padding.
const LINEAR_AS_CONV: Conv2dParams = Conv2dParams::new([1, 1], [0, 0]);

/// Work that runs on whichever backend the user picked: `dispatch` instantiates it for the concrete type.
pub trait BackendTask {
    type Output;
    fn run<B: Backend>(self, b: &B) -> Result<Self::Output>;
}

/// The backends this build knows, for `--backend`: `cuda` is our CubeCL kernels on CUDA, `cuda-native` our
/// hand-written CUDA C++, `cuda-native-emu` the same kernels on the CPU emulator (slow; for checking).
pub const BACKEND_NAMES: &[&str] = &["auto", "cpu", "wgpu", "cuda", "cuda-native", "cuda-native-emu"];

/// The convolution precision `--precision` chose for the cuda-native backend (0: fp32, 1: tf32, 2: bf16).
static PRECISION: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Sets the precision [`dispatch`] gives the cuda-native backend (the CLI's global `--precision`).
pub fn set_precision(p: cuda_native::Precision) {
    PRECISION.store(p as u8, std::sync::atomic::Ordering::Relaxed);
}

/// The precision [`set_precision`] chose (fp32 unless the CLI said otherwise).
pub fn precision() -> cuda_native::Precision {
    match PRECISION.load(std::sync::atomic::Ordering::Relaxed) {
        0 => cuda_native::Precision::Fp32,
        1 => cuda_native::Precision::Tf32,
        _ => cuda_native::Precision::Bf16,
    }
}

/// Runs `task` on the backend named `name`. `auto` picks the best one present: CUDA, else a hardware
/// wgpu adapter (a CPU adapter such as lavapipe is slower than `cpu`, so only `--backend wgpu` takes it),
/// else `cpu`. `auto` does not pick cuda-native: it has not yet passed the conformance suite on a GPU
/// (BENCHMARKS.md). A named GPU backend without a device here is an error naming the backends that exist.
pub fn dispatch<T: BackendTask>(name: &str, task: T) -> Result<T::Output> {
    match name {
        "cpu" => task.run(&cpu::CpuBackend::new()),
        "wgpu" => task.run(&cube::WgpuBackend::wgpu()?),
        "cuda" => task.run(&cube::CudaBackend::cuda()?),
        "cuda-native" => task.run(&cuda_native::CudaNativeBackend::cuda()?.with_precision(precision())),
        "cuda-native-emu" => task.run(&cuda_native::CudaNativeBackend::emulator().with_precision(precision())),
        "auto" => {
            if let Ok(b) = cube::CudaBackend::cuda() {
                task.run(&b)
            } else if let Ok(b) = cube::WgpuBackend::wgpu_hardware() {
                task.run(&b)
            } else {
                task.run(&cpu::CpuBackend::new())
            }
        }
        other => Err(crate::Error::Backend {
            backend: other.to_string(),
            detail: format!("unknown backend; this build has: {}", BACKEND_NAMES.join(", ")),
        }),
    }
}

/// The environment variable naming backends that must be present (comma-separated, e.g. `cuda` or
/// `wgpu,cuda`): where one is named, a test or check that would skip for want of it fails instead.
pub const REQUIRE_BACKEND_ENV: &str = "CXR_GAN_REQUIRE_BACKEND";

/// The backends [`REQUIRE_BACKEND_ENV`] names.
pub fn required_backends() -> Vec<String> {
    let v = std::env::var(REQUIRE_BACKEND_ENV).unwrap_or_default();
    v.split(',').map(str::trim).filter(|n| !n.is_empty()).map(String::from).collect()
}

/// Whether [`REQUIRE_BACKEND_ENV`] names backend `name`.
pub fn backend_required(name: &str) -> bool {
    required_backends().iter().any(|n| n == name)
}
