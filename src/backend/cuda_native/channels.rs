//! The Inception blocks' channel ops: concat_channels (one launch per input, copying into its channel slot)
//! and its backward (one launch per piece, copying its slot back out), and affine_channels (eval-mode
//! BatchNorm folded to a per-channel affine map, fused with the ReLU, in place), launches of
//! kernels/cuda/channels.cu.

use cxr_gan_kernels::cuda::Family;

use super::launch::{u32_of, Arg, Dims};
use super::{CudaNativeBackend, CudaNativeTensor, Storage};
use crate::backend::shapes;
use crate::error::Result;

const FAMILY: Family = Family::Channels;

impl CudaNativeBackend {
    pub(super) fn launch_concat_channels(&self, xs: &[&CudaNativeTensor]) -> Result<CudaNativeTensor> {
        const OP: &str = "concat_channels";
        let shapes: Vec<&[usize]> = xs.iter().map(|x| x.shape()).collect();
        let ys = shapes::concat_channels_out(OP, &shapes)?;
        self.check_len(OP, &ys)?;
        // bf16 pieces (InceptionV3's branches at --precision bf16) concatenate as bf16; any f32 one makes it f32.
        let storage = if !xs.is_empty() && xs.iter().all(|x| x.is_bf16()) { Storage::Bf16 } else { Storage::F32 };
        let y = self.alloc_as(OP, &ys, storage)?;
        let [_, c_total, h, w] = ys;
        let (c_total, hw) = (u32_of(OP, c_total)?, u32_of(OP, h * w)?);
        let mut offset = 0u32;
        for x in xs {
            // Every input's channels fit in c_total, checked above.
            let c = x.shape()[1] as u32;
            if !x.is_empty() {
                let x = if storage == Storage::F32 { self.f32_of(OP, x)? } else { (*x).clone() };
                let n = u32_of(OP, x.len())?;
                let args = [x.arg(), y.arg(), Arg::U32(n), Arg::U32(c), Arg::U32(c_total), Arg::U32(offset), Arg::U32(hw)];
                self.launch(OP, FAMILY, y.kernel_for("concat_channels", "concat_channels_bf16"), Dims::grid_stride(x.len()), &args)?;
            }
            offset += c;
        }
        Ok(y)
    }

    pub(super) fn launch_concat_channels_bwd(&self, dy: &CudaNativeTensor, channels: &[usize]) -> Result<Vec<CudaNativeTensor>> {
        const OP: &str = "concat_channels_bwd";
        let [n, c_total, h, w] = shapes::concat_channels_bwd(OP, dy.shape(), channels)?;
        self.check_len(OP, dy.shape())?;
        let (c_total, hw) = (u32_of(OP, c_total)?, u32_of(OP, h * w)?);
        let mut offset = 0u32;
        let mut dxs = Vec::with_capacity(channels.len());
        for &c in channels {
            let dx = self.alloc(OP, &[n, c, h, w])?;
            // Every piece's channels fit in c_total, checked above.
            let c = c as u32;
            if !dx.is_empty() {
                let len = u32_of(OP, dx.len())?;
                let args = [dy.arg(), dx.arg(), Arg::U32(len), Arg::U32(c), Arg::U32(c_total), Arg::U32(offset), Arg::U32(hw)];
                self.launch(OP, FAMILY, "concat_channels_bwd", Dims::grid_stride(dx.len()), &args)?;
            }
            offset += c;
            dxs.push(dx);
        }
        Ok(dxs)
    }

    /// x ← scale[c]·x + shift[c] (then ReLU when `relu`) in place, in x's storage; x is first made the only
    /// holder of its buffer.
    pub(super) fn launch_affine_channels(
        &self,
        x: &mut CudaNativeTensor,
        scale: &CudaNativeTensor,
        shift: &CudaNativeTensor,
        relu: bool,
    ) -> Result<()> {
        const OP: &str = "affine_channels";
        let [_, c, h, w] = shapes::affine_channels(OP, x.shape(), scale.shape(), shift.shape())?;
        let n = self.check_len(OP, x.shape())?;
        if n == 0 {
            return Ok(());
        }
        self.make_unique_as(OP, x, x.storage)?;
        let args = [
            x.arg(),
            scale.arg(),
            shift.arg(),
            Arg::U32(u32_of(OP, n)?),
            Arg::U32(u32_of(OP, c)?),
            Arg::U32(u32_of(OP, h * w)?),
            Arg::U32(relu as u32),
        ];
        self.launch(OP, FAMILY, x.kernel_for("affine_channels", "affine_channels_bf16"), Dims::grid_stride(n), &args)
    }
}
