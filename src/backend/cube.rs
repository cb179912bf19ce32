//! The `cube` backend: every op of the [`Backend`] trait as a CubeCL kernel (crate `cxr-gan-kernels`),
//! generic over the CubeCL runtime, so the same kernels run on CUDA ([`CudaBackend`]) and on Vulkan /
//! Metal / DirectX / WebGPU through wgpu ([`WgpuBackend`]; in CI on Mesa's lavapipe, a CPU Vulkan driver).
//!
//! This file is the thin typed host side: it validates shapes with [`shapes`] first (exactly as the cpu
//! backend, so both reject bad input with the same error), allocates fresh outputs, and launches. Tensors
//! ([`CubeTensor`]) are a device buffer handle and a shape; no op updates a buffer in place (the in-place
//! trait methods rebind their tensor to a fresh buffer), so a clone never changes behind its back.
//!
//! Devices are probed before a client is made (CubeCL panics when asked for an adapter that does not
//! exist): [`CubeBackend::wgpu`] takes a hardware adapter, else a CPU one such as lavapipe;
//! [`CubeBackend::wgpu_hardware`] only hardware (what `--backend auto` wants); [`CubeBackend::cuda`] checks
//! for the driver library and a device first. Without one, the error names what this machine has
//! ([`devices_here`]). A panic inside CubeCL is caught at every public entry and comes back as
//! [`Error::Backend`].
//!
//! Reductions whose result goes to the host (the mean, the losses) come back as per-cube partial sums
//! that are added here in f64.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use cubecl::client::ComputeClient;
use cubecl::cuda::{CudaDevice, CudaRuntime};
use cubecl::prelude::{ArrayArg, CubeCount, CubeDim};
use cubecl::server::Handle;
use cubecl::wgpu::{AutoGraphicsApi, GraphicsApi, WgpuDevice, WgpuRuntime};
use cubecl::Runtime;
use cxr_gan_kernels::cube as kern;
use cxr_gan_kernels::cube::act::{ACT_LEAKY_RELU, ACT_RELU, ACT_SIGMOID, ACT_TANH};
use cxr_gan_kernels::cube::conv::{TILE_K, TILE_M_SMALL, TILE_N, TILE_UNITS};
use cxr_gan_kernels::cube::BLOCK;

use super::{
    shapes, shapes_pool, Activation, AdamConfig, Backend, Conv2dParams, InstanceNormJvpGrads, NormGrads, NormStats, PenaltyHead,
    Pool2dParams,
};
use crate::error::{Error, Result};
use crate::tensor::{dims4, fmt_shape, Tensor};

/// The cube backend on wgpu (Vulkan, Metal, DirectX 12, WebGPU).
pub type WgpuBackend = CubeBackend<WgpuRuntime>;
/// The cube backend on CUDA.
pub type CudaBackend = CubeBackend<CudaRuntime>;

/// The most cubes along one dimension of a launch that every runtime accepts (WebGPU's minimum limit).
const MAX_CUBES_PER_DIM: usize = 65_535;
/// Cubes of a reduction whose partial sums come back to the host (mean, losses).
const MAX_PARTIALS: usize = 1024;

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
}

impl<R: Runtime> Clone for CubeBackend<R> {
    fn clone(&self) -> Self {
        CubeBackend { client: self.client.clone(), name: self.name, device: self.device.clone(), poisoned: self.poisoned }
    }
}

// ====================================================================== devices

/// What kind of device a wgpu adapter is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdapterKind {
    DiscreteGpu,
    IntegratedGpu,
    VirtualGpu,
    /// A software rasterizer (Mesa's lavapipe, SwiftShader, WARP): runs, slowly, on the CPU.
    Cpu,
    Other,
}

impl AdapterKind {
    pub fn is_hardware(self) -> bool {
        matches!(self, AdapterKind::DiscreteGpu | AdapterKind::IntegratedGpu | AdapterKind::VirtualGpu)
    }
}

/// One adapter wgpu sees through the graphics API CubeCL uses here (Vulkan on Linux, Metal on macOS).
#[derive(Clone, Debug)]
pub struct AdapterInfo {
    pub name: String,
    pub kind: AdapterKind,
    pub api: String,
    pub driver: String,
}

impl std::fmt::Display for AdapterInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            AdapterKind::DiscreteGpu => "discrete GPU",
            AdapterKind::IntegratedGpu => "integrated GPU",
            AdapterKind::VirtualGpu => "virtual GPU",
            AdapterKind::Cpu => "CPU adapter",
            AdapterKind::Other => "other adapter",
        };
        write!(f, "{} ({kind}, {}", self.name, self.api)?;
        if !self.driver.is_empty() {
            write!(f, ", {}", self.driver)?;
        }
        write!(f, ")")
    }
}

/// The wgpu adapters of this machine, as CubeCL will enumerate them (cached: probing loads drivers).
pub fn wgpu_adapters() -> &'static [AdapterInfo] {
    static ADAPTERS: OnceLock<Vec<AdapterInfo>> = OnceLock::new();
    ADAPTERS.get_or_init(|| {
        catch_unwind(|| {
            let backend = AutoGraphicsApi::backend();
            let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
                backends: backend.into(),
                ..wgpu::InstanceDescriptor::new_without_display_handle()
            });
            let adapters = cubecl::future::block_on(instance.enumerate_adapters(backend.into()));
            adapters
                .iter()
                .map(|a| {
                    let i = a.get_info();
                    let kind = match i.device_type {
                        wgpu::DeviceType::DiscreteGpu => AdapterKind::DiscreteGpu,
                        wgpu::DeviceType::IntegratedGpu => AdapterKind::IntegratedGpu,
                        wgpu::DeviceType::VirtualGpu => AdapterKind::VirtualGpu,
                        wgpu::DeviceType::Cpu => AdapterKind::Cpu,
                        wgpu::DeviceType::Other => AdapterKind::Other,
                    };
                    let driver = format!("{} {}", i.driver, i.driver_info).trim().to_string();
                    AdapterInfo { name: i.name, kind, api: format!("{:?}", i.backend), driver }
                })
                .collect()
        })
        .unwrap_or_default()
    })
}

/// Whether CUDA can run here: `Ok(device count)` or why not (cached).
pub fn cuda_status() -> std::result::Result<usize, String> {
    static STATUS: OnceLock<std::result::Result<usize, String>> = OnceLock::new();
    STATUS
        .get_or_init(|| {
            catch_unwind(|| {
                // SAFETY: is_culib_present only tries to dlopen the driver / NVRTC libraries.
                if !unsafe { cudarc::driver::sys::is_culib_present() } {
                    return Err("no CUDA driver (libcuda.so not found)".to_string());
                }
                if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
                    return Err("the CUDA driver is present but NVRTC (libnvrtc.so) is not, and CubeCL compiles its kernels with it".into());
                }
                cudarc::driver::result::init().map_err(|e| format!("cuInit failed: {e:?}"))?;
                let n = cudarc::driver::result::device::get_count().map_err(|e| format!("cuDeviceGetCount failed: {e:?}"))?;
                if n < 1 {
                    return Err("the CUDA driver reports no device".into());
                }
                Ok(n as usize)
            })
            .unwrap_or_else(|_| Err("probing the CUDA driver panicked".into()))
        })
        .clone()
}

