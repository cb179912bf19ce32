//! STUB: kernels/cuda/loss.cu launchers not written yet.

#![allow(unused_variables)]

use crate::backend::{PenaltyHead};
use super::{CudaNativeBackend, CudaNativeTensor};
use crate::error::Result;

impl CudaNativeBackend {
    pub(super) fn launch_bce(&self, p: &CudaNativeTensor, target: &CudaNativeTensor) -> Result<(f64, CudaNativeTensor)> {
        Err(self.err("bce: not written yet".into()))
    }
    pub(super) fn launch_bce_logits(&self, logits: &CudaNativeTensor, target: &CudaNativeTensor) -> Result<(f64, CudaNativeTensor)> {
        Err(self.err("bce_logits: not written yet".into()))
    }
    pub(super) fn launch_gradient_penalty_head(&self, g: &CudaNativeTensor, lambda: f32) -> Result<PenaltyHead<CudaNativeTensor>> {
        Err(self.err("gradient_penalty_head: not written yet".into()))
    }
}
