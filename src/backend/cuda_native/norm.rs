//! Batch norm (train / eval / backward) and instance norm (forward / backward / forward-mode derivative and
//! its reverse pass): the shared shape checks, then launches of kernels/cuda/norm.cu.
//!
//! The group kernels (a batch-norm channel, an instance-norm plane) run one block of [`BLOCK`](super::launch::BLOCK)
//! threads per group ([`Dims::per_group`]); batch norm's forward applies its statistics in a grid-stride map,
//! and instance norm's per-plane dgamma / dbeta shares are summed over the batch by a per-channel kernel.
//! Forward, eval and backward read x as it is stored (each kernel has a `_bf16` twin for bf16 storage) and
//! store y the same way; gradients are f32. The forward-mode derivative and its reverse pass read f32 (the
//! trait widens bf16 inputs first).

use cxr_gan_kernels::cuda::Family;

use super::launch::{u32_of, Arg, Dims};
use super::{stat_shapes, CudaNativeBackend, CudaNativeTensor};
use crate::backend::{shapes, Activation, InstanceNormJvpGrads, NormGrads, NormStats};
use crate::error::Result;

const FAMILY: Family = Family::Norm;

/// x [N, C, H, W] as the norms see it (`NormDims` in kernels/cuda/norm.cu).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct NormDims {
    n: u32,
    c: u32,
    hw: u32,
}

impl NormDims {
    /// The dims of a checked (N, C, H·W), each and the element count fitting the kernels' 32-bit indexing.
    fn new(op: &'static str, (n, c, hw): (usize, usize, usize)) -> Result<NormDims> {
        u32_of(op, n * c * hw)?;
        Ok(NormDims { n: u32_of(op, n)?, c: u32_of(op, c)?, hw: u32_of(op, hw)? })
    }

    fn len(&self) -> usize {
        self.n as usize * self.c as usize * self.hw as usize
    }

    /// Instance norm's planes (n, c).
    fn planes(&self) -> usize {
        self.n as usize * self.c as usize
    }
}

/// The activation a normalization's kernel applies to its output (`FusedAct` in kernels/cuda/common.cuh):
/// none, or the ReLU / LeakyReLU that follows it in the model.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct FusedAct {
    kind: u32,
    slope: f32,
}

impl FusedAct {
    pub(super) const NONE: FusedAct = FusedAct { kind: 0, slope: 0.0 };

    /// The fused form of `act`; None for activations the norms do not fuse (tanh, sigmoid).
    pub(super) fn of(act: Activation) -> Option<FusedAct> {
        match act {
            Activation::Relu => Some(FusedAct { kind: 1, slope: 0.0 }),
            Activation::LeakyRelu { slope } => Some(FusedAct { kind: 2, slope }),
            Activation::Tanh | Activation::Sigmoid => None,
        }
    }
}

impl CudaNativeBackend {
    /// Per-channel sums over the batch of per-plane shares [N·C] (instance norm's dgamma, dbeta).
    fn instance_channel_sums(
        &self,
        op: &'static str,
        gamma_part: &CudaNativeTensor,
        beta_part: &CudaNativeTensor,
        d: NormDims,
    ) -> Result<(CudaNativeTensor, CudaNativeTensor)> {
        let c = d.c as usize;
        let (dgamma, dbeta) = (self.alloc(op, &[c])?, self.alloc(op, &[c])?);
        self.launch(
            op,
            FAMILY,
            "instance_norm2d_channel_sums",
            Dims::grid_stride(c),
            &[gamma_part.arg(), beta_part.arg(), dgamma.arg(), dbeta.arg(), Arg::U32(d.n), Arg::U32(d.c)],
        )?;
        Ok((dgamma, dbeta))
    }

