//! Losses (nn.BCELoss, nn.BCEWithLogitsLoss, F.cross_entropy) and WGAN-GP's penalty head: launches of
//! kernels/cuda/loss.cu.
//! The per-block partial sums and the per-sample squared norms stay on the device until read; the host
//! finishes them in f64 ([`host_math`](crate::backend::host_math) for the penalty).

use cxr_gan_kernels::cuda::Family;

use super::launch::{u32_of, Arg, Dims};
use super::{CudaNativeBackend, CudaNativeTensor};
use crate::backend::{shapes, Deferred, GradNorms, PendingPenaltyHead};
use crate::error::Result;

const FAMILY: Family = Family::Loss;

impl CudaNativeBackend {
    pub(super) fn launch_bce(
        &self,
        p: &CudaNativeTensor,
        target: &CudaNativeTensor,
    ) -> Result<(Deferred<CudaNativeTensor>, CudaNativeTensor)> {
        shapes::loss("bce", "p", p.shape(), "target", target.shape())?;
        self.mean_loss("bce", "bce", p, target)
    }

    pub(super) fn launch_bce_logits(
        &self,
        logits: &CudaNativeTensor,
        target: &CudaNativeTensor,
    ) -> Result<(Deferred<CudaNativeTensor>, CudaNativeTensor)> {
        shapes::loss("bce_logits", "logits", logits.shape(), "target", target.shape())?;
        self.mean_loss("bce_logits", "bce_logits", logits, target)
    }

    /// Runs loss kernel `kernel`(a, target, grad, partials, n, 1/N) over (a, target) of checked, non-empty
    /// shapes: the mean loss (partials left on the device, added in f64 and divided by N when read) and its
    /// gradient.
    fn mean_loss(
        &self,
        op: &'static str,
        kernel: &'static str,
        a: &CudaNativeTensor,
        target: &CudaNativeTensor,
    ) -> Result<(Deferred<CudaNativeTensor>, CudaNativeTensor)> {
        let n = u32_of(op, a.len())?;
        let (dims, blocks) = Dims::partials(a.len());
        let (grad, part) = (self.alloc(op, a.shape())?, self.alloc(op, &[blocks])?);
        let inv_n = (1.0 / a.len() as f64) as f32;
        self.launch(op, FAMILY, kernel, dims, &[a.arg(), target.arg(), grad.arg(), part.arg(), Arg::U32(n), Arg::F32(inv_n)])?;
        Ok((Deferred::Parts { parts: part, divisor: a.len() as f64 }, grad))
    }

    /// F.cross_entropy: one thread per row of logits [N, K]; the per-block partial sums of the row losses
    /// come back and are added in f64.
    pub(super) fn launch_cross_entropy(&self, logits: &CudaNativeTensor, target: &[usize]) -> Result<(f64, CudaNativeTensor)> {
        const OP: &str = "cross_entropy";
        let (n, k) = shapes::cross_entropy(OP, logits.shape(), target)?;
        self.check_len(OP, logits.shape())?;
        // Every target is below K, and N·K fits u32 (checked above).
        let t: Vec<u32> = target.iter().map(|&t| t as u32).collect();
        let t = self.upload_pod(OP, &t)?;
        let (dims, blocks) = Dims::partials(n);
        let (grad, part) = (self.alloc(OP, logits.shape())?, self.alloc(OP, &[blocks])?);
        let inv_n = (1.0 / n as f64) as f32;
        let args = [logits.arg(), t.arg(), grad.arg(), part.arg(), Arg::U32(u32_of(OP, n)?), Arg::U32(u32_of(OP, k)?), Arg::F32(inv_n)];
        self.launch(OP, FAMILY, "cross_entropy", dims, &args)?;
        Ok((Deferred::Parts { parts: part, divisor: n as f64 }.resolve(self)?, grad))
    }

    /// The penalty head with nothing read back: per-sample squared norms, then the factors from them (in
    /// f64, as the host would), then v, all on the device; the norms and the penalty are formed when read.
    pub(super) fn launch_gradient_penalty_head(&self, g: &CudaNativeTensor, lambda: f32) -> Result<PendingPenaltyHead<CudaNativeTensor>> {
        const OP: &str = "gradient_penalty_head";
        let (n, per) = shapes::gradient_penalty_head(OP, g.shape())?;
        let len = u32_of(OP, g.len())?;
        let (samples, per32) = (u32_of(OP, n)?, u32_of(OP, per)?);
        let (sq, k) = (self.alloc(OP, &[n])?, self.alloc(OP, &[n])?);
        self.launch(OP, FAMILY, "gp_head_sq_norms", Dims::per_group(n), &[g.arg(), sq.arg(), Arg::U32(samples), Arg::U32(per32)])?;
        self.launch(OP, FAMILY, "gp_head_factors", Dims::grid_stride(n), &[sq.arg(), k.arg(), Arg::U32(samples), Arg::F32(lambda)])?;
        let v = self.alloc(OP, g.shape())?;
        self.launch(OP, FAMILY, "gp_head_v", Dims::grid_stride(g.len()), &[g.arg(), k.arg(), v.arg(), Arg::U32(len), Arg::U32(per32)])?;
        Ok(PendingPenaltyHead { grad_norm: GradNorms::Squared(sq), v })
    }
}
