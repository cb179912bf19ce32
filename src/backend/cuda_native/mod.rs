//! The `cuda-native` backend: every op of the [`Backend`] trait as our own CUDA C++ (`kernels/cuda/<family>.cu`),
//! compiled by NVRTC at run time and launched through the CUDA driver API (cudarc), with no CubeCL in between.
//!
//! One file per op family, beside `cpu/<family>.rs`, `cube/<family>.rs` and the kernels' `.cu`: each op checks
//! shapes with [`shapes`](super::shapes) first (the same errors as every backend), allocates its outputs, and
//! launches by name with typed arguments ([`launch::Arg`], `#[repr(C)]` structs mirrored in the `.cu`).
//! Where there is no GPU, [`CudaNativeBackend::emulator`] runs the very same kernels on the CPU
//! (`cxr_gan_kernels::cuda::emulator`: each block's threads as fibers), so CI executes every kernel, through this
//! same host code, under the op tests and the golden conformance runner.
//!
//! Tensors are a shared device buffer and a shape; a clone shares the buffer. Ops write fresh outputs; the
//! trait's in-place ops update their buffer in place when no clone shares it, and copy first when one does,
//! so a clone is never changed behind its back. Device failures are recorded: the failing op returns
//! [`Error::Backend`] naming it and the cause, and every later op is refused.

mod act;
mod adam;
mod channels;
mod conv;
mod device;
mod elementwise;
mod graph;
pub mod launch;
mod loss;
mod norm;
mod pool;
mod resize;
mod storage;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use cxr_gan_kernels::cuda::Family;

use self::conv::ChannelStats;
pub use self::device::{nvrtc_options, Kernel};
use self::device::{Executor, Gpu, Recording};
pub use self::graph::CudaNativeGraph;
use self::graph::GraphPool;
use self::launch::{Arg, Dims};
use self::norm::FusedAct;
use self::storage::Shadow;
pub use self::storage::Storage;
use super::{
    Activation, AdamConfig, AdamSlot, Backend, Conv2dParams, Deferred, InstanceNormJvpGrads, NormGrads, NormStats, PenaltyHead,
    PendingPenaltyHead, Pool2dParams,
};
use crate::backend::cuda_env::CudaEnv;
use crate::error::{Error, Result};
use crate::tensor::{fmt_shape, Tensor};

/// How the convolutions compute (`--precision`): `fp32` runs the SIMT kernels (exact f32, the conformance
/// reference); `tf32` runs them on tensor cores (`mma.sync` m16n8k8, TF32 inputs rounded to 10 mantissa
/// bits, f32 accumulation), as PyTorch does by default for convolutions on Ampere and later; `bf16` on
/// tensor cores at bf16's rate (`mma.sync` m16n8k16, inputs rounded to 7 mantissa bits, f32 accumulation)
/// with bf16 storage ([`Storage`]): the activations (forward convolutions' outputs, and the norms and
/// activations that read them) and the weights as the convolutions read them (a bf16 shadow of each f32
/// master weight) are bf16 in memory, half the bytes. Gradients, statistics, losses, the master weights and
/// Adam's state stay f32 at every precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Fp32,
    Tf32,
    Bf16,
}

impl Precision {
    pub const NAMES: &'static [&'static str] = &["fp32", "tf32", "bf16"];

    pub fn parse(s: &str) -> Result<Precision> {
        match s {
            "fp32" => Ok(Precision::Fp32),
            "tf32" => Ok(Precision::Tf32),
            "bf16" => Ok(Precision::Bf16),
            other => {
                Err(Error::invalid("--precision", format!("unknown precision {other:?}; this build has: {}", Precision::NAMES.join(", "))))
            }
        }
    }

    /// Relative L2 error the op tests allow against the f64 oracle, per precision. TF32 keeps 10 mantissa
    /// bits (unit roundoff 2^-11 ≈ 4.9e-4) per input; products of two rounded inputs summed in f32 stay
    /// within ~1e-3 relative to the result's norm for the convolutions' sums. bf16 keeps 7 (unit roundoff
    /// 2^-8 ≈ 3.9e-3); the emulator measures 2.1e-3 to 2.5e-3 on the conv tests' random sums.
    pub fn tolerance(self) -> f64 {
        match self {
            Precision::Fp32 => 1e-5,
            Precision::Tf32 => 2e-3,
            Precision::Bf16 => 8e-3,
        }
    }

    /// Relative L2 error of storing activations at this precision: none for f32; for bf16 one rounding of
    /// each element to 8 significant bits (unit roundoff 2^-9), with a factor 2 of margin.
    pub fn storage_tolerance(self) -> f64 {
        match self {
            Precision::Fp32 | Precision::Tf32 => 0.0,
            Precision::Bf16 => 2f64.powi(-8),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Tf32 => "tf32",
            Precision::Bf16 => "bf16",
        }
    }
}

