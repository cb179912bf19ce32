//! Activations and their backward passes, and dropout: launches of kernels/cuda/act.cu, one kernel per
//! activation, direction and storage (`act_<name>`, `act_<name>_bwd`, and `_bf16` twins that read bf16
//! storage: the forward stores y as it read x; the backward's dy and dx are f32 gradients).

use cxr_gan_kernels::cuda::Family;

use super::launch::{u32_of, Arg, Dims};
use super::{CudaNativeBackend, CudaNativeTensor};
use crate::backend::{shapes, Activation};
use crate::error::Result;

const FAMILY: Family = Family::Act;

/// An activation's forward and backward kernels for f32 and bf16 storage, and leaky_relu's slope (its
/// kernels' last argument).
struct ActKernels {
    fwd: [&'static str; 2],
    bwd: [&'static str; 2],
    slope: Option<f32>,
    /// Whether the backward reads the forward output y (tanh, sigmoid) rather than the input x.
    bwd_reads_y: bool,
}

fn kernels(act: Activation) -> ActKernels {
    let k = |fwd, bwd, slope, bwd_reads_y| ActKernels { fwd, bwd, slope, bwd_reads_y };
    match act {
        Activation::Relu => k(["act_relu", "act_relu_bf16"], ["act_relu_bwd", "act_relu_bwd_bf16"], None, false),
        Activation::LeakyRelu { slope } => {
            k(["act_leaky_relu", "act_leaky_relu_bf16"], ["act_leaky_relu_bwd", "act_leaky_relu_bwd_bf16"], Some(slope), false)
        }
        Activation::Tanh => k(["act_tanh", "act_tanh_bf16"], ["act_tanh_bwd", "act_tanh_bwd_bf16"], None, true),
        Activation::Sigmoid => k(["act_sigmoid", "act_sigmoid_bf16"], ["act_sigmoid_bwd", "act_sigmoid_bwd_bf16"], None, true),
    }
}

impl CudaNativeBackend {
    pub(super) fn launch_activation(&self, act: Activation, x: &CudaNativeTensor) -> Result<CudaNativeTensor> {
        const OP: &str = "activation";
        let y = self.alloc_as(OP, x.shape(), x.storage)?;
        let n = u32_of(OP, x.len())?;
        if n == 0 {
            return Ok(y);
        }
        let k = kernels(act);
        let mut args = vec![x.arg(), y.arg(), Arg::U32(n)];
        args.extend(k.slope.map(Arg::F32));
        self.launch(OP, FAMILY, x.kernel_for(k.fwd[0], k.fwd[1]), Dims::grid_stride(x.len()), &args)?;
        Ok(y)
    }

    pub(super) fn launch_activation_bwd(
        &self,
        act: Activation,
        x: &CudaNativeTensor,
        y: &CudaNativeTensor,
        dy: &CudaNativeTensor,
    ) -> Result<CudaNativeTensor> {
        const OP: &str = "activation_bwd";
        shapes::activation_bwd(OP, x.shape(), y.shape(), dy.shape())?;
        let dx = self.alloc(OP, x.shape())?;
        let n = u32_of(OP, x.len())?;
        if n == 0 {
            return Ok(dx);
        }
        let k = kernels(act);
        let input = if k.bwd_reads_y { y } else { x };
        let mut args = vec![input.arg(), dy.arg(), dx.arg(), Arg::U32(n)];
        args.extend(k.slope.map(Arg::F32));
        self.launch(OP, FAMILY, input.kernel_for(k.bwd[0], k.bwd[1]), Dims::grid_stride(x.len()), &args)?;
        Ok(dx)
    }

    pub(super) fn launch_dropout(&self, x: &CudaNativeTensor, mask: &CudaNativeTensor, p: f32) -> Result<CudaNativeTensor> {
        const OP: &str = "dropout";
        shapes::dropout(OP, x.shape(), mask.shape(), p)?;
        let y = self.alloc(OP, x.shape())?;
        let n = u32_of(OP, x.len())?;
        if n > 0 {
            let scale = (1.0 / (1.0 - p as f64)) as f32;
            self.launch(OP, FAMILY, "dropout", Dims::grid_stride(x.len()), &[x.arg(), mask.arg(), y.arg(), Arg::U32(n), Arg::F32(scale)])?;
        }
        Ok(y)
    }
}
