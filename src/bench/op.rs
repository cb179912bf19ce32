//! The ops `cxr-gan bench` measures, with their non-tensor arguments, and one generic [`execute`] that
//! runs any of them on any backend (so the backend under test and the `cpu` reference run the same code).

use crate::backend::{Activation, AdamConfig, Backend, Conv2dParams, NormStats, Pool2dParams};
use crate::error::{Error, Result};
use crate::nn::dcgan::{BN_EPS, IN_EPS};

/// Which op, with its non-tensor arguments. The tensor inputs are listed in the order `execute` takes them.
#[derive(Clone, Debug)]
pub enum Op {
    /// [x, w]
    Conv2d(Conv2dParams),
    /// [dy, w]
    Conv2dBwdData { x_shape: [usize; 4], p: Conv2dParams },
    /// [x, dy]
    Conv2dBwdWeight { w_shape: [usize; 4], p: Conv2dParams },
    /// [x, w]
    ConvTranspose2d(Conv2dParams),
    /// [dy, w]
    ConvTranspose2dBwdData(Conv2dParams),
    /// [x, dy]
    ConvTranspose2dBwdWeight { w_shape: [usize; 4], p: Conv2dParams },
    /// [x, gamma, beta, running_mean, running_var]
    BatchNorm2dTrain,
    /// [x, gamma, beta, running_mean, running_var]
    BatchNorm2dEval,
    /// [dy, x, gamma, mean, invstd]
    BatchNorm2dBwd,
    /// [x, gamma, beta]
    InstanceNorm2d,
    /// [dy, x, gamma, mean, invstd]
    InstanceNorm2dBwd,
    /// [x, x_dot, gamma, mean, invstd]
    InstanceNorm2dJvp,
    /// [x, x_dot, gamma, mean, invstd, y_bar, y_dot_bar]
    InstanceNorm2dJvpBwd,
    /// [x]
    Activation(Activation),
    /// [x, y, dy]
    ActivationBwd(Activation),
    /// [p, target]
    Bce,
    /// [logits, target]
    BceLogits,
    /// [g]
    GradientPenaltyHead { lambda: f32 },
    /// [a, b]
    LerpPerSample { alpha: Vec<f32> },
    /// [a, b]: a += b
    AddAssign,
    /// [x]
    Mean,
    /// [param, grad, exp_avg, exp_avg_sq]
    AdamStep { cfg: AdamConfig, step: u64 },
    /// [x]
    AvgPool2d { p: Pool2dParams, count_include_pad: bool },
    /// [x]
    MaxPool2d(Pool2dParams),
    /// [x]
    GlobalAvgPool2d,
    /// [x]
    ResizeBilinear { out_h: usize, out_w: usize },
    /// [x0, x1, ...]
    ConcatChannels,
    /// [x, scale, shift]: x ← scale·x + shift (then ReLU)
    AffineChannels { relu: bool },
}

impl Op {
    /// The convolutions (whose precision `--precision` may lower on cuda-native).
    pub fn is_convolution(&self) -> bool {
        matches!(
            self,
            Op::Conv2d(_)
                | Op::Conv2dBwdData { .. }
                | Op::Conv2dBwdWeight { .. }
                | Op::ConvTranspose2d(_)
                | Op::ConvTranspose2dBwdData(_)
                | Op::ConvTranspose2dBwdWeight { .. }
        )
    }
}