/// One line per backend saying whether it can run on this machine and on what.
pub fn devices_here() -> String {
    let adapters = wgpu_adapters();
    let wgpu = if adapters.is_empty() {
        format!("no {:?} adapter", AutoGraphicsApi::backend())
    } else {
        adapters.iter().map(|a| a.to_string()).collect::<Vec<_>>().join("; ")
    };
    let cuda = match cuda_status() {
        Ok(n) => format!("{n} device(s)"),
        Err(why) => why,
    };
    format!("cpu: always; wgpu: {wgpu}; cuda: {cuda}")
}

/// A message for a panic payload.
fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

impl CubeBackend<WgpuRuntime> {
    /// wgpu on the best adapter here: a discrete, integrated or virtual GPU, else a CPU adapter such as
    /// lavapipe (correct, slow: what CI runs on).
    pub fn wgpu() -> Result<Self> {
        Self::wgpu_pick(true)
    }

    /// wgpu on a hardware adapter only (what `--backend auto` takes: a CPU adapter is slower than `cpu`).
    pub fn wgpu_hardware() -> Result<Self> {
        Self::wgpu_pick(false)
    }

    fn wgpu_pick(allow_cpu: bool) -> Result<Self> {
        let adapters = wgpu_adapters();
        let rank = |k: AdapterKind| match k {
            AdapterKind::DiscreteGpu => 0,
            AdapterKind::IntegratedGpu => 1,
            AdapterKind::VirtualGpu => 2,
            AdapterKind::Cpu => 3,
            AdapterKind::Other => 4,
        };
        let best = adapters
            .iter()
            .enumerate()
            .filter(|(_, a)| a.kind.is_hardware() || (allow_cpu && a.kind == AdapterKind::Cpu))
            .min_by_key(|(i, a)| (rank(a.kind), *i));
        let Some((pos, info)) = best else {
            let what = if allow_cpu { "no usable wgpu adapter" } else { "no hardware wgpu adapter" };
            return Err(Error::Backend { backend: "wgpu".into(), detail: format!("{what} on this machine ({})", devices_here()) });
        };
        // CubeCL numbers adapters within their kind, in enumeration order.
        let index = adapters[..pos].iter().filter(|a| a.kind == info.kind).count();
        let device = match info.kind {
            AdapterKind::DiscreteGpu => WgpuDevice::DiscreteGpu(index),
            AdapterKind::IntegratedGpu => WgpuDevice::IntegratedGpu(index),
            AdapterKind::VirtualGpu => WgpuDevice::VirtualGpu(index),
            _ => WgpuDevice::Cpu,
        };
        Self::start("wgpu", info.to_string(), || WgpuRuntime::client(&device))
    }
}

impl CubeBackend<CudaRuntime> {
    /// CUDA on device 0, when a driver, NVRTC and a device exist.
    pub fn cuda() -> Result<Self> {
        if let Err(why) = cuda_status() {
            return Err(Error::Backend { backend: "cuda".into(), detail: format!("{why} ({})", devices_here()) });
        }
        Self::start("cuda", "CUDA device 0".into(), || CudaRuntime::client(&CudaDevice::new(0)))
    }
}

impl<R: Runtime> CubeBackend<R> {
    /// Makes the client and runs one tiny kernel through it, so a device that cannot compile or run
    /// kernels fails here, with a message, rather than in the middle of training.
    fn start(name: &'static str, device: String, client: impl FnOnce() -> ComputeClient<R>) -> Result<Self> {
        let fail = |detail: String| Error::Backend { backend: name.into(), detail: format!("{device}: {detail}") };
        let client = catch_unwind(AssertUnwindSafe(client)).map_err(|p| fail(format!("creating the client panicked: {}", panic_text(&*p))))?;
        let b = CubeBackend { client, name, device: device.clone(), poisoned: false };
        let probe = b.full(&[3], 1.5).and_then(|t| b.download(&t));
        match probe {
            Ok(t) if t.data() == [1.5, 1.5, 1.5] => Ok(b),
            Ok(t) => Err(fail(format!("a test kernel returned {:?} instead of [1.5, 1.5, 1.5]", t.data()))),
            Err(e) => Err(fail(format!("a test kernel failed: {e}"))),
        }
    }

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

    /// The CubeCL client (for benchmarks that need to synchronize).
    pub fn client(&self) -> &ComputeClient<R> {
        &self.client
    }

    fn err(&self, detail: String) -> Error {
        Error::Backend { backend: self.name.to_string(), detail }
    }

    /// Runs `f`, turning a panic inside CubeCL into an error naming the op.
    fn guard<T>(&self, op: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(r) => r,
            Err(p) => Err(self.err(format!("{op} panicked inside CubeCL: {}", panic_text(&*p)))),
        }
    }

    // ------------------------------------------------------------------ buffers and launch helpers

    /// A fresh buffer of `len` f32 (at least one, so that no binding is empty); NaN-filled when poisoned.
    fn buffer(&self, len: usize) -> Handle {
        let h = self.client.empty(len.max(1) * 4);
        if self.poisoned && len > 0 {
            self.fill(&h, len, f32::NAN);
        }
        h
    }

    fn alloc(&self, shape: &[usize]) -> CubeTensor {
        CubeTensor { handle: self.buffer(shape.iter().product()), shape: shape.to_vec() }
    }

    fn upload_slice(&self, data: &[f32]) -> Handle {
        if data.is_empty() {
            self.client.create_from_slice(&[0u8; 4])
        } else {
            self.client.create_from_slice(bytemuck::cast_slice(data))
        }
    }

    fn read(&self, h: &Handle, len: usize) -> Result<Vec<f32>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let bytes = self.client.read_one(h.clone()).map_err(|e| self.err(format!("reading a buffer back failed: {e:?}")))?;
        let bytes: &[u8] = &bytes;
        if bytes.len() < len * 4 {
            return Err(self.err(format!("read {} bytes back for {len} f32", bytes.len())));
        }
        Ok(bytes[..len * 4].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    fn fill(&self, h: &Handle, len: usize, value: f32) {
        kern::elementwise::fill::launch::<R>(&self.client, grid(len), block(), arr(h, len), value);
    }

    /// Sizes and strides go to the kernels as u32.
    fn u32_of(&self, op: &'static str, v: usize) -> Result<u32> {
        u32::try_from(v).map_err(|_| Error::invalid(op, format!("size {v} exceeds the kernels' 32-bit indexing")))
    }

    fn check_len(&self, op: &'static str, shape: &[usize]) -> Result<usize> {
        let n: usize = shape.iter().product();
        self.u32_of(op, n)?;
        Ok(n)
    }

    /// Σ of per-cube partial sums, read back and added in f64.
    fn sum_partials(&self, partial: &Handle, cubes: usize) -> Result<f64> {
        Ok(self.read(partial, cubes)?.iter().map(|&v| v as f64).sum())
    }
}

