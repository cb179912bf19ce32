//! STUB: kernels/cuda/resize.cu launchers not written yet.

#![allow(unused_variables)]

use super::{CudaNativeBackend, CudaNativeTensor};
use crate::error::Result;

impl CudaNativeBackend {
    pub(super) fn launch_resize_bilinear(&self, x: &CudaNativeTensor, out_h: usize, out_w: usize) -> Result<CudaNativeTensor> {
        Err(self.err("resize_bilinear: not written yet".into()))
    }
}
