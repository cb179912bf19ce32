//! The Inception blocks' channel ops: concat_channels (one launch per input) and its backward (one launch
//! per piece), and affine_channels (eval-mode BatchNorm folded to a per-channel affine map, fused with the
//! ReLU), launches of kernels/src/cube/channels.rs.

use cubecl::Runtime;
use cxr_gan_kernels::cube as kern;

use super::launch::{arr, block, grid};
use super::{CubeBackend, CubeTensor};
use crate::backend::shapes;
use crate::error::Result;

impl<R: Runtime> CubeBackend<R> {
    pub(super) fn launch_concat_channels(&self, xs: &[&CubeTensor]) -> Result<CubeTensor> {
        const OP: &str = "concat_channels";
        let shapes: Vec<&[usize]> = xs.iter().map(|x| x.shape()).collect();
        let ys = shapes::concat_channels_out(OP, &shapes)?;
        self.check_len(OP, &ys)?;
        let y = self.alloc(OP, &ys)?;
        let [_, c_total, h, w] = ys;
        let mut offset = 0;
        for x in xs {
            let c = x.shape()[1];
            if !x.is_empty() {
                kern::channels::concat_channels::launch::<R>(
                    &self.client,
                    grid(x.len()),
                    block(),
                    arr(&x.handle, x.len()),
                    arr(&y.handle, y.len()),
                    c,
                    c_total,
                    offset,
                    h * w,
                );
            }
            offset += c;
        }
        Ok(y)
    }

    pub(super) fn launch_concat_channels_bwd(&self, dy: &CubeTensor, channels: &[usize]) -> Result<Vec<CubeTensor>> {
        const OP: &str = "concat_channels_bwd";
        let [n, c_total, h, w] = shapes::concat_channels_bwd(OP, dy.shape(), channels)?;
        self.check_len(OP, dy.shape())?;
        let mut offset = 0;
        let mut dxs = Vec::with_capacity(channels.len());
        for &c in channels {
            let dx = self.alloc(OP, &[n, c, h, w])?;
            if !dx.is_empty() {
                kern::channels::concat_channels_bwd::launch::<R>(
                    &self.client,
                    grid(dx.len()),
                    block(),
                    arr(&dy.handle, dy.len()),
                    arr(&dx.handle, dx.len()),
                    c,
                    c_total,
                    offset,
                    h * w,
                );
            }
            offset += c;
            dxs.push(dx);
        }
        Ok(dxs)
    }

    /// x's new tensor (the trait's in-place op rebinds x to it).
    pub(super) fn launch_affine_channels(&self, x: &CubeTensor, scale: &CubeTensor, shift: &CubeTensor, relu: bool) -> Result<CubeTensor> {
        const OP: &str = "affine_channels";
        let [_, c, h, w] = shapes::affine_channels(OP, x.shape(), scale.shape(), shift.shape())?;
        let n = self.check_len(OP, x.shape())?;
        let y = self.alloc(OP, x.shape())?;
        if n > 0 {
            kern::channels::affine_channels::launch::<R>(
                &self.client,
                grid(n),
                block(),
                arr(&x.handle, n),
                arr(&scale.handle, c),
                arr(&shift.handle, c),
                arr(&y.handle, n),
                c,
                h * w,
                relu,
            );
        }
        Ok(y)
    }
}
