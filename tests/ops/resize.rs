//! resize_bilinear (F.interpolate, align_corners=False) against the oracle: FID's 64 → 299 upscaling,
//! rectangular and downscaling cases, the identity, random sizes; bad input.

use crate::common::backends::BackendUnderTest;
use crate::common::compare::{assert_tensor_close, TOL};
use crate::common::random::{arr, rand_tensor, rng};
use crate::common::reference_backend::ReferenceBackend;
use crate::common::rejection::{assert_oracle_rejects_alike, assert_rejected, Rejection::*};
use cxr_gan::backend::cpu::CpuBackend;
use cxr_gan::backend::Backend;
use cxr_gan::Tensor;
use cxr_gan_reference as oracle;
use rand::Rng;

pub fn resize_bilinear_matches_the_oracle<B: Backend>(b: &BackendUnderTest<B>) {
    let mut r = rng(151);
    let mut cases: Vec<([usize; 4], usize, usize)> = vec![
        ([2, 3, 64, 64], 299, 299),   // FID on DCGAN samples
        ([1, 3, 80, 100], 299, 299),  // rectangular, upscaled
        ([1, 3, 320, 400], 299, 299), // downscaled
        ([2, 3, 299, 299], 299, 299), // identity
        ([1, 3, 80, 100], 99, 77),
        ([1, 2, 120, 90], 41, 60),
        ([1, 2, 1, 1], 5, 3),
        ([2, 3, 19, 23], 19, 23),
    ];
    for _ in 0..b.sizes.pick(20, 8) {
        let shape = [r.gen_range(1..=2), r.gen_range(1..=3), r.gen_range(1..=40), r.gen_range(1..=40)];
        cases.push((shape, r.gen_range(1..=60), r.gen_range(1..=60)));
    }
    for (shape, oh, ow) in cases {
        let x = rand_tensor(&mut r, &shape, -2.0, 2.0);
        let ours = b.down(&b.resize_bilinear(&b.up(&x), oh, ow).unwrap());
        assert_tensor_close(&format!("resize_bilinear {shape:?} -> {oh}x{ow}"), &ours, &oracle::resize_bilinear(&arr(&x), oh, ow), TOL);
        if (shape[2], shape[3]) == (oh, ow) {
            assert_eq!(ours, x, "resizing to the same size is the identity");
        }
    }
}

pub fn resize_bad_input<B: Backend>(b: &BackendUnderTest<B>) {
    let (c, o) = (CpuBackend::new(), ReferenceBackend);
    let x = Tensor::zeros(&[1, 2, 5, 5]);
    let what = "resize_bilinear to 0";
    let msg = assert_rejected(what, Shape, b.resize_bilinear(&b.up(&x), 0, 4), c.resize_bilinear(&x, 0, 4), &["[1, 2, 5, 5]", "0x4"]);
    assert_oracle_rejects_alike(what, o.resize_bilinear(&o.upload(&x).unwrap(), 0, 4), &msg);
}
