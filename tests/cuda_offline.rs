//! The offline CUDA compile check (issue 12): every kernel the cube backend launches for DCGAN, WGAN-GP and
//! InceptionV3, as CubeCL's CUDA source, compiles with NVRTC for sm_80 and sm_90a and assembles with
//! ptxas without a spill and within 48 KiB of shared memory. Needs NVIDIA's NVRTC/ptxas wheels
//! ($CXR_GAN_CUDA_WHEELS, set by .ci/run from scripts/ci-cuda-wheels.sh); skips with the reason otherwise.

mod common;

#[test]
fn every_cube_kernel_compiles_for_cuda_without_spills() {
    let Some(md) = common::compile_check::passing_table("cube") else { return };
    // The recording saw every op family, and both conv tile heights.
    for k in [
        "`conv::conv2d`",
        "`conv::conv2d_bwd_data`",
        "`conv::conv2d_bwd_weight`",
        "`norm::batch_norm2d_bwd`",
        "`norm::instance_norm2d_jvp_bwd`",
        "`loss::bce`",
        "`loss::gradient_penalty_head_v`",
        "`adam::adam_step`",
        "`cube::sum_splits`",
    ] {
        assert!(md.contains(k), "{k} missing from the table");
    }
    assert!(md.contains("tile: Small") && md.contains("tile: Large"), "both conv tile heights");
    match cxr_gan::fid::inception::conformance_weights() {
        Ok(_) => {
            for k in ["`resize::resize_bilinear`", "`pool::pool2d`", "`pool::global_avg_pool2d`", "`channels::concat_channels`"] {
                assert!(md.contains(k), "{k} missing from the table");
            }
        }
        Err(why) => println!("InceptionV3 was skipped (no weights: {why})"),
    }
}
