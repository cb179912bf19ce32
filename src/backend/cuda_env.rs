//! Whether CubeCL's CUDA runtime can work on this machine, piece by piece, without panicking: the driver
//! library and its CUDA version, the devices, the NVRTC library CubeCL will compile with (which file, which
//! version, and whether the driver can load the PTX it writes), the CUDA headers CubeCL's kernels include,
//! and the PTX target. [`CudaEnv::probe`] reports; [`CudaEnv::ready`] gives the first blocking reason in one
//! line; [`CudaEnv::prepare`] applies the two fixes a process can make for itself before it creates a
//! CubeCL CUDA client (CUDA_PATH where cubecl-cuda would panic, and the chosen NVRTC preloaded).
//!
//! What CubeCL 0.10 does, which this mirrors (cubecl-cuda `compute/context.rs`, `lib.rs`):
//! * NVRTC is loaded by cudarc 0.19 by *name*, the first of `cudarc::get_lib_name_candidates("nvrtc")` the
//!   dynamic loader opens (`libnvrtc.so`, …, `libnvrtc.so.12`, `.11`, …: never `libnvrtc.so.13`).
//! * Every kernel is compiled with `--gpu-architecture=sm_XY` from the device's compute capability X.Y,
//!   `sm_XYa` from 9.0 on, `--include-path=$ROOT/include` and `-lineinfo`; the source starts with
//!   `#include <cuda_runtime.h>`, which NVRTC does not provide itself. `$ROOT` is `CUDA_PATH`, else
//!   `/usr/local/cuda`, else `/opt/cuda`, else `/usr` when `/usr/bin/nvcc` exists, else cubecl panics
//!   ("CUDA installation not found") inside its server thread.
//! * PTX is JIT-compiled by the driver (`cuModuleLoadData`), which accepts PTX from an NVRTC of at most its
//!   own CUDA version (CUDA's minor-version compatibility covers cubins, not PTX).

use std::fmt;
use std::panic::catch_unwind;
use std::path::{Path, PathBuf};

use super::nvrtc_lib::{builtins_name, first_loadable, load_forever, while_loaded, Nvrtc};

/// A CUDA version, major.minor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CudaVersion {
    pub major: u32,
    pub minor: u32,
}

impl CudaVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        CudaVersion { major, minor }
    }

    /// The encoding of `cuDriverGetVersion` and `CUDART_VERSION`: 1000·major + 10·minor (12080 is 12.8).
    pub fn from_encoded(v: i64) -> Option<Self> {
        (v > 0).then(|| CudaVersion::new((v / 1000) as u32, ((v % 1000) / 10) as u32))
    }
}

impl fmt::Display for CudaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The driver library and the newest CUDA version it supports.
#[derive(Clone, Debug)]
pub struct DriverInfo {
    pub path: PathBuf,
    pub version: CudaVersion,
}

#[derive(Clone, Debug)]
pub struct GpuDevice {
    pub index: usize,
    pub name: String,
    /// Compute capability (major, minor).
    pub capability: (u32, u32),
    pub memory_bytes: usize,
}

/// An NVRTC library on disk.
#[derive(Clone, Debug)]
pub struct NvrtcFound {
    pub path: PathBuf,
    pub version: CudaVersion,
    /// The `sm_XX` targets it compiles for.
    pub archs: Vec<u32>,
    /// `libnvrtc-builtins.so.M.m` beside it (NVRTC cannot compile without it).
    pub builtins: Option<PathBuf>,
}

/// The CUDA headers for CubeCL: the value of `CUDA_PATH` and its `include` folder.
#[derive(Clone, Debug)]
pub struct CudaHeaders {
    pub cuda_path: PathBuf,
    pub include: PathBuf,
    /// CUDART_VERSION of cuda_runtime_api.h.
    pub version: Option<CudaVersion>,
    /// Whether cubecl-cuda finds them by itself (else CUDA_PATH must be set to `cuda_path`).
    pub cubecl_finds_them: bool,
}

/// The PTX target CubeCL will compile for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PtxTarget {
    /// 10·major + minor of the compute capability.
    pub arch: u32,
    /// The NVRTC option value: `sm_80`, `sm_90a`.
    pub name: String,
}

