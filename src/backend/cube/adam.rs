//! torch.optim.Adam's step: the shared checks and scalars ([`AdamScalars`]), then one launch of
//! kernels/src/cube/adam.rs into fresh buffers.

use cubecl::Runtime;
use cxr_gan_kernels::cube as kern;
use cxr_gan_kernels::cube::adam::{AdamArgs, AdamStateLaunch};

use super::launch::{arr, block, grid};
use super::{CubeBackend, CubeTensor};
use crate::backend::host_math::AdamScalars;
use crate::backend::{shapes, AdamConfig};
use crate::error::Result;

impl<R: Runtime> CubeBackend<R> {
    /// The new (param, exp_avg, exp_avg_sq), for the caller to rebind its tensors to.
    pub(super) fn launch_adam_step(
        &self,
        param: &CubeTensor,
        grad: &CubeTensor,
        exp_avg: &CubeTensor,
        exp_avg_sq: &CubeTensor,
        cfg: &AdamConfig,
        step: u64,
    ) -> Result<(CubeTensor, CubeTensor, CubeTensor)> {
        const OP: &str = "adam_step";
        shapes::adam_step(OP, param.shape(), grad.shape(), exp_avg.shape(), exp_avg_sq.shape(), step)?;
        let n = self.check_len(OP, param.shape())?;
        let AdamScalars { b1, b2, one_m_b1, one_m_b2, step_size, bc2_sqrt, eps } = AdamScalars::new(cfg, step);
        let (p, m, v) = (self.alloc(OP, param.shape())?, self.alloc(OP, param.shape())?, self.alloc(OP, param.shape())?);
        if n > 0 {
            let state = |p: &CubeTensor, m: &CubeTensor, v: &CubeTensor| {
                AdamStateLaunch::new(arr(&p.handle, n), arr(&m.handle, n), arr(&v.handle, n))
            };
            let args = AdamArgs { b1, b2, one_m_b1, one_m_b2, step_size, bc2_sqrt, eps };
            kern::adam::adam_step::launch::<R>(
                &self.client,
                grid(n),
                block(),
                state(param, exp_avg, exp_avg_sq),
                arr(&grad.handle, n),
                state(&p, &m, &v),
                args.launch(),
            );
        }
        Ok((p, m, v))
    }
}