/// One device allocation (freed when the last tensor holding it drops). A buffer allocated while a graph is
/// captured belongs to that graph's pool, which frees it with the graph.
struct Buffer {
    ptr: u64,
    bytes: usize,
    device: Arc<Device>,
    pool: Option<Arc<GraphPool>>,
    /// At `--precision bf16`, the bf16 copy of this (f32 weight) buffer the convolutions read; see
    /// [`CudaNativeBackend::weight_bf16`].
    shadow: Mutex<Option<Shadow>>,
}

impl Drop for Buffer {
    fn drop(&mut self) {
        match &self.pool {
            Some(pool) => pool.release(self.ptr, self.bytes),
            None => self.device.free(self.ptr, self.bytes),
        }
    }
}

/// A tensor in device memory: a buffer, how its elements are stored, the shape it is read with, and, for the
/// output of a convolution, its channels' per-segment statistics (so a batch or instance norm that follows need
/// not read it to get them).
#[derive(Clone)]
pub struct CudaNativeTensor {
    buf: Arc<Buffer>,
    storage: Storage,
    shape: Vec<usize>,
    stats: Option<Arc<conv::ChannelPartials>>,
}

impl std::fmt::Debug for CudaNativeTensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CudaNativeTensor{}", fmt_shape(&self.shape))
    }
}

impl CudaNativeTensor {
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn storage(&self) -> Storage {
        self.storage
    }
    /// The device bytes of its elements.
    pub fn bytes(&self) -> usize {
        self.len() * self.storage.bytes()
    }
    fn is_bf16(&self) -> bool {
        self.storage == Storage::Bf16
    }
    /// A kernel of the f32 / bf16 pair (`name`, `name_bf16`) that reads this tensor's storage.
    fn kernel_for(&self, f32_name: &'static str, bf16_name: &'static str) -> &'static str {
        if self.is_bf16() {
            bf16_name
        } else {
            f32_name
        }
    }
    /// The device address, as a kernel's pointer argument.
    fn arg(&self) -> Arg {
        Arg::Ptr(self.buf.ptr)
    }
}

struct Device {
    exec: Executor,
    /// The first device failure, `op: cause`; once set, every op is refused.
    failure: Mutex<Option<String>>,
    /// The pool of the graph being captured, if one is.
    capture: Mutex<Option<Arc<GraphPool>>>,
    /// Graph replays so far: a replay writes buffers the host does not see written (weights, by a captured
    /// optimizer step), so a bf16 shadow cast before it is not trusted after it.
    replays: AtomicU64,
}

impl Device {
    fn capturing(&self) -> Option<Arc<GraphPool>> {
        self.capture.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Frees a buffer, or, while a graph is captured, hands it to the graph (which may read it on every replay).
    fn free(&self, ptr: u64, bytes: usize) {
        match self.capturing() {
            Some(pool) => pool.adopt(ptr, bytes),
            None => self.exec.free(ptr, bytes),
        }
    }
}

/// The cuda-native backend on one device (a GPU, or the CPU emulator).
#[derive(Clone)]
pub struct CudaNativeBackend {
    device: Arc<Device>,
    name: &'static str,
    description: String,
    poisoned: bool,
    precision: Precision,
    /// The tiled convolution kernels, when not the precision's own (tests compare versions).
    conv_kernels: Option<conv::ConvKernels>,
    max_buffer: usize,
    /// Each optimizer's step on the device, per set of parameter buffers (see adam.rs).
    adam_cache: Arc<Mutex<adam::AdamCache>>,
}

impl CudaNativeBackend {
    /// The backend on CUDA device 0, or why there is none (one line: driver, device, NVRTC, target).
    pub fn cuda() -> Result<CudaNativeBackend> {
        let env = CudaEnv::probe();
        let gpu = Gpu::open(&env).map_err(|detail| Error::Backend { backend: "cuda-native".into(), detail })?;
        let description = gpu.description.clone();
        let max_buffer = gpu.memory_bytes.max(1 << 20);
        Ok(CudaNativeBackend::on(Executor::Gpu(Box::new(gpu)), "cuda-native", description, max_buffer))
    }

    /// The same kernels on the CPU emulator (always present): what CI runs the backend's tests on.
    pub fn emulator() -> CudaNativeBackend {
        let workers = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
        let description = format!("CUDA emulator on the CPU ({workers} threads): kernels/cuda/*.cu built for the host");
        CudaNativeBackend::on(
            Executor::Emulator { workers, capturing: Mutex::new(None) },
            "cuda-native-emu",
            description,
            u32::MAX as usize,
        )
    }

    /// A backend that runs nothing and records every launch (see [`CudaNativeBackend::take_launches`]): the
    /// offline compile check learns from it which kernels the real workloads launch, and with how many threads,
    /// on an sm_90a device (`wgmma`) or an sm_80 one.
    pub fn recorder(wgmma: bool) -> CudaNativeBackend {
        let exec = Executor::Recorder(Mutex::new(Recording { wgmma, ..Recording::default() }));
        CudaNativeBackend::on(exec, "cuda-native-recorder", "recording launches, running nothing".into(), usize::MAX)
    }