    /// The running statistics are replaced by fresh tensors holding the update (a clone of the old ones
    /// keeps its values); on an error they are left as they were.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn launch_batch_norm2d_train(
        &self,
        x: &CudaNativeTensor,
        gamma: &CudaNativeTensor,
        beta: &CudaNativeTensor,
        running_mean: &mut CudaNativeTensor,
        running_var: &mut CudaNativeTensor,
        eps: f32,
        momentum: f32,
        act: FusedAct,
    ) -> Result<(CudaNativeTensor, NormStats<CudaNativeTensor>)> {
        const OP: &str = "batch_norm2d_train";
        let dims = shapes::batch_norm2d_train(OP, x.shape(), gamma.shape(), beta.shape(), running_mean.shape(), running_var.shape())?;
        let d = NormDims::new(OP, dims)?;
        let c = dims.1;
        let stats = NormStats { mean: self.alloc(OP, &[c])?, invstd: self.alloc(OP, &[c])? };
        // The running statistics are updated in place (a clone keeps the old values).
        self.make_unique(OP, running_mean)?;
        self.make_unique(OP, running_var)?;
        let outputs = [running_mean.arg(), running_var.arg(), stats.mean.arg(), stats.invstd.arg()];
        let scalars = [Arg::pod(&d), Arg::F32(eps), Arg::F32(momentum)];
        // x straight from a convolution carries its channels' per-tile statistics: combine those instead
        // of reading x twice.
        match x.stats.as_deref().filter(|s| s.shape == x.shape()) {
            Some(tiles) => {
                let head = [tiles.partials.arg(), Arg::U32(u32_of(OP, tiles.per_row)?)];
                let args: Vec<Arg> = head.into_iter().chain(outputs).chain(scalars).collect();
                self.launch(OP, FAMILY, "batch_norm2d_stats_partials", Dims::per_group(c), &args)?;
            }
            None => {
                let args: Vec<Arg> = std::iter::once(x.arg()).chain(outputs).chain(scalars).collect();
                self.launch(OP, FAMILY, x.kernel_for("batch_norm2d_stats", "batch_norm2d_stats_bf16"), Dims::per_group(c), &args)?;
            }
        }
        let y = self.alloc_as(OP, x.shape(), x.storage)?;
        self.launch(
            OP,
            FAMILY,
            x.kernel_for("batch_norm2d_apply", "batch_norm2d_apply_bf16"),
            Dims::grid_stride(d.len()),
            &[x.arg(), stats.mean.arg(), stats.invstd.arg(), gamma.arg(), beta.arg(), y.arg(), Arg::pod(&d), Arg::pod(&act)],
        )?;
        Ok((y, stats))
    }

    pub(super) fn launch_batch_norm2d_eval(
        &self,
        x: &CudaNativeTensor,
        gamma: &CudaNativeTensor,
        beta: &CudaNativeTensor,
        running_mean: &CudaNativeTensor,
        running_var: &CudaNativeTensor,
        eps: f32,
    ) -> Result<CudaNativeTensor> {
        const OP: &str = "batch_norm2d_eval";
        let dims = shapes::batch_norm2d_eval(OP, x.shape(), gamma.shape(), beta.shape(), running_mean.shape(), running_var.shape())?;
        let d = NormDims::new(OP, dims)?;
        let y = self.alloc_as(OP, x.shape(), x.storage)?;
        self.launch(
            OP,
            FAMILY,
            x.kernel_for("batch_norm2d_eval", "batch_norm2d_eval_bf16"),
            Dims::grid_stride(d.len()),
            &[x.arg(), running_mean.arg(), running_var.arg(), gamma.arg(), beta.arg(), y.arg(), Arg::pod(&d), Arg::F32(eps)],
        )?;
        Ok(y)
    }

    pub(super) fn launch_batch_norm2d_bwd(
        &self,
        dy: &CudaNativeTensor,
        x: &CudaNativeTensor,
        gamma: &CudaNativeTensor,
        stats: &NormStats<CudaNativeTensor>,
    ) -> Result<NormGrads<CudaNativeTensor>> {
        const OP: &str = "batch_norm2d_bwd";
        let dims = shapes::batch_norm2d_bwd(OP, dy.shape(), x.shape(), gamma.shape(), &stat_shapes(stats))?;
        let d = NormDims::new(OP, dims)?;
        let c = dims.1;
        let (dx, dgamma, dbeta) = (self.alloc(OP, x.shape())?, self.alloc(OP, &[c])?, self.alloc(OP, &[c])?);
        self.launch(
            OP,
            FAMILY,
            x.kernel_for("batch_norm2d_bwd", "batch_norm2d_bwd_bf16"),
            Dims::per_group(c),
            &[dy.arg(), x.arg(), gamma.arg(), stats.mean.arg(), stats.invstd.arg(), dx.arg(), dgamma.arg(), dbeta.arg(), Arg::pod(&d)],
        )?;
        Ok(NormGrads { dx, dgamma, dbeta })
    }

    pub(super) fn launch_instance_norm2d(
        &self,
        x: &CudaNativeTensor,
        gamma: &CudaNativeTensor,
        beta: &CudaNativeTensor,
        eps: f32,
        act: FusedAct,
    ) -> Result<(CudaNativeTensor, NormStats<CudaNativeTensor>)> {
        const OP: &str = "instance_norm2d";
        let dims = shapes::instance_norm2d(OP, x.shape(), gamma.shape(), beta.shape())?;
        let d = NormDims::new(OP, dims)?;
        let np = d.planes();
        let y = self.alloc_as(OP, x.shape(), x.storage)?;
        let stats = NormStats { mean: self.alloc(OP, &[np])?, invstd: self.alloc(OP, &[np])? };
        let outputs = [gamma.arg(), beta.arg(), y.arg(), stats.mean.arg(), stats.invstd.arg(), Arg::pod(&d), Arg::F32(eps), Arg::pod(&act)];
        // x straight from a conv2d whose statistics segments tile its planes: combine a plane's segments
        // instead of reading it twice more.
        match x.stats.as_deref().filter(|s| s.planes && s.shape == x.shape() && (d.hw as usize).is_multiple_of(s.seg)) {
            Some(segs) => {
                let head =
                    [x.arg(), segs.partials.arg(), Arg::U32(u32_of(OP, segs.per_row)?), Arg::U32(u32_of(OP, d.hw as usize / segs.seg)?)];
                let args: Vec<Arg> = head.into_iter().chain(outputs).collect();
                let kernel = x.kernel_for("instance_norm2d_fwd_partials", "instance_norm2d_fwd_partials_bf16");
                self.launch(OP, FAMILY, kernel, Dims::per_group(np), &args)?;
            }
            None => {
                let args: Vec<Arg> = std::iter::once(x.arg()).chain(outputs).collect();
                self.launch(OP, FAMILY, x.kernel_for("instance_norm2d_fwd", "instance_norm2d_fwd_bf16"), Dims::per_group(np), &args)?;
            }
        }
        Ok((y, stats))
    }

    pub(super) fn launch_instance_norm2d_bwd(
        &self,
        dy: &CudaNativeTensor,
        x: &CudaNativeTensor,
        gamma: &CudaNativeTensor,
        stats: &NormStats<CudaNativeTensor>,
    ) -> Result<NormGrads<CudaNativeTensor>> {
        const OP: &str = "instance_norm2d_bwd";
        let dims = shapes::instance_norm2d_bwd(OP, dy.shape(), x.shape(), gamma.shape(), &stat_shapes(stats))?;
        let d = NormDims::new(OP, dims)?;
        let np = d.planes();
        let dx = self.alloc(OP, x.shape())?;
        let (gp, bp) = (self.alloc(OP, &[np])?, self.alloc(OP, &[np])?);
        self.launch(
            OP,
            FAMILY,
            x.kernel_for("instance_norm2d_bwd_planes", "instance_norm2d_bwd_planes_bf16"),
            Dims::per_group(np),
            &[dy.arg(), x.arg(), gamma.arg(), stats.mean.arg(), stats.invstd.arg(), dx.arg(), gp.arg(), bp.arg(), Arg::pod(&d)],
        )?;
        let (dgamma, dbeta) = self.instance_channel_sums(OP, &gp, &bp, d)?;
        Ok(NormGrads { dx, dgamma, dbeta })
    }

    pub(super) fn launch_instance_norm2d_jvp(
        &self,
        x: &CudaNativeTensor,
        x_dot: &CudaNativeTensor,
        gamma: &CudaNativeTensor,
        stats: &NormStats<CudaNativeTensor>,
    ) -> Result<CudaNativeTensor> {
        const OP: &str = "instance_norm2d_jvp";
        let dims = shapes::instance_norm2d_jvp(OP, x.shape(), x_dot.shape(), gamma.shape(), &stat_shapes(stats))?;
        let d = NormDims::new(OP, dims)?;
        let y_dot = self.alloc(OP, x.shape())?;
        self.launch(
            OP,
            FAMILY,
            "instance_norm2d_jvp_fwd",
            Dims::per_group(d.planes()),
            &[x.arg(), x_dot.arg(), gamma.arg(), stats.mean.arg(), stats.invstd.arg(), y_dot.arg(), Arg::pod(&d)],
        )?;
        Ok(y_dot)
    }

    pub(super) fn launch_instance_norm2d_jvp_bwd(
        &self,
        x: &CudaNativeTensor,
        x_dot: &CudaNativeTensor,
        gamma: &CudaNativeTensor,
        stats: &NormStats<CudaNativeTensor>,
        y_bar: &CudaNativeTensor,
        y_dot_bar: &CudaNativeTensor,
    ) -> Result<InstanceNormJvpGrads<CudaNativeTensor>> {
        const OP: &str = "instance_norm2d_jvp_bwd";
        let dims = shapes::instance_norm2d_jvp_bwd(
            OP,
            x.shape(),
            x_dot.shape(),
            gamma.shape(),
            &stat_shapes(stats),
            y_bar.shape(),
            y_dot_bar.shape(),
        )?;
        let d = NormDims::new(OP, dims)?;
        let np = d.planes();
        let (x_bar, x_dot_bar) = (self.alloc(OP, x.shape())?, self.alloc(OP, x.shape())?);
        let (gp, bp) = (self.alloc(OP, &[np])?, self.alloc(OP, &[np])?);
        self.launch(
            OP,
            FAMILY,
            "instance_norm2d_jvp_bwd_planes",
            Dims::per_group(np),
            &[
                x.arg(),
                x_dot.arg(),
                gamma.arg(),
                stats.mean.arg(),
                stats.invstd.arg(),
                y_bar.arg(),
                y_dot_bar.arg(),
                x_bar.arg(),
                x_dot_bar.arg(),
                gp.arg(),
                bp.arg(),
                Arg::pod(&d),
            ],
        )?;
        let (dgamma, dbeta) = self.instance_channel_sums(OP, &gp, &bp, d)?;
        Ok(InstanceNormJvpGrads { x_bar, x_dot_bar, dgamma, dbeta })
    }
}
