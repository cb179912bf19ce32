//! NVRTC opened from one named file, so that a report names the library and version it used and a check can
//! compare several NVRTCs in one process. (CubeCL loads NVRTC through cudarc by library *name*; which file
//! that resolves to is [`first_loadable`] over cudarc's names, see `cuda_env`.)

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};

type Status = c_int;
type Program = *mut c_void;

/// An NVRTC library loaded from a file (unloaded on drop).
pub struct Nvrtc {
    path: PathBuf,
    version: (u32, u32),
    archs: Vec<u32>,
    builtins: Option<PathBuf>,
    /// NVRTC, then its builtins: closed in that order when dropped.
    _handles: Vec<Handle>,
    f: Fns,
}

// nvrtc.h's signatures of the functions used here.
type CreateFn =
    unsafe extern "C" fn(*mut Program, *const c_char, *const c_char, c_int, *const *const c_char, *const *const c_char) -> Status;
type CompileFn = unsafe extern "C" fn(Program, c_int, *const *const c_char) -> Status;
type SizeFn = unsafe extern "C" fn(Program, *mut usize) -> Status;
type TextFn = unsafe extern "C" fn(Program, *mut c_char) -> Status;
type DestroyFn = unsafe extern "C" fn(*mut Program) -> Status;
type VersionFn = unsafe extern "C" fn(*mut c_int, *mut c_int) -> Status;

struct Fns {
    create: CreateFn,
    compile: CompileFn,
    log_size: SizeFn,
    log: TextFn,
    ptx_size: SizeFn,
    ptx: TextFn,
    destroy: DestroyFn,
}

/// A `dlopen` handle, closed on drop.
struct Handle(*mut c_void);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from a successful dlopen and is closed once.
        unsafe { libc::dlclose(self.0) };
    }
}

// SAFETY: the handles are only used to look symbols up and to close them; NVRTC's API is thread-safe per
// program, and every program lives inside one `compile_ptx` call.
unsafe impl Send for Nvrtc {}
unsafe impl Sync for Nvrtc {}

fn dl_error() -> String {
    // SAFETY: dlerror returns null or a C string valid until the next dl* call on this thread.
    unsafe {
        let e = libc::dlerror();
        if e.is_null() {
            "unknown dlopen error".into()
        } else {
            CStr::from_ptr(e).to_string_lossy().into_owned()
        }
    }
}

fn open(name: &str, flags: c_int) -> Result<Handle, String> {
    let c = CString::new(name).map_err(|_| format!("{name}: a NUL in the name"))?;
    // SAFETY: dlopen with a valid C string; a null result is an error.
    let h = unsafe { libc::dlopen(c.as_ptr(), flags) };
    if h.is_null() {
        Err(dl_error())
    } else {
        Ok(Handle(h))
    }
}

fn symbol(h: &Handle, name: &str) -> Option<*mut c_void> {
    let c = CString::new(name).ok()?;
    // SAFETY: dlsym on a live handle.
    let p = unsafe { libc::dlsym(h.0, c.as_ptr()) };
    (!p.is_null()).then_some(p)
}