/// A kernel argument over `len` f32 of `h`.
fn arr<R: Runtime>(h: &Handle, len: usize) -> ArrayArg<R> {
    // SAFETY: every handle passed here holds at least max(len, 1) f32 (see `buffer` / `upload_slice`).
    unsafe { ArrayArg::from_raw_parts(h.clone(), len) }
}

fn block() -> CubeDim {
    CubeDim::new_1d(BLOCK)
}

/// Cubes for a grid-stride loop over `n` elements.
fn grid(n: usize) -> CubeCount {
    let cubes = n.div_ceil(BLOCK as usize).clamp(1, MAX_CUBES_PER_DIM);
    CubeCount::Static(cubes as u32, 1, 1)
}

/// Cubes for a reduction over `n` elements whose partial sums come back to the host.
fn partial_cubes(n: usize) -> usize {
    n.div_ceil(BLOCK as usize).clamp(1, MAX_PARTIALS)
}

/// One cube per group (2-d when there are more groups than one dimension holds).
fn groups(g: usize) -> CubeCount {
    let x = g.clamp(1, MAX_CUBES_PER_DIM);
    CubeCount::Static(x as u32, g.div_ceil(x).max(1) as u32, 1)
}

/// Checks that the per-sample count of a tensor of shape `shape` is nonzero and returns (N, per sample).
fn batch_dims(op: &'static str, shape: &[usize]) -> Result<(usize, usize)> {
    match shape.split_first() {
        Some((&n, rest)) if n > 0 => Ok((n, rest.iter().product())),
        _ => Err(Error::shape(op, format!("expected a batch [N, ...] with N > 0, got {}", fmt_shape(shape)))),
    }
}

/// x [N, C, H, W] with at least one element; returns (N, C, H·W) (the cpu backend's check, same message).
fn planes(op: &'static str, x: &CubeTensor, gamma: &CubeTensor) -> Result<(usize, usize, usize)> {
    let [n, c, h, w] = shapes::norm_param(op, x.shape(), "gamma", gamma.shape())?;
    if n * c * h * w == 0 {
        return Err(Error::shape(op, format!("x {} is empty", fmt_shape(x.shape()))));
    }
    Ok((n, c, h * w))
}

/// Instance-norm statistics must hold one value per (n, c): shape [N*C].
fn instance_stat(op: &'static str, x: &CubeTensor, name: &str, t: &CubeTensor) -> Result<()> {
    let d = x.shape();
    let nc = d[0] * d[1];
    if t.shape() != [nc] {
        return Err(Error::shape(op, format!("{name} {} must be [{nc}] (N*C) for x {}", fmt_shape(t.shape()), fmt_shape(d))));
    }
    Ok(())
}

fn act_code(act: Activation) -> (u32, f32) {
    match act {
        Activation::Relu => (ACT_RELU, 0.0),
        Activation::LeakyRelu { slope } => (ACT_LEAKY_RELU, slope),
        Activation::Tanh => (ACT_TANH, 0.0),
        Activation::Sigmoid => (ACT_SIGMOID, 0.0),
    }
}

/// The tiled GEMM grid for an `rows` × `cols` output.
fn tiles(rows: usize, cols: usize, splits: usize) -> Result<CubeCount> {
    let (x, y) = (cols.div_ceil(TILE_N).max(1), rows.div_ceil(16 * rows_per_unit(rows)).max(1));
    if x > MAX_CUBES_PER_DIM || y > MAX_CUBES_PER_DIM {
        return Err(Error::invalid("conv2d", format!("a {rows}×{cols} output needs more than {MAX_CUBES_PER_DIM} tiles along one axis")));
    }
    Ok(CubeCount::Static(x as u32, y as u32, splits as u32))
}

fn tile_count(rows: usize, cols: usize) -> usize {
    rows.div_ceil(16 * rows_per_unit(rows)).max(1) * cols.div_ceil(TILE_N).max(1)
}

/// The conv kernels' `tm` for an output of `rows` rows: 1 (a 16-row tile) for small outputs, else 4 (64).
fn rows_per_unit(rows: usize) -> usize {
    if rows <= TILE_M_SMALL {
        1
    } else {
        4
    }
}

/// Split-K for a tiled GEMM of `tiles` output tiles and reduction length `k`: (splits, chunk). Enough
/// splits that there are ~512 cubes to fill a large GPU, each chunk at least 256 long (so a split's
/// partial buffer and extra pass stay cheap) and a whole number of TILE_K steps; at most 64.
fn split_k(tiles: usize, k: usize) -> (usize, usize) {
    const TARGET_CUBES: usize = 512;
    const MIN_CHUNK: usize = 256;
    if k == 0 {
        return (1, TILE_K);
    }
    let max_splits = k.div_ceil(MIN_CHUNK).clamp(1, 64);
    let want = TARGET_CUBES.div_ceil(tiles).clamp(1, max_splits);
    let chunk = k.div_ceil(want).next_multiple_of(TILE_K);
    (k.div_ceil(chunk), chunk)
}

fn tile_dim() -> CubeDim {
    CubeDim::new_1d(TILE_UNITS as u32)
}

// ====================================================================== ops

impl<R: Runtime> CubeBackend<R> {
    fn add_impl(
        &self, op: &'static str, a: &CubeTensor, b: &CubeTensor,
    ) -> Result<CubeTensor> {
        shapes::same(op, "a", a.shape(), "b", b.shape())?;
        let n = self.check_len(op, a.shape())?;
        let out = self.alloc(a.shape());
        if n > 0 {
            kern::elementwise::add::launch::<R>(&self.client, grid(n), block(), arr(&a.handle, n), arr(&b.handle, n), arr(&out.handle, n));
        }
        Ok(out)
    }

