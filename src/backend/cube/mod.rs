//! The `cube` backend: every op of the [`Backend`] trait as a CubeCL kernel (crate `cxr-gan-kernels`),
//! generic over the CubeCL runtime, so the same kernels run on CUDA ([`CudaBackend`]) and on Vulkan /
//! Metal / DirectX / WebGPU through wgpu ([`WgpuBackend`]; in CI on Mesa's lavapipe, a CPU Vulkan driver).
//!
//! This is the thin typed host side, one file per op family beside `cpu/<family>.rs` and the kernels'
//! `kernels/src/cube/<family>.rs`: each op validates shapes with [`shapes`](super::shapes) first (exactly as the cpu
//! backend, so both reject bad input with the same error), allocates fresh outputs, and launches. Tensors
//! ([`CubeTensor`]) are a device buffer handle and a shape; no op updates a buffer in place (the in-place
//! trait methods rebind their tensor to a fresh buffer), so a clone never changes behind its back.
//! `device.rs` probes and opens devices ([`devices_here`]); `launch.rs` holds the launch geometry.
//!
//! Device limits and failures: every buffer is checked against the device's largest ([`Backend::max_buffer_bytes`])
//! before it is requested, and refused with an error naming the op and the limit. CubeCL runs the device
//! on its own thread and only logs what fails there, recording errors for the next flush; so every read
//! back to the host (download, the scalar results) and `sync` first flushes and checks that record, and a
//! panic inside CubeCL is caught at every public entry. Either way the caller gets [`Error::Backend`]
//! naming the op and the cause, and the backend (with its clones) refuses every later op: nothing
//! computed after a device failure is returned.
//!
//! Reductions whose result goes to the host (the mean, the losses) come back as per-cube partial sums
//! that are added here in f64.

mod act;
mod adam;
mod channels;
mod conv;
// The cube backend over any runtime's client (the offline CUDA compile check's recording runtime).
mod custom_runtime;
mod device;
mod elementwise;
mod launch;
mod loss;
mod norm;
mod pool;
mod resize;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard};

use cubecl::client::ComputeClient;
use cubecl::cuda::CudaRuntime;
use cubecl::server::Handle;
use cubecl::wgpu::WgpuRuntime;
use cubecl::Runtime;
use cxr_gan_kernels::cube as kern;

pub use device::{cuda_status, devices_here, wgpu_adapters, AdapterInfo, AdapterKind};

use self::device::{device_error_text, panic_text};
use self::launch::{arr, block, grid};
use super::{Activation, AdamConfig, Backend, Conv2dParams, InstanceNormJvpGrads, NormGrads, NormStats, PenaltyHead, Pool2dParams};
use crate::error::{Error, Result};
use crate::tensor::{fmt_shape, Tensor};

/// The cube backend on wgpu (Vulkan, Metal, DirectX 12, WebGPU).
pub type WgpuBackend = CubeBackend<WgpuRuntime>;
/// The cube backend on CUDA.
pub type CudaBackend = CubeBackend<CudaRuntime>;

/// A tensor in device memory: a buffer handle and the shape it is read with.
#[derive(Clone, Debug)]
pub struct CubeTensor {
    handle: Handle,
    shape: Vec<usize>,
}

impl CubeTensor {
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The cube backend on runtime `R` (one device).
pub struct CubeBackend<R: Runtime> {
    client: ComputeClient<R>,
    name: &'static str,
    device: String,
    poisoned: bool,
    /// The largest buffer, in bytes, that is requested from the device.
    max_buffer: usize,
    /// Shared by clones: one device, one record of its failures.
    health: Arc<Mutex<DeviceHealth>>,
}

impl<R: Runtime> Clone for CubeBackend<R> {
    fn clone(&self) -> Self {
        CubeBackend {
            client: self.client.clone(),
            name: self.name,
            device: self.device.clone(),
            poisoned: self.poisoned,
            max_buffer: self.max_buffer,
            health: Arc::clone(&self.health),
        }
    }
}

/// What the host knows of the device's state.
#[derive(Default)]
struct DeviceHealth {
    /// The first device failure, `op: cause`; once set, every op is refused.
    failure: Option<String>,
    /// Ops that launched work since the device's error record was last checked: where a failure the next
    /// check finds happened.
    unchecked: Vec<&'static str>,
}

impl<R: Runtime> CubeBackend<R> {
    /// A checking backend for tests: fresh output buffers start as NaN, so an element a kernel fails to
    /// write surfaces as NaN.
    pub fn poisoned(mut self) -> Self {
        self.poisoned = true;
        self
    }

