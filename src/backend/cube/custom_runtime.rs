//! The cube backend over a client of any CubeCL runtime, for tools that bring their own runtime (the offline
//! CUDA compile check's recording runtime, `backend::cuda_offline`).

use cubecl::client::ComputeClient;
use cubecl::Runtime;

use super::CubeBackend;

impl<R: Runtime> CubeBackend<R> {
    /// A backend over `client` without the start-up test kernel (a runtime that executes nothing would
    /// fail it); `name` and `device` are what errors and reports call it.
    pub fn over_client_unprobed(name: &'static str, device: String, client: ComputeClient<R>) -> Self {
        let max_buffer = super::device::largest_buffer(&client);
        CubeBackend { client, name, device, poisoned: false, max_buffer, health: Default::default() }
    }
}