    /// The launches a [`CudaNativeBackend::recorder`] saw since the last call (empty on other executors).
    pub fn take_launches(&self) -> Vec<(Kernel, Dims)> {
        match &self.device.exec {
            Executor::Recorder(r) => std::mem::take(&mut r.lock().unwrap_or_else(|p| p.into_inner()).launches),
            _ => Vec::new(),
        }
    }

    fn on(exec: Executor, name: &'static str, description: String, max_buffer: usize) -> CudaNativeBackend {
        CudaNativeBackend {
            device: Arc::new(Device { exec, failure: Mutex::new(None), capture: Mutex::new(None), replays: AtomicU64::new(0) }),
            adam_cache: Arc::default(),
            name,
            description,
            poisoned: false,
            precision: Precision::Fp32,
            conv_kernels: None,
            max_buffer,
        }
    }

    /// The same device computing its convolutions at `precision`.
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The tiled convolution kernels this backend launches.
    fn conv_kernels(&self) -> conv::ConvKernels {
        self.conv_kernels.unwrap_or(conv::ConvKernels::of(self.precision, self.device.exec.has_wgmma()))
    }

    /// A checking backend for tests: fresh outputs start as NaN, so an element a kernel fails to write
    /// surfaces as NaN.
    pub fn poisoned(mut self) -> Self {
        self.poisoned = true;
        self
    }

    pub fn unpoisoned(mut self) -> Self {
        self.poisoned = false;
        self
    }

    /// The device, in words.
    pub fn device(&self) -> &str {
        &self.description
    }

    fn err(&self, detail: String) -> Error {
        Error::Backend { backend: self.name.to_string(), detail }
    }

    /// Records a device failure in `op` (the first is kept) and returns it as an error.
    fn fail(&self, op: &str, cause: String) -> Error {
        let detail = format!("{op}: {cause}");
        self.device.failure.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| detail.clone());
        self.err(detail)
    }

