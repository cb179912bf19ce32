//! `cxr-gan conformance [--golden DIR] [--backend NAME ...|all] [--require NAME ...] [--only SUBSTRING]`
//!
//! The golden conformance run of `cargo test --test golden`, from the binary alone (what a GPU machine
//! without a Rust toolchain can run): one line per file and backend, then `N passed, M failed, K not
//! checked yet, S skipped`. Runs cpu, wgpu and cuda; the f64 oracle is test-only and is not in the binary.
//! Exits non-zero on any failure, or when a backend named by --require (or CXR_GAN_REQUIRE_BACKEND) cannot
//! run here.

use std::path::PathBuf;

use clap::Args;

use crate::backend::cpu::CpuBackend;
use crate::backend::cube::{CudaBackend, WgpuBackend};
use crate::backend::cuda_native::CudaNativeBackend;
use crate::backend::{backend_required, REQUIRE_BACKEND_ENV};
use crate::conformance::{optional_backend, run_files, Subject, Tally};
use crate::error::{Error, Result};
use crate::golden;

/// The backends this command runs, in the order of the lines it prints.
const BACKENDS: [&str; 5] = ["cpu", "wgpu", "cuda", "cuda-native", "cuda-native-emu"];

#[derive(Args)]
pub struct ConformanceArgs {
    /// The golden files' folder (default: $CXR_GAN_GOLDEN_DIR, else ../shared/golden of the source tree).
    #[arg(long)]
    pub golden: Option<PathBuf>,
    /// cpu, wgpu, cuda, cuda-native, cuda-native-emu or all (repeatable or comma-separated; default all). A backend absent here is
    /// skipped with its reason.
    #[arg(long = "backend", value_delimiter = ',')]
    pub backends: Vec<String>,
    /// A backend that must run (repeatable): its absence is a failure, not a skip. Implies --backend NAME.
    #[arg(long, value_delimiter = ',')]
    pub require: Vec<String>,
    /// Only the files whose name contains this.
    #[arg(long)]
    pub only: Option<String>,
}

pub fn run(a: ConformanceArgs) -> Result<()> {
    let selected = selection(&a.backends, &a.require)?;
    let required = |name: &str| a.require.iter().any(|r| r == name) || backend_required(name);
    let dir = a.golden.unwrap_or_else(golden::golden_dir);
    let mut files =
        golden::list(&dir).map_err(|e| Error::Other(format!("conformance: the golden files (--golden or $CXR_GAN_GOLDEN_DIR): {e}")))?;
    if let Some(only) = &a.only {
        // Asked for by name, the Inception files run on the CUDA emulator too (slow: see the runner).
        if only.contains("inception") {
            std::env::set_var(crate::conformance::EMULATE_INCEPTION_ENV, "1");
        }
        files.retain(|p| p.file_name().is_some_and(|n| n.to_string_lossy().contains(only.as_str())));
    }
    if files.is_empty() {
        let which = a.only.map(|o| format!(" matching `{o}`")).unwrap_or_default();
        return Err(Error::Other(format!("conformance: no golden files{which} in {}", dir.display())));
    }
    println!("{} golden files in {}; backends: {}", files.len(), dir.display(), selected.join(", "));
    println!("oracle  not in this binary (the f64 oracle is test-only: cargo test --release --test golden)");

    let mut tally = Tally::default();
    let want = |name: &str| selected.contains(&name);
    let cpu = want("cpu").then(CpuBackend::new);
    let wgpu = if want("wgpu") { start("wgpu", WgpuBackend::wgpu(), required("wgpu"), &mut tally) } else { None };
    let cuda = if want("cuda") { start("cuda", CudaBackend::cuda(), required("cuda"), &mut tally) } else { None };
    let native = if want("cuda-native") {
        start(
            "cuda-native",
            CudaNativeBackend::cuda().map(|b| b.with_precision(crate::backend::precision())),
            required("cuda-native"),
            &mut tally,
        )
    } else {
        None
    };
    let native_emu = want("cuda-native-emu").then(|| CudaNativeBackend::emulator().with_precision(crate::backend::precision()));
    let mut subjects: Vec<&dyn Subject> = Vec::new();
    if let Some(b) = &cpu {
        subjects.push(b);
    }
    if let Some(b) = &wgpu {
        subjects.push(b);
    }
    if let Some(b) = &cuda {
        subjects.push(b);
    }
    if let Some(b) = &native {
        subjects.push(b);
    }
    if let Some(b) = &native_emu {
        subjects.push(b);
    }
    run_files(&files, &subjects, &mut tally);
    println!("\n{}", tally.summary());
    if tally.failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Other(format!("conformance failed: {}", tally.failed.join(", "))))
    }
}

/// A cube backend, or `None` after printing why it cannot run here (counted as a failure where required).
fn start<B>(name: &str, backend: Result<B>, required: bool, tally: &mut Tally) -> Option<B> {
    optional_backend(name, backend, required).unwrap_or_else(|e| {
        println!("{name:<7} FAIL  {e} (--require / {REQUIRE_BACKEND_ENV})");
        tally.failed.push(format!("{name} (required) on every file"));
        None
    })
}

/// The backends to run: those named (all when none is), plus the required ones, in [`BACKENDS`] order.
fn selection(named: &[String], required: &[String]) -> Result<Vec<&'static str>> {
    for n in named.iter().chain(required) {
        if n != "all" && !BACKENDS.contains(&n.as_str()) {
            let oracle = if n == "oracle" { " (the f64 oracle is test-only: cargo test --release --test golden)" } else { "" };
            return Err(Error::invalid("conformance", format!("unknown backend `{n}`{oracle}; choose from {}, all", BACKENDS.join(", "))));
        }
    }
    let all = named.is_empty() || named.iter().any(|n| n == "all");
    Ok(BACKENDS.into_iter().filter(|b| all || named.iter().chain(required).any(|n| n == b)).collect())
}
