//! STUB: kernels/cuda/adam.cu launchers not written yet.

#![allow(unused_variables)]

use crate::backend::{AdamConfig};
use super::{CudaNativeBackend, CudaNativeTensor};
use crate::error::Result;

impl CudaNativeBackend {
    pub(super) fn launch_adam_step(&self, param: &mut CudaNativeTensor, grad: &CudaNativeTensor, exp_avg: &mut CudaNativeTensor, exp_avg_sq: &mut CudaNativeTensor, cfg: &AdamConfig, step: u64) -> Result<()> {
        Err(self.err("adam_step: not written yet".into()))
    }
}
