//! The hand-written CUDA C++ kernels of the `cuda-native` backend (`kernels/cuda/<family>.cu`), embedded in
//! the binary, and the CPU emulator that runs the same files where there is no GPU.
//!
//! On a GPU each family is one NVRTC program (its source with `common.cuh` inlined, [`Family::source`]), one
//! module; kernels have C linkage and are found by name. Without one, `build.rs` has compiled every family
//! for the host against `emu/emulate.h` (threads as fibers, `__shared__` per block), and [`emulator::launch`]
//! runs a kernel by the same name with the same argument pointers `cuLaunchKernel` takes.

/// The shared header every family includes.
pub const COMMON: &str = include_str!("../cuda/common.cuh");

/// One `.cu` file: an op family, beside `kernels/src/cube/<family>.rs` and `cxr_gan::backend::cpu::<family>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Act,
    Adam,
    Channels,
    Conv,
    Elementwise,
    Loss,
    Norm,
    Pool,
    Resize,
}

impl Family {
    pub const ALL: [Family; 9] = [
        Family::Act,
        Family::Adam,
        Family::Channels,
        Family::Conv,
        Family::Elementwise,
        Family::Loss,
        Family::Norm,
        Family::Pool,
        Family::Resize,
    ];

    /// The file's stem: `conv` for `kernels/cuda/conv.cu`.
    pub fn name(self) -> &'static str {
        match self {
            Family::Act => "act",
            Family::Adam => "adam",
            Family::Channels => "channels",
            Family::Conv => "conv",
            Family::Elementwise => "elementwise",
            Family::Loss => "loss",
            Family::Norm => "norm",
            Family::Pool => "pool",
            Family::Resize => "resize",
        }
    }

    /// The `.cu` file as written.
    pub fn file(self) -> &'static str {
        match self {
            Family::Act => include_str!("../cuda/act.cu"),
            Family::Adam => include_str!("../cuda/adam.cu"),
            Family::Channels => include_str!("../cuda/channels.cu"),
            Family::Conv => include_str!("../cuda/conv.cu"),
            Family::Elementwise => include_str!("../cuda/elementwise.cu"),
            Family::Loss => include_str!("../cuda/loss.cu"),
            Family::Norm => include_str!("../cuda/norm.cu"),
            Family::Pool => include_str!("../cuda/pool.cu"),
            Family::Resize => include_str!("../cuda/resize.cu"),
        }
    }

    /// The NVRTC program: the file with `#include "common.cuh"` replaced by the header's text (NVRTC is
    /// given no include path; the kernels need no CUDA headers).
    pub fn source(self) -> String {
        self.file().replace("#include \"common.cuh\"", COMMON)
    }
}

/// The host build of every family (see the module docs).
pub mod emulator {
    use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};

    extern "C" {
        fn cxr_emu_launch(
            name: *const c_char,
            grid: *const c_uint,
            block: *const c_uint,
            args: *mut *mut c_void,
            workers: c_uint,
            message: *mut c_char,
            message_len: usize,
        ) -> c_int;
        fn cxr_emu_has_kernel(name: *const c_char) -> c_int;
    }

    /// Whether the emulator has a kernel called `name`.
    pub fn has_kernel(name: &str) -> bool {
        let Ok(c) = CString::new(name) else { return false };
        // SAFETY: a valid C string; the function only reads it.
        unsafe { cxr_emu_has_kernel(c.as_ptr()) == 1 }
    }

    /// Runs kernel `name` over `grid` × `block` threads, blocks shared among `workers` OS threads.
    ///
    /// # Safety
    /// `args` holds one pointer per kernel parameter, in order, each to a value of that parameter's type (as
    /// `cuLaunchKernel`'s `kernelParams`); every pointer argument points to host memory large enough for
    /// every element the kernel touches at this launch shape.
    pub unsafe fn launch(name: &str, grid: [u32; 3], block: [u32; 3], args: &mut [*mut c_void], workers: u32) -> Result<(), String> {
        let c = CString::new(name).map_err(|_| format!("kernel name {name:?} holds a NUL byte"))?;
        let mut msg = vec![0 as c_char; 512];
        let rc = cxr_emu_launch(c.as_ptr(), grid.as_ptr(), block.as_ptr(), args.as_mut_ptr(), workers, msg.as_mut_ptr(), msg.len());
        if rc == 0 {
            Ok(())
        } else {
            Err(CStr::from_ptr(msg.as_ptr()).to_string_lossy().into_owned())
        }
    }
}
