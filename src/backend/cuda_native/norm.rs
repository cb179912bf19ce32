//! STUB: kernels/cuda/norm.cu launchers not written yet.

#![allow(unused_variables)]

use crate::backend::{InstanceNormJvpGrads, NormGrads, NormStats};
use super::{CudaNativeBackend, CudaNativeTensor};
use crate::error::Result;

impl CudaNativeBackend {
    pub(super) fn launch_batch_norm2d_train(&self, x: &CudaNativeTensor, gamma: &CudaNativeTensor, beta: &CudaNativeTensor, running_mean: &mut CudaNativeTensor, running_var: &mut CudaNativeTensor, eps: f32, momentum: f32) -> Result<(CudaNativeTensor, NormStats<CudaNativeTensor>)> {
        Err(self.err("batch_norm2d_train: not written yet".into()))
    }
    pub(super) fn launch_batch_norm2d_eval(&self, x: &CudaNativeTensor, gamma: &CudaNativeTensor, beta: &CudaNativeTensor, running_mean: &CudaNativeTensor, running_var: &CudaNativeTensor, eps: f32) -> Result<CudaNativeTensor> {
        Err(self.err("batch_norm2d_eval: not written yet".into()))
    }
    pub(super) fn launch_batch_norm2d_bwd(&self, dy: &CudaNativeTensor, x: &CudaNativeTensor, gamma: &CudaNativeTensor, stats: &NormStats<CudaNativeTensor>) -> Result<NormGrads<CudaNativeTensor>> {
        Err(self.err("batch_norm2d_bwd: not written yet".into()))
    }
    pub(super) fn launch_instance_norm2d(&self, x: &CudaNativeTensor, gamma: &CudaNativeTensor, beta: &CudaNativeTensor, eps: f32) -> Result<(CudaNativeTensor, NormStats<CudaNativeTensor>)> {
        Err(self.err("instance_norm2d: not written yet".into()))
    }
    pub(super) fn launch_instance_norm2d_bwd(&self, dy: &CudaNativeTensor, x: &CudaNativeTensor, gamma: &CudaNativeTensor, stats: &NormStats<CudaNativeTensor>) -> Result<NormGrads<CudaNativeTensor>> {
        Err(self.err("instance_norm2d_bwd: not written yet".into()))
    }
    pub(super) fn launch_instance_norm2d_jvp(&self, x: &CudaNativeTensor, x_dot: &CudaNativeTensor, gamma: &CudaNativeTensor, stats: &NormStats<CudaNativeTensor>) -> Result<CudaNativeTensor> {
        Err(self.err("instance_norm2d_jvp: not written yet".into()))
    }
    pub(super) fn launch_instance_norm2d_jvp_bwd(&self, x: &CudaNativeTensor, x_dot: &CudaNativeTensor, gamma: &CudaNativeTensor, stats: &NormStats<CudaNativeTensor>, y_bar: &CudaNativeTensor, y_dot_bar: &CudaNativeTensor) -> Result<InstanceNormJvpGrads<CudaNativeTensor>> {
        Err(self.err("instance_norm2d_jvp_bwd: not written yet".into()))
    }
}
