//! Every op of every backend against the f64 oracle (`cxr-gan-reference`), on fresh seeded random inputs,
//! on a poisoned backend (fresh buffers start as NaN, so an element a kernel forgets to write fails the
//! comparison): ‖ours − ref‖₂ / ‖ref‖₂ ≤ 1e-5 per output tensor (convolutions at a backend's stated
//! precision: TF32's and bf16's tolerances for the `_tf32` and `_bf16` instantiations). Bad input must come back as the same
//! typed error, with the same message, as the cpu backend gives, never as a panic.
//!
//! Each check is written once, generic over `B: Backend`, in the file of its op family (as `cpu/<family>.rs`
//! and `kernels/src/cube/<family>.rs`); `op_tests!` below instantiates every check for every backend, as
//! `<backend>::<family>::<check>` (filter with `cargo test --release --test ops -- wgpu::`). A backend
//! without a device here prints "skipped: <reason>" and passes, unless `CXR_GAN_REQUIRE_BACKEND` names it.
//! On wgpu in CI the device is lavapipe (Mesa's CPU Vulkan driver), so its shapes stay small.

#[path = "../common/mod.rs"]
mod common;

mod act;
mod adam;
mod channels;
mod conv;
mod device;
mod elementwise;
mod loss;
mod norm;
mod pool;
mod resize;

use common::backends::{cube_twins, Sizes};
use cxr_gan::backend::cpu::CpuBackend;
use cxr_gan::backend::cube::{CudaBackend, WgpuBackend};
use cxr_gan::backend::cuda_native::{CudaNativeBackend, Precision};

/// A cuda-native backend computing its convolutions at `precision`, as (plain, poisoned) twins.
fn precision_twins(b: CudaNativeBackend, precision: Precision) -> (CudaNativeBackend, CudaNativeBackend) {
    let b = b.with_precision(precision);
    (b.clone(), b.poisoned())
}

/// `backends { name(sizes) => (plain, poisoned) twins or the reason there are none, ... }` ×
/// `checks { family: [check, ...], ... }` → one `#[test]` per backend and check, calling
/// `crate::family::check(&backend_under_test)`. Plus one test that every backend `CXR_GAN_REQUIRE_BACKEND`
/// names exists in this list (a typo must not pass as "nothing required").
macro_rules! op_tests {
    (backends { $($backend:ident($sizes:expr $(, conv_tol = $tol:expr)?) => $make:expr),* $(,)? } checks $checks:tt) => {
        $( op_tests!(@one $backend, $sizes, [$($tol)?], $make, $checks); )*

        #[test]
        fn required_backends_are_known() {
            let known = [$(stringify!($backend)),*];
            for r in cxr_gan::backend::required_backends() {
                assert!(known.contains(&r.as_str()), "{}: no backend {r:?}; the op tests know {known:?}", cxr_gan::backend::REQUIRE_BACKEND_ENV);
            }
        }
    };
    (@one $backend:ident, $sizes:expr, [$($tol:expr)?], $make:expr, { $($family:ident: [$($check:ident),* $(,)?]),* $(,)? }) => {
        mod $backend {
            use super::*;

            fn under_test() -> Option<common::backends::BackendUnderTest<impl cxr_gan::backend::Backend>> {
                let conv_tol: &[f64] = &[$($tol)?];
                let conv_tol = conv_tol.first().copied().unwrap_or(common::compare::TOL);
                common::backends::under_test(stringify!($backend), $sizes, conv_tol, $make)
            }

            $(
                mod $family {
                    $(
                        #[test]
                        fn $check() {
                            if let Some(b) = super::under_test() {
                                crate::$family::$check(&b);
                            }
                        }
                    )*
                }
            )*
        }
    };
}

op_tests! {
    backends {
        cpu(Sizes::Full) => Ok((CpuBackend::new(), CpuBackend::poisoned())),
        wgpu(Sizes::Small) => WgpuBackend::wgpu().map(cube_twins),
        cuda(Sizes::Small) => CudaBackend::cuda().map(cube_twins),
        // Our hand-written CUDA kernels: on a GPU, and on the CPU emulator built from the same .cu files.
        cuda_native(Sizes::Small) => CudaNativeBackend::cuda().map(|b| (b.clone(), b.poisoned())),
        cuda_native_emu(Sizes::Small) => Ok((CudaNativeBackend::emulator(), CudaNativeBackend::emulator().poisoned())),
        // Convolutions on tensor cores (TF32 or bf16 inputs, f32 accumulation), at the precision's stated tolerance.
        cuda_native_tf32(Sizes::Small, conv_tol = Precision::Tf32.tolerance()) => CudaNativeBackend::cuda().map(|b| precision_twins(b, Precision::Tf32)),
        cuda_native_emu_tf32(Sizes::Small, conv_tol = Precision::Tf32.tolerance()) => Ok(precision_twins(CudaNativeBackend::emulator(), Precision::Tf32)),
        cuda_native_bf16(Sizes::Small, conv_tol = Precision::Bf16.tolerance()) => CudaNativeBackend::cuda().map(|b| precision_twins(b, Precision::Bf16)),
        cuda_native_emu_bf16(Sizes::Small, conv_tol = Precision::Bf16.tolerance()) => Ok(precision_twins(CudaNativeBackend::emulator(), Precision::Bf16)),
    }
    checks {
        conv: [
            conv2d_small_shapes,
            conv2d_non_square_kernels,
            conv2d_pointwise,
            conv2d_batched_chunks,
            conv2d_dense_kernels,
            conv2d_tiled_and_split_k,
            conv2d_dcgan_size,
            conv2d_empty_batch,
            conv_transpose2d_dcgan_generator_shapes,
            conv_is_deterministic_and_poison_free,
            conv_bad_input,
        ],
        norm: [batch_norm2d_train_eval_bwd, instance_norm2d_fwd_bwd_jvp, norm_act_fused_matches_norm_then_act, norm_bad_input],
        act: [activations_fwd_bwd, activation_bad_input, dropout_matches_the_oracle, dropout_bad_input],
        loss: [
            bce_and_bce_logits,
            gradient_penalty_head_matches_f64,
            loss_bad_input,
            cross_entropy_matches_the_oracle,
            cross_entropy_bad_input,
        ],
        adam: [adam_matches_torch_formula, adam_step_all_matches_adam_step, adam_bad_input],
        elementwise: [elementwise_and_memory, elementwise_bad_input],
        pool: [
            pools_match_the_oracle_on_random_shapes,
            pools_match_the_oracle_at_inception_shapes,
            global_avg_pool2d_matches_the_oracle,
            pools_propagate_nan,
            pool_bad_input,
            pool_bwds_match_the_oracle_on_random_shapes,
            pool_bwds_match_the_oracle_at_inception_shapes,
            max_pool2d_bwd_takes_the_first_maximum,
            global_avg_pool2d_bwd_matches_the_oracle,
            pool_bwd_bad_input,
        ],
        resize: [resize_bilinear_matches_the_oracle, resize_bad_input],
        channels: [
            concat_and_affine_channels_match_the_oracle,
            affine_channels_keeps_nan,
            channels_bad_input,
            concat_channels_bwd_matches_the_oracle,
            concat_channels_bwd_bad_input,
        ],
    }
}
