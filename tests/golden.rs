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

/// cuda-native at `--precision tf32 | bf16` (on the emulator): the convolution files pass at the precision's
/// stated tolerance, though not at their f32 bars (so the reduced-precision kernels really ran), every file
/// without a convolution still passes at its own bars, and the files chaining convolutions through whole
/// models are skipped with a reason (the bench checks those against cpu).
#[test]
fn reduced_precision_conformance_on_the_emulator() {
    use cxr_gan::backend::cuda_native::Precision;
    let dir = golden::golden_dir();
    let files = match golden::list(&dir) {
        Ok(f) if !f.is_empty() => f,
        _ => return println!("skipped: no golden files in {} (set CXR_GAN_GOLDEN_DIR)", dir.display()),
    };
    let name = |p: &std::path::PathBuf| p.file_name().unwrap().to_string_lossy().into_owned();
    let convs: Vec<_> = files.iter().filter(|p| name(p).starts_with("conv")).cloned().collect();
    let chains: Vec<_> = files
        .iter()
        .filter(|p| ["dcgan_step", "wgan_gp_step", "gradient_penalty"].iter().any(|c| name(p).starts_with(c)))
        .cloned()
        .collect();
    let others: Vec<_> = files
        .iter()
        .filter(|p| ["batch_norm2d", "instance_norm2d", "adam", "bce"].iter().any(|c| name(p).starts_with(c)))
        .cloned()
        .collect();
    assert!(convs.len() >= 10 && chains.len() == 3 && !others.is_empty(), "{} conv, {} chain files", convs.len(), chains.len());
    for precision in [Precision::Tf32, Precision::Bf16] {
        let reduced = CudaNativeBackend::emulator().with_precision(precision);
        let mut tally = Tally::default();
        run_files(&convs, &[&reduced], &mut tally);
        assert!(tally.failed.is_empty() && tally.passed == convs.len(), "{}: {}", precision.name(), tally.summary());
        let mut tally = Tally::default();
        run_files(&others, &[&reduced], &mut tally);
        assert!(tally.failed.is_empty() && tally.passed == others.len(), "{}: {}", precision.name(), tally.summary());
        let mut tally = Tally::default();
        run_files(&chains, &[&reduced], &mut tally);
        assert_eq!((tally.skipped, tally.passed, tally.failed.len()), (chains.len(), 0, 0), "{}: {}", precision.name(), tally.summary());
        // Every convolution file's error is beyond its f32 bar somewhere: the tensor-core kernels ran.
        for path in &convs {
            let file = golden::GoldenFile::open(path).unwrap();
            let Ok(cxr_gan::conformance::Outcome::Checked(checks)) = cxr_gan::conformance::run_file(&reduced, &file) else {
                panic!("{}: not checked", name(path))
            };
            let beyond = checks.iter().any(|c| matches!(file.tol[&c.name], golden::Tolerance::Relative(r) if c.error > r));
            assert!(beyond, "{} at {}: within the f32 bars, so no reduced-precision kernel ran", name(path), precision.name());
        }
    }
}