    fn conv2d_impl(&self, x: &CubeTensor, w: &CubeTensor, p: Conv2dParams) -> Result<CubeTensor> {
        const OP: &str = "conv2d";
        let ys = shapes::conv2d_out(OP, x.shape(), w.shape(), p)?;
        let [n, c, h, wd] = dims4(x.shape(), OP, "x")?;
        let [o, _, kh, kw] = dims4(w.shape(), OP, "w")?;
        let [_, _, ho, wo] = ys;
        let y = self.alloc(&ys);
        let cols = n * ho * wo;
        for v in [x.len(), w.len(), y.len()] {
            self.u32_of(OP, v)?;
        }
        if cols == 0 || o == 0 {
            return Ok(y);
        }
        let u = |v: usize| v as u32;
        let kdim = c * kh * kw;
        let (splits, kchunk) = split_k(tile_count(o, cols), kdim);
        let out = self.split_buffer(OP, &y, splits)?;
        // SAFETY: every global read and write of the conv kernels is guarded by an explicit bounds test
        // (their inputs are sized by the shape checks above); shared-memory indices stay within the tiles.
        unsafe { kern::conv::conv2d::launch_unchecked::<R>(
            &self.client, tiles(o, cols, splits)?, tile_dim(), arr(&x.handle, x.len()), arr(&w.handle, w.len()),
            arr(&out, splits * y.len()), u(c), u(h), u(wd), u(o), u(kh), u(kw), u(ho), u(wo), u(p.stride[0]),
            u(p.stride[1]), u(p.padding[0]), u(p.padding[1]), u(cols), u(kchunk), u(y.len()), rows_per_unit(o),
        ) };
        self.sum_split_parts(&out, &y, splits);
        Ok(y)
    }

    fn conv2d_bwd_data_impl(&self, dy: &CubeTensor, w: &CubeTensor, xs: [usize; 4], p: Conv2dParams) -> Result<CubeTensor> {
        const OP: &str = "conv2d_bwd_data";
        shapes::conv2d_bwd_data(OP, dy.shape(), w.shape(), xs, p)?;
        let [n, c, h, wd] = xs;
        let [o, _, kh, kw] = dims4(w.shape(), OP, "w")?;
        let [_, _, ho, wo] = dims4(dy.shape(), OP, "dy")?;
        let dx = self.alloc(&xs);
        for v in [dy.len(), w.len(), dx.len()] {
            self.u32_of(OP, v)?;
        }
        if dx.is_empty() {
            return Ok(dx);
        }
        let [sh, sw] = p.stride;
        let [ph, pw] = p.padding;
        // One launch per stride phase (a_h, a_w); see the kernel's docs.
        let phase = |a: usize, s: usize, pad: usize, k: usize, len: usize| {
            let first = (a as isize - pad as isize).rem_euclid(s as isize) as usize;
            let count = if first < len { (len - first).div_ceil(s) } else { 0 };
            let taps = if a < k { (k - a).div_ceil(s) } else { 0 };
            let base = (first + pad - a) / s;
            (first, count, taps, base)
        };
        let u = |v: usize| v as u32;
        // Every phase writes its own positions into the same (partial) buffers, so one split count serves
        // all: the one the first (largest) phase wants.
        let (_, t_h0, taps_h0, _) = phase(0, sh, ph, kh, h);
        let (_, t_w0, taps_w0, _) = phase(0, sw, pw, kw, wd);
        let (splits, _) = split_k(tile_count(c, n * t_h0 * t_w0), o * taps_h0 * taps_w0);
        let out = self.split_buffer(OP, &dx, splits)?;
        for a_h in 0..sh {
            let (ih0, t_h, taps_h, base_h) = phase(a_h, sh, ph, kh, h);
            for a_w in 0..sw {
                let (iw0, t_w, taps_w, base_w) = phase(a_w, sw, pw, kw, wd);
                let cols = n * t_h * t_w;
                if cols == 0 {
                    continue;
                }
                let kchunk = (o * taps_h * taps_w).div_ceil(splits).next_multiple_of(TILE_K).max(TILE_K);
                // SAFETY: as conv2d's launch above.
                unsafe { kern::conv::conv2d_bwd_data::launch_unchecked::<R>(
                    &self.client, tiles(c, cols, splits)?, tile_dim(), arr(&dy.handle, dy.len()), arr(&w.handle, w.len()),
                    arr(&out, splits * dx.len()), u(c), u(h), u(wd), u(o), u(kh), u(kw), u(ho), u(wo), u(sh), u(sw), u(a_h),
                    u(a_w), u(taps_h), u(taps_w), u(ih0), u(iw0), u(t_h), u(t_w), u(base_h), u(base_w), u(cols), u(kchunk),
                    u(dx.len()), rows_per_unit(c),
                ) };
            }
        }
        self.sum_split_parts(&out, &dx, splits);
        Ok(dx)
    }

    fn conv2d_bwd_weight_impl(&self, x: &CubeTensor, dy: &CubeTensor, ws: [usize; 4], p: Conv2dParams) -> Result<CubeTensor> {
        const OP: &str = "conv2d_bwd_weight";
        shapes::conv2d_bwd_weight(OP, x.shape(), dy.shape(), ws, p)?;
        let [n, c, h, wd] = dims4(x.shape(), OP, "x")?;
        let [o, _, kh, kw] = ws;
        let [_, _, ho, wo] = dims4(dy.shape(), OP, "dy")?;
        let dw = self.alloc(&ws);
        for v in [x.len(), dy.len(), dw.len()] {
            self.u32_of(OP, v)?;
        }
        let kdim = c * kh * kw;
        let rdim = n * ho * wo;
        if dw.is_empty() {
            return Ok(dw);
        }
        if rdim == 0 {
            self.fill(&dw.handle, dw.len(), 0.0);
            return Ok(dw);
        }
        let (splits, chunk) = split_k(tile_count(o, kdim), rdim);
        let u = |v: usize| v as u32;
        let part = self.split_buffer(OP, &dw, splits)?;
        // SAFETY: as conv2d's launch.
        unsafe { kern::conv::conv2d_bwd_weight::launch_unchecked::<R>(
            &self.client, tiles(o, kdim, splits)?, tile_dim(), arr(&x.handle, x.len()), arr(&dy.handle, dy.len()),
            arr(&part, splits * dw.len()), u(n), u(c), u(h), u(wd), u(o), u(kh), u(kw), u(ho), u(wo), u(p.stride[0]),
            u(p.stride[1]), u(p.padding[0]), u(p.padding[1]), u(chunk), rows_per_unit(o),
        ) };
        self.sum_split_parts(&part, &dw, splits);
        Ok(dw)
    }

    /// Where a split-K GEMM writes: the output itself for one split, else a fresh [splits, len] buffer.
    fn split_buffer(&self, op: &'static str, out: &CubeTensor, splits: usize) -> Result<Handle> {
        if splits == 1 {
            return Ok(out.handle.clone());
        }
        self.u32_of(op, splits * out.len())?;
        Ok(self.buffer(splits * out.len()))
    }

    /// out = Σ of the split-K partials (nothing to do for one split).
    fn sum_split_parts(&self, part: &Handle, out: &CubeTensor, splits: usize) {
        if splits > 1 {
            let len = out.len();
            kern::sum_splits::launch::<R>(
                &self.client, grid(len), block(), arr(part, splits * len), arr(&out.handle, len), splits as u32, len as u32,
            );
        }
    }

