//! Device probing (not an op, so not per backend): `--backend auto` never takes a CPU adapter, and a missing
//! device is an error that names what exists.

use cxr_gan::backend::cube::{CudaBackend, WgpuBackend};
use cxr_gan::Error;

#[test]
fn device_probing_reports_what_exists() {
    let here = cxr_gan::backend::cube::devices_here();
    println!("devices here: {here}");
    assert!(here.contains("cpu: always") && here.contains("wgpu:") && here.contains("cuda:"));
    match WgpuBackend::wgpu_hardware() {
        Ok(b) => println!("hardware wgpu adapter: {}", b.device()),
        Err(e) => {
            let msg = e.to_string();
            assert!(matches!(e, Error::Backend { .. }) && msg.contains("cuda:"), "{msg}");
            println!("no hardware wgpu adapter: {msg}");
        }
    }
    if let Err(e) = CudaBackend::cuda() {
        assert!(matches!(e, Error::Backend { .. }), "{e:?}");
        assert!(e.to_string().contains("wgpu:"), "{e}");
    }
}
