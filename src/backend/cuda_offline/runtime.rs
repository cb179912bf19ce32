//! A CubeCL runtime with CUDA's compiler that executes nothing and records every kernel launched on it:
//! running the cube backend's real ops over it (at real shapes, instantly) yields exactly the kernels and
//! specializations those ops launch, each as the `CubeTask<CudaCompiler>` the CUDA runtime would compile.
//! Memory lives on the host: reads return what was uploaded, or zeros (no kernel runs).
//!
//! The device properties are an H100's (compute capability 9.0) as cubecl-cuda 0.10 reports them; the
//! kernels' definitions read them only through CubeCL's launch machinery.

use std::sync::{Arc, Mutex};

use cubecl::bytes::Bytes;
use cubecl::client::ComputeClient;
use cubecl::cuda::{CudaCompiler, CudaRuntime};
use cubecl::device::{Device, DeviceId, DeviceService, ServerUtilitiesHandle};
use cubecl::features::Plane;
use cubecl::future::DynFut;
use cubecl::ir::{DeviceProperties, HardwareProperties, MemoryDeviceProperties, TargetProperties, VectorSize};
use cubecl::profile::{ProfileDuration, TimingMethod};
use cubecl::server::{
    Binding, ComputeServer, CopyDescriptor, CubeCount, ExecutionMode, KernelArguments, ProfileError, ProfilingToken, ServerCommunication,
    ServerError, ServerUtilities,
};
use cubecl::stream_id::StreamId;
use cubecl::zspace::{Shape, Strides};
use cubecl::{CubeTask, Runtime};
use cubecl_runtime::allocator::ContiguousMemoryLayoutPolicy;
use cubecl_runtime::id::KernelId;
use cubecl_runtime::logging::ServerLogger;
use cubecl_runtime::memory_management::{
    ManagedMemoryHandle, MemoryAllocationMode, MemoryConfiguration, MemoryManagement, MemoryManagementOptions, MemoryUsage,
};
use cubecl_runtime::storage::{BytesResource, BytesStorage, ManagedResource};
use cubecl_runtime::timestamp_profiler::TimestampProfiler;

/// One distinct kernel (kernel type, comptime arguments, cube size, execution mode) launched on the
/// recording runtime.
pub struct LaunchedKernel {
    /// What CubeCL compiles: `task.compile(&mut CudaCompiler, options, mode, address_type)`.
    pub task: Box<dyn CubeTask<CudaCompiler>>,
    pub id: KernelId,
    pub mode: ExecutionMode,
    /// The Rust type of the kernel, e.g. `cxr_gan_kernels::cube::conv::Conv2d<…>`.
    pub type_name: &'static str,
    /// The first launch's cube count.
    pub first_count: Option<(u32, u32, u32)>,
    pub launches: usize,
    /// The workloads (see [`set_workload`]) that launched it, in order.
    pub workloads: Vec<String>,
}

static LAUNCHED: Mutex<Vec<LaunchedKernel>> = Mutex::new(Vec::new());
static WORKLOAD: Mutex<String> = Mutex::new(String::new());

/// Names what the following launches belong to (call after a sync, so that earlier launches are counted
/// under the earlier name: launches reach the server asynchronously).
pub fn set_workload(name: &str) {
    *WORKLOAD.lock().unwrap_or_else(|p| p.into_inner()) = name.to_string();
}

/// Every distinct kernel recorded so far, in first-launch order (the record is emptied).
pub fn take_launched() -> Vec<LaunchedKernel> {
    std::mem::take(&mut *LAUNCHED.lock().unwrap_or_else(|p| p.into_inner()))
}

fn record(kernel: Box<dyn CubeTask<CudaCompiler>>, count: &CubeCount, mode: ExecutionMode) {
    let id = kernel.id();
    let workload = WORKLOAD.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut launched = LAUNCHED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(k) = launched.iter_mut().find(|k| k.id == id && k.mode == mode) {
        k.launches += 1;
        if !k.workloads.contains(&workload) {
            k.workloads.push(workload);
        }
        return;
    }
    let first_count = match count {
        CubeCount::Static(x, y, z) => Some((*x, *y, *z)),
        CubeCount::Dynamic(_) => None,
    };
    let type_name = kernel.name();
    launched.push(LaunchedKernel { task: kernel, id, mode, type_name, first_count, launches: 1, workloads: vec![workload] });
}

/// The recording runtime (see the module docs).
#[derive(Clone, Debug)]
pub struct RecordingRuntime;

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RecordingDevice;

impl Device for RecordingDevice {
    fn from_id(_: DeviceId) -> Self {
        RecordingDevice
    }
    fn to_id(&self) -> DeviceId {
        DeviceId { type_id: 0, index_id: 0 }
    }
}

#[derive(Debug)]
pub struct RecordingServer {
    memory: MemoryManagement<BytesStorage>,
    timestamps: TimestampProfiler,
    utilities: Arc<ServerUtilities<Self>>,
}

/// An H100 as cubecl-cuda 0.10's `CudaServer::init` describes one (the parts kernels can see).
fn h100_properties(memory: MemoryDeviceProperties) -> DeviceProperties {
    let hardware = HardwareProperties {
        load_width: 128,
        plane_size_min: 32,
        plane_size_max: 32,
        max_bindings: cubecl::cuda::CUDA_MAX_BINDINGS,
        max_shared_memory_size: 227 * 1024,
        max_cube_count: (i32::MAX as u32, u16::MAX as u32, u16::MAX as u32),
        max_units_per_cube: 1024,
        max_cube_dim: (1024, 1024, 64),
        num_streaming_multiprocessors: Some(132),
        num_tensor_cores: Some(4),
        min_tensor_cores_dim: Some(8),
        num_cpu_cores: None,
        max_vector_size: VectorSize::MAX,
    };
    let mut props = DeviceProperties::new(Default::default(), memory, hardware, TimingMethod::System);
    cubecl_cpp::register_supported_types(&mut props);
    props.features.plane.insert(Plane::Ops);
    props.features.plane.insert(Plane::Sync);
    props.features.plane.insert(Plane::NonUniformControlFlow);
    props.features.memory_reinterpret = true;
    props.features.alignment = true;
    props
}

