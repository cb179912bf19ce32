//! The devices the cube backend can run on: wgpu adapters and the CUDA driver, probed before a client is
//! made (CubeCL panics when asked for an adapter that does not exist), the backend's constructors, and how
//! a device's limits and failures reach the caller.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock};

use cubecl::client::ComputeClient;
use cubecl::cuda::{CudaDevice, CudaRuntime};
use cubecl::server::ServerError;
use cubecl::wgpu::{AutoGraphicsApi, GraphicsApi, WgpuDevice, WgpuRuntime};
use cubecl::Runtime;

use super::{CubeBackend, DeviceHealth};
use crate::backend::cuda_env::CudaEnv;
use crate::backend::Backend;
use crate::error::{Error, Result};

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

/// Whether CUDA can run here: `Ok(device count)` or the first blocking reason in one line (cached). The
/// probe ([`CudaEnv`]) checks everything CubeCL's CUDA runtime needs, so that it never panics later: the
/// driver and a device, an NVRTC the driver can take PTX from (and that cudarc will load), the CUDA headers
/// cubecl-cuda includes, and a PTX target NVRTC knows.
pub fn cuda_status() -> std::result::Result<usize, String> {
    static STATUS: OnceLock<std::result::Result<usize, String>> = OnceLock::new();
    STATUS
        .get_or_init(|| {
            catch_unwind(|| {
                let env = CudaEnv::probe();
                env.prepare()?;
                Ok(env.devices.as_ref().map_or(0, Vec::len))
            })
            .unwrap_or_else(|_| Err("probing CUDA panicked".into()))
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
        let client =
            catch_unwind(AssertUnwindSafe(client)).map_err(|p| fail(format!("creating the client panicked: {}", panic_text(&*p))))?;
        let max_buffer = largest_buffer(&client);
        let b = CubeBackend {
            client,
            name,
            device: device.clone(),
            poisoned: false,
            max_buffer,
            health: Arc::new(Mutex::new(DeviceHealth::default())),
        };
        let probe = b.full(&[3], 1.5).and_then(|t| b.download(&t));
        match probe {
            Ok(t) if t.data() == [1.5, 1.5, 1.5] => Ok(b),
            Ok(t) => Err(fail(format!("a test kernel returned {:?} instead of [1.5, 1.5, 1.5]", t.data()))),
            Err(e) => Err(fail(format!("a test kernel failed: {e}"))),
        }
    }
}

/// The largest buffer the client's allocator hands out, in bytes: its biggest page, the device's
/// `max_page_size` (wgpu: the adapter's max_storage_buffer_binding_size; CUDA: a quarter of the device's
/// memory) rounded down to the allocation alignment. A larger request fails on CubeCL's device thread
/// (where it is only logged), so every buffer is checked against this first.
pub(super) fn largest_buffer<R: Runtime>(client: &ComputeClient<R>) -> usize {
    let mem = &client.properties().memory;
    let align = mem.alignment.max(1);
    usize::try_from(mem.max_page_size / align * align).unwrap_or(usize::MAX)
}

/// A message for a panic payload.
pub(super) fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

/// What a device reported, on one line: each error's message and causes, without CubeCL's backtraces (and
/// without the "during profiling" preamble CubeCL 0.10 puts before every I/O error).
pub(super) fn device_error_text(e: &ServerError) -> String {
    let text = match e {
        ServerError::ServerUnhealthy { errors, .. } => return errors.iter().map(device_error_text).collect::<Vec<_>>().join("; "),
        ServerError::Io(io) => io.to_string(),
        other => other.to_string(),
    };
    text.lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Backtrace") && *l != "No backtrace available")
        .filter(|l| !l.is_empty() && *l != "Caused by:")
        .collect::<Vec<_>>()
        .join(": ")
}