/// Everything [`CudaEnv::probe`] found.
#[derive(Clone, Debug)]
pub struct CudaEnv {
    pub driver: Result<DriverInfo, String>,
    pub devices: Result<Vec<GpuDevice>, String>,
    /// The NVRTC to use (see [`CudaEnv::prepare`]) or why none can be.
    pub nvrtc: Result<NvrtcFound, String>,
    /// The file cudarc loads in a fresh process (by its library names), if any.
    pub nvrtc_cudarc_loads: Option<PathBuf>,
    /// Whether cudarc loads the chosen NVRTC once [`CudaEnv::prepare`] has preloaded it, or why not.
    pub nvrtc_cudarc_after_prepare: Result<(), String>,
    /// Every other NVRTC found, or why it is unusable.
    pub nvrtc_others: Vec<Result<NvrtcFound, (PathBuf, String)>>,
    pub headers: Result<CudaHeaders, String>,
    pub ptx_target: Result<PtxTarget, String>,
    /// A kernel that includes cuda_runtime.h compiled with the chosen NVRTC, headers and target, exactly as
    /// CubeCL compiles (no GPU needed).
    pub test_compile: Result<String, String>,
}

// ====================================================================== the rules (pure)

/// The driver JIT-compiles PTX only from an NVRTC of at most its own CUDA version.
pub fn nvrtc_fits_driver(nvrtc: CudaVersion, driver: CudaVersion) -> Result<(), String> {
    if nvrtc <= driver {
        Ok(())
    } else {
        Err(format!(
            "NVRTC {nvrtc} is newer than the driver's CUDA {driver}: the driver cannot load the PTX it writes \
             (cuModuleLoadData fails); use an NVRTC of CUDA {driver} or older, or a newer driver"
        ))
    }
}

/// CubeCL's target for a device of compute capability `cc` (`sm_XY`, `sm_XYa` from 9.0 on), refused
/// when the NVRTC's list of targets `archs` lacks it (CubeCL does not fall back to an older target).
pub fn ptx_target(cc: (u32, u32), nvrtc: CudaVersion, archs: &[u32]) -> Result<PtxTarget, String> {
    let arch = cc.0 * 10 + cc.1;
    let name = if arch >= 90 { format!("sm_{arch}a") } else { format!("sm_{arch}") };
    if archs.is_empty() {
        return Err(format!("NVRTC {nvrtc} does not list its targets (older than 11.2): use NVRTC 12 or newer"));
    }
    if archs.contains(&arch) {
        return Ok(PtxTarget { arch, name });
    }
    let (lo, hi) = (archs.iter().min().unwrap(), archs.iter().max().unwrap());
    let why = if arch > *hi { "too new for it" } else { "no longer supported by it" };
    Err(format!(
        "the device (compute capability {}.{}) needs {name}, which NVRTC {nvrtc} cannot compile for ({why}; it targets sm_{lo}…sm_{hi})",
        cc.0, cc.1
    ))
}

/// `#define CUDART_VERSION 12090` in cuda_runtime_api.h → 12.9.
pub fn parse_cudart_version(header: &str) -> Option<CudaVersion> {
    header.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("#define")?.trim_start().strip_prefix("CUDART_VERSION")?;
        CudaVersion::from_encoded(rest.trim().parse().ok()?)
    })
}

/// Whether a file name is an NVRTC library (`libnvrtc.so`, `libnvrtc.so.12`, torch's `libnvrtc-1a2b3c.so.12`),
/// not its builtins nor the `.alt` variant.
pub fn is_nvrtc_file(name: &str) -> bool {
    name.starts_with("libnvrtc") && name.contains(".so") && !name.contains("builtins") && !name.contains(".alt.")
}

// ====================================================================== probing