    /// Runs op `f`, refused after an earlier device failure.
    fn guard<T>(&self, op: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        if let Some(first) = self.device.failure.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            return Err(self.err(format!("{op}: refused, the device failed earlier ({first})")));
        }
        f()
    }

    /// Launches `name` of `family` over `dims` with `args`; a refused or failed launch fails the device.
    fn launch(&self, op: &'static str, family: Family, name: &'static str, dims: Dims, args: &[Arg]) -> Result<()> {
        dims.check(op, name)?;
        self.device.exec.launch(Kernel::new(family, name), dims, args).map_err(|e| self.fail(op, e))
    }

    // ------------------------------------------------------------------ buffers

    /// A fresh buffer of `len` f32 (at least one); NaN-filled when poisoned.
    fn buffer(&self, op: &'static str, len: usize) -> Result<Arc<Buffer>> {
        self.buffer_of(op, len, Storage::F32)
    }

    /// A fresh buffer of `len` elements stored as `storage` (at least 4 bytes); NaN-filled when poisoned.
    fn buffer_of(&self, op: &'static str, len: usize, storage: Storage) -> Result<Arc<Buffer>> {
        let bytes = (len * storage.bytes()).next_multiple_of(4).max(4);
        if bytes > self.max_buffer {
            return Err(self.err(format!(
                "{op}: a buffer of {len} {storage:?} elements needs {bytes} bytes, more than this device's {} bytes; split the work (e.g. a smaller batch)",
                self.max_buffer
            )));
        }
        let pool = self.device.capturing();
        let ptr = match pool.as_ref().and_then(|p| p.take(bytes)) {
            Some(ptr) => ptr,
            None => {
                let ptr = self.device.exec.alloc(bytes).map_err(|e| self.fail(op, e))?;
                if let Some(p) = &pool {
                    p.adopt(ptr, bytes);
                }
                ptr
            }
        };
        let buf = Arc::new(Buffer { ptr, bytes, device: Arc::clone(&self.device), pool, shadow: Mutex::new(None) });
        if self.poisoned && len > 0 {
            // Two bf16 NaNs per f32 word where the storage is bf16 (0x7fc0_7fc0 is an f32 NaN too).
            self.fill(op, buf.ptr, bytes / 4, f32::from_bits(0x7fc0_7fc0))?;
        }
        Ok(buf)
    }

    /// A fresh f32 output tensor of `shape` (see [`CudaNativeBackend::buffer`]).
    fn alloc(&self, op: &'static str, shape: &[usize]) -> Result<CudaNativeTensor> {
        self.alloc_as(op, shape, Storage::F32)
    }

    /// A fresh output tensor of `shape` stored as `storage`.
    fn alloc_as(&self, op: &'static str, shape: &[usize], storage: Storage) -> Result<CudaNativeTensor> {
        let len = self.check_len(op, shape)?;
        Ok(CudaNativeTensor { buf: self.buffer_of(op, len, storage)?, storage, shape: shape.to_vec(), stats: None })
    }

    /// A device copy of host f32 `data` (a kernel's small table: per-sample α, per-channel scalars).
    fn upload_slice(&self, op: &'static str, data: &[f32]) -> Result<CudaNativeTensor> {
        self.refuse_host_copy(op)?;
        let buf = self.buffer(op, data.len())?;
        self.device.exec.upload(buf.ptr, bytemuck::cast_slice(data)).map_err(|e| self.fail(op, e))?;
        Ok(CudaNativeTensor { buf, storage: Storage::F32, shape: vec![data.len()], stats: None })
    }

    /// A device copy of host plain-old-data (a kernel's table of structs), as a tensor of its bytes / 4 f32.
    fn upload_pod<T: bytemuck::Pod>(&self, op: &'static str, data: &[T]) -> Result<CudaNativeTensor> {
        self.refuse_host_copy(op)?;
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let buf = self.buffer(op, bytes.len().div_ceil(4))?;
        self.device.exec.upload(buf.ptr, bytes).map_err(|e| self.fail(op, e))?;
        Ok(CudaNativeTensor { buf, storage: Storage::F32, shape: vec![bytes.len().div_ceil(4)], stats: None })
    }

    /// The first `len` elements of `t`, back on the host as f32 (bf16 storage widened exactly).
    fn read(&self, op: &str, t: &CudaNativeTensor, len: usize) -> Result<Vec<f32>> {
        self.refuse_host_copy(op)?;
        if t.is_bf16() {
            let mut bits = vec![0u16; len];
            self.device.exec.download(t.buf.ptr, bytemuck::cast_slice_mut(&mut bits)).map_err(|e| self.fail(op, e))?;
            return Ok(bits.into_iter().map(|b| half::bf16::from_bits(b).to_f32()).collect());
        }
        let mut out = vec![0f32; len];
        self.device.exec.download(t.buf.ptr, bytemuck::cast_slice_mut(&mut out)).map_err(|e| self.fail(op, e))?;
        Ok(out)
    }

    fn fill(&self, op: &'static str, ptr: u64, len: usize, value: f32) -> Result<()> {
        let n = launch::u32_of(op, len)?;
        self.launch(op, Family::Elementwise, "fill", Dims::grid_stride(len), &[Arg::Ptr(ptr), Arg::U32(n), Arg::F32(value)])
    }

    /// Makes `t` the only holder of its buffer (copying it when a clone shares it), stored as f32 (the
    /// in-place ops write f32), for an in-place update.
    fn make_unique(&self, op: &'static str, t: &mut CudaNativeTensor) -> Result<()> {
        self.make_unique_as(op, t, Storage::F32)
    }

    /// [`CudaNativeBackend::make_unique`] for an in-place op that writes `storage` (one with a `_bf16` twin
    /// keeps a bf16 tensor bf16).
    fn make_unique_as(&self, op: &'static str, t: &mut CudaNativeTensor, storage: Storage) -> Result<()> {
        if t.storage != storage {
            *t = self.cast(op, t, storage)?;
        } else if Arc::strong_count(&t.buf) > 1 {
            self.note_copy_in_capture(op);
            let copy = self.alloc_as(op, &t.shape, storage)?;
            // Whole 32-bit words (a bf16 buffer's bytes are rounded up to them).
            let words = t.bytes().div_ceil(4);
            let n = launch::u32_of(op, words)?;
            if n > 0 {
                self.launch(op, Family::Elementwise, "copy", Dims::grid_stride(words), &[t.arg(), copy.arg(), Arg::U32(n)])?;
            }
            *t = copy;
        }
        t.stats = None; // about to change: a convolution's statistics no longer describe it, nor its bf16 shadow
        t.buf.invalidate_shadow();
        Ok(())
    }

    /// The element count of `shape`, checked against the kernels' 32-bit indexing.
    fn check_len(&self, op: &'static str, shape: &[usize]) -> Result<usize> {
        let n: usize = shape.iter().product();
        launch::u32_of(op, n)?;
        Ok(n)
    }
}

/// The shapes of saved statistics, for the shared checks.
fn stat_shapes(stats: &NormStats<CudaNativeTensor>) -> NormStats<&[usize]> {
    NormStats { mean: stats.mean.shape(), invstd: stats.invstd.shape() }
}

impl Backend for CudaNativeBackend {
    type Tensor = CudaNativeTensor;
    type Graph = CudaNativeGraph;

