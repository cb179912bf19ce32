//! torch.optim.Adam's step: the shared checks and scalars ([`AdamScalars`]), then one in-place launch of
//! kernels/cuda/adam.cu over param, grad and both moments. `adam_step_all` (a whole model) keeps the
//! optimizer's step on the device, so that an iteration captured as a graph takes a new step at each replay.

use cxr_gan_kernels::cuda::Family;

use std::collections::HashMap;

use super::launch::{u32_of, Arg, Dims};
use super::{CudaNativeBackend, CudaNativeTensor};
use crate::backend::host_math::AdamScalars;
use crate::backend::{shapes, AdamConfig, AdamSlot};
use crate::error::Result;

const FAMILY: Family = Family::Adam;

/// The scalars every step shares (`struct AdamBetas` in kernels/cuda/adam.cu).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct AdamBetas {
    b1: f32,
    b2: f32,
    one_m_b1: f32,
    one_m_b2: f32,
    eps: f32,
}

/// Step t's scalars (`struct AdamStepScale`): lr / (1 − b1^t) and √(1 − b2^t).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct AdamStepScale {
    step_size: f32,
    bc2_sqrt: f32,
}

fn host_scalars(cfg: &AdamConfig, step: u64) -> (AdamBetas, AdamStepScale) {
    let AdamScalars { b1, b2, one_m_b1, one_m_b2, step_size, bc2_sqrt, eps } = AdamScalars::new(cfg, step);
    (AdamBetas { b1, b2, one_m_b1, one_m_b2, eps }, AdamStepScale { step_size, bc2_sqrt })
}

/// What `adam_step_scale` takes (`struct AdamScaleArgs`): t = 0 counts on from the device's step.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct AdamScaleArgs {
    lr: f64,
    beta1: f64,
    beta2: f64,
    t: u32,
    pad: u32,
}

/// Each optimizer's step on the device (`struct AdamDeviceStep`: the latest step's scalars and the count),
/// keyed by the addresses of its parameters and moments (the same buffers are the same optimizer). Bounded:
/// cleared when it grows past [`ADAM_CACHE_ENTRIES`] (a capture keeps the steps it uses alive with its graph).
pub(super) type AdamCache = HashMap<Vec<u64>, CudaNativeTensor>;
const ADAM_CACHE_ENTRIES: usize = 64;
/// `struct AdamDeviceStep`'s size in f32 words: two scalars, the count and padding.
const DEVICE_STEP_WORDS: usize = 4;

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
        let device_step = self.adam_device_step(OP, &table)?;
        let capture = self.capture_pool();
        if let Some(pool) = &capture {
            pool.keep(&device_step);
        }
        // The gradients are new buffers every step, so the table is made every step (a capture bakes it in).
        let device_table = self.device_table(OP, &table)?;
        // Eager: the host's step. Captured: one past the device's count, so each replay takes the next step.
        let t = if capture.is_some() { 0 } else { step.min(i32::MAX as u64) as u32 };
        let scale = AdamScaleArgs { lr: cfg.lr, beta1: cfg.beta1, beta2: cfg.beta2, t, pad: 0 };
        let one = Dims { grid: [1, 1, 1], block: [1, 1, 1] };
        self.launch(OP, FAMILY, "adam_step_scale", one, &[device_step.arg(), Arg::pod(&scale)])?;
        let mut dims = Dims::grid_stride(longest);
        dims.grid[1] = count;
        let (betas, _) = host_scalars(cfg, step);
        self.launch(OP, FAMILY, "adam_step_all", dims, &[device_table.arg(), Arg::U32(count), Arg::pod(&betas), device_step.arg()])
    }

    /// The device step of the optimizer that updates the tensors of `table`: cached, or made now (not during a
    /// capture: the count it continues from is written by an eager step, so an optimizer's first step on
    /// these buffers runs eagerly).
    fn adam_device_step(&self, op: &'static str, table: &[AdamTensor]) -> Result<CudaNativeTensor> {
        let key: Vec<u64> = table.iter().flat_map(|e| [e.param, e.exp_avg, e.exp_avg_sq, e.n as u64]).collect();
        let mut cache = self.adam_cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(step) = cache.get(&key) {
            return Ok(step.clone());
        }
        if let Some(pool) = self.capture_pool() {
            if let Some(e) = self.moved_in_capture(&pool, op) {
                return Err(e);
            }
            return Err(self.err(format!(
                "{op}: this optimizer has not stepped on these parameter buffers before, and its first step cannot be \
                 captured (a captured step counts on from the device's count, which an eager step writes); take one \
                 step eagerly before capturing"
            )));
        }
        if cache.len() >= ADAM_CACHE_ENTRIES {
            cache.clear();
        }
        let step = self.alloc(op, &[DEVICE_STEP_WORDS])?;
        cache.insert(key, step.clone());
        Ok(step)
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
        let (betas, scale) = host_scalars(cfg, step);
        self.make_unique(OP, param)?;
        self.make_unique(OP, exp_avg)?;
        self.make_unique(OP, exp_avg_sq)?;
        self.launch(
            OP,
            FAMILY,
            "adam_step",
            Dims::grid_stride(param.len()),
            &[param.arg(), grad.arg(), exp_avg.arg(), exp_avg_sq.arg(), Arg::U32(n), Arg::pod(&betas), Arg::pod(&scale)],
        )
    }
}
