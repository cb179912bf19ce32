//! `cxr-gan cuda-compile-check --out FILE [--only cube|native]` (hidden; CI): the offline CUDA compile check of
//! `backend::cuda_offline`, for the cube backend's CubeCL kernels and the cuda-native backend's `.cu` files,
//! with NVRTC, ptxas and the CUDA headers from NVIDIA's PyPI wheels
//! (scripts/ci-cuda-wheels.sh installs them and prints the CXR_GAN_CUDA_WHEELS to set).

use std::path::PathBuf;

use clap::Args;

use crate::backend::cuda_offline::{check, compile::toolchain_in, native};
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
    /// Only the cube backend's kernels (`cube`) or only the cuda-native backend's (`native`); default both.
    #[arg(long, value_parser = ["cube", "native"])]
    pub only: Option<String>,
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
    let weights = weights.as_deref().map_err(|e| e.clone());
    let (mut md, mut failures, mut kernels, mut compiles) = (String::new(), Vec::new(), 0, 0);
    let result = (|| -> Result<()> {
        if a.only.as_deref() != Some("native") {
            let o = check(&toolchains, &a.archs, weights.clone(), &scratch)?;
            md.push_str(&format!("### The cube backend (CubeCL 0.10's CUDA)\n\n{}\n", o.markdown));
            failures.extend(o.failures);
            (kernels, compiles) = (kernels + o.kernels, compiles + o.compiles);
        }
        if a.only.as_deref() != Some("cube") {
            let o = native::check(&toolchains, &a.archs, weights.clone(), &scratch)?;
            md.push_str(&format!("### The cuda-native backend (kernels/cuda/*.cu)\n\n{}\n", o.markdown));
            failures.extend(o.failures);
            (kernels, compiles) = (kernels + o.kernels, compiles + o.compiles);
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result?;
    crate::fsio::write_atomic(&a.out, md.as_bytes())?;
    println!("{kernels} kernels, {compiles} compiles: table in {}", a.out.display());
    if failures.is_empty() {
        println!("all pass: no compile error, no spill, at most 48 KiB of shared memory");
        Ok(())
    } else {
        for f in &failures {
            println!("FAIL: {f}");
        }
        Err(Error::Other(format!("{OP}: {} of {compiles} compiles fail (see {})", failures.len(), a.out.display())))
    }
}