    /// The normal backend again: fresh buffers are left as the allocator returns them.
    pub fn unpoisoned(mut self) -> Self {
        self.poisoned = false;
        self
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// The adapter / device this backend runs on, in words.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// For tests of the failure paths only: the largest buffer this backend requests (`usize::MAX` lets an
    /// oversized request reach the device, where it fails).
    #[doc(hidden)]
    pub fn with_buffer_limit(mut self, bytes: usize) -> Self {
        self.max_buffer = bytes;
        self
    }

    fn err(&self, detail: String) -> Error {
        Error::Backend { backend: self.name.to_string(), detail }
    }

    fn health(&self) -> MutexGuard<'_, DeviceHealth> {
        // A panic while the lock was held leaves nothing half-updated: both fields are replaced whole.
        self.health.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a device failure in `op` (the first one is kept) and returns it as an error.
    fn fail(&self, op: &str, cause: String) -> Error {
        let detail = format!("{op}: {cause}");
        self.health().failure.get_or_insert_with(|| detail.clone());
        self.err(detail)
    }

    /// Runs op `f`, which launches device work: see [`CubeBackend::run`].
    fn guard<T>(&self, op: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.run(op, true, f)
    }

    /// Runs op `f`: refused after a device failure; a panic inside CubeCL becomes a failure of the op.
    /// An op that `launches` work is noted as unchecked until the device's error record is next read.
    fn run<T>(&self, op: &'static str, launches: bool, f: impl FnOnce() -> Result<T>) -> Result<T> {
        {
            let mut health = self.health();
            if let Some(first) = &health.failure {
                return Err(self.err(format!("{op}: refused, the device failed earlier ({first})")));
            }
            if launches && !health.unchecked.contains(&op) {
                health.unchecked.push(op);
            }
        }
        catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(self.fail(op, format!("panicked inside CubeCL: {}", panic_text(&*p)))))
    }

    /// Fails `op` if the device recorded an error since the last check. Done before every read back to the
    /// host and in `sync`, not after every op: a flush per op would submit every op's kernels on their own,
    /// and nothing computed reaches the caller without a read.
    fn check_device(&self, op: &str) -> Result<()> {
        match self.client.flush() {
            Ok(()) => {
                self.health().unchecked.clear();
                Ok(())
            }
            Err(e) => {
                let since = std::mem::take(&mut self.health().unchecked).join(", ");
                Err(self.fail(op, format!("the device failed (in work launched by: {since}): {}", device_error_text(&e))))
            }
        }
    }

    // ------------------------------------------------------------------ buffers

    /// Refuses a buffer of `bytes` bytes above the device's largest; `what` names it for the message.
    fn fits(&self, op: &str, what: impl FnOnce() -> String, bytes: usize) -> Result<()> {
        if bytes > self.max_buffer {
            return Err(self.err(format!(
                "{op}: {} needs {bytes} bytes, more than the largest buffer this device allows ({} bytes); split \
                 the work (e.g. a smaller batch)",
                what(),
                self.max_buffer
            )));
        }
        Ok(())
    }

    /// A fresh buffer of `len` f32 (at least one, so that no binding is empty); NaN-filled when poisoned.
    fn buffer(&self, op: &str, len: usize) -> Result<Handle> {
        let bytes = len.max(1) * 4;
        self.fits(op, || format!("a scratch buffer of {len} f32"), bytes)?;
        let h = self.client.empty(bytes);
        if self.poisoned && len > 0 {
            self.fill(&h, len, f32::NAN);
        }
        Ok(h)
    }

    /// A fresh output tensor of `shape` (see [`CubeBackend::buffer`]).
    fn alloc(&self, op: &str, shape: &[usize]) -> Result<CubeTensor> {
        let len: usize = shape.iter().product();
        self.fits(op, || format!("a {} f32 tensor", fmt_shape(shape)), len.max(1) * 4)?;
        Ok(CubeTensor { handle: self.buffer(op, len)?, shape: shape.to_vec() })
    }

    /// A buffer holding `bytes` (4 zero bytes when empty, so that no binding is empty); `what` names it.
    fn upload_bytes(&self, op: &str, what: impl FnOnce() -> String, bytes: &[u8]) -> Result<Handle> {
        if bytes.is_empty() {
            return Ok(self.client.create_from_slice(&[0u8; 4]));
        }
        self.fits(op, what, bytes.len())?;
        Ok(self.client.create_from_slice(bytes))
    }

    /// A buffer holding host f32 `data`.
    fn upload_slice(&self, op: &str, data: &[f32]) -> Result<Handle> {
        self.upload_bytes(op, || format!("{} f32 of host data", data.len()), bytemuck::cast_slice(data))
    }