/// An op's result: a tensor on the backend, or host scalars (losses, norms).
pub enum Output<T> {
    Tensor(&'static str, T),
    Scalars(&'static str, Vec<f64>),
}

fn arity(op: &Op, n: usize) -> Error {
    Error::Other(format!("bench: {op:?} got {n} inputs, which is not its arity (a bug in the case list)"))
}

/// Runs `op` on `b` over `ins` (in-place ops update them; their new values are returned too).
pub fn execute<B: Backend>(b: &B, op: &Op, ins: &mut [B::Tensor]) -> Result<Vec<Output<B::Tensor>>> {
    use Output::{Scalars as S, Tensor as T};
    let n = ins.len();
    let bad = || arity(op, n);
    Ok(match op {
        Op::Conv2d(p) => {
            let [x, w] = ins else { return Err(bad()) };
            vec![T("y", b.conv2d(x, w, *p)?)]
        }
        Op::Conv2dBwdData { x_shape, p } => {
            let [dy, w] = ins else { return Err(bad()) };
            vec![T("dx", b.conv2d_bwd_data(dy, w, *x_shape, *p)?)]
        }
        Op::Conv2dBwdWeight { w_shape, p } => {
            let [x, dy] = ins else { return Err(bad()) };
            vec![T("dw", b.conv2d_bwd_weight(x, dy, *w_shape, *p)?)]
        }
        Op::ConvTranspose2d(p) => {
            let [x, w] = ins else { return Err(bad()) };
            vec![T("y", b.conv_transpose2d(x, w, *p)?)]
        }
        Op::ConvTranspose2dBwdData(p) => {
            let [dy, w] = ins else { return Err(bad()) };
            vec![T("dx", b.conv_transpose2d_bwd_data(dy, w, *p)?)]
        }
        Op::ConvTranspose2dBwdWeight { w_shape, p } => {
            let [x, dy] = ins else { return Err(bad()) };
            vec![T("dw", b.conv_transpose2d_bwd_weight(x, dy, *w_shape, *p)?)]
        }
        Op::BatchNorm2dTrain => {
            let [x, gamma, beta, rm, rv] = ins else {
                return Err(bad());
            };
            let (y, s) = b.batch_norm2d_train(x, gamma, beta, rm, rv, BN_EPS, 0.1)?;
            vec![T("y", y), T("mean", s.mean), T("invstd", s.invstd), T("running_mean", rm.clone()), T("running_var", rv.clone())]
        }
        Op::BatchNorm2dEval => {
            let [x, gamma, beta, rm, rv] = ins else {
                return Err(bad());
            };
            vec![T("y", b.batch_norm2d_eval(x, gamma, beta, rm, rv, BN_EPS)?)]
        }
        Op::BatchNorm2dBwd => {
            let [dy, x, gamma, mean, invstd] = ins else {
                return Err(bad());
            };
            let g = b.batch_norm2d_bwd(dy, x, gamma, &NormStats { mean: mean.clone(), invstd: invstd.clone() })?;
            vec![T("dx", g.dx), T("dgamma", g.dgamma), T("dbeta", g.dbeta)]
        }
        Op::InstanceNorm2d => {
            let [x, gamma, beta] = ins else {
                return Err(bad());
            };
            let (y, s) = b.instance_norm2d(x, gamma, beta, IN_EPS)?;
            vec![T("y", y), T("mean", s.mean), T("invstd", s.invstd)]
        }
        Op::InstanceNorm2dBwd => {
            let [dy, x, gamma, mean, invstd] = ins else {
                return Err(bad());
            };
            let g = b.instance_norm2d_bwd(dy, x, gamma, &NormStats { mean: mean.clone(), invstd: invstd.clone() })?;
            vec![T("dx", g.dx), T("dgamma", g.dgamma), T("dbeta", g.dbeta)]
        }
        Op::InstanceNorm2dJvp => {
            let [x, x_dot, gamma, mean, invstd] = ins else {
                return Err(bad());
            };
            vec![T("y_dot", b.instance_norm2d_jvp(x, x_dot, gamma, &NormStats { mean: mean.clone(), invstd: invstd.clone() })?)]
        }
        Op::InstanceNorm2dJvpBwd => {
            let [x, x_dot, gamma, mean, invstd, y_bar, y_dot_bar] = ins else {
                return Err(bad());
            };
            let stats = NormStats { mean: mean.clone(), invstd: invstd.clone() };
            let g = b.instance_norm2d_jvp_bwd(x, x_dot, gamma, &stats, y_bar, y_dot_bar)?;
            vec![T("x_bar", g.x_bar), T("x_dot_bar", g.x_dot_bar), T("dgamma", g.dgamma), T("dbeta", g.dbeta)]
        }
        Op::Activation(act) => {
            let [x] = ins else { return Err(bad()) };
            vec![T("y", b.activation(*act, x)?)]
        }
        Op::ActivationBwd(act) => {
            let [x, y, dy] = ins else { return Err(bad()) };
            vec![T("dx", b.activation_bwd(*act, x, y, dy)?)]
        }
        Op::Bce | Op::BceLogits => {
            let [p, target] = ins else { return Err(bad()) };
            let (loss, d) = if matches!(op, Op::Bce) { b.bce(p, target)? } else { b.bce_logits(p, target)? };
            vec![S("loss", vec![loss]), T("grad", d)]
        }
        Op::GradientPenaltyHead { lambda } => {
            let [g] = ins else { return Err(bad()) };
            let h = b.gradient_penalty_head(g, *lambda)?;
            vec![S("gp", vec![h.gp]), S("grad_norm", h.grad_norm), T("v", h.v)]
        }
        Op::LerpPerSample { alpha } => {
            let [a, c] = ins else { return Err(bad()) };
            vec![T("x_hat", b.lerp_per_sample(a, c, alpha)?)]
        }
        Op::AddAssign => {
            let [a, c] = ins else { return Err(bad()) };
            b.add_assign(a, c)?;
            vec![T("a", a.clone())]
        }
        Op::Mean => {
            let [x] = ins else { return Err(bad()) };
            vec![S("mean", vec![b.mean(x)?])]
        }
        Op::AdamStep { cfg, step } => {
            let [param, grad, m, v] = ins else {
                return Err(bad());
            };
            b.adam_step(param, grad, m, v, cfg, *step)?;
            vec![T("param", param.clone()), T("exp_avg", m.clone()), T("exp_avg_sq", v.clone())]
        }
        Op::AvgPool2d { p, count_include_pad } => {
            let [x] = ins else { return Err(bad()) };
            vec![T("y", b.avg_pool2d(x, *p, *count_include_pad)?)]
        }
        Op::MaxPool2d(p) => {
            let [x] = ins else { return Err(bad()) };
            vec![T("y", b.max_pool2d(x, *p)?)]
        }
        Op::GlobalAvgPool2d => {
            let [x] = ins else { return Err(bad()) };
            vec![T("y", b.global_avg_pool2d(x)?)]
        }
        Op::ResizeBilinear { out_h, out_w } => {
            let [x] = ins else { return Err(bad()) };
            vec![T("y", b.resize_bilinear(x, *out_h, *out_w)?)]
        }
        Op::ConcatChannels => {
            let xs: Vec<&B::Tensor> = ins.iter().collect();
            vec![T("y", b.concat_channels(&xs)?)]
        }
        Op::AffineChannels { relu } => {
            let [x, scale, shift] = ins else {
                return Err(bad());
            };
            b.affine_channels(x, scale, shift, *relu)?;
            vec![T("x", x.clone())]
        }
    })
}