impl DeviceService for RecordingServer {
    fn init(_: DeviceId) -> Self {
        // Host pages are zero-filled lazily by the OS, so large never-written buffers cost no memory.
        let mem = MemoryDeviceProperties { max_page_size: 1 << 30, alignment: 32 };
        let logger = Arc::new(ServerLogger::default());
        let memory = MemoryManagement::from_configuration(
            BytesStorage::default(),
            &mem,
            MemoryConfiguration::default(),
            logger.clone(),
            MemoryManagementOptions::new("recording runtime host memory"),
        );
        let utilities = Arc::new(ServerUtilities::new(h100_properties(mem), logger, (), ContiguousMemoryLayoutPolicy::new(32)));
        RecordingServer { memory, timestamps: TimestampProfiler::default(), utilities }
    }

    fn utilities(&self) -> ServerUtilitiesHandle {
        ComputeServer::utilities(self) as ServerUtilitiesHandle
    }
}

impl ServerCommunication for RecordingServer {
    const SERVER_COMM_ENABLED: bool = false;
}

impl ComputeServer for RecordingServer {
    type Kernel = Box<dyn CubeTask<CudaCompiler>>;
    type Info = ();
    type MemoryLayoutPolicy = ContiguousMemoryLayoutPolicy;
    type Storage = BytesStorage;

    fn initialize_memory(&mut self, memory: ManagedMemoryHandle, size: u64, _: StreamId) {
        // The memory manager fails only past its page limits, which no buffer of ours reaches.
        let reserved = self.memory.reserve(size).expect("host memory for a buffer");
        self.memory.bind(reserved, memory, 0).expect("binding a host buffer");
    }

    fn logger(&self) -> Arc<ServerLogger> {
        self.utilities.logger.clone()
    }

    fn utilities(&self) -> Arc<ServerUtilities<Self>> {
        self.utilities.clone()
    }

    fn read(&mut self, descriptors: Vec<CopyDescriptor>, _: StreamId) -> DynFut<Result<Vec<Bytes>, ServerError>> {
        let bytes: Result<Vec<Bytes>, ServerError> = descriptors
            .into_iter()
            .map(|d| {
                let size = d.handle.size_in_used() as usize;
                let r = self.memory.get_resource(d.handle.memory, d.handle.offset_start, d.handle.offset_end)?;
                Ok(Bytes::from_bytes_vec(r.read()[..size].to_vec()))
            })
            .collect();
        Box::pin(async move { bytes })
    }

    fn write(&mut self, descriptors: Vec<(CopyDescriptor, Bytes)>, _: StreamId) {
        for (d, data) in descriptors {
            if let Ok(mut r) = self.memory.get_resource(d.handle.memory, d.handle.offset_start, d.handle.offset_end) {
                let n = data.len().min(r.read().len());
                r.write()[..n].copy_from_slice(&data[..n]);
            }
        }
    }

    fn sync(&mut self, _: StreamId) -> DynFut<Result<(), ServerError>> {
        Box::pin(async { Ok(()) })
    }

    fn get_resource(&mut self, binding: Binding, _: StreamId) -> Result<ManagedResource<BytesResource>, ServerError> {
        let r = self.memory.get_resource(binding.memory.clone(), binding.offset_start, binding.offset_end)?;
        Ok(ManagedResource::new(binding.memory, r))
    }

    unsafe fn launch(&mut self, kernel: Self::Kernel, count: CubeCount, _: KernelArguments, mode: ExecutionMode, _: StreamId) {
        record(kernel, &count, mode);
    }

    fn flush(&mut self, _: StreamId) -> Result<(), ServerError> {
        Ok(())
    }

    fn memory_usage(&mut self, _: StreamId) -> Result<MemoryUsage, ServerError> {
        Ok(self.memory.memory_usage())
    }

    fn memory_cleanup(&mut self, _: StreamId) {
        self.memory.cleanup(true);
    }

    fn start_profile(&mut self, _: StreamId) -> Result<ProfilingToken, ServerError> {
        Ok(self.timestamps.start())
    }

    fn end_profile(&mut self, _: StreamId, token: ProfilingToken) -> Result<ProfileDuration, ProfileError> {
        self.timestamps.stop(token)
    }

    fn allocation_mode(&mut self, mode: MemoryAllocationMode, _: StreamId) {
        self.memory.mode(mode)
    }
}

impl Runtime for RecordingRuntime {
    type Compiler = CudaCompiler;
    type Server = RecordingServer;
    type Device = RecordingDevice;

    fn client(device: &Self::Device) -> ComputeClient<Self> {
        ComputeClient::load(device)
    }

    fn name(_: &ComputeClient<Self>) -> &'static str {
        "cuda-recording"
    }

    fn require_array_lengths() -> bool {
        CudaRuntime::require_array_lengths()
    }

    fn max_cube_count() -> (u32, u32, u32) {
        CudaRuntime::max_cube_count()
    }

    fn can_read_tensor(shape: &Shape, strides: &Strides) -> bool {
        CudaRuntime::can_read_tensor(shape, strides)
    }

    fn target_properties() -> TargetProperties {
        CudaRuntime::target_properties()
    }

    fn enumerate_devices(_: u16, _: &()) -> Vec<DeviceId> {
        vec![RecordingDevice.to_id()]
    }
}
