//! Where the cuda-native backend's kernels run: a CUDA GPU through the driver API (cudarc, no CUDA runtime;
//! kernels compiled by NVRTC at first use, one module per family), or the CPU emulator built from the same
//! `.cu` files (`cxr_gan_kernels::cuda::emulator`), which CI runs every test on. Both take a kernel by name
//! and its arguments as cuLaunchKernel's array of pointers, so the launchers above them are one code path.

use std::collections::HashMap;
use std::ffi::{c_void, CString};
use std::sync::Mutex;

use cudarc::driver::{result as cu, sys};
use cxr_gan_kernels::cuda::{emulator, Family};

use super::launch::{Arg, Dims};
use crate::backend::cuda_env::CudaEnv;
use crate::backend::nvrtc_lib::Nvrtc;

/// A kernel: its family's module and its name there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Kernel {
    pub family: Family,
    pub name: &'static str,
}

impl Kernel {
    pub const fn new(family: Family, name: &'static str) -> Kernel {
        Kernel { family, name }
    }
}

/// The executor of one backend.
pub enum Executor {
    Gpu(Box<Gpu>),
    Emulator {
        workers: u32,
        /// While a graph is being captured: its launches, recorded instead of run (as a CUDA stream capture
        /// records them).
        capturing: Mutex<Option<Vec<Launch>>>,
    },
    /// Runs nothing: records each launch (the offline compile check's list of what the workloads launch).
    /// Memory is fake addresses; downloads read zeros.
    Recorder(Mutex<Recording>),
}

/// What a [`Executor::Recorder`] saw.
#[derive(Default)]
pub struct Recording {
    pub(super) next_address: u64,
    pub launches: Vec<(Kernel, Dims)>,
    /// Whether to launch as on an sm_90a device (wgmma kernels) or on an sm_80 one.
    pub wgmma: bool,
}

/// One recorded launch of the emulator's graph: the kernel, its geometry and its arguments' bytes.
pub struct Launch {
    kernel: Kernel,
    dims: Dims,
    args: Vec<Vec<u8>>,
}

/// A captured sequence of launches, replayed as one unit: a CUDA graph on the GPU (instantiated once, one
/// `cuGraphLaunch` per replay), the recorded list on the emulator.
pub enum Graph {
    Gpu { graph: sys::CUgraph, exec: sys::CUgraphExec, ctx: sys::CUcontext },
    Emulator(Vec<Launch>),
}

// SAFETY: graph handles are driver objects usable from any thread with their context current (replay and drop
// make it current first).
unsafe impl Send for Graph {}
unsafe impl Sync for Graph {}

impl Drop for Graph {
    fn drop(&mut self) {
        if let Graph::Gpu { graph, exec, ctx } = self {
            // SAFETY: created by `end_capture`, destroyed once; a failure leaks, it cannot corrupt.
            unsafe {
                if cu::ctx::set_current(*ctx).is_ok() {
                    let _ = cu::graph::exec_destroy(*exec);
                    let _ = cu::graph::destroy(*graph);
                }
            }
        }
    }
}

/// The NVRTC options for one target (`sm_90a`): exact IEEE f32 (no fast math, no FMA contraction), so the
/// SIMT kernels match the cpu backend to rounding.
pub fn nvrtc_options(target: &str) -> Vec<String> {
    vec![format!("--gpu-architecture={target}"), "--std=c++17".into(), "--fmad=false".into(), "-default-device".into()]
}

/// One CUDA device: its primary context, its modules as they are compiled.
pub struct Gpu {
    ctx: sys::CUcontext,
    /// Every launch goes here (a blocking stream: the synchronous copies on the legacy stream order after
    /// it), so that an iteration can be captured from it as a graph.
    stream: sys::CUstream,
    nvrtc: Nvrtc,
    target: String,
    /// Whether TF32 convolutions use the wgmma kernels (sm_90a, not turned off by CXR_GAN_WGMMA=0).
    wgmma: bool,
    modules: Mutex<HashMap<Family, sys::CUmodule>>,
    functions: Mutex<HashMap<&'static str, sys::CUfunction>>,
    pub description: String,
    pub memory_bytes: usize,
}

// SAFETY: the context and module handles are process-wide driver objects; every use first makes the context
// current on the calling thread, and the maps are behind mutexes.
unsafe impl Send for Gpu {}
unsafe impl Sync for Gpu {}

