//! InceptionV3's pools: avg_pool2d, max_pool2d and the global average pool, and their backward passes
//! (gathers: a thread per input element), launches of kernels/cuda/pool.cu.

use cxr_gan_kernels::cuda::Family;

use super::launch::{u32_of, Arg, Dims};
use super::{CudaNativeBackend, CudaNativeTensor};
use crate::backend::{shapes, Pool2dParams};
use crate::error::Result;
use crate::tensor::dims4;

const FAMILY: Family = Family::Pool;

/// `PoolGeom` in kernels/cuda/pool.cu: x [planes, h, w] pooled to y [planes, ho, wo]; n is the elements the
/// launch writes (y's for the forwards, dx's for the backwards).
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

impl PoolGeom {
    /// The geometry of a pool from planes of h × w to ho × wo, for a launch writing `n` elements.
    fn new(op: &'static str, n: usize, [h, w]: [usize; 2], [ho, wo]: [usize; 2], p: Pool2dParams) -> Result<PoolGeom> {
        let u = |v: usize| u32_of(op, v);
        let ([kh, kw], [sh, sw], [ph, pw]) = (p.kernel, p.stride, p.padding);
        Ok(PoolGeom {
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
        })
    }
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
        let geom = PoolGeom::new(op, n, [h, w], [ho, wo], p)?;
        let dims = Dims::grid_stride(n);
        match avg {
            Some(include_pad) => {
                self.launch(op, FAMILY, "avg_pool2d", dims, &[x.arg(), y.arg(), Arg::pod(&geom), Arg::U32(include_pad as u32)])?
            }
            None => self.launch(op, FAMILY, "max_pool2d", dims, &[x.arg(), y.arg(), Arg::pod(&geom)])?,
        }
        Ok(y)
    }

    pub(super) fn launch_max_pool2d_bwd(&self, dy: &CudaNativeTensor, x: &CudaNativeTensor, p: Pool2dParams) -> Result<CudaNativeTensor> {
        const OP: &str = "max_pool2d_bwd";
        let [_, _, ho, wo] = shapes::pool2d_bwd(OP, dy.shape(), x.shape(), p)?;
        let xs @ [_, _, h, w] = dims4(x.shape(), OP, "x")?;
        let n = self.check_len(OP, &xs)?;
        let dx = self.alloc(OP, &xs)?;
        if n > 0 {
            let geom = PoolGeom::new(OP, n, [h, w], [ho, wo], p)?;
            self.launch(OP, FAMILY, "max_pool2d_bwd", Dims::grid_stride(n), &[dy.arg(), x.arg(), dx.arg(), Arg::pod(&geom)])?;
        }
        Ok(dx)
    }

    pub(super) fn launch_avg_pool2d_bwd(
        &self,
        dy: &CudaNativeTensor,
        x_shape: [usize; 4],
        p: Pool2dParams,
        count_include_pad: bool,
    ) -> Result<CudaNativeTensor> {
        const OP: &str = "avg_pool2d_bwd";
        let [_, _, ho, wo] = shapes::pool2d_bwd(OP, dy.shape(), &x_shape, p)?;
        let [_, _, h, w] = x_shape;
        let n = self.check_len(OP, &x_shape)?;
        let dx = self.alloc(OP, &x_shape)?;
        if n > 0 {
            let geom = PoolGeom::new(OP, n, [h, w], [ho, wo], p)?;
            let args = [dy.arg(), dx.arg(), Arg::pod(&geom), Arg::U32(count_include_pad as u32)];
            self.launch(OP, FAMILY, "avg_pool2d_bwd", Dims::grid_stride(n), &args)?;
        }
        Ok(dx)
    }

    pub(super) fn launch_global_avg_pool2d_bwd(&self, dy: &CudaNativeTensor, x_shape: [usize; 4]) -> Result<CudaNativeTensor> {
        const OP: &str = "global_avg_pool2d_bwd";
        shapes::global_pool_bwd(OP, dy.shape(), &x_shape)?;
        let n = self.check_len(OP, &x_shape)?;
        let dx = self.alloc(OP, &x_shape)?;
        if n > 0 {
            let args = [dy.arg(), dx.arg(), Arg::U32(u32_of(OP, n)?), Arg::U32(u32_of(OP, x_shape[2] * x_shape[3])?)];
            self.launch(OP, FAMILY, "global_avg_pool2d_bwd", Dims::grid_stride(n), &args)?;
        }
        Ok(dx)
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
