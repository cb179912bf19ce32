//! `cxr-gan devices`: what each backend can run on here. For CUDA, every piece CubeCL needs, one line each
//! (driver, devices, NVRTC, headers, PTX target, a test compile), and the first reason it cannot run; then
//! whether the cuda-native backend (our CUDA C++) can open a device.
//! Always exits 0: it is a report.

use clap::Args;

use crate::backend::cuda_env::CudaEnv;
use crate::backend::cuda_native::CudaNativeBackend;
use crate::error::Result;

#[derive(Args)]
pub struct DevicesArgs {}

pub fn run(_: DevicesArgs) -> Result<()> {
    println!("{}", CudaEnv::probe());
    println!("Backends:     {}", crate::backend::cube::devices_here());
    let native = match CudaNativeBackend::cuda() {
        Ok(b) => b.device().to_string(),
        Err(e) => format!("not here: {e}"),
    };
    println!("cuda-native:  {native}; cuda-native-emu: always (kernels/cuda on the CPU emulator)");
    Ok(())
}