impl Gpu {
    /// Opens device 0 with what `env` found, or says in one line why it cannot.
    pub fn open(env: &CudaEnv) -> Result<Gpu, String> {
        env.driver.as_ref().map_err(|e| format!("no CUDA driver: {e}"))?;
        let dev = match &env.devices {
            Ok(d) if !d.is_empty() => d[0].clone(),
            Ok(_) => return Err("the CUDA driver reports no device".into()),
            Err(e) => return Err(format!("no CUDA device: {e}")),
        };
        let found = env.nvrtc.as_ref().map_err(|e| format!("no usable NVRTC: {e}"))?;
        let target = env.ptx_target.as_ref().map_err(|e| format!("no PTX target: {e}"))?.name.clone();
        let nvrtc = Nvrtc::open(&found.path)?;
        // SAFETY: the driver is present (probed); device 0 exists; the primary context is retained for the
        // process's life.
        let ctx = unsafe {
            cu::init().map_err(|e| format!("cuInit: {e:?}"))?;
            let d = cu::device::get(0).map_err(|e| format!("cuDeviceGet(0): {e:?}"))?;
            let ctx = cu::primary_ctx::retain(d).map_err(|e| format!("cuDevicePrimaryCtxRetain: {e:?}"))?;
            cu::ctx::set_current(ctx).map_err(|e| format!("cuCtxSetCurrent: {e:?}"))?;
            ctx
        };
        let stream = cu::stream::create(cu::stream::StreamKind::Default).map_err(|e| format!("cuStreamCreate: {e:?}"))?;
        // The wgmma convolutions (v5) on sm_90a, unless CXR_GAN_WGMMA=0 asks for v4's mma.sync there too (to
        // compare the two, or to step round a driver that rejects them).
        let wgmma = target == "sm_90a" && std::env::var("CXR_GAN_WGMMA").map_or(true, |v| v != "0");
        let description = format!(
            "{} (compute capability {}.{}, {} MiB), NVRTC {}.{} → {target}{}",
            dev.name,
            dev.capability.0,
            dev.capability.1,
            dev.memory_bytes >> 20,
            found.version.major,
            found.version.minor,
            if wgmma { ", wgmma" } else { "" }
        );
        Ok(Gpu {
            ctx,
            stream,
            nvrtc,
            target,
            wgmma,
            modules: Mutex::new(HashMap::new()),
            functions: Mutex::new(HashMap::new()),
            description,
            memory_bytes: dev.memory_bytes,
        })
    }

    fn current(&self) -> Result<(), String> {
        // SAFETY: the retained primary context outlives `self`.
        unsafe { cu::ctx::set_current(self.ctx) }.map_err(|e| format!("cuCtxSetCurrent: {e:?}"))
    }

    fn function(&self, k: Kernel) -> Result<sys::CUfunction, String> {
        if let Some(f) = self.functions.lock().unwrap_or_else(|p| p.into_inner()).get(k.name) {
            return Ok(*f);
        }
        let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        let module = match modules.get(&k.family) {
            Some(m) => *m,
            None => {
                let ptx = self
                    .nvrtc
                    .compile_ptx(&k.family.source(), &nvrtc_options(&self.target))
                    .map_err(|log| format!("NVRTC cannot compile kernels/cuda/{}.cu for {}: {log}", k.family.name(), self.target))?;
                let image = CString::new(ptx).map_err(|_| "PTX holds a NUL byte".to_string())?;
                // SAFETY: a NUL-terminated PTX image; the context is current.
                let m = unsafe { cu::module::load_data(image.as_ptr() as *const c_void) }
                    .map_err(|e| format!("cuModuleLoadData of kernels/cuda/{}.cu ({}): {e:?}", k.family.name(), self.target))?;
                modules.insert(k.family, m);
                m
            }
        };
        let name = CString::new(k.name).map_err(|_| "kernel name holds a NUL byte".to_string())?;
        // SAFETY: `module` is loaded and never unloaded.
        let f = unsafe { cu::module::get_function(module, name) }
            .map_err(|e| format!("kernels/cuda/{}.cu has no kernel {}: {e:?}", k.family.name(), k.name))?;
        self.functions.lock().unwrap_or_else(|p| p.into_inner()).insert(k.name, f);
        Ok(f)
    }
}