    fn pool_impl(&self, op: &'static str, x: &CubeTensor, p: Pool2dParams, is_max: bool, count_include_pad: bool) -> Result<CubeTensor> {
        let ys = shapes_pool::pool2d_out(op, x.shape(), p)?;
        let [_, _, h, w] = dims4(x.shape(), op, "x")?;
        let [_, _, ho, wo] = ys;
        self.check_len(op, x.shape())?;
        let y = self.alloc(&ys);
        let n = y.len();
        if n > 0 {
            let u = |v: usize| v as u32;
            kern::pool::pool2d::launch::<R>(
                &self.client, grid(n), block(), arr(&x.handle, x.len()), arr(&y.handle, n), u(h), u(w), u(ho), u(wo),
                u(p.kernel[0]), u(p.kernel[1]), u(p.stride[0]), u(p.stride[1]), u(p.padding[0]), u(p.padding[1]), is_max,
                count_include_pad,
            );
        }
        Ok(y)
    }

    fn per_channel(&self, part: &Handle, n: usize, c: usize) -> CubeTensor {
        let out = self.alloc(&[c]);
        kern::per_channel_sum::launch::<R>(
            &self.client, grid(c), block(), arr(part, n * c), arr(&out.handle, c), n as u32, c as u32,
        );
        out
    }
}

impl<R: Runtime> Backend for CubeBackend<R> {
    type Tensor = CubeTensor;

    fn sync(&self) -> Result<()> {
        self.guard("sync", || cubecl::future::block_on(self.client.sync()).map_err(|e| self.err(format!("{e:?}"))))
    }
    fn name(&self) -> String {
        self.name.to_string()
    }

    // ------------------------------------------------------------------ memory
    fn upload(&self, t: &Tensor) -> Result<CubeTensor> {
        self.guard("upload", || {
            self.check_len("upload", t.shape())?;
            Ok(CubeTensor { handle: self.upload_slice(t.data()), shape: t.shape().to_vec() })
        })
    }
    fn download(&self, t: &CubeTensor) -> Result<Tensor> {
        self.guard("download", || Tensor::new(&t.shape, self.read(&t.handle, t.len())?))
    }
    fn shape(&self, t: &CubeTensor) -> Vec<usize> {
        t.shape.clone()
    }
    fn full(&self, shape: &[usize], value: f32) -> Result<CubeTensor> {
        self.guard("full", || {
            let n = self.check_len("full", shape)?;
            let t = CubeTensor { handle: self.client.empty(n.max(1) * 4), shape: shape.to_vec() };
            if n > 0 {
                self.fill(&t.handle, n, value);
            }
            Ok(t)
        })
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
        self.guard("add", || self.add_impl("add", a, b))
    }
    fn add_assign(&self, a: &mut CubeTensor, b: &CubeTensor) -> Result<()> {
        *a = self.guard("add_assign", || self.add_impl("add_assign", a, b))?;
        Ok(())
    }
    fn scale(&self, a: &CubeTensor, s: f32) -> Result<CubeTensor> {
        self.guard("scale", || {
            let n = self.check_len("scale", a.shape())?;
            let out = self.alloc(a.shape());
            if n > 0 {
                kern::elementwise::scale::launch::<R>(&self.client, grid(n), block(), arr(&a.handle, n), arr(&out.handle, n), s);
            }
            Ok(out)
        })
    }
    fn lerp_per_sample(&self, a: &CubeTensor, b: &CubeTensor, alpha: &[f32]) -> Result<CubeTensor> {
        const OP: &str = "lerp_per_sample";
        self.guard(OP, || {
            shapes::same(OP, "a", a.shape(), "b", b.shape())?;
            shapes::per_sample(OP, a.shape(), alpha.len())?;
            let (_, per) = batch_dims(OP, a.shape())?;
            let n = self.check_len(OP, a.shape())?;
            let out = self.alloc(a.shape());
            if per == 0 {
                return Ok(out);
            }
            let al = self.upload_slice(alpha);
            kern::elementwise::lerp_per_sample::launch::<R>(
                &self.client, grid(n), block(), arr(&a.handle, n), arr(&b.handle, n), arr(&al, alpha.len()),
                arr(&out.handle, n), per as u32,
            );
            Ok(out)
        })
    }
    fn mean(&self, t: &CubeTensor) -> Result<f64> {
        self.guard("mean", || {
            if t.is_empty() {
                return Err(Error::shape("mean", format!("the mean of an empty tensor {}", fmt_shape(t.shape()))));
            }
            let n = self.check_len("mean", t.shape())?;
            let cubes = partial_cubes(n);
            let part = self.buffer(cubes);
            kern::elementwise::mean::launch::<R>(
                &self.client, CubeCount::Static(cubes as u32, 1, 1), block(), arr(&t.handle, n), arr(&part, cubes),
                BLOCK as usize,
            );
            Ok(self.sum_partials(&part, cubes)? / n as f64)
        })
    }

    // ------------------------------------------------------------------ convolution
    fn conv2d(&self, x: &CubeTensor, w: &CubeTensor, p: Conv2dParams) -> Result<CubeTensor> {
        self.guard("conv2d", || self.conv2d_impl(x, w, p))
    }
    fn conv2d_bwd_data(&self, dy: &CubeTensor, w: &CubeTensor, x_shape: [usize; 4], p: Conv2dParams) -> Result<CubeTensor> {
        self.guard("conv2d_bwd_data", || self.conv2d_bwd_data_impl(dy, w, x_shape, p))
    }
    fn conv2d_bwd_weight(&self, x: &CubeTensor, dy: &CubeTensor, w_shape: [usize; 4], p: Conv2dParams) -> Result<CubeTensor> {
        self.guard("conv2d_bwd_weight", || self.conv2d_bwd_weight_impl(x, dy, w_shape, p))
    }

