//! The cuda-native backend's kernels (kernels/cuda/*.cu) compile offline: every family through NVRTC with the
//! backend's own options for sm_80 and sm_90a, assembled by ptxas without a spill and within 48 KiB of shared
//! memory, and every kernel the backend launches for DCGAN, WGAN-GP and InceptionV3 (recorded at fp32 and tf32)
//! exists in a family. Needs NVIDIA's NVRTC/ptxas wheels ($CXR_GAN_CUDA_WHEELS, set by .ci/run from
//! scripts/ci-cuda-wheels.sh); skips with the reason otherwise.

mod common;

#[test]
fn every_cuda_native_kernel_compiles_without_spills() {
    let Some(md) = common::compile_check::passing_table("native") else { return };
    // Every family is in the table.
    for family in ["act", "adam", "channels", "conv", "elementwise", "loss", "norm", "pool", "resize"] {
        assert!(md.contains(&format!("\n| {family} | `")), "no kernel of kernels/cuda/{family}.cu in the table");
    }
    assert!(md.contains("| `sum_partials` |"), "the shared reduction is in the table");
}