impl Executor {
    /// Whether the TF32 convolutions use Hopper's wgmma here: a GPU whose modules NVRTC compiles for sm_90a
    /// (unless CXR_GAN_WGMMA=0); the emulator runs them only when a test asks for them.
    pub fn has_wgmma(&self) -> bool {
        match self {
            Executor::Gpu(g) => g.wgmma,
            Executor::Emulator { .. } => false,
            Executor::Recorder(r) => r.lock().map(|r| r.wgmma).unwrap_or(false),
        }
    }

    /// `bytes` (> 0) of device memory.
    pub fn alloc(&self, bytes: usize) -> Result<u64, String> {
        match self {
            Executor::Gpu(g) => {
                g.current()?;
                // SAFETY: the context is current; the pointer is freed once, by `free`.
                unsafe { cu::malloc_sync(bytes) }.map_err(|e| format!("cuMemAlloc of {bytes} bytes: {e:?}"))
            }
            Executor::Emulator { .. } => {
                let layout = host_layout(bytes)?;
                // SAFETY: a non-zero size; freed by `free` with the same layout.
                let p = unsafe { std::alloc::alloc_zeroed(layout) };
                if p.is_null() {
                    Err(format!("out of host memory for {bytes} bytes"))
                } else {
                    Ok(p as u64)
                }
            }
            Executor::Recorder(r) => {
                let mut r = r.lock().unwrap_or_else(|p| p.into_inner());
                r.next_address += (bytes as u64).next_multiple_of(256);
                Ok(r.next_address)
            }
        }
    }

    pub fn free(&self, ptr: u64, bytes: usize) {
        match self {
            Executor::Gpu(g) => {
                if g.current().is_ok() {
                    // SAFETY: allocated by `alloc`, freed once. A failure here leaks, it cannot corrupt.
                    let _ = unsafe { cu::free_sync(ptr) };
                }
            }
            Executor::Emulator { .. } => {
                if let Ok(layout) = host_layout(bytes) {
                    // SAFETY: allocated by `alloc` with this layout, freed once.
                    unsafe { std::alloc::dealloc(ptr as *mut u8, layout) };
                }
            }
            Executor::Recorder(_) => {}
        }
    }

