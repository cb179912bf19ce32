//! Losses (nn.BCELoss, nn.BCEWithLogitsLoss, F.cross_entropy) and WGAN-GP's penalty head: launches of
//! kernels/src/cube/loss.rs; the per-cube partial sums and the per-sample norms come back to the host,
//! which finishes them in f64 ([`host_math`](crate::backend::host_math) for the penalty).

use cubecl::client::ComputeClient;
use cubecl::prelude::{ArrayArg, CubeCount, CubeDim};
use cubecl::server::Handle;
use cubecl::Runtime;
use cxr_gan_kernels::cube as kern;

use super::launch::{arr, block, cubes_1d, grid, groups, partial_cubes};
use super::{CubeBackend, CubeTensor};
use crate::backend::host_math::{gradient_penalty, gradient_penalty_factor};
use crate::backend::{shapes, PenaltyHead};
use crate::error::Result;

/// The launcher of a mean-reduced loss kernel over (input, target, grad, per-cube partials, 1/N).
type LossKernel<R> = fn(&ComputeClient<R>, CubeCount, CubeDim, ArrayArg<R>, ArrayArg<R>, ArrayArg<R>, ArrayArg<R>, f32);

impl<R: Runtime> CubeBackend<R> {
    pub(super) fn launch_bce(&self, p: &CubeTensor, target: &CubeTensor) -> Result<(f64, CubeTensor)> {
        shapes::loss("bce", "p", p.shape(), "target", target.shape())?;
        self.mean_loss("bce", kern::loss::bce::launch::<R>, p, target)
    }

    pub(super) fn launch_bce_logits(&self, logits: &CubeTensor, target: &CubeTensor) -> Result<(f64, CubeTensor)> {
        shapes::loss("bce_logits", "logits", logits.shape(), "target", target.shape())?;
        self.mean_loss("bce_logits", kern::loss::bce_logits::launch::<R>, logits, target)
    }

    /// Runs a loss kernel over (a, target) of checked shapes: the mean loss and its gradient.
    fn mean_loss(&self, op: &'static str, kernel: LossKernel<R>, a: &CubeTensor, target: &CubeTensor) -> Result<(f64, CubeTensor)> {
        let n = self.check_len(op, a.shape())?;
        let cubes = partial_cubes(n);
        let (grad, part) = (self.alloc(op, a.shape())?, self.buffer(op, cubes)?);
        kernel(
            &self.client,
            cubes_1d(cubes),
            block(),
            arr(&a.handle, n),
            arr(&target.handle, n),
            arr(&grad.handle, n),
            arr(&part, cubes),
            (1.0 / n as f64) as f32,
        );
        Ok((self.sum_partials(op, &part, cubes)? / n as f64, grad))
    }

    /// F.cross_entropy: one unit per row of logits [N, K]; the per-cube partial sums of the row losses come
    /// back and are added in f64.
    pub(super) fn launch_cross_entropy(&self, logits: &CubeTensor, target: &[usize]) -> Result<(f64, CubeTensor)> {
        const OP: &str = "cross_entropy";
        let (n, k) = shapes::cross_entropy(OP, logits.shape(), target)?;
        let len = self.check_len(OP, logits.shape())?;
        // Every target is below K, and N·K fits u32 (checked above).
        let t: Vec<u32> = target.iter().map(|&t| t as u32).collect();
        let th = self.upload_bytes(OP, || format!("{n} u32 of targets"), bytemuck::cast_slice(&t))?;
        let cubes = partial_cubes(n);
        let (grad, part) = (self.alloc(OP, logits.shape())?, self.buffer(OP, cubes)?);
        kern::loss::cross_entropy::launch::<R>(
            &self.client,
            cubes_1d(cubes),
            block(),
            arr(&logits.handle, len),
            // SAFETY: th holds exactly n u32.
            unsafe { ArrayArg::from_raw_parts(th, n) },
            arr(&grad.handle, len),
            arr(&part, cubes),
            k,
            (1.0 / n as f64) as f32,
        );
        Ok((self.sum_partials(OP, &part, cubes)? / n as f64, grad))
    }

    pub(super) fn launch_gradient_penalty_head(&self, g: &CubeTensor, lambda: f32) -> Result<PenaltyHead<CubeTensor>> {
        const OP: &str = "gradient_penalty_head";
        let (n, per) = shapes::gradient_penalty_head(OP, g.shape())?;
        let len = self.check_len(OP, g.shape())?;
        let sq: Handle = self.buffer(OP, n)?;
        kern::loss::gradient_penalty_head_sq_norms::launch::<R>(&self.client, groups(n), block(), arr(&g.handle, len), arr(&sq, n), n, per);
        let grad_norm: Vec<f64> = self.read(OP, &sq, n)?.iter().map(|&s| (s as f64).sqrt()).collect();
        let gp = gradient_penalty(&grad_norm, lambda);
        let k: Vec<f32> = grad_norm.iter().map(|&r| gradient_penalty_factor(r, lambda, n) as f32).collect();
        let kh = self.upload_slice(OP, &k)?;
        let v = self.alloc(OP, g.shape())?;
        kern::loss::gradient_penalty_head_v::launch::<R>(
            &self.client,
            grid(len),
            block(),
            arr(&g.handle, len),
            arr(&kh, n),
            arr(&v.handle, len),
            per,
        );
        Ok(PenaltyHead { gp, grad_norm, v })
    }
}