impl CudaEnv {
    /// Probes everything; never panics (a panic inside a probe becomes that piece's error).
    pub fn probe() -> CudaEnv {
        let driver = guarded("probing the CUDA driver", probe_driver);
        let devices = match &driver {
            Ok(_) => guarded("listing CUDA devices", probe_devices),
            Err(_) => Err("none (no driver)".to_string()),
        };
        let nvrtc_cudarc_loads = cudarc_nvrtc();
        let mut found = Vec::new();
        let mut seen = Vec::new();
        for path in nvrtc_files(nvrtc_cudarc_loads.as_deref()) {
            let canon = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            if seen.contains(&canon) {
                continue;
            }
            seen.push(canon);
            found.push(match Nvrtc::open(&path) {
                Ok(n) => Ok(found_of(&n, &path)),
                Err(e) => Err((path, e)),
            });
        }
        let driver_version = driver.as_ref().ok().map(|d| d.version);
        let nvrtc = choose_nvrtc(&found, nvrtc_cudarc_loads.as_deref(), driver_version);
        let nvrtc_others = found
            .into_iter()
            .filter(|f| match (f, &nvrtc) {
                (Ok(f), Ok(c)) => !same_file(&f.path, &c.path),
                _ => true,
            })
            .collect();
        let nvrtc_cudarc_after_prepare = match &nvrtc {
            Ok(n) => while_loaded(&n.path, || cudarc_loads(&n.path)).and_then(|r| r),
            Err(_) => Err("no usable NVRTC".into()),
        };
        let headers = probe_headers(nvrtc.as_ref().ok());
        let device_cc = devices.as_ref().ok().and_then(|d| d.first()).map(|d| d.capability);
        let target = match (&nvrtc, device_cc) {
            (Ok(n), Some(cc)) => ptx_target(cc, n.version, &n.archs),
            (Err(_), Some(_)) => Err("unknown (no usable NVRTC)".into()),
            (_, None) => Err("unknown (no device)".into()),
        };
        // Without a device, compile for sm_80 (the oldest data-centre target both NVRTC 12 and 13 have).
        let compile_target: Result<String, String> = match (&target, &nvrtc) {
            (Ok(t), _) => Ok(t.name.clone()),
            (Err(_), Ok(n)) if device_cc.is_none() => ptx_target((8, 0), n.version, &n.archs).map(|t| t.name),
            (Err(e), _) => Err(e.clone()),
        };
        let compiled = match (&nvrtc, &headers, compile_target) {
            (Ok(n), Ok(h), Ok(t)) => test_compile(&n.path, &h.include, &t),
            (Err(_), _, _) => Err("not run (no usable NVRTC)".into()),
            (_, Err(_), _) => Err("not run (no CUDA headers)".into()),
            (_, _, Err(_)) => Err("not run (no PTX target)".into()),
        };
        CudaEnv {
            driver,
            devices,
            nvrtc,
            nvrtc_cudarc_loads,
            nvrtc_cudarc_after_prepare,
            nvrtc_others,
            headers,
            ptx_target: target,
            test_compile: compiled,
        }
    }

    /// The first reason CubeCL's CUDA runtime cannot work here (after [`CudaEnv::prepare`]), in one line.
    pub fn ready(&self) -> Result<(), String> {
        self.driver.as_ref().map_err(|e| format!("no CUDA driver: {e}"))?;
        match &self.devices {
            Ok(d) if d.is_empty() => return Err("the CUDA driver reports no device".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("no CUDA device: {e}")),
        }
        self.nvrtc.as_ref().map_err(|e| format!("no usable NVRTC: {e}"))?;
        self.nvrtc_cudarc_after_prepare.as_ref().map_err(|e| format!("CubeCL cannot load the NVRTC to use: {e}"))?;
        self.headers.as_ref().map_err(|e| format!("no CUDA headers: {e}"))?;
        self.ptx_target.as_ref().map_err(|e| format!("no PTX target: {e}"))?;
        self.test_compile.as_ref().map_err(|e| format!("NVRTC cannot compile a test kernel: {}", first_line(e)))?;
        Ok(())
    }

    /// The `CUDA_PATH` to set before creating a CubeCL CUDA client, where cubecl-cuda would not find usable
    /// headers by itself (it would panic, or NVRTC would fail on `#include <cuda_runtime.h>`).
    pub fn cuda_path_to_set(&self) -> Option<&Path> {
        self.headers.as_ref().ok().filter(|h| !h.cubecl_finds_them).map(|h| h.cuda_path.as_path())
    }

    /// Makes this process use what the probe chose, before a CubeCL CUDA client is created: sets CUDA_PATH
    /// where cubecl-cuda would not find the headers, and keeps the chosen NVRTC (and its builtins) loaded so
    /// that cudarc's load by name resolves to it. Checks afterwards that cudarc would load that file.
    pub fn prepare(&self) -> Result<(), String> {
        self.ready()?;
        if let Some(p) = self.cuda_path_to_set() {
            std::env::set_var("CUDA_PATH", p);
        }
        let n = self.nvrtc.as_ref().map_err(|e| e.clone())?;
        if let Some(b) = &n.builtins {
            load_forever(b)?;
        }
        load_forever(&n.path)?;
        cudarc_loads(&n.path)
    }
}

