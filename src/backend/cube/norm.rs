//! Batch norm (train / eval / backward) and instance norm (forward / backward / forward-mode derivative and
//! its reverse pass): the shared shape checks, then the launches of kernels/src/cube/norm.rs.

use cubecl::server::Handle;
use cubecl::Runtime;
use cxr_gan_kernels::cube as kern;
use cxr_gan_kernels::cube::norm::{
    InstanceNormJvpGradsArgsLaunch, JvpCotangentsArgsLaunch, NormDims, NormGradsArgsLaunch, NormStatsArgsLaunch, RunningStatsArgsLaunch,
};

use super::launch::{arr, block, grid, groups};
use super::{stat_shapes, CubeBackend, CubeTensor};
use crate::backend::{shapes, InstanceNormJvpGrads, NormGrads, NormStats};
use crate::error::Result;

/// A norm's output: y, the saved statistics and (batch norm in training) the new running statistics.
type NormForward = (CubeTensor, NormStats<CubeTensor>, (CubeTensor, CubeTensor));

impl<R: Runtime> CubeBackend<R> {
    /// Statistics of `len` values each as a kernel argument.
    fn stats_arg(&self, stats: &NormStats<CubeTensor>, len: usize) -> NormStatsArgsLaunch<R> {
        NormStatsArgsLaunch::new(arr(&stats.mean.handle, len), arr(&stats.invstd.handle, len))
    }

    /// Per-channel sums of per-plane values [N, C] (instance norm's dgamma / dbeta shares).
    fn per_channel(&self, op: &str, part: &Handle, n: usize, c: usize) -> Result<CubeTensor> {
        let out = self.alloc(op, &[c])?;
        kern::per_channel_sum::launch::<R>(&self.client, grid(c), block(), arr(part, n * c), arr(&out.handle, c), n, c);
        Ok(out)
    }