    /// Copies `src` to device memory at `dst` (which holds at least `src.len()` bytes).
    pub fn upload(&self, dst: u64, src: &[u8]) -> Result<(), String> {
        if src.is_empty() {
            return Ok(());
        }
        match self {
            Executor::Gpu(g) => {
                g.current()?;
                // SAFETY: `dst` holds at least src.len() bytes (the caller's buffer).
                unsafe { cu::memcpy_htod_sync(dst, src) }.map_err(|e| format!("cuMemcpyHtoD: {e:?}"))
            }
            Executor::Emulator { .. } => {
                // SAFETY: as above; host memory of the emulator's allocation.
                unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst as *mut u8, src.len()) };
                Ok(())
            }
            Executor::Recorder(_) => Ok(()),
        }
    }

    /// Copies device memory at `src` into `dst` (waits for every launch before it).
    pub fn download(&self, src: u64, dst: &mut [u8]) -> Result<(), String> {
        if dst.is_empty() {
            return Ok(());
        }
        match self {
            Executor::Gpu(g) => {
                g.current()?;
                // SAFETY: `src` holds at least dst.len() bytes; the synchronous copy orders after the launches
                // on the legacy default stream.
                unsafe { cu::memcpy_dtoh_sync(dst, src) }.map_err(|e| format!("cuMemcpyDtoH (or a kernel before it): {e:?}"))
            }
            Executor::Emulator { .. } => {
                // SAFETY: as above.
                unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst.as_mut_ptr(), dst.len()) };
                Ok(())
            }
            Executor::Recorder(_) => {
                dst.fill(0);
                Ok(())
            }
        }
    }

    /// Launches `k` over `dims` with `args` (already checked against CUDA's limits).
    pub fn launch(&self, k: Kernel, dims: Dims, args: &[Arg]) -> Result<(), String> {
        let mut storage: Vec<Vec<u8>> = args.iter().map(|a| a.bytes().to_vec()).collect();
        let mut ptrs: Vec<*mut c_void> = storage.iter_mut().map(|b| b.as_mut_ptr() as *mut c_void).collect();
        match self {
            Executor::Gpu(g) => {
                g.current()?;
                let f = g.function(k)?;
                let t = |a: [u32; 3]| (a[0], a[1], a[2]);
                // SAFETY: one pointer per parameter of `k`, each to bytes of that parameter's C type (the
                // launcher mirrors the kernel's signature); device pointers are live buffers of this context.
                unsafe { cu::launch_kernel(f, t(dims.grid), t(dims.block), 0, g.stream, &mut ptrs) }
                    .map_err(|e| format!("cuLaunchKernel {}: {e:?}", k.name))
            }
            Executor::Emulator { workers, capturing } => {
                if let Some(graph) = capturing.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
                    graph.push(Launch { kernel: k, dims, args: storage });
                    return Ok(());
                }
                // SAFETY: as above; pointers are the emulator's host allocations of the right sizes.
                unsafe { emulator::launch(k.name, dims.grid, dims.block, &mut ptrs, *workers) }
            }
            Executor::Recorder(r) => {
                r.lock().unwrap_or_else(|p| p.into_inner()).launches.push((k, dims));
                Ok(())
            }
        }
    }

    /// Waits for every launch so far (device errors of earlier launches surface here).
    pub fn sync(&self) -> Result<(), String> {
        match self {
            Executor::Gpu(g) => {
                g.current()?;
                cu::ctx::synchronize().map_err(|e| format!("the device failed: {e:?}"))
            }
            Executor::Emulator { .. } | Executor::Recorder(_) => Ok(()),
        }
    }

    /// Starts recording launches instead of running them (CUDA stream capture in relaxed mode, so that
    /// allocations may happen meanwhile; the caller refuses host copies and defers frees until the graph dies).
    pub fn begin_capture(&self) -> Result<(), String> {
        match self {
            Executor::Gpu(g) => {
                g.current()?;
                // SAFETY: the stream is live; every launch goes to it.
                unsafe { cu::stream::begin_capture(g.stream, sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED) }
                    .map_err(|e| format!("cuStreamBeginCapture: {e:?}"))
            }
            Executor::Emulator { capturing, .. } => {
                *capturing.lock().unwrap_or_else(|p| p.into_inner()) = Some(Vec::new());
                Ok(())
            }
            Executor::Recorder(_) => Err("the launch recorder runs nothing, so it captures nothing".into()),
        }
    }

    /// Ends the capture begun by [`Executor::begin_capture`]: the launches since, as a graph ready to replay.
    pub fn end_capture(&self) -> Result<Graph, String> {
        match self {
            Executor::Gpu(g) => {
                g.current()?;
                // SAFETY: a capture is under way on the stream (begin_capture); the graph is instantiated once and
                // destroyed with the returned value.
                unsafe {
                    let graph = cu::stream::end_capture(g.stream).map_err(|e| format!("cuStreamEndCapture: {e:?}"))?;
                    let exec = cu::graph::instantiate(graph, sys::CUgraphInstantiate_flags(0)).map_err(|e| {
                        let _ = cu::graph::destroy(graph);
                        format!("cuGraphInstantiate: {e:?}")
                    })?;
                    Ok(Graph::Gpu { graph, exec, ctx: g.ctx })
                }
            }
            Executor::Emulator { capturing, .. } => capturing
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .map(Graph::Emulator)
                .ok_or_else(|| "no capture is under way".to_string()),
            Executor::Recorder(_) => Err("the launch recorder captures nothing".into()),
        }
    }

    /// Runs every launch of `graph` in order, as one unit.
    pub fn replay(&self, graph: &Graph) -> Result<(), String> {
        match (self, graph) {
            (Executor::Gpu(g), Graph::Gpu { exec, .. }) => {
                g.current()?;
                // SAFETY: the graph was instantiated in this context; its buffers are kept alive with it.
                unsafe { cu::graph::launch(*exec, g.stream) }.map_err(|e| format!("cuGraphLaunch: {e:?}"))
            }
            (Executor::Emulator { workers, .. }, Graph::Emulator(launches)) => {
                for l in launches {
                    let mut storage = l.args.clone();
                    let mut ptrs: Vec<*mut c_void> = storage.iter_mut().map(|b| b.as_mut_ptr() as *mut c_void).collect();
                    // SAFETY: the recorded arguments of a launch that was checked when captured; the buffers
                    // they point to are kept alive with the graph.
                    unsafe { emulator::launch(l.kernel.name, l.dims.grid, l.dims.block, &mut ptrs, *workers) }?;
                }
                Ok(())
            }
            _ => Err("the graph was captured on another executor".into()),
        }
    }
}

fn host_layout(bytes: usize) -> Result<std::alloc::Layout, String> {
    std::alloc::Layout::from_size_align(bytes.max(1), 256).map_err(|e| format!("{bytes} bytes: {e}"))
}
