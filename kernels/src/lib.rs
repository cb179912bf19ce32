//! cxr-gan-kernels: the device code of cxr-gan's `cube` backend, written once in CubeCL and compiled at
//! run time for CUDA, Vulkan / Metal / WebGPU (wgpu) or any other CubeCL runtime.
//!
//! Device code only: kernels and the tile / block constants their launchers must agree on. It knows nothing
//! of models, data or the command line; the typed host side (shape checks, launches, downloads) lives in
//! `cxr_gan::backend::cube`. Kernel names follow the `Backend` trait's op names (`conv2d_bwd_weight`, ...), so
//! `grep` finds the oracle's, the cpu backend's and the kernel's version of one op together.

pub mod cube;