/// Whether cudarc's load by name now resolves to `path`.
fn cudarc_loads(path: &Path) -> Result<(), String> {
    match cudarc_nvrtc() {
        Some(p) if same_file(&p, path) => Ok(()),
        Some(p) => Err(format!(
            "cudarc opens {} first (an earlier name on its list): put {}'s folder first on LD_LIBRARY_PATH",
            p.display(),
            path.display()
        )),
        None => Err(format!(
            "cudarc 0.19 (CubeCL's loader) opens NVRTC only by the names libnvrtc.so, libnvrtc.so.12, .11, … and {} is none \
             of them: link it as libnvrtc.so in a folder first on LD_LIBRARY_PATH",
            path.display()
        )),
    }
}

fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, String> + std::panic::UnwindSafe) -> Result<T, String> {
    catch_unwind(f).unwrap_or_else(|_| Err(format!("{what} panicked")))
}

fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or(s).trim()
}

fn same_file(a: &Path, b: &Path) -> bool {
    let c = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    c(a) == c(b)
}

fn probe_driver() -> Result<DriverInfo, String> {
    let names = cudarc::get_lib_name_candidates("cuda");
    let Some((_, path)) = first_loadable(&names, "cuDriverGetVersion") else {
        return Err("no NVIDIA driver library (libcuda.so, libcuda.so.1) on this machine".into());
    };
    let mut v = 0;
    // SAFETY: the library is present (just opened by the same names cudarc uses); cuDriverGetVersion needs
    // no cuInit.
    let st = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut v) };
    if st != cudarc::driver::sys::CUresult::CUDA_SUCCESS {
        return Err(format!("{}: cuDriverGetVersion failed ({st:?})", path.display()));
    }
    let version = CudaVersion::from_encoded(v as i64).ok_or_else(|| format!("{}: cuDriverGetVersion gave {v}", path.display()))?;
    Ok(DriverInfo { path, version })
}

fn probe_devices() -> Result<Vec<GpuDevice>, String> {
    use cudarc::driver::result::{device, init};
    use cudarc::driver::sys::CUdevice_attribute as A;
    init().map_err(|e| format!("cuInit failed: {e:?}"))?;
    let n = device::get_count().map_err(|e| format!("cuDeviceGetCount failed: {e:?}"))?;
    (0..n)
        .map(|i| {
            let d = device::get(i).map_err(|e| format!("cuDeviceGet({i}) failed: {e:?}"))?;
            let name = device::get_name(d).unwrap_or_else(|_| "unnamed".into());
            // SAFETY: `d` is a valid device handle; attributes and memory are read-only queries.
            let (major, minor, mem) = unsafe {
                (
                    device::get_attribute(d, A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR).unwrap_or(0),
                    device::get_attribute(d, A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR).unwrap_or(0),
                    device::total_mem(d).unwrap_or(0),
                )
            };
            Ok(GpuDevice { index: i as usize, name, capability: (major as u32, minor as u32), memory_bytes: mem })
        })
        .collect()
}

/// The NVRTC file cudarc would load now (its names, its order).
fn cudarc_nvrtc() -> Option<PathBuf> {
    first_loadable(&cudarc::get_lib_name_candidates("nvrtc"), "nvrtcVersion").map(|(_, p)| p)
}

fn found_of(n: &Nvrtc, path: &Path) -> NvrtcFound {
    let (major, minor) = n.version();
    NvrtcFound {
        path: path.to_path_buf(),
        version: CudaVersion::new(major, minor),
        archs: n.supported_archs().to_vec(),
        builtins: n.builtins().map(Path::to_path_buf),
    }
}

/// cudarc's file first (if any), then every NVRTC in LD_LIBRARY_PATH, the usual CUDA folders, and pip's
/// nvidia / torch packages.
fn nvrtc_files(cudarc_file: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("LD_LIBRARY_PATH").map(|v| std::env::split_paths(&v).collect()).unwrap_or_default();
    for d in [
        "/usr/local/cuda/lib64",
        "/usr/local/cuda/targets/x86_64-linux/lib",
        "/usr/local/cuda/targets/sbsa-linux/lib",
        "/opt/cuda/lib64",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
    ] {
        dirs.push(d.into());
    }
    for sp in python_package_dirs() {
        for sub in ["nvidia/cuda_nvrtc/lib", "nvidia/cu13/lib", "nvidia/cu12/lib", "torch/lib"] {
            dirs.push(sp.join(sub));
        }
    }
    let mut files: Vec<PathBuf> = cudarc_file.map(Path::to_path_buf).into_iter().collect();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut here: Vec<PathBuf> =
            rd.flatten().map(|e| e.path()).filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(is_nvrtc_file)).collect();
        here.sort();
        files.extend(here);
    }
    files
}

