//! `cxr-gan devices` (issue 12): a report that names each missing CUDA piece in one line, never panics, and
//! exits 0. Without NVIDIA's driver (this machine, CI) it says so; with NVIDIA's NVRTC wheels on the
//! library path it finds NVRTC and the headers beside it and compiles a test kernel for CUDA.

use std::path::{Path, PathBuf};
use std::process::Command;

const LABELS: [&str; 7] = ["CUDA driver:", "NVRTC:", "NVRTC cudarc:", "CUDA headers:", "PTX target:", "Test compile:", "CUDA:"];

/// `cxr-gan devices` with `LD_LIBRARY_PATH` set to `lib_path` and no CUDA_PATH: (stdout, exit code).
fn devices(lib_path: &str) -> (String, i32) {
    let o = Command::new(env!("CARGO_BIN_EXE_cxr-gan"))
        .arg("devices")
        .env("LD_LIBRARY_PATH", lib_path)
        .env_remove("CUDA_PATH")
        .output()
        .expect("cxr-gan runs");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("panicked"), "devices panicked: {stderr}");
    (String::from_utf8_lossy(&o.stdout).into_owned(), o.status.code().unwrap_or(-1))
}

fn line<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no `{label}` line in:\n{out}"))
}

#[test]
fn names_each_missing_piece_in_one_line() {
    let (out, code) = devices("");
    println!("{out}");
    assert_eq!(code, 0, "a report exits 0");
    for label in LABELS {
        assert_eq!(out.lines().filter(|l| l.starts_with(label)).count(), 1, "one `{label}` line in:\n{out}");
    }
    assert!(line(&out, "Backends:").contains("wgpu:"), "{out}");
    assert!(line(&out, "cuda-native:").contains("cuda-native-emu: always"), "{out}");
    let driver = line(&out, "CUDA driver:");
    if driver.contains("no NVIDIA driver library") {
        // No driver: the verdict says so first; no device, so no target.
        assert!(line(&out, "CUDA:").contains("not ready: no CUDA driver"), "{out}");
        assert!(line(&out, "CUDA devices:").contains("none"), "{out}");
        assert!(line(&out, "PTX target:").contains("no device"), "{out}");
        // The cuda-native backend names the same missing piece; its emulator is always there.
        assert!(line(&out, "cuda-native:").contains("not here: backend cuda-native: no CUDA driver"), "{out}");
    } else {
        assert!(driver.contains("CUDA 1"), "a driver line names its CUDA version: {driver}");
    }
    // With no library path, NVRTC is found only where the system has one.
    if line(&out, "NVRTC:").starts_with("NVRTC:        no NVRTC") {
        assert!(line(&out, "Test compile:").contains("not run"), "{out}");
    }
}

/// The folders of NVIDIA's wheels (scripts/ci-cuda-wheels.sh), if installed.
fn wheel_dirs() -> Vec<PathBuf> {
    std::env::var_os("CXR_GAN_CUDA_WHEELS").map(|v| std::env::split_paths(&v).filter(|p| p.is_dir()).collect()).unwrap_or_default()
}

fn find(dirs: &[PathBuf], sub: &str) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(sub)).find(|p| p.is_dir())
}

#[test]
fn finds_the_wheels_nvrtc_and_headers() {
    let dirs = wheel_dirs();
    let Some(lib12) = find(&dirs, "nvidia/cuda_nvrtc/lib") else {
        println!("skipped: no CUDA 12 NVRTC wheel in $CXR_GAN_CUDA_WHEELS (scripts/ci-cuda-wheels.sh installs it)");
        return;
    };
    let (out, code) = devices(&lib12.to_string_lossy());
    println!("{out}");
    assert_eq!(code, 0);
    let nvrtc = line(&out, "NVRTC:");
    assert!(nvrtc.contains(&format!("{}: NVRTC 12.", Path::new(&lib12).join("libnvrtc.so.12").display())), "{nvrtc}");
    // cudarc loads it by name (libnvrtc.so.12), and the headers beside it (nvidia/cuda_runtime) serve.
    assert!(line(&out, "NVRTC cudarc:").contains("(the one above)"), "{out}");
    assert!(line(&out, "CUDA headers:").contains("cuda_runtime/include"), "{out}");
    assert!(line(&out, "Test compile:").starts_with("Test compile: ok"), "{out}");

    let Some(lib13) = find(&dirs, "nvidia/cu13/lib") else {
        println!("skipped the CUDA 13 half: no CUDA 13 NVRTC wheel in $CXR_GAN_CUDA_WHEELS");
        return;
    };
    let (out, _) = devices(&lib13.to_string_lossy());
    println!("{out}");
    assert!(line(&out, "NVRTC:").contains("NVRTC 13."), "{out}");
    // cudarc 0.19 never opens libnvrtc.so.13: the report says what to do, and the verdict refuses.
    assert!(line(&out, "NVRTC load:").contains("link it as libnvrtc.so"), "{out}");
    assert!(line(&out, "Test compile:").starts_with("Test compile: ok"), "the NVRTC 13 wheel compiles (builtins preloaded): {out}");
}
