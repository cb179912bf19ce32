//! The offline CUDA compile check as the tests run it: `cxr-gan cuda-compile-check --only <which>` with
//! NVIDIA's NVRTC/ptxas wheels ($CXR_GAN_CUDA_WHEELS, set by .ci/run from scripts/ci-cuda-wheels.sh).

use std::process::Command;

/// The check's markdown table, after asserting that it passed (no compile error, no spill, ≤ 48 KiB of
/// shared memory); None, after printing why, where the wheels are not installed.
pub fn passing_table(which: &str) -> Option<String> {
    let Some(wheels) = std::env::var_os("CXR_GAN_CUDA_WHEELS").filter(|v| !v.is_empty()) else {
        println!(
            "skipped: $CXR_GAN_CUDA_WHEELS is not set (scripts/ci-cuda-wheels.sh installs NVIDIA's NVRTC and ptxas wheels and prints it)"
        );
        return None;
    };
    let out = std::env::temp_dir().join(format!("cxr-gan-cuda-check-{which}-{}.md", std::process::id()));
    let o = Command::new(env!("CARGO_BIN_EXE_cxr-gan"))
        .args(["cuda-compile-check", "--only", which, "--out"])
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
    Some(md)
}
