//! cxr-gan-kernels: cxr-gan's device code. The `cube` backend's kernels, written once in CubeCL and compiled
//! at run time for CUDA, Vulkan / Metal / WebGPU (wgpu) or any other CubeCL runtime; and the `cuda-native`
//! backend's hand-written CUDA C++ (`cuda/<family>.cu`, [`cuda`]), compiled by NVRTC at run time, and for the
//! host into an emulator that runs them where there is no GPU.
//!
//! Device code only: kernels and the tile / block constants their launchers must agree on. It knows nothing
//! of models, data or the command line; the typed host side (shape checks, launches, downloads) lives in
//! `cxr_gan::backend::cube`. Kernel names follow the `Backend` trait's op names (`conv2d_bwd_weight`, ...), so
//! `grep` finds the oracle's, the cpu backend's and the kernel's version of one op together.

pub mod cube;
pub mod cuda;
