//! STUB: kernels/cuda/pool.cu launchers not written yet.

#![allow(unused_variables)]

use crate::backend::{Pool2dParams};
use super::{CudaNativeBackend, CudaNativeTensor};
use crate::error::Result;

impl CudaNativeBackend {
    pub(super) fn launch_avg_pool2d(&self, x: &CudaNativeTensor, p: Pool2dParams, count_include_pad: bool) -> Result<CudaNativeTensor> {
        Err(self.err("avg_pool2d: not written yet".into()))
    }
    pub(super) fn launch_max_pool2d(&self, x: &CudaNativeTensor, p: Pool2dParams) -> Result<CudaNativeTensor> {
        Err(self.err("max_pool2d: not written yet".into()))
    }
    pub(super) fn launch_global_avg_pool2d(&self, x: &CudaNativeTensor) -> Result<CudaNativeTensor> {
        Err(self.err("global_avg_pool2d: not written yet".into()))
    }
}
