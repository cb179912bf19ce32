//! Activations and their backward passes, and dropout: launches of kernels/cuda/act.cu, one kernel per
//! activation and direction (`act_<name>`, `act_<name>_bwd`).

use cxr_gan_kernels::cuda::Family;

use super::launch::{u32_of, Arg, Dims};
use super::{CudaNativeBackend, CudaNativeTensor};
use crate::backend::{shapes, Activation};
use crate::error::Result;

const FAMILY: Family = Family::Act;

/// An activation's forward and backward kernels, and leaky_relu's slope (its kernels' last argument).
struct ActKernels {
    fwd: &'static str,
    bwd: &'static str,
    slope: Option<f32>,
    /// Whether the backward reads the forward output y (tanh, sigmoid) rather than the input x.
    bwd_reads_y: bool,
}

fn kernels(act: Activation) -> ActKernels {
    let k = |fwd, bwd, slope, bwd_reads_y| ActKernels { fwd, bwd, slope, bwd_reads_y };
    match act {
        Activation::Relu => k("act_relu", "act_relu_bwd", None, false),
        Activation::LeakyRelu { slope } => k("act_leaky_relu", "act_leaky_relu_bwd", Some(slope), false),
        Activation::Tanh => k("act_tanh", "act_tanh_bwd", None, true),
        Activation::Sigmoid => k("act_sigmoid", "act_sigmoid_bwd", None, true),
    }
}

impl CudaNativeBackend {
    pub(super) fn launch_activation(&self, act: Activation, x: &CudaNativeTensor) -> Result<CudaNativeTensor> {
        const OP: &str = "activation";
        let y = self.alloc(OP, x.shape())?;
        let n = u32_of(OP, x.len())?;
        if n == 0 {
            return Ok(y);
        }
        let k = kernels(act);
        let mut args = vec![x.arg(), y.arg(), Arg::U32(n)];
        args.extend(k.slope.map(Arg::F32));
        self.launch(OP, FAMILY, k.fwd, Dims::grid_stride(x.len()), &args)?;
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
        self.launch(OP, FAMILY, k.bwd, Dims::grid_stride(x.len()), &args)?;
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
