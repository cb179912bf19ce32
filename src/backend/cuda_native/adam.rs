//! torch.optim.Adam's step: the shared checks and scalars ([`AdamScalars`]), then one in-place launch of
//! kernels/cuda/adam.cu over param, grad and both moments.

use cxr_gan_kernels::cuda::Family;

use super::launch::{u32_of, Arg, Dims};
use super::{CudaNativeBackend, CudaNativeTensor};
use crate::backend::host_math::AdamScalars;
use crate::backend::{shapes, AdamConfig, AdamSlot};
use crate::error::Result;

const FAMILY: Family = Family::Adam;

/// One step's scalars as the kernel takes them (`struct AdamArgs` in kernels/cuda/adam.cu).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct AdamArgs {
    b1: f32,
    b2: f32,
    one_m_b1: f32,
    one_m_b2: f32,
    /// lr / (1 − b1^t).
    step_size: f32,
    /// √(1 − b2^t).
    bc2_sqrt: f32,
    eps: f32,
}

impl AdamArgs {
    fn new(cfg: &AdamConfig, step: u64) -> AdamArgs {
        let AdamScalars { b1, b2, one_m_b1, one_m_b2, step_size, bc2_sqrt, eps } = AdamScalars::new(cfg, step);
        AdamArgs { b1, b2, one_m_b1, one_m_b2, step_size, bc2_sqrt, eps }
    }
}

/// One tensor of [`CudaNativeBackend::launch_adam_step_all`]'s table (`struct AdamTensor` in adam.cu).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct AdamTensor {
    param: u64,
    grad: u64,
    exp_avg: u64,
    exp_avg_sq: u64,
    n: u32,
    pad: u32,
}

impl CudaNativeBackend {
    /// Adam over every parameter in one launch: each checked and made the only holder of its buffers as in
    /// [`CudaNativeBackend::launch_adam_step`], then a table of their addresses goes to the device and one
    /// kernel walks them all (the grid's y axis picks the tensor).
    pub(super) fn launch_adam_step_all(&self, slots: &mut [AdamSlot<'_, CudaNativeTensor>], cfg: &AdamConfig, step: u64) -> Result<()> {
        const OP: &str = "adam_step_all";
        let mut table = Vec::with_capacity(slots.len());
        let mut longest = 0;
        for s in slots.iter_mut() {
            shapes::adam_step(OP, s.param.shape(), s.grad.shape(), s.exp_avg.shape(), s.exp_avg_sq.shape(), step)?;
            let n = u32_of(OP, s.param.len())?;
            if n == 0 {
                continue;
            }
            self.make_unique(OP, s.param)?;
            self.make_unique(OP, s.exp_avg)?;
            self.make_unique(OP, s.exp_avg_sq)?;
            longest = longest.max(s.param.len());
            table.push(AdamTensor {
                param: s.param.buf.ptr,
                grad: s.grad.buf.ptr,
                exp_avg: s.exp_avg.buf.ptr,
                exp_avg_sq: s.exp_avg_sq.buf.ptr,
                n,
                pad: 0,
            });
        }
        if table.is_empty() {
            return Ok(());
        }
        let count = u32_of(OP, table.len())?;
        let device_table = self.upload_pod(OP, &table)?;
        let mut dims = Dims::grid_stride(longest);
        dims.grid[1] = count;
        // The table's buffer lives until the launch has read it: the executor orders its free after the launch.
        self.launch(OP, FAMILY, "adam_step_all", dims, &[device_table.arg(), Arg::U32(count), Arg::pod(&AdamArgs::new(cfg, step))])
    }

    /// One Adam step in place: param, exp_avg and exp_avg_sq are each first made the only holder of their
    /// buffer (a clone sharing one keeps the old values), then one kernel updates all three.
    pub(super) fn launch_adam_step(
        &self,
        param: &mut CudaNativeTensor,
        grad: &CudaNativeTensor,
        exp_avg: &mut CudaNativeTensor,
        exp_avg_sq: &mut CudaNativeTensor,
        cfg: &AdamConfig,
        step: u64,
    ) -> Result<()> {
        const OP: &str = "adam_step";
        shapes::adam_step(OP, param.shape(), grad.shape(), exp_avg.shape(), exp_avg_sq.shape(), step)?;
        let n = u32_of(OP, param.len())?;
        if n == 0 {
            return Ok(());
        }
        let args = AdamArgs::new(cfg, step);
        self.make_unique(OP, param)?;
        self.make_unique(OP, exp_avg)?;
        self.make_unique(OP, exp_avg_sq)?;
        self.launch(
            OP,
            FAMILY,
            "adam_step",
            Dims::grid_stride(param.len()),
            &[param.arg(), grad.arg(), exp_avg.arg(), exp_avg_sq.arg(), Arg::U32(n), Arg::pod(&args)],
        )
    }
}