/// The file a loaded symbol lives in.
fn file_of(addr: *mut c_void) -> Option<PathBuf> {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr fills `info` for an address inside a loaded object.
    if unsafe { libc::dladdr(addr, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dli_fname is a C string owned by the loader.
    let name = unsafe { CStr::from_ptr(info.dli_fname) }.to_string_lossy().into_owned();
    Some(std::fs::canonicalize(&name).unwrap_or_else(|_| PathBuf::from(name)))
}

/// The first of `names` that the dynamic loader opens, as cudarc tries them (same names, same order, so
/// the same file), and the file it resolved to (through the address of `symbol`).
pub fn first_loadable(names: &[String], symbol_name: &str) -> Option<(String, PathBuf)> {
    names.iter().find_map(|n| {
        let h = open(n, libc::RTLD_LAZY | libc::RTLD_LOCAL).ok()?;
        let path = symbol(&h, symbol_name).and_then(file_of).unwrap_or_else(|| PathBuf::from(n));
        Some((n.clone(), path))
    })
}

/// Keeps the library at `path` loaded for the rest of the process (RTLD_GLOBAL), so that a later `dlopen`
/// by its soname (cudarc's, NVRTC's of its builtins) finds this file rather than searching.
pub fn load_forever(path: &Path) -> Result<(), String> {
    let h = open(&path.to_string_lossy(), libc::RTLD_NOW | libc::RTLD_GLOBAL)?;
    std::mem::forget(h);
    Ok(())
}

/// Runs `f` while the library at `path` is loaded (closed afterwards unless something else holds it).
pub fn while_loaded<T>(path: &Path, f: impl FnOnce() -> T) -> Result<T, String> {
    let _h = open(&path.to_string_lossy(), libc::RTLD_NOW | libc::RTLD_LOCAL)?;
    Ok(f())
}

/// NVRTC's builtins library, which it loads by name at its first compile: `libnvrtc-builtins.so.M.m`.
pub fn builtins_name(major: u32, minor: u32) -> String {
    format!("libnvrtc-builtins.so.{major}.{minor}")
}

impl Nvrtc {
    /// Opens the NVRTC at `path`: its version, the GPU targets it lists, and its builtins library from the
    /// same folder when there (loaded first, so that NVRTC finds it without LD_LIBRARY_PATH: the loader
    /// matches NVRTC's later load by soname).
    pub fn open(path: &Path) -> Result<Nvrtc, String> {
        let h = open(&path.to_string_lossy(), libc::RTLD_NOW | libc::RTLD_LOCAL)?;
        let need = |name: &str| symbol(&h, name).ok_or_else(|| format!("{} has no {name}: not an NVRTC library", path.display()));
        let (mut major, mut minor) = (0 as c_int, 0 as c_int);
        // SAFETY: each symbol is NVRTC's, with the C signature of nvrtc.h it is cast to.
        let (version, f) = unsafe {
            let v = std::mem::transmute::<*mut c_void, VersionFn>(need("nvrtcVersion")?);
            if v(&mut major, &mut minor) != 0 {
                return Err(format!("{}: nvrtcVersion failed", path.display()));
            }
            let f = Fns {
                create: std::mem::transmute::<*mut c_void, CreateFn>(need("nvrtcCreateProgram")?),
                compile: std::mem::transmute::<*mut c_void, CompileFn>(need("nvrtcCompileProgram")?),
                log_size: std::mem::transmute::<*mut c_void, SizeFn>(need("nvrtcGetProgramLogSize")?),
                log: std::mem::transmute::<*mut c_void, TextFn>(need("nvrtcGetProgramLog")?),
                ptx_size: std::mem::transmute::<*mut c_void, SizeFn>(need("nvrtcGetPTXSize")?),
                ptx: std::mem::transmute::<*mut c_void, TextFn>(need("nvrtcGetPTX")?),
                destroy: std::mem::transmute::<*mut c_void, DestroyFn>(need("nvrtcDestroyProgram")?),
            };
            ((major as u32, minor as u32), f)
        };
        // nvrtcGetSupportedArchs exists from NVRTC 11.2 on.
        let mut archs = Vec::new();
        if let (Some(num), Some(list)) = (symbol(&h, "nvrtcGetNumSupportedArchs"), symbol(&h, "nvrtcGetSupportedArchs")) {
            // SAFETY: NVRTC's signatures; the list is sized by the count it reports.
            unsafe {
                let num: unsafe extern "C" fn(*mut c_int) -> Status = std::mem::transmute(num);
                let list: unsafe extern "C" fn(*mut c_int) -> Status = std::mem::transmute(list);
                let mut n: c_int = 0;
                if num(&mut n) == 0 && n > 0 {
                    let mut v = vec![0 as c_int; n as usize];
                    if list(v.as_mut_ptr()) == 0 {
                        archs = v.into_iter().map(|a| a as u32).collect();
                    }
                }
            }
        }
        let mut handles = vec![h];
        let beside = path.parent().map(|d| d.join(builtins_name(version.0, version.1)));
        let builtins = beside.filter(|p| p.is_file());
        if let Some(b) = &builtins {
            handles.push(open(&b.to_string_lossy(), libc::RTLD_NOW | libc::RTLD_GLOBAL)?);
        }
        Ok(Nvrtc { path: path.to_path_buf(), version, archs, builtins, _handles: handles, f })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// (major, minor), e.g. (12, 9).
    pub fn version(&self) -> (u32, u32) {
        self.version
    }

    /// The `sm_XX` numbers NVRTC can compile for (empty for NVRTC older than 11.2, which cannot tell).
    pub fn supported_archs(&self) -> &[u32] {
        &self.archs
    }

    /// The builtins library found beside the NVRTC file, if any.
    pub fn builtins(&self) -> Option<&Path> {
        self.builtins.as_deref()
    }

    /// Compiles CUDA C++ `source` with `options` (e.g. `--gpu-architecture=sm_90a`) to PTX, or returns
    /// NVRTC's log.
    pub fn compile_ptx(&self, source: &str, options: &[String]) -> Result<String, String> {
        let src = CString::new(source).map_err(|_| "the source holds a NUL byte".to_string())?;
        let opts: Vec<CString> =
            options.iter().map(|o| CString::new(o.as_str())).collect::<Result<_, _>>().map_err(|_| "an option holds a NUL byte")?;
        let opt_ptrs: Vec<*const c_char> = opts.iter().map(|o| o.as_ptr()).collect();
        let mut prog: Program = std::ptr::null_mut();
        // SAFETY: NVRTC's C API with valid C strings that outlive the program; the program is destroyed
        // before returning.
        unsafe {
            let st = (self.f.create)(&mut prog, src.as_ptr(), std::ptr::null(), 0, std::ptr::null(), std::ptr::null());
            if st != 0 {
                return Err(format!("nvrtcCreateProgram failed ({st})"));
            }
            let st = (self.f.compile)(prog, opt_ptrs.len() as c_int, opt_ptrs.as_ptr());
            let out = if st != 0 {
                let mut n = 0usize;
                (self.f.log_size)(prog, &mut n);
                let mut buf = vec![0 as c_char; n.max(1)];
                (self.f.log)(prog, buf.as_mut_ptr());
                let log = CStr::from_ptr(buf.as_ptr()).to_string_lossy().trim().to_string();
                Err(if log.is_empty() { format!("nvrtcCompileProgram failed ({st})") } else { log })
            } else {
                let mut n = 0usize;
                (self.f.ptx_size)(prog, &mut n);
                let mut buf = vec![0 as c_char; n.max(1)];
                (self.f.ptx)(prog, buf.as_mut_ptr());
                Ok(CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned())
            };
            (self.f.destroy)(&mut prog);
            out
        }
    }
}