    fn name(&self) -> String {
        self.name.to_string()
    }
    fn conv_precision(&self) -> Precision {
        self.precision
    }
    fn sync(&self) -> Result<()> {
        self.guard("sync", || {
            self.refuse_host_copy("sync")?;
            self.device.exec.sync().map_err(|e| self.fail("sync", e))
        })
    }
    fn max_buffer_bytes(&self) -> Option<usize> {
        Some(self.max_buffer)
    }

    // ------------------------------------------------------------------ graphs
    fn capture_begin(&self) -> Result<bool> {
        self.guard("capture_begin", || self.launch_capture_begin())
    }
    fn capture_end(&self) -> Result<CudaNativeGraph> {
        self.launch_capture_end()
    }
    fn replay(&self, graph: &CudaNativeGraph) -> Result<()> {
        self.guard("replay", || self.launch_replay(graph))
    }
    fn overwrite(&self, dst: &CudaNativeTensor, src: &Tensor) -> Result<()> {
        self.guard("overwrite", || self.launch_overwrite(dst, src))
    }

    // ------------------------------------------------------------------ memory
    fn upload(&self, t: &Tensor) -> Result<CudaNativeTensor> {
        self.guard("upload", || {
            self.refuse_host_copy("upload")?;
            let len = self.check_len("upload", t.shape())?;
            if len * 4 > self.max_buffer {
                return Err(self.err(format!("upload: a {} f32 tensor exceeds this device's largest buffer", fmt_shape(t.shape()))));
            }
            let buf = self.buffer("upload", len)?;
            self.device.exec.upload(buf.ptr, bytemuck::cast_slice(t.data())).map_err(|e| self.fail("upload", e))?;
            Ok(CudaNativeTensor { buf, storage: Storage::F32, shape: t.shape().to_vec(), stats: None })
        })
    }
    fn download(&self, t: &CudaNativeTensor) -> Result<Tensor> {
        self.guard("download", || Tensor::new(&t.shape, self.read("download", t, t.len())?))
    }
    fn shape(&self, t: &CudaNativeTensor) -> Vec<usize> {
        t.shape.clone()
    }
    fn full(&self, shape: &[usize], value: f32) -> Result<CudaNativeTensor> {
        self.guard("full", || self.launch_full(shape, value))
    }
    fn reshape(&self, t: &CudaNativeTensor, shape: &[usize]) -> Result<CudaNativeTensor> {
        let n: usize = shape.iter().product();
        if n != t.len() {
            return Err(Error::shape("reshape", format!("cannot view {} as {}", fmt_shape(&t.shape), fmt_shape(shape))));
        }
        Ok(CudaNativeTensor { buf: Arc::clone(&t.buf), storage: t.storage, shape: shape.to_vec(), stats: None })
    }

    // ------------------------------------------------------------------ elementwise
    fn add(&self, a: &CudaNativeTensor, b: &CudaNativeTensor) -> Result<CudaNativeTensor> {
        self.guard("add", || self.launch_add(&self.f32_of("add", a)?, &self.f32_of("add", b)?))
    }
    fn add_assign(&self, a: &mut CudaNativeTensor, b: &CudaNativeTensor) -> Result<()> {
        self.guard("add_assign", || self.launch_add_assign(a, &self.f32_of("add_assign", b)?))
    }
    fn scale(&self, a: &CudaNativeTensor, s: f32) -> Result<CudaNativeTensor> {
        self.guard("scale", || self.launch_scale(&self.f32_of("scale", a)?, s))
    }
    fn lerp_per_sample(&self, a: &CudaNativeTensor, b: &CudaNativeTensor, alpha: &[f32]) -> Result<CudaNativeTensor> {
        self.guard("lerp_per_sample", || {
            let (a, b) = (self.f32_of("lerp_per_sample", a)?, self.f32_of("lerp_per_sample", b)?);
            self.launch_lerp_per_sample(&a, &b, &self.upload_slice("lerp_per_sample", alpha)?)
        })
    }
    fn lerp_per_sample_tensor(&self, a: &CudaNativeTensor, b: &CudaNativeTensor, alpha: &CudaNativeTensor) -> Result<CudaNativeTensor> {
        self.guard("lerp_per_sample", || {
            self.launch_lerp_per_sample(&self.f32_of("lerp_per_sample", a)?, &self.f32_of("lerp_per_sample", b)?, alpha)
        })
    }
    fn mean(&self, t: &CudaNativeTensor) -> Result<f64> {
        self.guard("mean", || {
            self.refuse_host_copy("mean")?;
            self.launch_mean(&self.f32_of("mean", t)?)?.resolve(self)
        })
    }
    fn mean_deferred(&self, t: &CudaNativeTensor) -> Result<Deferred<CudaNativeTensor>> {
        self.guard("mean", || self.launch_mean(&self.f32_of("mean", t)?))
    }