    // ------------------------------------------------------------------ normalization
    fn batch_norm2d_train(
        &self, x: &CubeTensor, gamma: &CubeTensor, beta: &CubeTensor, running_mean: &mut CubeTensor,
        running_var: &mut CubeTensor, eps: f32, momentum: f32,
    ) -> Result<(CubeTensor, NormStats<CubeTensor>)> {
        const OP: &str = "batch_norm2d_train";
        self.guard(OP, || {
            let (n, c, hw) = planes(OP, x, gamma)?;
            shapes::norm_param(OP, x.shape(), "beta", beta.shape())?;
            shapes::norm_param(OP, x.shape(), "running_mean", running_mean.shape())?;
            shapes::norm_param(OP, x.shape(), "running_var", running_var.shape())?;
            if n * hw < 2 {
                return Err(Error::shape(OP, format!("x {} has one value per channel; training needs more", fmt_shape(x.shape()))));
            }
            let len = self.check_len(OP, x.shape())?;
            let (mean, invstd, rm, rv) = (self.alloc(&[c]), self.alloc(&[c]), self.alloc(&[c]), self.alloc(&[c]));
            kern::norm::batch_norm2d_train_stats::launch::<R>(
                &self.client, groups(c), block(), arr(&x.handle, len), arr(&mean.handle, c), arr(&invstd.handle, c),
                arr(&running_mean.handle, c), arr(&running_var.handle, c), arr(&rm.handle, c), arr(&rv.handle, c), n as u32,
                c as u32, hw as u32, eps, momentum, BLOCK as usize,
            );
            let y = self.alloc(x.shape());
            kern::norm::norm_affine::launch::<R>(
                &self.client, grid(len), block(), arr(&x.handle, len), arr(&mean.handle, c), arr(&invstd.handle, c),
                arr(&gamma.handle, c), arr(&beta.handle, c), arr(&y.handle, len), c as u32, hw as u32, false,
            );
            *running_mean = rm;
            *running_var = rv;
            Ok((y, NormStats { mean, invstd }))
        })
    }
    fn batch_norm2d_eval(
        &self, x: &CubeTensor, gamma: &CubeTensor, beta: &CubeTensor, running_mean: &CubeTensor, running_var: &CubeTensor,
        eps: f32,
    ) -> Result<CubeTensor> {
        const OP: &str = "batch_norm2d_eval";
        self.guard(OP, || {
            let (_, c, hw) = planes(OP, x, gamma)?;
            shapes::norm_param(OP, x.shape(), "beta", beta.shape())?;
            shapes::norm_param(OP, x.shape(), "running_mean", running_mean.shape())?;
            shapes::norm_param(OP, x.shape(), "running_var", running_var.shape())?;
            let len = self.check_len(OP, x.shape())?;
            let y = self.alloc(x.shape());
            kern::norm::batch_norm2d_eval::launch::<R>(
                &self.client, grid(len), block(), arr(&x.handle, len), arr(&running_mean.handle, c),
                arr(&running_var.handle, c), arr(&gamma.handle, c), arr(&beta.handle, c), arr(&y.handle, len), c as u32,
                hw as u32, eps,
            );
            Ok(y)
        })
    }
    fn batch_norm2d_bwd(
        &self, dy: &CubeTensor, x: &CubeTensor, gamma: &CubeTensor, stats: &NormStats<CubeTensor>,
    ) -> Result<NormGrads<CubeTensor>> {
        const OP: &str = "batch_norm2d_bwd";
        self.guard(OP, || {
            shapes::same(OP, "dy", dy.shape(), "x", x.shape())?;
            let (n, c, hw) = planes(OP, x, gamma)?;
            shapes::norm_param(OP, x.shape(), "stats.mean", stats.mean.shape())?;
            shapes::norm_param(OP, x.shape(), "stats.invstd", stats.invstd.shape())?;
            let len = self.check_len(OP, x.shape())?;
            let (dx, dgamma, dbeta) = (self.alloc(x.shape()), self.alloc(&[c]), self.alloc(&[c]));
            kern::norm::batch_norm2d_bwd::launch::<R>(
                &self.client, groups(c), block(), arr(&dy.handle, len), arr(&x.handle, len), arr(&gamma.handle, c),
                arr(&stats.mean.handle, c), arr(&stats.invstd.handle, c), arr(&dx.handle, len), arr(&dgamma.handle, c),
                arr(&dbeta.handle, c), n as u32, c as u32, hw as u32, BLOCK as usize,
            );
            Ok(NormGrads { dx, dgamma, dbeta })
        })
    }
    fn instance_norm2d(
        &self, x: &CubeTensor, gamma: &CubeTensor, beta: &CubeTensor, eps: f32,
    ) -> Result<(CubeTensor, NormStats<CubeTensor>)> {
        const OP: &str = "instance_norm2d";
        self.guard(OP, || {
            let (n, c, hw) = planes(OP, x, gamma)?;
            shapes::norm_param(OP, x.shape(), "beta", beta.shape())?;
            let len = self.check_len(OP, x.shape())?;
            let np = n * c;
            let (y, mean, invstd) = (self.alloc(x.shape()), self.alloc(&[np]), self.alloc(&[np]));
            kern::norm::instance_norm2d::launch::<R>(
                &self.client, groups(np), block(), arr(&x.handle, len), arr(&gamma.handle, c), arr(&beta.handle, c),
                arr(&y.handle, len), arr(&mean.handle, np), arr(&invstd.handle, np), np as u32, c as u32, hw as u32, eps,
                BLOCK as usize,
            );
            Ok((y, NormStats { mean, invstd }))
        })
    }
    fn instance_norm2d_bwd(
        &self, dy: &CubeTensor, x: &CubeTensor, gamma: &CubeTensor, stats: &NormStats<CubeTensor>,
    ) -> Result<NormGrads<CubeTensor>> {
        const OP: &str = "instance_norm2d_bwd";
        self.guard(OP, || {
            shapes::same(OP, "dy", dy.shape(), "x", x.shape())?;
            let (n, c, hw) = planes(OP, x, gamma)?;
            instance_stat(OP, x, "stats.mean", &stats.mean)?;
            instance_stat(OP, x, "stats.invstd", &stats.invstd)?;
            let len = self.check_len(OP, x.shape())?;
            let np = n * c;
            let dx = self.alloc(x.shape());
            let (gp, bp) = (self.buffer(np), self.buffer(np));
            kern::norm::instance_norm2d_bwd::launch::<R>(
                &self.client, groups(np), block(), arr(&dy.handle, len), arr(&x.handle, len), arr(&gamma.handle, c),
                arr(&stats.mean.handle, np), arr(&stats.invstd.handle, np), arr(&dx.handle, len), arr(&gp, np),
                arr(&bp, np), np as u32, c as u32, hw as u32, BLOCK as usize,
            );
            Ok(NormGrads { dx, dgamma: self.per_channel(&gp, n, c), dbeta: self.per_channel(&bp, n, c) })
        })
    }
    fn instance_norm2d_jvp(
        &self, x: &CubeTensor, x_dot: &CubeTensor, gamma: &CubeTensor, stats: &NormStats<CubeTensor>,
    ) -> Result<CubeTensor> {
        const OP: &str = "instance_norm2d_jvp";
        self.guard(OP, || {
            shapes::same(OP, "x_dot", x_dot.shape(), "x", x.shape())?;
            let (n, c, hw) = planes(OP, x, gamma)?;
            instance_stat(OP, x, "stats.mean", &stats.mean)?;
            instance_stat(OP, x, "stats.invstd", &stats.invstd)?;
            let len = self.check_len(OP, x.shape())?;
            let np = n * c;
            let y_dot = self.alloc(x.shape());
            kern::norm::instance_norm2d_jvp::launch::<R>(
                &self.client, groups(np), block(), arr(&x.handle, len), arr(&x_dot.handle, len), arr(&gamma.handle, c),
                arr(&stats.mean.handle, np), arr(&stats.invstd.handle, np), arr(&y_dot.handle, len), np as u32, c as u32,
                hw as u32, BLOCK as usize,
            );
            Ok(y_dot)
        })
    }
    fn instance_norm2d_jvp_bwd(
        &self, x: &CubeTensor, x_dot: &CubeTensor, gamma: &CubeTensor, stats: &NormStats<CubeTensor>, y_bar: &CubeTensor,
        y_dot_bar: &CubeTensor,
    ) -> Result<InstanceNormJvpGrads<CubeTensor>> {
        const OP: &str = "instance_norm2d_jvp_bwd";
        self.guard(OP, || {
            shapes::same(OP, "x_dot", x_dot.shape(), "x", x.shape())?;
            shapes::same(OP, "y_bar", y_bar.shape(), "x", x.shape())?;
            shapes::same(OP, "y_dot_bar", y_dot_bar.shape(), "x", x.shape())?;
            let (n, c, hw) = planes(OP, x, gamma)?;
            instance_stat(OP, x, "stats.mean", &stats.mean)?;
            instance_stat(OP, x, "stats.invstd", &stats.invstd)?;
            let len = self.check_len(OP, x.shape())?;
            let np = n * c;
            let (x_bar, x_dot_bar) = (self.alloc(x.shape()), self.alloc(x.shape()));
            let (gp, bp) = (self.buffer(np), self.buffer(np));
            kern::norm::instance_norm2d_jvp_bwd::launch::<R>(
                &self.client, groups(np), block(), arr(&x.handle, len), arr(&x_dot.handle, len), arr(&gamma.handle, c),
                arr(&stats.mean.handle, np), arr(&stats.invstd.handle, np), arr(&y_bar.handle, len),
                arr(&y_dot_bar.handle, len), arr(&x_bar.handle, len), arr(&x_dot_bar.handle, len), arr(&gp, np),
                arr(&bp, np), np as u32, c as u32, hw as u32, BLOCK as usize,
            );
            Ok(InstanceNormJvpGrads {
                x_bar,
                x_dot_bar,
                dgamma: self.per_channel(&gp, n, c),
                dbeta: self.per_channel(&bp, n, c),
            })
        })
    }

