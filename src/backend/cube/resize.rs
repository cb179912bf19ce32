//! Bilinear resize (`F.interpolate(mode='bilinear', align_corners=False)`): the source taps from the shared
//! host math ([`bilinear_taps`]), uploaded, then one launch of kernels/src/cube/resize.rs.

use cubecl::prelude::ArrayArg;
use cubecl::Runtime;
use cxr_gan_kernels::cube as kern;
use cxr_gan_kernels::cube::resize::ResizeDims;

use super::launch::{arr, block, grid};
use super::{CubeBackend, CubeTensor};
use crate::backend::host_math::bilinear_taps;
use crate::backend::shapes;
use crate::error::Result;
use crate::tensor::dims4;

impl<R: Runtime> CubeBackend<R> {
    pub(super) fn launch_resize_bilinear(&self, x: &CubeTensor, out_h: usize, out_w: usize) -> Result<CubeTensor> {
        const OP: &str = "resize_bilinear";
        let ys = shapes::resize_out(OP, x.shape(), out_h, out_w)?;
        let [_, _, h, w] = dims4(x.shape(), OP, "x")?;
        self.check_len(OP, x.shape())?;
        let n = self.check_len(OP, &ys)?;
        let y = self.alloc(OP, &ys)?;
        if n == 0 {
            return Ok(y);
        }
        // The kernel's layout: (i0, i1) and (λ0, λ1) per output row, then per output column.
        let (mut idx, mut lam) = (Vec::new(), Vec::new());
        for t in bilinear_taps(h, out_h).into_iter().chain(bilinear_taps(w, out_w)) {
            idx.extend([t.i0 as u32, t.i1 as u32]);
            lam.extend([t.l0, t.l1]);
        }
        let idx_h = self.upload_bytes(OP, || format!("{} u32 of resize taps", idx.len()), bytemuck::cast_slice(&idx))?;
        let lam_h = self.upload_slice(OP, &lam)?;
        kern::resize::resize_bilinear::launch::<R>(
            &self.client,
            grid(n),
            block(),
            arr(&x.handle, x.len()),
            // SAFETY: idx_h holds exactly idx.len() u32.
            unsafe { ArrayArg::from_raw_parts(idx_h, idx.len()) },
            arr(&lam_h, lam.len()),
            arr(&y.handle, n),
            ResizeDims { h, w, out_h, out_w }.launch(),
        );
        Ok(y)
    }
}