/// site-packages / dist-packages folders: python3's own sys.path, and the usual places.
fn python_package_dirs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(o) = std::process::Command::new("python3")
        .args(["-c", "import sys; print('\\n'.join(p for p in sys.path if p))"])
        .stderr(std::process::Stdio::null())
        .output()
    {
        out.extend(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(PathBuf::from)
                .filter(|p| p.ends_with("site-packages") || p.ends_with("dist-packages")),
        );
    }
    let mut roots: Vec<PathBuf> = vec!["/usr/lib".into(), "/usr/local/lib".into()];
    for var in ["HOME", "VIRTUAL_ENV", "CONDA_PREFIX"] {
        if let Some(v) = std::env::var_os(var) {
            let base = PathBuf::from(v);
            roots.push(if var == "HOME" { base.join(".local/lib") } else { base.join("lib") });
        }
    }
    for r in roots {
        let Ok(rd) = std::fs::read_dir(&r) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with("python3") {
                out.push(e.path().join("site-packages"));
                out.push(e.path().join("dist-packages"));
            }
        }
    }
    out.push("/usr/lib/python3/dist-packages".into());
    let mut uniq = Vec::new();
    for p in out {
        if p.is_dir() && !uniq.contains(&p) {
            uniq.push(p);
        }
    }
    uniq
}

/// cudarc's file when the driver can use its PTX; else the newest one found that it can (preferring one
/// cudarc can load by name); else why none.
fn choose_nvrtc(
    found: &[Result<NvrtcFound, (PathBuf, String)>],
    cudarc_file: Option<&Path>,
    driver: Option<CudaVersion>,
) -> Result<NvrtcFound, String> {
    let usable: Vec<&NvrtcFound> = found.iter().filter_map(|f| f.as_ref().ok()).collect();
    if usable.is_empty() {
        return Err(match found.iter().find_map(|f| f.as_ref().err()) {
            Some((p, why)) => format!("{} cannot be used: {why}", p.display()),
            None => "no NVRTC library (libnvrtc.so*) on LD_LIBRARY_PATH, in the CUDA folders or in pip's nvidia/torch packages; \
                     CubeCL compiles every kernel with it"
                .into(),
        });
    }
    let fits = |n: &NvrtcFound| driver.is_none_or(|d| nvrtc_fits_driver(n.version, d).is_ok());
    if let Some(n) = cudarc_file.and_then(|c| usable.iter().find(|n| same_file(&n.path, c))) {
        if fits(n) {
            return Ok((*n).clone());
        }
    }
    let loadable_name = |n: &NvrtcFound| {
        let name = n.path.file_name().and_then(|s| s.to_str()).unwrap_or("");
        cudarc::get_lib_name_candidates("nvrtc").iter().any(|c| c == name)
    };
    let best = usable.iter().filter(|n| fits(n)).max_by_key(|n| (loadable_name(n), n.version));
    match best {
        Some(n) => Ok((*n).clone()),
        None => {
            let newest = usable.iter().max_by_key(|n| n.version).unwrap();
            let d = driver.expect("fits() only refuses with a driver version");
            Err(format!("{} ({}): {}", newest.path.display(), newest.version, nvrtc_fits_driver(newest.version, d).unwrap_err()))
        }
    }
}

fn header_version(include: &Path) -> Option<CudaVersion> {
    parse_cudart_version(&std::fs::read_to_string(include.join("cuda_runtime_api.h")).ok()?)
}