    // ------------------------------------------------------------------ activations
    fn activation(&self, act: Activation, x: &CubeTensor) -> Result<CubeTensor> {
        self.guard("activation", || {
            let n = self.check_len("activation", x.shape())?;
            let y = self.alloc(x.shape());
            if n > 0 {
                let (code, slope) = act_code(act);
                kern::act::activation::launch::<R>(&self.client, grid(n), block(), arr(&x.handle, n), arr(&y.handle, n), slope, code);
            }
            Ok(y)
        })
    }
    fn activation_bwd(&self, act: Activation, x: &CubeTensor, y: &CubeTensor, dy: &CubeTensor) -> Result<CubeTensor> {
        const OP: &str = "activation_bwd";
        self.guard(OP, || {
            shapes::same(OP, "x", x.shape(), "y", y.shape())?;
            shapes::same(OP, "dy", dy.shape(), "x", x.shape())?;
            let n = self.check_len(OP, x.shape())?;
            let dx = self.alloc(x.shape());
            if n > 0 {
                let (code, slope) = act_code(act);
                kern::act::activation_bwd::launch::<R>(
                    &self.client, grid(n), block(), arr(&x.handle, n), arr(&y.handle, n), arr(&dy.handle, n),
                    arr(&dx.handle, n), slope, code,
                );
            }
            Ok(dx)
        })
    }

    // ------------------------------------------------------------------ losses
    fn bce(&self, p: &CubeTensor, target: &CubeTensor) -> Result<(f64, CubeTensor)> {
        self.guard("bce", || {
            shapes::same("bce", "p", p.shape(), "target", target.shape())?;
            if p.is_empty() {
                return Err(Error::shape("bce", format!("the mean over an empty tensor {}", fmt_shape(p.shape()))));
            }
            let n = self.check_len("bce", p.shape())?;
            let cubes = partial_cubes(n);
            let (grad, part) = (self.alloc(p.shape()), self.buffer(cubes));
            kern::loss::bce::launch::<R>(
                &self.client, CubeCount::Static(cubes as u32, 1, 1), block(), arr(&p.handle, n), arr(&target.handle, n),
                arr(&grad.handle, n), arr(&part, cubes), (1.0 / n as f64) as f32, BLOCK as usize,
            );
            Ok((self.sum_partials(&part, cubes)? / n as f64, grad))
        })
    }
    fn bce_logits(&self, logits: &CubeTensor, target: &CubeTensor) -> Result<(f64, CubeTensor)> {
        self.guard("bce_logits", || {
            shapes::same("bce_logits", "logits", logits.shape(), "target", target.shape())?;
            if logits.is_empty() {
                return Err(Error::shape("bce_logits", format!("the mean over an empty tensor {}", fmt_shape(logits.shape()))));
            }
            let n = self.check_len("bce_logits", logits.shape())?;
            let cubes = partial_cubes(n);
            let (grad, part) = (self.alloc(logits.shape()), self.buffer(cubes));
            kern::loss::bce_logits::launch::<R>(
                &self.client, CubeCount::Static(cubes as u32, 1, 1), block(), arr(&logits.handle, n), arr(&target.handle, n),
                arr(&grad.handle, n), arr(&part, cubes), (1.0 / n as f64) as f32, BLOCK as usize,
            );
            Ok((self.sum_partials(&part, cubes)? / n as f64, grad))
        })
    }
    fn gradient_penalty_head(&self, g: &CubeTensor, lambda: f32) -> Result<PenaltyHead<CubeTensor>> {
        const OP: &str = "gradient_penalty_head";
        self.guard(OP, || {
            let (n, per) = batch_dims(OP, g.shape())?;
            if per == 0 {
                return Err(Error::shape(OP, format!("g {} has no elements per sample", fmt_shape(g.shape()))));
            }
            let len = self.check_len(OP, g.shape())?;
            let sq = self.buffer(n);
            kern::loss::gradient_penalty_head_sq_norms::launch::<R>(
                &self.client, groups(n), block(), arr(&g.handle, len), arr(&sq, n), n as u32, per as u32, BLOCK as usize,
            );
            let grad_norm: Vec<f64> = self.read(&sq, n)?.iter().map(|&s| (s as f64).sqrt()).collect();
            let lambda = lambda as f64;
            let gp = lambda * grad_norm.iter().map(|&r| (r - 1.0) * (r - 1.0)).sum::<f64>() / n as f64;
            let k: Vec<f32> =
                grad_norm.iter().map(|&r| if r > 0.0 { (2.0 * lambda * (r - 1.0) / r / n as f64) as f32 } else { 0.0 }).collect();
            let kh = self.upload_slice(&k);
            let v = self.alloc(g.shape());
            kern::loss::gradient_penalty_head_v::launch::<R>(
                &self.client, grid(len), block(), arr(&g.handle, len), arr(&kh, n), arr(&v.handle, len), per as u32,
            );
            Ok(PenaltyHead { gp, grad_norm, v })
        })
    }

