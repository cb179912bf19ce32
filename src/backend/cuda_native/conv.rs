//! STUB: kernels/cuda/conv.cu launchers not written yet.

#![allow(unused_variables)]

use crate::backend::{Conv2dParams};
use super::{CudaNativeBackend, CudaNativeTensor};
use crate::error::Result;

impl CudaNativeBackend {
    pub(super) fn launch_conv2d(&self, x: &CudaNativeTensor, w: &CudaNativeTensor, p: Conv2dParams) -> Result<CudaNativeTensor> {
        Err(self.err("conv2d: not written yet".into()))
    }
    pub(super) fn launch_conv2d_bwd_data(&self, dy: &CudaNativeTensor, w: &CudaNativeTensor, x_shape: [usize; 4], p: Conv2dParams) -> Result<CudaNativeTensor> {
        Err(self.err("conv2d_bwd_data: not written yet".into()))
    }
    pub(super) fn launch_conv2d_bwd_weight(&self, x: &CudaNativeTensor, dy: &CudaNativeTensor, w_shape: [usize; 4], p: Conv2dParams) -> Result<CudaNativeTensor> {
        Err(self.err("conv2d_bwd_weight: not written yet".into()))
    }
}