    // ------------------------------------------------------------------ convolution
    // A forward convolution's output carries its channels' statistics for a batch norm that may follow; the
    // backward passes' outputs (gradients) do not.
    fn conv2d(&self, x: &CudaNativeTensor, w: &CudaNativeTensor, p: Conv2dParams) -> Result<CudaNativeTensor> {
        self.guard("conv2d", || self.launch_conv2d(x, w, p, ChannelStats::Want))
    }
    fn conv2d_bwd_data(
        &self,
        dy: &CudaNativeTensor,
        w: &CudaNativeTensor,
        x_shape: [usize; 4],
        p: Conv2dParams,
    ) -> Result<CudaNativeTensor> {
        self.guard("conv2d_bwd_data", || self.launch_conv2d_bwd_data(dy, w, x_shape, p, ChannelStats::Skip))
    }
    fn conv2d_bwd_weight(
        &self,
        x: &CudaNativeTensor,
        dy: &CudaNativeTensor,
        w_shape: [usize; 4],
        p: Conv2dParams,
    ) -> Result<CudaNativeTensor> {
        self.guard("conv2d_bwd_weight", || self.launch_conv2d_bwd_weight(x, dy, w_shape, p))
    }
    fn conv_transpose2d(&self, x: &CudaNativeTensor, w: &CudaNativeTensor, p: Conv2dParams) -> Result<CudaNativeTensor> {
        self.guard("conv_transpose2d", || {
            let y_shape = super::shapes::conv_transpose2d_out("conv_transpose2d", x.shape(), w.shape(), p)?;
            self.launch_conv2d_bwd_data(x, w, y_shape, p, ChannelStats::Want)
        })
    }
    fn conv_transpose2d_bwd_data(&self, dy: &CudaNativeTensor, w: &CudaNativeTensor, p: Conv2dParams) -> Result<CudaNativeTensor> {
        self.guard("conv_transpose2d_bwd_data", || self.launch_conv2d(dy, w, p, ChannelStats::Skip))
    }

    // ------------------------------------------------------------------ normalization
    fn batch_norm2d_train(
        &self,
        x: &CudaNativeTensor,
        gamma: &CudaNativeTensor,
        beta: &CudaNativeTensor,
        running_mean: &mut CudaNativeTensor,
        running_var: &mut CudaNativeTensor,
        eps: f32,
        momentum: f32,
    ) -> Result<(CudaNativeTensor, NormStats<CudaNativeTensor>)> {
        self.guard("batch_norm2d_train", || {
            self.launch_batch_norm2d_train(x, gamma, beta, running_mean, running_var, eps, momentum, FusedAct::NONE)
        })
    }
    fn batch_norm2d_train_act(
        &self,
        x: &CudaNativeTensor,
        gamma: &CudaNativeTensor,
        beta: &CudaNativeTensor,
        running_mean: &mut CudaNativeTensor,
        running_var: &mut CudaNativeTensor,
        eps: f32,
        momentum: f32,
        act: Activation,
    ) -> Result<(CudaNativeTensor, NormStats<CudaNativeTensor>)> {
        let Some(fused) = FusedAct::of(act) else {
            let (y, stats) = self.batch_norm2d_train(x, gamma, beta, running_mean, running_var, eps, momentum)?;
            return Ok((self.activation(act, &y)?, stats));
        };
        self.guard("batch_norm2d_train_act", || {
            self.launch_batch_norm2d_train(x, gamma, beta, running_mean, running_var, eps, momentum, fused)
        })
    }
    fn batch_norm2d_eval(
        &self,
        x: &CudaNativeTensor,
        gamma: &CudaNativeTensor,
        beta: &CudaNativeTensor,
        running_mean: &CudaNativeTensor,
        running_var: &CudaNativeTensor,
        eps: f32,
    ) -> Result<CudaNativeTensor> {
        self.guard("batch_norm2d_eval", || self.launch_batch_norm2d_eval(x, gamma, beta, running_mean, running_var, eps))
    }
    fn batch_norm2d_bwd(
        &self,
        dy: &CudaNativeTensor,
        x: &CudaNativeTensor,
        gamma: &CudaNativeTensor,
        stats: &NormStats<CudaNativeTensor>,
    ) -> Result<NormGrads<CudaNativeTensor>> {
        self.guard("batch_norm2d_bwd", || self.launch_batch_norm2d_bwd(&self.f32_of("batch_norm2d_bwd", dy)?, x, gamma, stats))
    }
    fn instance_norm2d(
        &self,
        x: &CudaNativeTensor,
        gamma: &CudaNativeTensor,
        beta: &CudaNativeTensor,
        eps: f32,
    ) -> Result<(CudaNativeTensor, NormStats<CudaNativeTensor>)> {
        self.guard("instance_norm2d", || self.launch_instance_norm2d(x, gamma, beta, eps, FusedAct::NONE))
    }
    fn instance_norm2d_act(
        &self,
        x: &CudaNativeTensor,
        gamma: &CudaNativeTensor,
        beta: &CudaNativeTensor,
        eps: f32,
        act: Activation,
    ) -> Result<(CudaNativeTensor, NormStats<CudaNativeTensor>)> {
        let Some(fused) = FusedAct::of(act) else {
            let (y, stats) = self.instance_norm2d(x, gamma, beta, eps)?;
            return Ok((self.activation(act, &y)?, stats));
        };
        self.guard("instance_norm2d_act", || self.launch_instance_norm2d(x, gamma, beta, eps, fused))
    }
    fn instance_norm2d_bwd(
        &self,
        dy: &CudaNativeTensor,
        x: &CudaNativeTensor,
        gamma: &CudaNativeTensor,
        stats: &NormStats<CudaNativeTensor>,
    ) -> Result<NormGrads<CudaNativeTensor>> {
        self.guard("instance_norm2d_bwd", || self.launch_instance_norm2d_bwd(&self.f32_of("instance_norm2d_bwd", dy)?, x, gamma, stats))
    }
    fn instance_norm2d_jvp(
        &self,
        x: &CudaNativeTensor,
        x_dot: &CudaNativeTensor,
        gamma: &CudaNativeTensor,
        stats: &NormStats<CudaNativeTensor>,
    ) -> Result<CudaNativeTensor> {
        self.guard("instance_norm2d_jvp", || {
            self.launch_instance_norm2d_jvp(
                &self.f32_of("instance_norm2d_jvp", x)?,
                &self.f32_of("instance_norm2d_jvp", x_dot)?,
                gamma,
                stats,
            )
        })
    }
    fn instance_norm2d_jvp_bwd(
        &self,
        x: &CudaNativeTensor,
        x_dot: &CudaNativeTensor,
        gamma: &CudaNativeTensor,
        stats: &NormStats<CudaNativeTensor>,
        y_bar: &CudaNativeTensor,
        y_dot_bar: &CudaNativeTensor,
    ) -> Result<InstanceNormJvpGrads<CudaNativeTensor>> {
        const OP: &str = "instance_norm2d_jvp_bwd";
        self.guard(OP, || {
            let [x, x_dot, y_bar, y_dot_bar] = [x, x_dot, y_bar, y_dot_bar].map(|t| self.f32_of(OP, t));
            self.launch_instance_norm2d_jvp_bwd(&x?, &x_dot?, gamma, stats, &y_bar?, &y_dot_bar?)
        })
    }

