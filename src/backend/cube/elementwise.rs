//! Elementwise ops (full, add, scale, lerp_per_sample) and the mean: launches of
//! kernels/src/cube/elementwise.rs.

use cubecl::Runtime;
use cxr_gan_kernels::cube as kern;

use super::launch::{arr, block, cubes_1d, grid, partial_cubes};
use super::{CubeBackend, CubeTensor};
use crate::backend::shapes;
use crate::error::Result;

impl<R: Runtime> CubeBackend<R> {
    pub(super) fn launch_full(&self, shape: &[usize], value: f32) -> Result<CubeTensor> {
        let n = self.check_len("full", shape)?;
        let t = self.alloc("full", shape)?;
        if n > 0 {
            self.fill(&t.handle, n, value);
        }
        Ok(t)
    }

    /// a + b into a fresh tensor (`add`, and `add_assign`, which rebinds its tensor to it).
    pub(super) fn launch_add(&self, op: &'static str, a: &CubeTensor, b: &CubeTensor) -> Result<CubeTensor> {
        shapes::same(op, "a", a.shape(), "b", b.shape())?;
        let n = self.check_len(op, a.shape())?;
        let out = self.alloc(op, a.shape())?;
        if n > 0 {
            kern::elementwise::add::launch::<R>(&self.client, grid(n), block(), arr(&a.handle, n), arr(&b.handle, n), arr(&out.handle, n));
        }
        Ok(out)
    }

    pub(super) fn launch_scale(&self, a: &CubeTensor, s: f32) -> Result<CubeTensor> {
        let n = self.check_len("scale", a.shape())?;
        let out = self.alloc("scale", a.shape())?;
        if n > 0 {
            kern::elementwise::scale::launch::<R>(&self.client, grid(n), block(), arr(&a.handle, n), arr(&out.handle, n), s);
        }
        Ok(out)
    }

    pub(super) fn launch_lerp_per_sample(&self, a: &CubeTensor, b: &CubeTensor, alpha: &[f32]) -> Result<CubeTensor> {
        const OP: &str = "lerp_per_sample";
        let per = shapes::lerp_per_sample(OP, a.shape(), b.shape(), alpha.len())?;
        let n = self.check_len(OP, a.shape())?;
        let out = self.alloc(OP, a.shape())?;
        if per == 0 {
            return Ok(out);
        }
        let al = self.upload_slice(OP, alpha)?;
        kern::elementwise::lerp_per_sample::launch::<R>(
            &self.client,
            grid(n),
            block(),
            arr(&a.handle, n),
            arr(&b.handle, n),
            arr(&al, alpha.len()),
            arr(&out.handle, n),
            per,
        );
        Ok(out)
    }

    pub(super) fn launch_mean(&self, t: &CubeTensor) -> Result<f64> {
        const OP: &str = "mean";
        shapes::nonempty(OP, "the mean of an empty tensor", t.shape())?;
        let n = self.check_len(OP, t.shape())?;
        let cubes = partial_cubes(n);
        let part = self.buffer(OP, cubes)?;
        kern::elementwise::mean::launch::<R>(&self.client, cubes_1d(cubes), block(), arr(&t.handle, n), arr(&part, cubes));
        Ok(self.sum_partials(OP, &part, cubes)? / n as f64)
    }
}
