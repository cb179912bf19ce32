//! Recorded kernels → CubeCL's CUDA source (per target: the compiler's options depend on it) → NVRTC with
//! CubeCL's options → `ptxas -v` → registers, shared memory, spills. No GPU or driver is involved.

use std::path::{Path, PathBuf};
use std::process::Command;

use cubecl::cuda::CudaCompiler;
use cubecl_cpp::shared::{CompilationOptions, CppSupportedFeatures};
use rayon::prelude::*;

use super::runtime::LaunchedKernel;
use crate::backend::cuda_env::is_nvrtc_file;
use crate::backend::nvrtc_lib::Nvrtc;

/// An NVRTC with the ptxas and the CUDA headers of the same release.
pub struct Toolchain {
    pub nvrtc: Nvrtc,
    pub ptxas: PathBuf,
    pub include: PathBuf,
}

impl Toolchain {
    /// `NVRTC 12.9`.
    pub fn label(&self) -> String {
        let (a, b) = self.nvrtc.version();
        format!("NVRTC {a}.{b}")
    }
}

/// The layouts of NVIDIA's PyPI wheels installed with `pip install --target DIR`: (NVRTC's lib folder,
/// ptxas, the include folder). CUDA 12: nvidia-cuda-{nvrtc,nvcc,runtime}-cu12; CUDA 13: nvidia-cuda-{nvrtc,
/// nvcc,runtime,crt}, all under nvidia/cu13.
const WHEEL_LAYOUTS: [(&str, &str, &str); 2] = [
    ("nvidia/cuda_nvrtc/lib", "nvidia/cuda_nvcc/bin/ptxas", "nvidia/cuda_runtime/include"),
    ("nvidia/cu13/lib", "nvidia/cu13/bin/ptxas", "nvidia/cu13/include"),
];

/// The toolchain installed in `dir` (a pip `--target` folder of NVIDIA's wheels).
pub fn toolchain_in(dir: &Path) -> Result<Toolchain, String> {
    for (lib, ptxas, include) in WHEEL_LAYOUTS {
        let Ok(rd) = std::fs::read_dir(dir.join(lib)) else {
            continue;
        };
        let mut libs: Vec<PathBuf> =
            rd.flatten().map(|e| e.path()).filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(is_nvrtc_file)).collect();
        libs.sort();
        let Some(nvrtc) = libs.first() else { continue };
        let (ptxas, include) = (dir.join(ptxas), dir.join(include));
        if !ptxas.is_file() {
            return Err(format!("{}: NVRTC is there but not {}", dir.display(), ptxas.display()));
        }
        if !include.join("cuda_runtime.h").is_file() {
            return Err(format!("{}: NVRTC is there but not {}/cuda_runtime.h", dir.display(), include.display()));
        }
        return Ok(Toolchain { nvrtc: Nvrtc::open(nvrtc)?, ptxas, include });
    }
    Err(format!("{}: no NVRTC from NVIDIA's wheels (looked in {})", dir.display(), WHEEL_LAYOUTS.map(|l| l.0).join(", ")))
}

/// cubecl-cuda 0.10's compilation options for a device of `arch` (its `CudaServer::init`).
pub fn cubecl_options(arch: u32) -> CompilationOptions {
    CompilationOptions {
        warp_size: 32,
        supports_features: CppSupportedFeatures {
            fast_math: true,
            grid_constants: arch >= 70,
            fast_tanh: arch >= 75 && cudarc::driver::sys::CUDA_VERSION >= 12080,
            clusters: arch >= 90,
            elect_sync: arch >= 90,
        },
    }
}

/// cubecl-cuda's `--gpu-architecture` value.
pub fn arch_name(arch: u32) -> String {
    if arch >= 90 {
        format!("sm_{arch}a")
    } else {
        format!("sm_{arch}")
    }
}

/// What ptxas reports for a kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub registers: u32,
    /// Static shared memory (CubeCL uses dynamic shared memory: see [`Compiled::dynamic_smem`]).
    pub static_smem: u32,
    pub stack: u32,
    pub spill_stores: u32,
    pub spill_loads: u32,
}