    /// The new running statistics are returned, not written: the caller rebinds its tensors to them.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn launch_batch_norm2d_train(
        &self,
        x: &CubeTensor,
        gamma: &CubeTensor,
        beta: &CubeTensor,
        running_mean: &CubeTensor,
        running_var: &CubeTensor,
        eps: f32,
        momentum: f32,
    ) -> Result<NormForward> {
        const OP: &str = "batch_norm2d_train";
        let (n, c, hw) = shapes::batch_norm2d_train(OP, x.shape(), gamma.shape(), beta.shape(), running_mean.shape(), running_var.shape())?;
        let len = self.check_len(OP, x.shape())?;
        let d = NormDims { n, c, hw };
        let stats = NormStats { mean: self.alloc(OP, &[c])?, invstd: self.alloc(OP, &[c])? };
        let (rm, rv) = (self.alloc(OP, &[c])?, self.alloc(OP, &[c])?);
        kern::norm::batch_norm2d_train_stats::launch::<R>(
            &self.client,
            groups(c),
            block(),
            arr(&x.handle, len),
            self.stats_arg(&stats, c),
            RunningStatsArgsLaunch::new(arr(&running_mean.handle, c), arr(&running_var.handle, c)),
            RunningStatsArgsLaunch::new(arr(&rm.handle, c), arr(&rv.handle, c)),
            d.launch(),
            eps,
            momentum,
        );
        let y = self.alloc(OP, x.shape())?;
        kern::norm::norm_affine::launch::<R>(
            &self.client,
            grid(len),
            block(),
            arr(&x.handle, len),
            self.stats_arg(&stats, c),
            arr(&gamma.handle, c),
            arr(&beta.handle, c),
            arr(&y.handle, len),
            d.launch(),
        );
        Ok((y, stats, (rm, rv)))
    }

    pub(super) fn launch_batch_norm2d_eval(
        &self,
        x: &CubeTensor,
        gamma: &CubeTensor,
        beta: &CubeTensor,
        running_mean: &CubeTensor,
        running_var: &CubeTensor,
        eps: f32,
    ) -> Result<CubeTensor> {
        const OP: &str = "batch_norm2d_eval";
        let (n, c, hw) = shapes::batch_norm2d_eval(OP, x.shape(), gamma.shape(), beta.shape(), running_mean.shape(), running_var.shape())?;
        let len = self.check_len(OP, x.shape())?;
        let y = self.alloc(OP, x.shape())?;
        kern::norm::batch_norm2d_eval::launch::<R>(
            &self.client,
            grid(len),
            block(),
            arr(&x.handle, len),
            RunningStatsArgsLaunch::new(arr(&running_mean.handle, c), arr(&running_var.handle, c)),
            arr(&gamma.handle, c),
            arr(&beta.handle, c),
            arr(&y.handle, len),
            NormDims { n, c, hw }.launch(),
            eps,
        );
        Ok(y)
    }

    pub(super) fn launch_batch_norm2d_bwd(
        &self,
        dy: &CubeTensor,
        x: &CubeTensor,
        gamma: &CubeTensor,
        stats: &NormStats<CubeTensor>,
    ) -> Result<NormGrads<CubeTensor>> {
        const OP: &str = "batch_norm2d_bwd";
        let (n, c, hw) = shapes::batch_norm2d_bwd(OP, dy.shape(), x.shape(), gamma.shape(), &stat_shapes(stats))?;
        let len = self.check_len(OP, x.shape())?;
        let (dx, dgamma, dbeta) = (self.alloc(OP, x.shape())?, self.alloc(OP, &[c])?, self.alloc(OP, &[c])?);
        kern::norm::batch_norm2d_bwd::launch::<R>(
            &self.client,
            groups(c),
            block(),
            arr(&dy.handle, len),
            arr(&x.handle, len),
            arr(&gamma.handle, c),
            self.stats_arg(stats, c),
            NormGradsArgsLaunch::new(arr(&dx.handle, len), arr(&dgamma.handle, c), arr(&dbeta.handle, c)),
            NormDims { n, c, hw }.launch(),
        );
        Ok(NormGrads { dx, dgamma, dbeta })
    }

    pub(super) fn launch_instance_norm2d(
        &self,
        x: &CubeTensor,
        gamma: &CubeTensor,
        beta: &CubeTensor,
        eps: f32,
    ) -> Result<(CubeTensor, NormStats<CubeTensor>)> {
        const OP: &str = "instance_norm2d";
        let (n, c, hw) = shapes::instance_norm2d(OP, x.shape(), gamma.shape(), beta.shape())?;
        let len = self.check_len(OP, x.shape())?;
        let np = n * c;
        let y = self.alloc(OP, x.shape())?;
        let stats = NormStats { mean: self.alloc(OP, &[np])?, invstd: self.alloc(OP, &[np])? };
        kern::norm::instance_norm2d::launch::<R>(
            &self.client,
            groups(np),
            block(),
            arr(&x.handle, len),
            arr(&gamma.handle, c),
            arr(&beta.handle, c),
            arr(&y.handle, len),
            self.stats_arg(&stats, np),
            NormDims { n, c, hw }.launch(),
            eps,
        );
        Ok((y, stats))
    }

    pub(super) fn launch_instance_norm2d_bwd(
        &self,
        dy: &CubeTensor,
        x: &CubeTensor,
        gamma: &CubeTensor,
        stats: &NormStats<CubeTensor>,
    ) -> Result<NormGrads<CubeTensor>> {
        const OP: &str = "instance_norm2d_bwd";
        let (n, c, hw) = shapes::instance_norm2d_bwd(OP, dy.shape(), x.shape(), gamma.shape(), &stat_shapes(stats))?;
        let len = self.check_len(OP, x.shape())?;
        let np = n * c;
        let dx = self.alloc(OP, x.shape())?;
        let (gp, bp) = (self.buffer(OP, np)?, self.buffer(OP, np)?);
        kern::norm::instance_norm2d_bwd::launch::<R>(
            &self.client,
            groups(np),
            block(),
            arr(&dy.handle, len),
            arr(&x.handle, len),
            arr(&gamma.handle, c),
            self.stats_arg(stats, np),
            NormGradsArgsLaunch::new(arr(&dx.handle, len), arr(&gp, np), arr(&bp, np)),
            NormDims { n, c, hw }.launch(),
        );
        Ok(NormGrads { dx, dgamma: self.per_channel(OP, &gp, n, c)?, dbeta: self.per_channel(OP, &bp, n, c)? })
    }

    pub(super) fn launch_instance_norm2d_jvp(
        &self,
        x: &CubeTensor,
        x_dot: &CubeTensor,
        gamma: &CubeTensor,
        stats: &NormStats<CubeTensor>,
    ) -> Result<CubeTensor> {
        const OP: &str = "instance_norm2d_jvp";
        let (n, c, hw) = shapes::instance_norm2d_jvp(OP, x.shape(), x_dot.shape(), gamma.shape(), &stat_shapes(stats))?;
        let len = self.check_len(OP, x.shape())?;
        let np = n * c;
        let y_dot = self.alloc(OP, x.shape())?;
        kern::norm::instance_norm2d_jvp::launch::<R>(
            &self.client,
            groups(np),
            block(),
            arr(&x.handle, len),
            arr(&x_dot.handle, len),
            arr(&gamma.handle, c),
            self.stats_arg(stats, np),
            arr(&y_dot.handle, len),
            NormDims { n, c, hw }.launch(),
        );
        Ok(y_dot)
    }

    pub(super) fn launch_instance_norm2d_jvp_bwd(
        &self,
        x: &CubeTensor,
        x_dot: &CubeTensor,
        gamma: &CubeTensor,
        stats: &NormStats<CubeTensor>,
        y_bar: &CubeTensor,
        y_dot_bar: &CubeTensor,
    ) -> Result<InstanceNormJvpGrads<CubeTensor>> {
        const OP: &str = "instance_norm2d_jvp_bwd";
        let (n, c, hw) = shapes::instance_norm2d_jvp_bwd(
            OP,
            x.shape(),
            x_dot.shape(),
            gamma.shape(),
            &stat_shapes(stats),
            y_bar.shape(),
            y_dot_bar.shape(),
        )?;
        let len = self.check_len(OP, x.shape())?;
        let np = n * c;
        let (x_bar, x_dot_bar) = (self.alloc(OP, x.shape())?, self.alloc(OP, x.shape())?);
        let (gp, bp) = (self.buffer(OP, np)?, self.buffer(OP, np)?);
        kern::norm::instance_norm2d_jvp_bwd::launch::<R>(
            &self.client,
            groups(np),
            block(),
            arr(&x.handle, len),
            arr(&x_dot.handle, len),
            arr(&gamma.handle, c),
            self.stats_arg(stats, np),
            JvpCotangentsArgsLaunch::new(arr(&y_bar.handle, len), arr(&y_dot_bar.handle, len)),
            InstanceNormJvpGradsArgsLaunch::new(arr(&x_bar.handle, len), arr(&x_dot_bar.handle, len), arr(&gp, np), arr(&bp, np)),
            NormDims { n, c, hw }.launch(),
        );
        Ok(InstanceNormJvpGrads { x_bar, x_dot_bar, dgamma: self.per_channel(OP, &gp, n, c)?, dbeta: self.per_channel(OP, &bp, n, c)? })
    }
}
