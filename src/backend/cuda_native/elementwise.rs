//! Elementwise ops (full, add, add_assign, scale, lerp_per_sample) and the mean: launches of
//! kernels/cuda/elementwise.cu.

use cxr_gan_kernels::cuda::Family;

use super::launch::{u32_of, Arg, Dims};
use super::{CudaNativeBackend, CudaNativeTensor};
use crate::backend::{shapes, Deferred};
use crate::error::Result;

const FAMILY: Family = Family::Elementwise;

impl CudaNativeBackend {
    pub(super) fn launch_full(&self, shape: &[usize], value: f32) -> Result<CudaNativeTensor> {
        let t = self.alloc("full", shape)?;
        if !t.is_empty() {
            self.fill("full", t.buf.ptr, t.len(), value)?;
        }
        Ok(t)
    }

    pub(super) fn launch_add(&self, a: &CudaNativeTensor, b: &CudaNativeTensor) -> Result<CudaNativeTensor> {
        const OP: &str = "add";
        shapes::same(OP, "a", a.shape(), "b", b.shape())?;
        let out = self.alloc(OP, a.shape())?;
        self.add_into(OP, a, b, &out)?;
        Ok(out)
    }

    /// a += b in place (a is first made the only holder of its buffer).
    pub(super) fn launch_add_assign(&self, a: &mut CudaNativeTensor, b: &CudaNativeTensor) -> Result<()> {
        const OP: &str = "add_assign";
        shapes::same(OP, "a", a.shape(), "b", b.shape())?;
        self.check_len(OP, a.shape())?;
        self.make_unique(OP, a)?;
        self.add_into(OP, a, b, a)
    }

    fn add_into(&self, op: &'static str, a: &CudaNativeTensor, b: &CudaNativeTensor, out: &CudaNativeTensor) -> Result<()> {
        let n = u32_of(op, a.len())?;
        if n == 0 {
            return Ok(());
        }
        self.launch(op, FAMILY, "add", Dims::grid_stride(a.len()), &[a.arg(), b.arg(), out.arg(), Arg::U32(n)])
    }

    pub(super) fn launch_scale(&self, a: &CudaNativeTensor, s: f32) -> Result<CudaNativeTensor> {
        const OP: &str = "scale";
        let out = self.alloc(OP, a.shape())?;
        let n = u32_of(OP, a.len())?;
        if n > 0 {
            self.launch(OP, FAMILY, "scale", Dims::grid_stride(a.len()), &[a.arg(), out.arg(), Arg::U32(n), Arg::F32(s)])?;
        }
        Ok(out)
    }

    /// x̂ = α·a + (1 − α)·b with α [N] on the device (uploaded first by `lerp_per_sample`).
    pub(super) fn launch_lerp_per_sample(
        &self,
        a: &CudaNativeTensor,
        b: &CudaNativeTensor,
        al: &CudaNativeTensor,
    ) -> Result<CudaNativeTensor> {
        const OP: &str = "lerp_per_sample";
        let per = shapes::lerp_per_sample(OP, a.shape(), b.shape(), al.len())?;
        let out = self.alloc(OP, a.shape())?;
        if per == 0 {
            return Ok(out);
        }
        let (n, per) = (u32_of(OP, a.len())?, u32_of(OP, per)?);
        self.launch(
            OP,
            FAMILY,
            "lerp_per_sample",
            Dims::grid_stride(a.len()),
            &[a.arg(), b.arg(), al.arg(), out.arg(), Arg::U32(n), Arg::U32(per)],
        )?;
        Ok(out)
    }

    /// The mean of `t`: per-block partial sums on the device, added in f64 on the host when read.
    pub(super) fn launch_mean(&self, t: &CudaNativeTensor) -> Result<Deferred<CudaNativeTensor>> {
        const OP: &str = "mean";
        shapes::nonempty(OP, "the mean of an empty tensor", t.shape())?;
        let n = u32_of(OP, t.len())?;
        let (dims, blocks) = Dims::partials(t.len());
        let part = self.alloc(OP, &[blocks])?;
        self.launch(OP, FAMILY, "sum_partials", dims, &[t.arg(), part.arg(), Arg::U32(n)])?;
        Ok(Deferred::Parts { parts: part, divisor: t.len() as f64 })
    }

    /// A device copy of a small table of plain-old-data: uploaded, or, during a graph capture (which cannot
    /// copy from the host), written by `write_words` launches that carry it in their arguments.
    pub(super) fn device_table<T: bytemuck::Pod>(&self, op: &'static str, data: &[T]) -> Result<CudaNativeTensor> {
        if self.capture_pool().is_none() {
            return self.upload_pod(op, data);
        }
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let mut words = vec![0u32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        let table = self.alloc(op, &[words.len()])?;
        for (k, chunk) in words.chunks(WORD_CHUNK).enumerate() {
            let mut c = WordChunk { w: [0; WORD_CHUNK] };
            c.w[..chunk.len()].copy_from_slice(chunk);
            let dst = table.buf.ptr + (k * WORD_CHUNK * 4) as u64;
            let args = [Arg::Ptr(dst), Arg::U32(chunk.len() as u32), Arg::pod(&c)];
            self.launch(op, FAMILY, "write_words", Dims::grid_stride(chunk.len()), &args)?;
        }
        Ok(table)
    }
}

/// Words per `write_words` launch (`WORD_CHUNK` in elementwise.cu): 1 KiB of arguments, well under CUDA's
/// 4 KiB limit.
const WORD_CHUNK: usize = 256;

/// `struct WordChunk` in elementwise.cu.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct WordChunk {
    w: [u32; WORD_CHUNK],
}
