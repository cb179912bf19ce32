//! `cxr-gan cuda-compile-check --out FILE` (hidden; CI): the offline CUDA compile check of
//! `backend::cuda_offline`, with NVRTC, ptxas and the CUDA headers from NVIDIA's PyPI wheels
//! (scripts/ci-cuda-wheels.sh installs them and prints the CXR_GAN_CUDA_WHEELS to set).

use std::path::PathBuf;

use clap::Args;

use crate::backend::cuda_offline::{check, compile::toolchain_in};
use crate::error::{Error, Result};
use crate::fid::inception::conformance_weights;

/// The folders of NVIDIA's wheels (pip --target), separated by ':'.
pub const WHEELS_ENV: &str = "CXR_GAN_CUDA_WHEELS";

#[derive(Args)]
pub struct CudaCheckArgs {
    /// Where to write the per-kernel table (markdown).
    #[arg(long)]
    pub out: PathBuf,
    /// A folder with NVIDIA's NVRTC, nvcc and runtime wheels (pip install --target); repeatable.
    /// Default: the folders in $CXR_GAN_CUDA_WHEELS.
    #[arg(long)]
    pub wheels: Vec<PathBuf>,
    /// GPU targets as 10·major + minor of the compute capability.
    #[arg(long, value_delimiter = ',', default_value = "80,90")]
    pub archs: Vec<u32>,
    /// InceptionV3's weights (default: $CXR_GAN_FID_WEIGHTS, the repository's, the user cache).
    #[arg(long)]
    pub weights: Option<PathBuf>,
}

pub fn run(a: CudaCheckArgs) -> Result<()> {
    const OP: &str = "cuda-compile-check";
    let dirs: Vec<PathBuf> = if a.wheels.is_empty() {
        std::env::var_os(WHEELS_ENV).map(|v| std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect()).unwrap_or_default()
    } else {
        a.wheels.clone()
    };
    if dirs.is_empty() {
        return Err(Error::invalid(
            OP,
            format!("no toolchain: pass --wheels DIR or set ${WHEELS_ENV} (scripts/ci-cuda-wheels.sh installs NVIDIA's wheels)"),
        ));
    }
    let toolchains = dirs.iter().map(|d| toolchain_in(d)).collect::<std::result::Result<Vec<_>, _>>().map_err(|e| Error::invalid(OP, e))?;
    if a.archs.is_empty() {
        return Err(Error::invalid(OP, "--archs is empty"));
    }
    let weights = match &a.weights {
        Some(p) if p.is_file() => Ok(p.clone()),
        Some(p) => return Err(Error::invalid(OP, format!("--weights {}: no such file", p.display()))),
        None => conformance_weights(),
    };
    let scratch = std::env::temp_dir().join(format!("cxr-gan-cuda-check-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| Error::io(&scratch, e))?;
    let outcome = check(&toolchains, &a.archs, weights.as_deref().map_err(|e| e.clone()), &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    let outcome = outcome?;
    crate::fsio::write_atomic(&a.out, outcome.markdown.as_bytes())?;
    println!("{} kernels, {} compiles: table in {}", outcome.kernels, outcome.compiles, a.out.display());
    if outcome.failures.is_empty() {
        println!("all pass: no compile error, no spill, at most 48 KiB of shared memory");
        Ok(())
    } else {
        for f in &outcome.failures {
            println!("FAIL: {f}");
        }
        Err(Error::Other(format!("{OP}: {} of {} compiles fail (see {})", outcome.failures.len(), outcome.compiles, a.out.display())))
    }
}
