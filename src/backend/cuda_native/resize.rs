//! Bilinear resize (`F.interpolate(mode='bilinear', align_corners=False)`): the source taps from the shared
//! host math ([`bilinear_taps`]), uploaded as one table, then one launch of kernels/cuda/resize.cu.

use cxr_gan_kernels::cuda::Family;

use super::launch::{u32_of, Arg, Dims};
use super::{CudaNativeBackend, CudaNativeTensor};
use crate::backend::host_math::bilinear_taps;
use crate::backend::shapes;
use crate::error::Result;
use crate::tensor::dims4;

const FAMILY: Family = Family::Resize;

/// `ResizeGeom` in kernels/cuda/resize.cu: x [planes, h, w] → y [planes, out_h, out_w] (n outputs).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ResizeGeom {
    n: u32,
    h: u32,
    w: u32,
    out_h: u32,
    out_w: u32,
}

impl CudaNativeBackend {
    pub(super) fn launch_resize_bilinear(&self, x: &CudaNativeTensor, out_h: usize, out_w: usize) -> Result<CudaNativeTensor> {
        const OP: &str = "resize_bilinear";
        let ys = shapes::resize_out(OP, x.shape(), out_h, out_w)?;
        let [_, _, h, w] = dims4(x.shape(), OP, "x")?;
        self.check_len(OP, x.shape())?;
        let n = self.check_len(OP, &ys)?;
        let y = self.alloc(OP, &ys)?;
        if n == 0 {
            return Ok(y);
        }
        let geom =
            ResizeGeom { n: u32_of(OP, n)?, h: u32_of(OP, h)?, w: u32_of(OP, w)?, out_h: u32_of(OP, out_h)?, out_w: u32_of(OP, out_w)? };
        // The kernel's table: (i0, i1 as their u32 bits, λ0, λ1) per output row, then per output column.
        let mut taps = Vec::with_capacity(4 * (out_h + out_w));
        for t in bilinear_taps(h, out_h).into_iter().chain(bilinear_taps(w, out_w)) {
            // i0, i1 < h or w, which fit u32 (checked above).
            taps.extend([f32::from_bits(t.i0 as u32), f32::from_bits(t.i1 as u32), t.l0, t.l1]);
        }
        let taps = self.upload_slice(OP, &taps)?;
        self.launch(OP, FAMILY, "resize_bilinear", Dims::grid_stride(n), &[x.arg(), taps.arg(), y.arg(), Arg::pod(&geom)])?;
        Ok(y)
    }
}