    // ------------------------------------------------------------------ optimizer
    fn adam_step(
        &self, param: &mut CubeTensor, grad: &CubeTensor, exp_avg: &mut CubeTensor, exp_avg_sq: &mut CubeTensor,
        cfg: &AdamConfig, step: u64,
    ) -> Result<()> {
        const OP: &str = "adam_step";
        let (p, m, v) = self.guard(OP, || {
            shapes::same(OP, "param", param.shape(), "grad", grad.shape())?;
            shapes::same(OP, "param", param.shape(), "exp_avg", exp_avg.shape())?;
            shapes::same(OP, "param", param.shape(), "exp_avg_sq", exp_avg_sq.shape())?;
            if step == 0 {
                return Err(Error::invalid(OP, "step is 1-based; got 0"));
            }
            let n = self.check_len(OP, param.shape())?;
            let (b1, b2) = (cfg.beta1, cfg.beta2);
            let t = step.min(i32::MAX as u64) as i32;
            let step_size = (cfg.lr / (1.0 - b1.powi(t))) as f32;
            let bc2_sqrt = (1.0 - b2.powi(t)).sqrt() as f32;
            let (p, m, v) = (self.alloc(param.shape()), self.alloc(param.shape()), self.alloc(param.shape()));
            if n > 0 {
                kern::adam::adam_step::launch::<R>(
                    &self.client, grid(n), block(), arr(&param.handle, n), arr(&grad.handle, n), arr(&exp_avg.handle, n),
                    arr(&exp_avg_sq.handle, n), arr(&p.handle, n), arr(&m.handle, n), arr(&v.handle, n), b1 as f32, b2 as f32,
                    (1.0 - b1) as f32, (1.0 - b2) as f32, step_size, bc2_sqrt, cfg.eps as f32,
                );
            }
            Ok((p, m, v))
        })?;
        *param = p;
        *exp_avg = m;
        *exp_avg_sq = v;
        Ok(())
    }

    // ------------------------------------------------------------------ FID's InceptionV3 (forward only)
    fn avg_pool2d(&self, x: &CubeTensor, p: Pool2dParams, count_include_pad: bool) -> Result<CubeTensor> {
        self.guard("avg_pool2d", || self.pool_impl("avg_pool2d", x, p, false, count_include_pad))
    }
    fn max_pool2d(&self, x: &CubeTensor, p: Pool2dParams) -> Result<CubeTensor> {
        self.guard("max_pool2d", || self.pool_impl("max_pool2d", x, p, true, false))
    }
    fn global_avg_pool2d(&self, x: &CubeTensor) -> Result<CubeTensor> {
        const OP: &str = "global_avg_pool2d";
        self.guard(OP, || {
            let [n, c] = shapes_pool::global_pool_out(OP, x.shape())?;
            let len = self.check_len(OP, x.shape())?;
            let y = self.alloc(&[n, c]);
            let np = n * c;
            if np > 0 {
                kern::pool::global_avg_pool2d::launch::<R>(
                    &self.client, groups(np), block(), arr(&x.handle, len), arr(&y.handle, np), np as u32,
                    (len / np) as u32, BLOCK as usize,
                );
            }
            Ok(y)
        })
    }
    fn resize_bilinear(&self, x: &CubeTensor, out_h: usize, out_w: usize) -> Result<CubeTensor> {
        const OP: &str = "resize_bilinear";
        self.guard(OP, || {
            let ys = shapes_pool::resize_out(OP, x.shape(), out_h, out_w)?;
            let [_, _, h, w] = dims4(x.shape(), OP, "x")?;
            self.check_len(OP, x.shape())?;
            let y = self.alloc(&ys);
            let n = self.check_len(OP, &ys)?;
            if n == 0 {
                return Ok(y);
            }
            // PyTorch's source taps, in f64, rounded to f32 weights once (as the cpu backend).
            let (mut idx, mut lam) = (Vec::new(), Vec::new());
            for (len_in, len_out) in [(h, out_h), (w, out_w)] {
                let scale = len_in as f64 / len_out as f64;
                for d in 0..len_out {
                    let src = ((d as f64 + 0.5) * scale - 0.5).max(0.0);
                    let i0 = (src as usize).min(len_in - 1);
                    let i1 = if i0 + 1 < len_in { i0 + 1 } else { i0 };
                    let l1 = src - i0 as f64;
                    idx.extend([i0 as u32, i1 as u32]);
                    lam.extend([(1.0 - l1) as f32, l1 as f32]);
                }
            }
            let idx_h = self.client.create_from_slice(bytemuck::cast_slice(&idx));
            let lam_h = self.upload_slice(&lam);
            let u = |v: usize| v as u32;
            kern::resize::resize_bilinear::launch::<R>(
                &self.client, grid(n), block(), arr(&x.handle, x.len()),
                // SAFETY: idx_h holds exactly idx.len() u32.
                unsafe { ArrayArg::from_raw_parts(idx_h.clone(), idx.len()) },
                arr(&lam_h, lam.len()), arr(&y.handle, n), u(h), u(w), u(out_h), u(out_w),
            );
            Ok(y)
        })
    }
    fn concat_channels(&self, xs: &[&CubeTensor]) -> Result<CubeTensor> {
        const OP: &str = "concat_channels";
        self.guard(OP, || {
            let shapes: Vec<&[usize]> = xs.iter().map(|x| x.shape()).collect();
            let ys = shapes_pool::concat_channels_out(OP, &shapes)?;
            self.check_len(OP, &ys)?;
            let y = self.alloc(&ys);
            let [_, c_total, h, w] = ys;
            let mut offset = 0;
            for x in xs {
                let c = x.shape()[1];
                if !x.is_empty() {
                    kern::channels::concat_channels::launch::<R>(
                        &self.client, grid(x.len()), block(), arr(&x.handle, x.len()), arr(&y.handle, y.len()), c as u32,
                        c_total as u32, offset as u32, (h * w) as u32,
                    );
                }
                offset += c;
            }
            Ok(y)
        })
    }
    fn affine_channels(&self, x: &mut CubeTensor, scale: &CubeTensor, shift: &CubeTensor, relu: bool) -> Result<()> {
        const OP: &str = "affine_channels";
        let y = self.guard(OP, || {
            let [_, c, h, w] = shapes_pool::affine_channels(OP, x.shape(), scale.shape(), shift.shape())?;
            let n = self.check_len(OP, x.shape())?;
            let y = self.alloc(x.shape());
            if n > 0 {
                kern::channels::affine_channels::launch::<R>(
                    &self.client, grid(n), block(), arr(&x.handle, n), arr(&scale.handle, c), arr(&shift.handle, c),
                    arr(&y.handle, n), c as u32, (h * w) as u32, relu,
                );
            }
            Ok(y)
        })?;
        *x = y;
        Ok(())
    }
}

// The cube backend over any runtime's client (the offline CUDA compile check's recording runtime).
mod custom_runtime;
