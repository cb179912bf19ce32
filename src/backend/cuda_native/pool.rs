//! FID's pools (forward only): avg_pool2d, max_pool2d and the global average pool, launches of
//! kernels/cuda/pool.cu.

use cxr_gan_kernels::cuda::Family;

use super::launch::{u32_of, Arg, Dims};
use super::{CudaNativeBackend, CudaNativeTensor};
use crate::backend::{shapes, Pool2dParams};
use crate::error::Result;
use crate::tensor::dims4;

const FAMILY: Family = Family::Pool;

/// `PoolGeom` in kernels/cuda/pool.cu: x [planes, h, w] pooled to y [planes, ho, wo] (n outputs).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct PoolGeom {
    n: u32,
    h: u32,
    w: u32,
    ho: u32,
    wo: u32,
    kernel_h: u32,
    kernel_w: u32,
    stride_h: u32,
    stride_w: u32,
    pad_h: u32,
    pad_w: u32,
}

impl CudaNativeBackend {
    pub(super) fn launch_avg_pool2d(&self, x: &CudaNativeTensor, p: Pool2dParams, count_include_pad: bool) -> Result<CudaNativeTensor> {
        self.pool2d("avg_pool2d", x, p, Some(count_include_pad))
    }

    pub(super) fn launch_max_pool2d(&self, x: &CudaNativeTensor, p: Pool2dParams) -> Result<CudaNativeTensor> {
        self.pool2d("max_pool2d", x, p, None)
    }

    /// avg_pool2d (`avg` = Some(count_include_pad)) or max_pool2d (None): one launch, a thread per output.
    fn pool2d(&self, op: &'static str, x: &CudaNativeTensor, p: Pool2dParams, avg: Option<bool>) -> Result<CudaNativeTensor> {
        let ys = shapes::pool2d_out(op, x.shape(), p)?;
        let ([_, _, h, w], [_, _, ho, wo]) = (dims4(x.shape(), op, "x")?, ys);
        self.check_len(op, x.shape())?;
        let n = self.check_len(op, &ys)?;
        let y = self.alloc(op, &ys)?;
        if n == 0 {
            return Ok(y);
        }
        let u = |v: usize| u32_of(op, v);
        let ([kh, kw], [sh, sw], [ph, pw]) = (p.kernel, p.stride, p.padding);
        let geom = PoolGeom {
            n: u(n)?,
            h: u(h)?,
            w: u(w)?,
            ho: u(ho)?,
            wo: u(wo)?,
            kernel_h: u(kh)?,
            kernel_w: u(kw)?,
            stride_h: u(sh)?,
            stride_w: u(sw)?,
            pad_h: u(ph)?,
            pad_w: u(pw)?,
        };
        let dims = Dims::grid_stride(n);
        match avg {
            Some(include_pad) => {
                self.launch(op, FAMILY, "avg_pool2d", dims, &[x.arg(), y.arg(), Arg::pod(&geom), Arg::U32(include_pad as u32)])?
            }
            None => self.launch(op, FAMILY, "max_pool2d", dims, &[x.arg(), y.arg(), Arg::pod(&geom)])?,
        }
        Ok(y)
    }

    pub(super) fn launch_global_avg_pool2d(&self, x: &CudaNativeTensor) -> Result<CudaNativeTensor> {
        const OP: &str = "global_avg_pool2d";
        let [n, c] = shapes::global_pool_out(OP, x.shape())?;
        let [_, _, h, w] = dims4(x.shape(), OP, "x")?;
        self.check_len(OP, x.shape())?;
        let y = self.alloc(OP, &[n, c])?;
        let planes = n * c;
        if planes > 0 {
            let hw = u32_of(OP, h * w)?;
            let args = [x.arg(), y.arg(), Arg::U32(u32_of(OP, planes)?), Arg::U32(hw)];
            self.launch(OP, FAMILY, "global_avg_pool2d", Dims::per_group(planes), &args)?;
        }
        Ok(y)
    }
}