    /// The first `len` f32 of `h`, after checking the device's error record (see [`CubeBackend::check_device`]).
    fn read(&self, op: &str, h: &Handle, len: usize) -> Result<Vec<f32>> {
        self.check_device(op)?;
        if len == 0 {
            return Ok(Vec::new());
        }
        let bytes = self
            .client
            .read_one(h.clone())
            .map_err(|e| self.fail(op, format!("reading a buffer back failed: {}", device_error_text(&e))))?;
        let bytes: &[u8] = &bytes;
        if bytes.len() < len * 4 {
            return Err(self.fail(op, format!("read {} bytes back for {len} f32", bytes.len())));
        }
        Ok(bytes[..len * 4].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    /// Σ of per-cube partial sums, read back and added in f64.
    fn sum_partials(&self, op: &str, partial: &Handle, cubes: usize) -> Result<f64> {
        Ok(self.read(op, partial, cubes)?.iter().map(|&v| v as f64).sum())
    }

    fn fill(&self, h: &Handle, len: usize, value: f32) {
        kern::elementwise::fill::launch::<R>(&self.client, grid(len), block(), arr(h, len), value);
    }

    /// Sizes and strides go to the kernels as 32-bit integers.
    fn u32_of(&self, op: &'static str, v: usize) -> Result<u32> {
        u32::try_from(v).map_err(|_| Error::invalid(op, format!("size {v} exceeds the kernels' 32-bit indexing")))
    }

    /// The element count of `shape`, checked against the kernels' 32-bit indexing.
    fn check_len(&self, op: &'static str, shape: &[usize]) -> Result<usize> {
        let n: usize = shape.iter().product();
        self.u32_of(op, n)?;
        Ok(n)
    }
}

/// The shapes of saved statistics, for the shared checks.
fn stat_shapes(stats: &NormStats<CubeTensor>) -> NormStats<&[usize]> {
    NormStats { mean: stats.mean.shape(), invstd: stats.invstd.shape() }
}

impl<R: Runtime> Backend for CubeBackend<R> {
    type Tensor = CubeTensor;
    type Graph = super::NoGraph;

    fn name(&self) -> String {
        self.name.to_string()
    }
    fn sync(&self) -> Result<()> {
        self.run("sync", false, || {
            self.check_device("sync")?;
            cubecl::future::block_on(self.client.sync())
                .map_err(|e| self.fail("sync", format!("the device failed: {}", device_error_text(&e))))
        })
    }
    fn max_buffer_bytes(&self) -> Option<usize> {
        Some(self.max_buffer)
    }

    // ------------------------------------------------------------------ memory
    fn upload(&self, t: &Tensor) -> Result<CubeTensor> {
        self.guard("upload", || {
            self.check_len("upload", t.shape())?;
            let handle =
                self.upload_bytes("upload", || format!("a {} f32 tensor", fmt_shape(t.shape())), bytemuck::cast_slice(t.data()))?;
            Ok(CubeTensor { handle, shape: t.shape().to_vec() })
        })
    }
    fn download(&self, t: &CubeTensor) -> Result<Tensor> {
        self.run("download", false, || Tensor::new(&t.shape, self.read("download", &t.handle, t.len())?))
    }
    fn shape(&self, t: &CubeTensor) -> Vec<usize> {
        t.shape.clone()
    }
    fn full(&self, shape: &[usize], value: f32) -> Result<CubeTensor> {
        self.guard("full", || self.launch_full(shape, value))
    }
    fn reshape(&self, t: &CubeTensor, shape: &[usize]) -> Result<CubeTensor> {
        let n: usize = shape.iter().product();
        if n != t.len() {
            return Err(Error::shape("reshape", format!("cannot view {} as {}", fmt_shape(&t.shape), fmt_shape(shape))));
        }
        Ok(CubeTensor { handle: t.handle.clone(), shape: shape.to_vec() })
    }

    // ------------------------------------------------------------------ elementwise
    fn add(&self, a: &CubeTensor, b: &CubeTensor) -> Result<CubeTensor> {
        self.guard("add", || self.launch_add("add", a, b))
    }
    fn add_assign(&self, a: &mut CubeTensor, b: &CubeTensor) -> Result<()> {
        *a = self.guard("add_assign", || self.launch_add("add_assign", a, b))?;
        Ok(())
    }
    fn scale(&self, a: &CubeTensor, s: f32) -> Result<CubeTensor> {
        self.guard("scale", || self.launch_scale(a, s))
    }
    fn lerp_per_sample(&self, a: &CubeTensor, b: &CubeTensor, alpha: &[f32]) -> Result<CubeTensor> {
        self.guard("lerp_per_sample", || self.launch_lerp_per_sample(a, b, alpha))
    }
    fn mean(&self, t: &CubeTensor) -> Result<f64> {
        self.guard("mean", || self.launch_mean(t))
    }

    // ------------------------------------------------------------------ convolution
    fn conv2d(&self, x: &CubeTensor, w: &CubeTensor, p: Conv2dParams) -> Result<CubeTensor> {
        self.guard("conv2d", || self.launch_conv2d(x, w, p))
    }
    fn conv2d_bwd_data(&self, dy: &CubeTensor, w: &CubeTensor, x_shape: [usize; 4], p: Conv2dParams) -> Result<CubeTensor> {
        self.guard("conv2d_bwd_data", || self.launch_conv2d_bwd_data(dy, w, x_shape, p))
    }
    fn conv2d_bwd_weight(&self, x: &CubeTensor, dy: &CubeTensor, w_shape: [usize; 4], p: Conv2dParams) -> Result<CubeTensor> {
        self.guard("conv2d_bwd_weight", || self.launch_conv2d_bwd_weight(x, dy, w_shape, p))
    }

    // ------------------------------------------------------------------ normalization
    fn batch_norm2d_train(
        &self,
        x: &CubeTensor,
        gamma: &CubeTensor,
        beta: &CubeTensor,
        running_mean: &mut CubeTensor,
        running_var: &mut CubeTensor,
        eps: f32,
        momentum: f32,
    ) -> Result<(CubeTensor, NormStats<CubeTensor>)> {
        let (y, stats, (rm, rv)) =
            self.guard("batch_norm2d_train", || self.launch_batch_norm2d_train(x, gamma, beta, running_mean, running_var, eps, momentum))?;
        *running_mean = rm;
        *running_var = rv;
        Ok((y, stats))
    }
    fn batch_norm2d_eval(
        &self,
        x: &CubeTensor,
        gamma: &CubeTensor,
        beta: &CubeTensor,
        running_mean: &CubeTensor,
        running_var: &CubeTensor,
        eps: f32,
    ) -> Result<CubeTensor> {
        self.guard("batch_norm2d_eval", || self.launch_batch_norm2d_eval(x, gamma, beta, running_mean, running_var, eps))
    }
    fn batch_norm2d_bwd(
        &self,
        dy: &CubeTensor,
        x: &CubeTensor,
        gamma: &CubeTensor,
        stats: &NormStats<CubeTensor>,
    ) -> Result<NormGrads<CubeTensor>> {
        self.guard("batch_norm2d_bwd", || self.launch_batch_norm2d_bwd(dy, x, gamma, stats))
    }
    fn instance_norm2d(
        &self,
        x: &CubeTensor,
        gamma: &CubeTensor,
        beta: &CubeTensor,
        eps: f32,
    ) -> Result<(CubeTensor, NormStats<CubeTensor>)> {
        self.guard("instance_norm2d", || self.launch_instance_norm2d(x, gamma, beta, eps))
    }
    fn instance_norm2d_bwd(
        &self,
        dy: &CubeTensor,
        x: &CubeTensor,
        gamma: &CubeTensor,
        stats: &NormStats<CubeTensor>,
    ) -> Result<NormGrads<CubeTensor>> {
        self.guard("instance_norm2d_bwd", || self.launch_instance_norm2d_bwd(dy, x, gamma, stats))
    }
    fn instance_norm2d_jvp(
        &self,
        x: &CubeTensor,
        x_dot: &CubeTensor,
        gamma: &CubeTensor,
        stats: &NormStats<CubeTensor>,
    ) -> Result<CubeTensor> {
        self.guard("instance_norm2d_jvp", || self.launch_instance_norm2d_jvp(x, x_dot, gamma, stats))
    }
    fn instance_norm2d_jvp_bwd(
        &self,
        x: &CubeTensor,
        x_dot: &CubeTensor,
        gamma: &CubeTensor,
        stats: &NormStats<CubeTensor>,
        y_bar: &CubeTensor,
        y_dot_bar: &CubeTensor,
    ) -> Result<InstanceNormJvpGrads<CubeTensor>> {
        self.guard("instance_norm2d_jvp_bwd", || self.launch_instance_norm2d_jvp_bwd(x, x_dot, gamma, stats, y_bar, y_dot_bar))
    }

    // ------------------------------------------------------------------ activations
    fn activation(&self, act: Activation, x: &CubeTensor) -> Result<CubeTensor> {
        self.guard("activation", || self.launch_activation(act, x))
    }
    fn activation_bwd(&self, act: Activation, x: &CubeTensor, y: &CubeTensor, dy: &CubeTensor) -> Result<CubeTensor> {
        self.guard("activation_bwd", || self.launch_activation_bwd(act, x, y, dy))
    }

    // ------------------------------------------------------------------ losses
    fn bce(&self, p: &CubeTensor, target: &CubeTensor) -> Result<(f64, CubeTensor)> {
        self.guard("bce", || self.launch_bce(p, target))
    }
    fn bce_logits(&self, logits: &CubeTensor, target: &CubeTensor) -> Result<(f64, CubeTensor)> {
        self.guard("bce_logits", || self.launch_bce_logits(logits, target))
    }
    fn gradient_penalty_head(&self, g: &CubeTensor, lambda: f32) -> Result<PenaltyHead<CubeTensor>> {
        self.guard("gradient_penalty_head", || self.launch_gradient_penalty_head(g, lambda))
    }

    // ------------------------------------------------------------------ optimizer
    fn adam_step(
        &self,
        param: &mut CubeTensor,
        grad: &CubeTensor,
        exp_avg: &mut CubeTensor,
        exp_avg_sq: &mut CubeTensor,
        cfg: &AdamConfig,
        step: u64,
    ) -> Result<()> {
        let (p, m, v) = self.guard("adam_step", || self.launch_adam_step(param, grad, exp_avg, exp_avg_sq, cfg, step))?;
        *param = p;
        *exp_avg = m;
        *exp_avg_sq = v;
        Ok(())
    }

    // ------------------------------------------------------------------ InceptionV3's ops (FID and the classifier)
    fn avg_pool2d(&self, x: &CubeTensor, p: Pool2dParams, count_include_pad: bool) -> Result<CubeTensor> {
        self.guard("avg_pool2d", || self.launch_avg_pool2d(x, p, count_include_pad))
    }
    fn max_pool2d(&self, x: &CubeTensor, p: Pool2dParams) -> Result<CubeTensor> {
        self.guard("max_pool2d", || self.launch_max_pool2d(x, p))
    }
    fn global_avg_pool2d(&self, x: &CubeTensor) -> Result<CubeTensor> {
        self.guard("global_avg_pool2d", || self.launch_global_avg_pool2d(x))
    }
    fn resize_bilinear(&self, x: &CubeTensor, out_h: usize, out_w: usize) -> Result<CubeTensor> {
        self.guard("resize_bilinear", || self.launch_resize_bilinear(x, out_h, out_w))
    }
    fn concat_channels(&self, xs: &[&CubeTensor]) -> Result<CubeTensor> {
        self.guard("concat_channels", || self.launch_concat_channels(xs))
    }
    fn affine_channels(&self, x: &mut CubeTensor, scale: &CubeTensor, shift: &CubeTensor, relu: bool) -> Result<()> {
        *x = self.guard("affine_channels", || self.launch_affine_channels(x, scale, shift, relu))?;
        Ok(())
    }

    // ------------------------------------------------------------------ the classifier's backward passes
    fn max_pool2d_bwd(&self, dy: &CubeTensor, x: &CubeTensor, p: Pool2dParams) -> Result<CubeTensor> {
        self.guard("max_pool2d_bwd", || self.launch_max_pool2d_bwd(dy, x, p))
    }
    fn avg_pool2d_bwd(&self, dy: &CubeTensor, x_shape: [usize; 4], p: Pool2dParams, count_include_pad: bool) -> Result<CubeTensor> {
        self.guard("avg_pool2d_bwd", || self.launch_avg_pool2d_bwd(dy, x_shape, p, count_include_pad))
    }
    fn global_avg_pool2d_bwd(&self, dy: &CubeTensor, x_shape: [usize; 4]) -> Result<CubeTensor> {
        self.guard("global_avg_pool2d_bwd", || self.launch_global_avg_pool2d_bwd(dy, x_shape))
    }
    fn concat_channels_bwd(&self, dy: &CubeTensor, channels: &[usize]) -> Result<Vec<CubeTensor>> {
        self.guard("concat_channels_bwd", || self.launch_concat_channels_bwd(dy, channels))
    }
    fn cross_entropy(&self, logits: &CubeTensor, target: &[usize]) -> Result<(f64, CubeTensor)> {
        self.guard("cross_entropy", || self.launch_cross_entropy(logits, target))
    }
    fn dropout(&self, x: &CubeTensor, mask: &CubeTensor, p: f32) -> Result<CubeTensor> {
        self.guard("dropout", || self.launch_dropout(x, mask, p))
    }
}
