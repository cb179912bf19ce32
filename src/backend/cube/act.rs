//! Activations and their backward passes, and dropout: launches of kernels/src/cube/act.rs, one kernel per
//! activation (a comptime [`ActKind`]).

use cubecl::Runtime;
use cxr_gan_kernels::cube as kern;
use cxr_gan_kernels::cube::act::ActKind;

use super::launch::{arr, block, grid};
use super::{CubeBackend, CubeTensor};
use crate::backend::{shapes, Activation};
use crate::error::Result;

/// The kernel's activation and leaky_relu's slope (0 for the others, which ignore it).
fn kind(act: Activation) -> (ActKind, f32) {
    match act {
        Activation::Relu => (ActKind::Relu, 0.0),
        Activation::LeakyRelu { slope } => (ActKind::LeakyRelu, slope),
        Activation::Tanh => (ActKind::Tanh, 0.0),
        Activation::Sigmoid => (ActKind::Sigmoid, 0.0),
    }
}

impl<R: Runtime> CubeBackend<R> {
    pub(super) fn launch_activation(&self, act: Activation, x: &CubeTensor) -> Result<CubeTensor> {
        const OP: &str = "activation";
        let n = self.check_len(OP, x.shape())?;
        let y = self.alloc(OP, x.shape())?;
        if n > 0 {
            let (kind, slope) = kind(act);
            kern::act::activation::launch::<R>(&self.client, grid(n), block(), arr(&x.handle, n), arr(&y.handle, n), slope, kind);
        }
        Ok(y)
    }

    pub(super) fn launch_activation_bwd(&self, act: Activation, x: &CubeTensor, y: &CubeTensor, dy: &CubeTensor) -> Result<CubeTensor> {
        const OP: &str = "activation_bwd";
        shapes::activation_bwd(OP, x.shape(), y.shape(), dy.shape())?;
        let n = self.check_len(OP, x.shape())?;
        let dx = self.alloc(OP, x.shape())?;
        if n > 0 {
            let (kind, slope) = kind(act);
            kern::act::activation_bwd::launch::<R>(
                &self.client,
                grid(n),
                block(),
                arr(&x.handle, n),
                arr(&y.handle, n),
                arr(&dy.handle, n),
                arr(&dx.handle, n),
                slope,
                kind,
            );
        }
        Ok(dx)
    }

    pub(super) fn launch_dropout(&self, x: &CubeTensor, mask: &CubeTensor, p: f32) -> Result<CubeTensor> {
        const OP: &str = "dropout";
        shapes::dropout(OP, x.shape(), mask.shape(), p)?;
        let n = self.check_len(OP, x.shape())?;
        let y = self.alloc(OP, x.shape())?;
        if n > 0 {
            let scale = (1.0 / (1.0 - p as f64)) as f32;
            kern::act::dropout::launch::<R>(
                &self.client,
                grid(n),
                block(),
                arr(&x.handle, n),
                arr(&mask.handle, n),
                arr(&y.handle, n),
                scale,
            );
        }
        Ok(y)
    }
}