    // ------------------------------------------------------------------ activations
    fn activation(&self, act: Activation, x: &CudaNativeTensor) -> Result<CudaNativeTensor> {
        self.guard("activation", || self.launch_activation(act, x))
    }
    fn activation_bwd(
        &self,
        act: Activation,
        x: &CudaNativeTensor,
        y: &CudaNativeTensor,
        dy: &CudaNativeTensor,
    ) -> Result<CudaNativeTensor> {
        self.guard("activation_bwd", || self.launch_activation_bwd(act, x, y, &self.f32_of("activation_bwd", dy)?))
    }

    // ------------------------------------------------------------------ losses
    fn bce(&self, p: &CudaNativeTensor, target: &CudaNativeTensor) -> Result<(f64, CudaNativeTensor)> {
        self.refuse_host_copy("bce")?;
        let (loss, grad) = self.bce_deferred(p, target)?;
        Ok((loss.resolve(self)?, grad))
    }
    fn bce_deferred(&self, p: &CudaNativeTensor, target: &CudaNativeTensor) -> Result<(Deferred<CudaNativeTensor>, CudaNativeTensor)> {
        self.guard("bce", || self.launch_bce(&self.f32_of("bce", p)?, &self.f32_of("bce", target)?))
    }
    fn bce_logits(&self, logits: &CudaNativeTensor, target: &CudaNativeTensor) -> Result<(f64, CudaNativeTensor)> {
        self.guard("bce_logits", || {
            self.refuse_host_copy("bce_logits")?;
            let (loss, grad) = self.launch_bce_logits(&self.f32_of("bce_logits", logits)?, &self.f32_of("bce_logits", target)?)?;
            Ok((loss.resolve(self)?, grad))
        })
    }
    fn gradient_penalty_head(&self, g: &CudaNativeTensor, lambda: f32) -> Result<PenaltyHead<CudaNativeTensor>> {
        self.guard("gradient_penalty_head", || {
            self.refuse_host_copy("gradient_penalty_head")?;
            let head = self.launch_gradient_penalty_head(&self.f32_of("gradient_penalty_head", g)?, lambda)?;
            let grad_norm = head.grad_norm.resolve(self)?;
            Ok(PenaltyHead { gp: super::host_math::gradient_penalty(&grad_norm, lambda), grad_norm, v: head.v })
        })
    }
    fn gradient_penalty_head_deferred(&self, g: &CudaNativeTensor, lambda: f32) -> Result<PendingPenaltyHead<CudaNativeTensor>> {
        self.guard("gradient_penalty_head", || self.launch_gradient_penalty_head(&self.f32_of("gradient_penalty_head", g)?, lambda))
    }

