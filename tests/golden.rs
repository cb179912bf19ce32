//! The conformance runner: every golden file (PyTorch / OpenCV / SciPy / pytorch-fid outputs) on the f64
//! oracle and on every backend that exists here, one line per file and backend, then a summary
//! `N passed, M failed, K not checked yet, S skipped`. Fails if any file fails.
//!
//! The files come from `CXR_GAN_GOLDEN_DIR` (default `../shared/golden`); without them the suite says so
//! and skips.

mod common;

use common::reference_backend::ReferenceBackend;
use cxr_gan::backend::cube::{CudaBackend, WgpuBackend};
use cxr_gan::backend::{backend_required, cpu::CpuBackend, Backend, REQUIRE_BACKEND_ENV};
use cxr_gan::conformance::{run_file, Outcome};
use cxr_gan::golden::{self, GoldenFile};

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: Vec<String>,
    not_yet: usize,
    skipped: usize,
}

impl Tally {
    fn record(&mut self, file: &str, backend: &str, outcome: cxr_gan::Result<Outcome>) {
        let label = format!("{file:<42} {backend:<7}");
        match outcome {
            Ok(Outcome::Checked(checks)) => {
                let worst = checks.iter().filter(|c| c.error.is_finite()).map(|c| c.error).fold(0.0, f64::max);
                let bad: Vec<String> = checks.iter().filter(|c| !c.passed).map(|c| format!("{}: {}", c.name, c.detail)).collect();
                if bad.is_empty() {
                    self.passed += 1;
                    println!("{label} pass  ({} outputs, worst error {worst:.2e})", checks.len());
                } else {
                    println!("{label} FAIL  {}", bad.join("; "));
                    self.failed.push(format!("{file} on {backend}"));
                }
            }
            Ok(Outcome::NotCheckedYet(why)) => {
                self.not_yet += 1;
                println!("{label} not checked yet ({why})");
            }
            Ok(Outcome::Skipped(why)) => {
                self.skipped += 1;
                println!("{label} skipped ({why})");
            }
            Err(e) => {
                println!("{label} FAIL  {e}");
                self.failed.push(format!("{file} on {backend}"));
            }
        }
    }
}

fn run_all<B: Backend>(b: &B, f: &GoldenFile, tally: &mut Tally) {
    // The f64 oracle's plain loops take ~30 s per 299×299 Inception image (~5 minutes for these files); the
    // same files are checked on cpu, and the oracle's pooling / resize ops in tests/ops/{pool,resize}.rs.
    if b.name() == "oracle" && f.op.starts_with("inception_fid") {
        let why = "oracle: too slow for the 299×299 Inception (~30 s per image); checked on cpu";
        tally.record(&f.name, &b.name(), Ok(Outcome::Skipped(why.into())));
        return;
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_file(b, f)))
        .unwrap_or_else(|_| Err(cxr_gan::Error::Other("panicked".into())));
    tally.record(&f.name, &b.name(), outcome);
}

/// A cube backend, or `None` after printing why this machine has none (a failure where
/// CXR_GAN_REQUIRE_BACKEND names it).
fn cube_backend<B>(name: &str, b: cxr_gan::Result<B>) -> Option<B> {
    match b {
        Ok(b) => Some(b),
        Err(e) => {
            assert!(!backend_required(name), "{name} is required ({REQUIRE_BACKEND_ENV}) but cannot run here: {e}");
            println!("{name:<7} skipped on every file: {e}");
            None
        }
    }
}

#[test]
fn golden_conformance() {
    let dir = golden::golden_dir();
    let files = match golden::list(&dir) {
        Ok(f) if !f.is_empty() => f,
        _ => {
            println!("skipped: no golden files in {} (set CXR_GAN_GOLDEN_DIR)", dir.display());
            return;
        }
    };
    let oracle = ReferenceBackend;
    let cpu = CpuBackend::new();
    // The cube backend (our CubeCL kernels) on each runtime with a device here; in CI, wgpu on lavapipe.
    let wgpu = cube_backend("wgpu", WgpuBackend::wgpu());
    let cuda = cube_backend("cuda", CudaBackend::cuda());
    let mut tally = Tally::default();
    for path in &files {
        let file = match GoldenFile::open(path) {
            Ok(f) => f,
            Err(e) => {
                tally.record(&path.display().to_string(), "-", Err(e));
                continue;
            }
        };
        if let Some(outcome) = cxr_gan::conformance::run_host_file(&file) {
            tally.record(&file.name, "host", outcome);
            continue;
        }
        run_all(&oracle, &file, &mut tally);
        run_all(&cpu, &file, &mut tally);
        if let Some(b) = &wgpu {
            run_all(b, &file, &mut tally);
        }
        if let Some(b) = &cuda {
            run_all(b, &file, &mut tally);
        }
    }
    println!(
        "\n{} passed, {} failed, {} not checked yet, {} skipped",
        tally.passed, tally.failed.len(), tally.not_yet, tally.skipped
    );
    assert!(tally.failed.is_empty(), "failed: {}", tally.failed.join(", "));
}