/// Parses `ptxas -v` output for one entry function (the last values reported win).
pub fn parse_ptxas(out: &str) -> Option<Resources> {
    let mut r = Resources::default();
    let mut seen = false;
    let num_before = |line: &str, unit: &str| -> Option<u32> {
        let i = line.find(unit)?;
        line[..i].split_whitespace().last()?.parse().ok()
    };
    for line in out.lines() {
        if let Some(v) = num_before(line, " registers") {
            r.registers = v;
            seen = true;
        }
        if let Some(v) = num_before(line, " bytes smem") {
            r.static_smem = v;
        }
        if let Some(v) = num_before(line, " bytes stack frame") {
            r.stack = v;
        }
        if let Some(v) = num_before(line, " bytes spill stores") {
            r.spill_stores = v;
        }
        if let Some(v) = num_before(line, " bytes spill loads") {
            r.spill_loads = v;
        }
    }
    seen.then_some(r)
}

/// One kernel compiled for one target by one toolchain.
pub struct Compiled {
    pub toolchain: String,
    pub arch: u32,
    /// The dynamic shared memory CubeCL launches it with.
    pub dynamic_smem: usize,
    pub result: Result<Resources, String>,
}

/// Compiles `k` for `arch` with `tc`; `scratch` is a folder for the PTX file.
pub fn compile_one(k: &LaunchedKernel, tc: &Toolchain, arch: u32, scratch: &Path, index: usize) -> Compiled {
    let mut dynamic_smem = 0;
    let result = (|| {
        let compiled = k
            .task
            .compile(&mut CudaCompiler::default(), &cubecl_options(arch), k.mode, k.task.address_type())
            .map_err(|e| format!("CubeCL's CUDA compiler failed: {}", e.to_string().lines().next().unwrap_or("")))?;
        dynamic_smem = compiled.repr.as_ref().map_or(0, |r| r.shared_memory_size());
        let mut opts =
            vec![format!("--gpu-architecture={}", arch_name(arch)), format!("--include-path={}", tc.include.display()), "-lineinfo".into()];
        let cccl = tc.include.join("cccl");
        if cccl.exists() {
            opts.push(format!("--include-path={}", cccl.display()));
        }
        let ptx = tc
            .nvrtc
            .compile_ptx(&compiled.source, &opts)
            .map_err(|log| format!("NVRTC: {}", log.lines().take(6).collect::<Vec<_>>().join(" | ")))?;
        let file = scratch.join(format!("k{index}_{}_{arch}.ptx", tc.label().replace([' ', '.'], "_")));
        std::fs::write(&file, ptx).map_err(|e| format!("writing {}: {e}", file.display()))?;
        let out = Command::new(&tc.ptxas)
            .args([format!("-arch={}", arch_name(arch)), "-v".into(), "-o".into(), "/dev/null".into()])
            .arg(&file)
            .output()
            .map_err(|e| format!("running {}: {e}", tc.ptxas.display()))?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            return Err(format!("ptxas: {}", text.lines().take(4).collect::<Vec<_>>().join(" | ")));
        }
        let _ = std::fs::remove_file(&file);
        parse_ptxas(&text).ok_or_else(|| format!("ptxas -v reported no registers: {}", text.trim()))
    })();
    Compiled { toolchain: tc.label(), arch, dynamic_smem, result }
}

/// Every kernel × toolchain × target, in parallel; results[kernel] lists toolchains × targets in order.
pub fn compile_all(kernels: &[LaunchedKernel], toolchains: &[Toolchain], archs: &[u32], scratch: &Path) -> Vec<Vec<Compiled>> {
    kernels
        .par_iter()
        .enumerate()
        .map(|(i, k)| {
            toolchains.iter().flat_map(|tc| archs.iter().map(move |&a| (tc, a))).map(|(tc, a)| compile_one(k, tc, a, scratch, i)).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ptxas_verbose_output() {
        // ptxas 12.9 -v on a CubeCL kernel.
        let out = "ptxas info    : 0 bytes gmem\n\
                   ptxas info    : Compiling entry function 'conv2d_f32' for 'sm_90a'\n\
                   ptxas info    : Function properties for conv2d_f32\n\
                   \x20   8 bytes stack frame, 4 bytes spill stores, 12 bytes spill loads\n\
                   ptxas info    : Used 62 registers, used 1 barriers, 1024 bytes smem, 432 bytes cmem[0]\n";
        let r = parse_ptxas(out).unwrap();
        assert_eq!(r, Resources { registers: 62, static_smem: 1024, stack: 8, spill_stores: 4, spill_loads: 12 });
        assert_eq!(parse_ptxas("ptxas info    : 0 bytes gmem\n"), None);
    }

    #[test]
    fn cubecl_architecture_names() {
        assert_eq!(arch_name(80), "sm_80");
        assert_eq!(arch_name(89), "sm_89");
        assert_eq!(arch_name(90), "sm_90a");
        assert!(cubecl_options(90).supports_features.clusters && !cubecl_options(80).supports_features.clusters);
    }
}