/// cubecl-cuda's CUDA root when it holds include/cuda_runtime.h; else the best root found elsewhere (the
/// same major version as NVRTC first), which CUDA_PATH must then name.
fn probe_headers(nvrtc: Option<&NvrtcFound>) -> Result<CudaHeaders, String> {
    let cubecl_root = cubecl::cuda::install::cuda_path();
    let has_headers = |root: &Path| root.join("include").join("cuda_runtime.h").is_file();
    let headers = |root: &Path, cubecl_finds_them: bool| {
        let include = root.join("include");
        CudaHeaders { cuda_path: root.to_path_buf(), version: header_version(&include), include, cubecl_finds_them }
    };
    if let Some(r) = cubecl_root.as_deref().filter(|r| has_headers(r)) {
        return Ok(headers(r, true));
    }
    // Beside the NVRTC first (pip's layouts: nvidia/cu13/{lib,include}; nvidia/cuda_nvrtc/lib and
    // nvidia/cuda_runtime/include), then pip's packages, nvcc's folder, /usr/local/cuda-X.Y.
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Some(pkg) = nvrtc.and_then(|n| n.path.parent()).and_then(Path::parent) {
        roots.push(pkg.to_path_buf());
        if let Some(nvidia) = pkg.parent() {
            roots.push(nvidia.join("cuda_runtime"));
        }
    }
    let nvrtc = nvrtc.map(|n| n.version);
    for sp in python_package_dirs() {
        for sub in ["nvidia/cu13", "nvidia/cuda_runtime", "nvidia/cu12"] {
            roots.push(sp.join(sub));
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            if d.join("nvcc").is_file() {
                if let Some(root) = d.parent() {
                    roots.push(root.to_path_buf());
                }
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir("/usr/local") {
        let mut versioned: Vec<PathBuf> = rd.flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().contains("/cuda-")).collect();
        versioned.sort();
        roots.extend(versioned.into_iter().rev());
    }
    let found: Vec<CudaHeaders> = roots.iter().filter(|r| has_headers(r)).map(|r| headers(r, false)).collect();
    let same_major = found.iter().find(|h| nvrtc.is_some_and(|n| h.version.is_some_and(|v| v.major == n.major)));
    if let Some(h) = same_major.or(found.first()) {
        return Ok(h.clone());
    }
    let cubecl = match cubecl_root {
        Some(r) => format!("cubecl-cuda would use {} but it has no include/cuda_runtime.h", r.display()),
        None => {
            "cubecl-cuda would panic (\"CUDA installation not found\": no CUDA_PATH, /usr/local/cuda, /opt/cuda or /usr/bin/nvcc)".into()
        }
    };
    Err(format!(
        "{cubecl}, and no cuda_runtime.h was found elsewhere (pip's nvidia-cuda-runtime packages, nvcc's folder); \
         CubeCL's kernels #include <cuda_runtime.h>"
    ))
}

/// A kernel in the shape of CubeCL's (cuda_runtime.h, extern "C", launch bounds, dynamic shared memory),
/// compiled with CubeCL's options.
fn test_compile(nvrtc: &Path, include: &Path, target: &str) -> Result<String, String> {
    const SOURCE: &str = r#"#include <cuda_runtime.h>
extern "C" __global__ void __launch_bounds__(256) cxr_gan_probe(float* out, unsigned int n) {
    extern __shared__ __align__(16) unsigned char smem[];
    float* s = reinterpret_cast<float*>(smem);
    s[threadIdx.x] = 1.5f;
    __syncthreads();
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) { out[i] = s[threadIdx.x]; }
}
"#;
    let n = Nvrtc::open(nvrtc)?;
    let opts = vec![format!("--gpu-architecture={target}"), format!("--include-path={}", include.display()), "-lineinfo".into()];
    let ptx = n.compile_ptx(SOURCE, &opts)?;
    let isa = ptx.lines().find_map(|l| l.trim().strip_prefix(".version ")).unwrap_or("?").to_string();
    Ok(format!("ok (a kernel including cuda_runtime.h, for {target}: PTX ISA {isa})"))
}

// ====================================================================== the report

fn or_reason<T>(r: &Result<T, String>, f: impl FnOnce(&T) -> String) -> String {
    match r {
        Ok(v) => f(v),
        Err(e) => e.clone(),
    }
}

fn describe_nvrtc(n: &NvrtcFound) -> String {
    let targets = match (n.archs.iter().min(), n.archs.iter().max()) {
        (Some(lo), Some(hi)) => format!("targets sm_{lo}…sm_{hi}"),
        _ => "targets unknown".into(),
    };
    let builtins = match &n.builtins {
        Some(_) => String::new(),
        None => format!("; no {} beside it: NVRTC finds it only through LD_LIBRARY_PATH", builtins_name(n.version.major, n.version.minor)),
    };
    format!("{}: NVRTC {} ({targets}{builtins})", n.path.display(), n.version)
}

impl fmt::Display for CudaEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "CUDA driver:  {}", or_reason(&self.driver, |d| format!("{}: CUDA {}", d.path.display(), d.version)))?;
        match &self.devices {
            Ok(ds) if ds.is_empty() => writeln!(f, "CUDA devices: none")?,
            Ok(ds) => {
                for d in ds {
                    let gib = d.memory_bytes as f64 / (1u64 << 30) as f64;
                    writeln!(
                        f,
                        "CUDA device:  {}: {}, compute capability {}.{}, {gib:.1} GiB",
                        d.index, d.name, d.capability.0, d.capability.1
                    )?;
                }
            }
            Err(e) => writeln!(f, "CUDA devices: {e}")?,
        }
        writeln!(f, "NVRTC:        {}", or_reason(&self.nvrtc, describe_nvrtc))?;
        let cudarc = match (&self.nvrtc_cudarc_loads, &self.nvrtc) {
            (None, _) => "none of its library names opens (libnvrtc.so, libnvrtc.so.12, .11, …; never .so.13)".into(),
            (Some(p), Ok(n)) if same_file(p, &n.path) => format!("{} (the one above)", p.display()),
            (Some(p), Ok(_)) => format!("{} (CubeCL needs the one above: call CudaEnv::prepare first)", p.display()),
            (Some(p), Err(_)) => p.display().to_string(),
        };
        writeln!(f, "NVRTC cudarc: {cudarc}")?;
        if let (Ok(_), Err(e)) = (&self.nvrtc, &self.nvrtc_cudarc_after_prepare) {
            writeln!(f, "NVRTC load:   {e}")?;
        }
        for o in &self.nvrtc_others {
            match o {
                Ok(n) => writeln!(f, "NVRTC also:   {}", describe_nvrtc(n))?,
                Err((p, why)) => writeln!(f, "NVRTC also:   {}: unusable: {why}", p.display())?,
            }
        }
        let headers = or_reason(&self.headers, |h| {
            let v = h.version.map(|v| format!("CUDA {v}")).unwrap_or_else(|| "version unknown".into());
            let how = if h.cubecl_finds_them {
                "cubecl-cuda finds them".to_string()
            } else {
                format!("cubecl-cuda needs CUDA_PATH={}", h.cuda_path.display())
            };
            format!("{} ({v}; {how})", h.include.display())
        });
        writeln!(f, "CUDA headers: {headers}")?;
        let target = or_reason(&self.ptx_target, |t| {
            let nv = self.nvrtc.as_ref().map(|n| format!(", NVRTC {} compiles for it", n.version)).unwrap_or_default();
            let drv = self.driver.as_ref().map(|d| format!(", the driver's CUDA {} loads its PTX", d.version)).unwrap_or_default();
            format!("{}{nv}{drv}", t.name)
        });
        writeln!(f, "PTX target:   {target}")?;
        writeln!(f, "Test compile: {}", or_reason(&self.test_compile, |s| s.clone()).lines().next().unwrap_or(""))?;
        match self.ready() {
            Ok(()) => write!(f, "CUDA:         ready"),
            Err(e) => write!(f, "CUDA:         not ready: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32, minor: u32) -> CudaVersion {
        CudaVersion::new(major, minor)
    }

    /// nvrtcGetSupportedArchs of NVRTC 12.9 and 13.0 (as printed by the PyPI wheels' libraries; the CUDA
    /// 13.0 release notes: Maxwell, Pascal and Volta dropped, sm_101 renamed sm_110).
    const ARCHS_12_9: &[u32] = &[50, 52, 53, 60, 61, 62, 70, 72, 75, 80, 86, 87, 89, 90, 100, 101, 103, 120, 121];
    const ARCHS_13_0: &[u32] = &[75, 80, 86, 87, 88, 89, 90, 100, 103, 110, 120, 121];
    /// CUDA 12.4 stopped at Hopper (Blackwell's sm_100 came with 12.8).
    const ARCHS_12_4: &[u32] = &[50, 52, 53, 60, 61, 62, 70, 72, 75, 80, 86, 87, 89, 90];

    #[test]
    fn driver_version_encoding() {
        // cuDriverGetVersion: "1000 * major + 10 * minor" (CUDA driver API docs); R580 reports 13000.
        assert_eq!(CudaVersion::from_encoded(13000), Some(v(13, 0)));
        assert_eq!(CudaVersion::from_encoded(12080), Some(v(12, 8)));
        assert_eq!(CudaVersion::from_encoded(11040), Some(v(11, 4)));
        assert_eq!(CudaVersion::from_encoded(0), None);
        assert_eq!(v(12, 9).to_string(), "12.9");
    }

    #[test]
    fn cudart_version_from_header() {
        let h = "#ifndef __CUDA_RUNTIME_API_H__\n#define __CUDA_RUNTIME_API_H__\n#define CUDART_VERSION  12090\n";
        assert_eq!(parse_cudart_version(h), Some(v(12, 9)));
        assert_eq!(parse_cudart_version("#define CUDART_VERSION 13000"), Some(v(13, 0)));
        assert_eq!(parse_cudart_version("#define CUDART_VERSION_MAJOR 13"), None);
        assert_eq!(parse_cudart_version("nothing here"), None);
    }

    #[test]
    fn nvrtc_not_newer_than_the_driver() {
        // The GPU machine: driver 580 (CUDA 13.0); PyTorch cu130's NVRTC 13.0 and the cu12 wheel's 12.9 both fit.
        assert!(nvrtc_fits_driver(v(13, 0), v(13, 0)).is_ok());
        assert!(nvrtc_fits_driver(v(12, 9), v(13, 0)).is_ok());
        // Driver 570 (CUDA 12.8) cannot JIT PTX ISA 8.8 from NVRTC 12.9, nor 13.0's.
        let e = nvrtc_fits_driver(v(12, 9), v(12, 8)).unwrap_err();
        assert!(e.contains("NVRTC 12.9") && e.contains("CUDA 12.8") && e.contains("cuModuleLoadData"), "{e}");
        assert!(nvrtc_fits_driver(v(13, 0), v(12, 8)).is_err());
        assert!(nvrtc_fits_driver(v(13, 1), v(13, 0)).is_err());
    }

    #[test]
    fn ptx_target_is_the_devices_own() {
        // H100 / H200: compute capability 9.0 → CubeCL's sm_90a; A100: 8.0 → sm_80; RTX 4090: 8.9 → sm_89.
        assert_eq!(ptx_target((9, 0), v(12, 9), ARCHS_12_9).unwrap(), PtxTarget { arch: 90, name: "sm_90a".into() });
        assert_eq!(ptx_target((9, 0), v(13, 0), ARCHS_13_0).unwrap().name, "sm_90a");
        assert_eq!(ptx_target((8, 0), v(12, 9), ARCHS_12_9).unwrap().name, "sm_80");
        assert_eq!(ptx_target((8, 9), v(12, 9), ARCHS_12_9).unwrap().name, "sm_89");
        // B200 (10.0) with NVRTC 12.4: too new for it.
        let e = ptx_target((10, 0), v(12, 4), ARCHS_12_4).unwrap_err();
        assert!(e.contains("sm_100a") && e.contains("NVRTC 12.4") && e.contains("too new") && e.contains("sm_90"), "{e}");
        // V100 (7.0) with NVRTC 13.0: dropped.
        let e = ptx_target((7, 0), v(13, 0), ARCHS_13_0).unwrap_err();
        assert!(e.contains("sm_70") && e.contains("no longer supported"), "{e}");
        assert!(ptx_target((9, 0), v(11, 1), &[]).is_err());
    }

    #[test]
    fn nvrtc_file_names() {
        for yes in ["libnvrtc.so", "libnvrtc.so.12", "libnvrtc.so.13", "libnvrtc.so.12.9.86", "libnvrtc-672ee683.so.11.2"] {
            assert!(is_nvrtc_file(yes), "{yes}");
        }
        for no in ["libnvrtc-builtins.so.12.9", "libnvrtc.alt.so.12", "libnvrtc_static.a", "libcudart.so.12"] {
            assert!(!is_nvrtc_file(no), "{no}");
        }
    }

    fn found(path: &str, version: CudaVersion) -> Result<NvrtcFound, (PathBuf, String)> {
        Ok(NvrtcFound { path: path.into(), version, archs: ARCHS_13_0.to_vec(), builtins: None })
    }

    #[test]
    fn choosing_an_nvrtc() {
        let both = [found("/x/libnvrtc.so.13", v(13, 0)), found("/y/libnvrtc.so.12", v(12, 9))];
        // Driver 13.0: both fit; prefer the one cudarc can open by name (.so.12), though older.
        assert_eq!(choose_nvrtc(&both, None, Some(v(13, 0))).unwrap().version, v(12, 9));
        // Driver 12.8: neither fits; the reason names the newest and the rule.
        let e = choose_nvrtc(&both, None, Some(v(12, 8))).unwrap_err();
        assert!(e.contains("/x/libnvrtc.so.13") && e.contains("newer than the driver"), "{e}");
        // Only a .so.13: chosen (prepare() then says how to make cudarc load it).
        assert_eq!(choose_nvrtc(&both[..1], None, Some(v(13, 0))).unwrap().version, v(13, 0));
        // Nothing found.
        assert!(choose_nvrtc(&[], None, None).unwrap_err().contains("no NVRTC library"));
    }
}