    // ------------------------------------------------------------------ optimizer
    fn adam_step(
        &self,
        param: &mut CudaNativeTensor,
        grad: &CudaNativeTensor,
        exp_avg: &mut CudaNativeTensor,
        exp_avg_sq: &mut CudaNativeTensor,
        cfg: &AdamConfig,
        step: u64,
    ) -> Result<()> {
        self.guard("adam_step", || self.launch_adam_step(param, &self.f32_of("adam_step", grad)?, exp_avg, exp_avg_sq, cfg, step))
    }
    fn adam_step_all(&self, slots: &mut [AdamSlot<'_, CudaNativeTensor>], cfg: &AdamConfig, step: u64) -> Result<()> {
        self.guard("adam_step_all", || self.launch_adam_step_all(slots, cfg, step))
    }

    // ------------------------------------------------------------------ InceptionV3's ops (FID and the classifier)
    fn avg_pool2d(&self, x: &CudaNativeTensor, p: Pool2dParams, count_include_pad: bool) -> Result<CudaNativeTensor> {
        self.guard("avg_pool2d", || self.launch_avg_pool2d(&self.f32_of("avg_pool2d", x)?, p, count_include_pad))
    }
    fn max_pool2d(&self, x: &CudaNativeTensor, p: Pool2dParams) -> Result<CudaNativeTensor> {
        self.guard("max_pool2d", || self.launch_max_pool2d(&self.f32_of("max_pool2d", x)?, p))
    }
    fn global_avg_pool2d(&self, x: &CudaNativeTensor) -> Result<CudaNativeTensor> {
        self.guard("global_avg_pool2d", || self.launch_global_avg_pool2d(&self.f32_of("global_avg_pool2d", x)?))
    }
    fn resize_bilinear(&self, x: &CudaNativeTensor, out_h: usize, out_w: usize) -> Result<CudaNativeTensor> {
        self.guard("resize_bilinear", || self.launch_resize_bilinear(&self.f32_of("resize_bilinear", x)?, out_h, out_w))
    }
    fn concat_channels(&self, xs: &[&CudaNativeTensor]) -> Result<CudaNativeTensor> {
        self.guard("concat_channels", || self.launch_concat_channels(xs))
    }
    fn affine_channels(&self, x: &mut CudaNativeTensor, scale: &CudaNativeTensor, shift: &CudaNativeTensor, relu: bool) -> Result<()> {
        self.guard("affine_channels", || {
            self.launch_affine_channels(x, &self.f32_of("affine_channels", scale)?, &self.f32_of("affine_channels", shift)?, relu)
        })
    }

    // ------------------------------------------------------------------ the classifier's backward passes
    fn max_pool2d_bwd(&self, dy: &CudaNativeTensor, x: &CudaNativeTensor, p: Pool2dParams) -> Result<CudaNativeTensor> {
        self.guard("max_pool2d_bwd", || {
            self.launch_max_pool2d_bwd(&self.f32_of("max_pool2d_bwd", dy)?, &self.f32_of("max_pool2d_bwd", x)?, p)
        })
    }
    fn avg_pool2d_bwd(
        &self,
        dy: &CudaNativeTensor,
        x_shape: [usize; 4],
        p: Pool2dParams,
        count_include_pad: bool,
    ) -> Result<CudaNativeTensor> {
        self.guard("avg_pool2d_bwd", || self.launch_avg_pool2d_bwd(&self.f32_of("avg_pool2d_bwd", dy)?, x_shape, p, count_include_pad))
    }
    fn global_avg_pool2d_bwd(&self, dy: &CudaNativeTensor, x_shape: [usize; 4]) -> Result<CudaNativeTensor> {
        self.guard("global_avg_pool2d_bwd", || self.launch_global_avg_pool2d_bwd(&self.f32_of("global_avg_pool2d_bwd", dy)?, x_shape))
    }
    fn concat_channels_bwd(&self, dy: &CudaNativeTensor, channels: &[usize]) -> Result<Vec<CudaNativeTensor>> {
        self.guard("concat_channels_bwd", || self.launch_concat_channels_bwd(&self.f32_of("concat_channels_bwd", dy)?, channels))
    }
    fn cross_entropy(&self, logits: &CudaNativeTensor, target: &[usize]) -> Result<(f64, CudaNativeTensor)> {
        self.guard("cross_entropy", || self.launch_cross_entropy(&self.f32_of("cross_entropy", logits)?, target))
    }
    fn dropout(&self, x: &CudaNativeTensor, mask: &CudaNativeTensor, p: f32) -> Result<CudaNativeTensor> {
        self.guard("dropout", || self.launch_dropout(&self.f32_of("dropout", x)?, &self.f32_of("dropout", mask)?, p))
    }
}
