//! The cuda-native backend's kernels (kernels/cuda/*.cu) compile offline: every family through NVRTC with the
//! backend's own options for sm_80 and sm_90a, assembled by ptxas without a spill and within 48 KiB of shared
//! memory, and every kernel the backend launches for DCGAN, WGAN-GP and InceptionV3 (recorded at fp32 and tf32)
//! exists in a family. Needs NVIDIA's NVRTC/ptxas wheels ($CXR_GAN_CUDA_WHEELS, set by .ci/run from
//! scripts/ci-cuda-wheels.sh); skips with the reason otherwise.

use std::process::Command;

#[test]
fn every_cuda_native_kernel_compiles_without_spills() {
    let Some(wheels) = std::env::var_os("CXR_GAN_CUDA_WHEELS").filter(|v| !v.is_empty()) else {
        println!(
            "skipped: $CXR_GAN_CUDA_WHEELS is not set (scripts/ci-cuda-wheels.sh installs NVIDIA's NVRTC and ptxas wheels and prints it)"
        );
        return;
    };
    let out = std::env::temp_dir().join(format!("cxr-gan-cuda-native-offline-{}.md", std::process::id()));
    let o = Command::new(env!("CARGO_BIN_EXE_cxr-gan"))
        .args(["cuda-compile-check", "--only", "native", "--out"])
        .arg(&out)
        .env("CXR_GAN_CUDA_WHEELS", &wheels)
        .output()
        .expect("cxr-gan runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    println!("{stdout}{stderr}");
    let md = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    println!("{md}");
    assert!(o.status.success(), "the check failed:\n{stdout}{stderr}");
    assert!(!md.contains("FAIL") && md.contains("all pass"), "{md}");
    // Every family is in the table.
    for family in ["act", "adam", "channels", "conv", "elementwise", "loss", "norm", "pool", "resize"] {
        assert!(md.contains(&format!("\n| {family} | `")), "no kernel of kernels/cuda/{family}.cu in the table");
    }
    assert!(md.contains("| `sum_partials` |"), "the shared reduction is in the table");
}
