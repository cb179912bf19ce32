//! The offline CUDA compile check (issue 12): every kernel the cube backend launches for training (DCGAN,
//! WGAN-GP, paper and demo widths) and FID (InceptionV3), generated as CubeCL 0.10's CUDA source, compiled
//! by NVRTC with CubeCL's own options for each target, and assembled by `ptxas -v`. Fails on a compile
//! error, a register spill, or more than 48 KiB of shared memory. No GPU and no driver are needed.
//!
//! The kernels are not listed by hand: the real ops run on [`runtime::RecordingRuntime`], a CubeCL runtime
//! with CUDA's compiler that records each launched kernel instead of running it.

pub mod compile;
pub mod native;
pub mod report;
pub mod runtime;
pub mod workload;

use std::path::Path;

use cubecl::Runtime;

use crate::backend::cube::CubeBackend;
use runtime::{LaunchedKernel, RecordingDevice, RecordingRuntime};

/// Every distinct kernel the standard workloads launch; the workloads run; those skipped (Inception
/// without its weights file) with why.
pub fn record_kernels(inception_weights: Result<&Path, String>) -> crate::Result<(Vec<LaunchedKernel>, Vec<String>, Vec<String>)> {
    let client = RecordingRuntime::client(&RecordingDevice);
    let b = CubeBackend::over_client_unprobed("cuda-recording", "an H100, recorded (not run)".into(), client);
    runtime::take_launched();
    let (mut ran, mut skipped) = (Vec::new(), Vec::new());
    for w in workload::standard() {
        let weights = match (&w.kind, &inception_weights) {
            (workload::Kind::Inception { .. }, Err(why)) => {
                skipped.push(format!("{}: no weights file ({why})", w.name));
                continue;
            }
            (_, w) => w.as_ref().ok().copied(),
        };
        runtime::set_workload(w.short);
        workload::run(&b, &w, weights).map_err(|e| crate::Error::Other(format!("{}: {e}", w.name)))?;
        ran.push(format!("{}: {}", w.short, w.name));
    }
    Ok((runtime::take_launched(), ran, skipped))
}

/// The check's result: the markdown report, and one line per failure.
pub struct Outcome {
    pub markdown: String,
    pub failures: Vec<String>,
    pub kernels: usize,
    pub compiles: usize,
}

/// Records, compiles with every toolchain for every target in `archs` (10·major + minor), and tabulates.
pub fn check(
    toolchains: &[compile::Toolchain],
    archs: &[u32],
    inception_weights: Result<&Path, String>,
    scratch: &Path,
) -> crate::Result<Outcome> {
    let (kernels, ran, skipped) = record_kernels(inception_weights)?;
    let results = compile::compile_all(&kernels, toolchains, archs, scratch);
    let (table, failures) = report::table(&kernels, &results);
    let compiles = results.iter().map(Vec::len).sum();
    let mut md = String::new();
    md.push_str(&format!(
        "{} kernels launched by the cube backend, each compiled for {} with {} (CubeCL 0.10's CUDA source, its NVRTC options; `ptxas -v`): {} compiles, {}.\n\n",
        kernels.len(),
        archs.iter().map(|&a| compile::arch_name(a)).collect::<Vec<_>>().join(" and "),
        toolchains.iter().map(|t| format!("{} ({})", t.label(), t.nvrtc.path().display())).collect::<Vec<_>>().join(" and "),
        compiles,
        if failures.is_empty() { "all pass (no error, no spill, ≤ 48 KiB shared memory)".to_string() } else { format!("{} FAIL", failures.len()) },
    ));
    md.push_str(&format!("Launched by: {}.\n\n", ran.join("; ")));
    for s in &skipped {
        md.push_str(&format!("Skipped: {s}\n\n"));
    }
    md.push_str(&table);
    md.push_str(
        "\nShared memory is CubeCL's dynamic shared memory plus any static. Occupancy: resident blocks per H100 SM \
         (64K registers, 228 KiB shared memory, 2048 threads, 32 blocks) and the fraction of its 64 warps, from the \
         sm_90a registers.\n",
    );
    for f in &failures {
        md.push_str(&format!("\nFAIL: {f}"));
    }
    Ok(Outcome { markdown: md, failures, kernels: kernels.len(), compiles })
}
