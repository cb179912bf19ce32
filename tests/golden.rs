//! The conformance runner: every golden file (PyTorch / OpenCV / SciPy / pytorch-fid outputs) on the f64
//! oracle and on every backend that exists here, one line per file and backend, then a summary
//! `N passed, M failed, K not checked yet, S skipped`. Fails if any file fails. The run itself is the
//! library's (`cxr_gan::conformance`, also behind `cxr-gan conformance`); this test adds the oracle.
//!
//! The files come from `CXR_GAN_GOLDEN_DIR` (default `../shared/golden`); without them the suite says so
//! and skips.

mod common;

use common::reference_backend::ReferenceBackend;
use cxr_gan::backend::cube::{CudaBackend, WgpuBackend};
use cxr_gan::backend::cuda_native::CudaNativeBackend;
use cxr_gan::backend::{backend_required, cpu::CpuBackend, REQUIRE_BACKEND_ENV};
use cxr_gan::conformance::{optional_backend, run_files, Subject, Tally};
use cxr_gan::golden;

/// A cube backend, or `None` after printing why this machine has none (a failure where
/// CXR_GAN_REQUIRE_BACKEND names it).
fn cube_backend<B>(name: &str, b: cxr_gan::Result<B>) -> Option<B> {
    optional_backend(name, b, backend_required(name)).unwrap_or_else(|e| panic!("{e} ({REQUIRE_BACKEND_ENV})"))
}

#[test]
fn golden_conformance() {
    let dir = golden::golden_dir();
    match golden::list(&dir) {
        Ok(f) if !f.is_empty() => conformance(&f),
        _ => println!("skipped: no golden files in {} (set CXR_GAN_GOLDEN_DIR)", dir.display()),
    }
}

/// The classifier's ops (pools' and concat's backward, linear, cross-entropy, dropout): golden files made
/// by PyTorch from random tensors with scripts/make_classifier_golden.py, committed under tests/golden/ops.
#[test]
fn classifier_ops_golden_conformance() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/ops");
    let files = golden::list(&dir).expect("tests/golden/ops is part of the repository");
    assert!(files.len() >= 16, "expected the 16 classifier-op golden files in {}", dir.display());
    conformance(&files);
}

fn conformance(files: &[std::path::PathBuf]) {
    let oracle = ReferenceBackend;
    let cpu = CpuBackend::new();
    // The cube backend (our CubeCL kernels) on each runtime with a device here; in CI, wgpu on lavapipe.
    let wgpu = cube_backend("wgpu", WgpuBackend::wgpu());
    let cuda = cube_backend("cuda", CudaBackend::cuda());
    // Our hand-written CUDA kernels: on a GPU where there is one, and always on the CPU emulator.
    let cuda_native = cube_backend("cuda-native", CudaNativeBackend::cuda());
    let cuda_native_emu = CudaNativeBackend::emulator();
    let mut subjects: Vec<&dyn Subject> = vec![&oracle, &cpu, &cuda_native_emu];
    if let Some(b) = &cuda_native {
        subjects.push(b);
    }
    if let Some(b) = &wgpu {
        subjects.push(b);
    }
    if let Some(b) = &cuda {
        subjects.push(b);
    }
    let mut tally = Tally::default();
    run_files(files, &subjects, &mut tally);
    println!("\n{}", tally.summary());
    assert!(tally.failed.is_empty(), "failed: {}", tally.failed.join(", "));
}
