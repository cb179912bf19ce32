//! InceptionV3's pools: avg_pool2d, max_pool2d and the global average pool, and their backward passes,
//! launches of kernels/src/cube/pool.rs.

use cubecl::Runtime;
use cxr_gan_kernels::cube as kern;
use cxr_gan_kernels::cube::pool::{Pool2dGeom, Pool2dKind};

use super::launch::{arr, block, grid, groups};
use super::{CubeBackend, CubeTensor};
use crate::backend::{shapes, Pool2dParams};
use crate::error::Result;
use crate::tensor::dims4;

impl<R: Runtime> CubeBackend<R> {
    pub(super) fn launch_avg_pool2d(&self, x: &CubeTensor, p: Pool2dParams, count_include_pad: bool) -> Result<CubeTensor> {
        self.pool2d("avg_pool2d", x, p, Pool2dKind::Avg { count_include_pad })
    }

    pub(super) fn launch_max_pool2d(&self, x: &CubeTensor, p: Pool2dParams) -> Result<CubeTensor> {
        self.pool2d("max_pool2d", x, p, Pool2dKind::Max)
    }

    fn pool2d(&self, op: &'static str, x: &CubeTensor, p: Pool2dParams, kind: Pool2dKind) -> Result<CubeTensor> {
        let ys = shapes::pool2d_out(op, x.shape(), p)?;
        let xs = dims4(x.shape(), op, "x")?;
        self.check_len(op, x.shape())?;
        let y = self.alloc(op, &ys)?;
        let n = y.len();
        if n > 0 {
            let geom = pool_geom(xs, ys, p);
            kern::pool::pool2d::launch::<R>(
                &self.client,
                grid(n),
                block(),
                arr(&x.handle, x.len()),
                arr(&y.handle, n),
                geom.launch(),
                kind,
            );
        }
        Ok(y)
    }

    pub(super) fn launch_max_pool2d_bwd(&self, dy: &CubeTensor, x: &CubeTensor, p: Pool2dParams) -> Result<CubeTensor> {
        const OP: &str = "max_pool2d_bwd";
        let ys = shapes::pool2d_bwd(OP, dy.shape(), x.shape(), p)?;
        let xs = dims4(x.shape(), OP, "x")?;
        let n = self.check_len(OP, &xs)?;
        let dx = self.alloc(OP, &xs)?;
        if n > 0 {
            kern::pool::max_pool2d_bwd::launch::<R>(
                &self.client,
                grid(n),
                block(),
                arr(&dy.handle, dy.len()),
                arr(&x.handle, n),
                arr(&dx.handle, n),
                pool_geom(xs, ys, p).launch(),
            );
        }
        Ok(dx)
    }

    pub(super) fn launch_avg_pool2d_bwd(
        &self,
        dy: &CubeTensor,
        x_shape: [usize; 4],
        p: Pool2dParams,
        count_include_pad: bool,
    ) -> Result<CubeTensor> {
        const OP: &str = "avg_pool2d_bwd";
        let ys = shapes::pool2d_bwd(OP, dy.shape(), &x_shape, p)?;
        let n = self.check_len(OP, &x_shape)?;
        let dx = self.alloc(OP, &x_shape)?;
        if n > 0 {
            kern::pool::avg_pool2d_bwd::launch::<R>(
                &self.client,
                grid(n),
                block(),
                arr(&dy.handle, dy.len()),
                arr(&dx.handle, n),
                pool_geom(x_shape, ys, p).launch(),
                count_include_pad,
            );
        }
        Ok(dx)
    }

    pub(super) fn launch_global_avg_pool2d_bwd(&self, dy: &CubeTensor, x_shape: [usize; 4]) -> Result<CubeTensor> {
        const OP: &str = "global_avg_pool2d_bwd";
        shapes::global_pool_bwd(OP, dy.shape(), &x_shape)?;
        let n = self.check_len(OP, &x_shape)?;
        let dx = self.alloc(OP, &x_shape)?;
        if n > 0 {
            kern::pool::global_avg_pool2d_bwd::launch::<R>(
                &self.client,
                grid(n),
                block(),
                arr(&dy.handle, dy.len()),
                arr(&dx.handle, n),
                x_shape[2] * x_shape[3],
            );
        }
        Ok(dx)
    }

    pub(super) fn launch_global_avg_pool2d(&self, x: &CubeTensor) -> Result<CubeTensor> {
        const OP: &str = "global_avg_pool2d";
        let [n, c] = shapes::global_pool_out(OP, x.shape())?;
        let len = self.check_len(OP, x.shape())?;
        let y = self.alloc(OP, &[n, c])?;
        let np = n * c;
        if np > 0 {
            kern::pool::global_avg_pool2d::launch::<R>(
                &self.client,
                groups(np),
                block(),
                arr(&x.handle, len),
                arr(&y.handle, np),
                np,
                len / np,
            );
        }
        Ok(y)
    }
}

/// The kernels' geometry of a pool from x [N, C, h, w] to y [N, C, ho, wo].
fn pool_geom([_, _, h, w]: [usize; 4], [_, _, ho, wo]: [usize; 4], p: Pool2dParams) -> Pool2dGeom {
    let ([kernel_h, kernel_w], [stride_h, stride_w], [pad_h, pad_w]) = (p.kernel, p.stride, p.padding);
    Pool2dGeom { h, w, ho, wo, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w }
}
