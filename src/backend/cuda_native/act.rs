//! STUB: kernels/cuda/act.cu launchers not written yet.

#![allow(unused_variables)]

use crate::backend::{Activation};
use super::{CudaNativeBackend, CudaNativeTensor};
use crate::error::Result;

impl CudaNativeBackend {
    pub(super) fn launch_activation(&self, act: Activation, x: &CudaNativeTensor) -> Result<CudaNativeTensor> {
        Err(self.err("activation: not written yet".into()))
    }
    pub(super) fn launch_activation_bwd(&self, act: Activation, x: &CudaNativeTensor, y: &CudaNativeTensor, dy: &CudaNativeTensor) -> Result<CudaNativeTensor> {
        Err(self.err("activation_bwd: not written yet".into()))
    }
}
