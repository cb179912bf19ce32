//! FID's pools: avg_pool2d (with and without count_include_pad), max_pool2d (exact: every output is an
//! input) and global_avg_pool2d against the oracle, on random windows and at InceptionV3's own shapes; NaN
//! as PyTorch; bad input, rejected alike by the oracle behind the trait.

use crate::common::backends::BackendUnderTest;
use crate::common::compare::{assert_tensor_close, TOL};
use crate::common::random::{arr, rand_tensor, rng};
use crate::common::reference_backend::ReferenceBackend;
use crate::common::rejection::{assert_oracle_rejects_alike, assert_rejected, Rejection::*};
use cxr_gan::backend::cpu::CpuBackend;
use cxr_gan::backend::{Backend, Pool2dParams};
use cxr_gan::Tensor;
use cxr_gan_reference as oracle;
use rand::Rng;

/// avg_pool2d both ways and max_pool2d of one input against the oracle.
fn check_pools<B: Backend>(b: &BackendUnderTest<B>, tag: &str, x: &Tensor, p: Pool2dParams) {
    let (xt, xa) = (b.up(x), arr(x));
    for include in [false, true] {
        let ours = b.down(&b.avg_pool2d(&xt, p, include).unwrap());
        let reference = oracle::avg_pool2d(&xa, p.kernel, p.stride, p.padding, include);
        assert_tensor_close(&format!("avg_pool2d count_include_pad={include} {tag}"), &ours, &reference, TOL);
    }
    let ours = b.down(&b.max_pool2d(&xt, p).unwrap());
    let reference = oracle::max_pool2d(&xa, p.kernel, p.stride, p.padding);
    assert_eq!(ours.shape(), reference.shape.as_slice(), "max_pool2d {tag}");
    assert_eq!(ours.to_f64(), reference.data, "max_pool2d {tag} (every output is an input: exact)");
}

pub fn pools_match_the_oracle_on_random_shapes<B: Backend>(b: &BackendUnderTest<B>) {
    let mut r = rng(141);
    // 1–3 samples, 1–5 channels, kernel 1–5, stride 1–3, padding ≤ kernel/2.
    for case in 0..b.sizes.pick(40, 16) {
        let kernel = [r.gen_range(1..=5), r.gen_range(1..=5)];
        let padding = [r.gen_range(0..=kernel[0] / 2), r.gen_range(0..=kernel[1] / 2)];
        let stride = [r.gen_range(1..=3), r.gen_range(1..=3)];
        let shape =
            [r.gen_range(1..=3), r.gen_range(1..=5), r.gen_range(kernel[0]..=kernel[0] + 12), r.gen_range(kernel[1]..=kernel[1] + 12)];
        let p = Pool2dParams::new(kernel, stride, padding);
        let x = rand_tensor(&mut r, &shape, -2.0, 2.0);
        check_pools(b, &format!("#{case} x {shape:?} {p:?}"), &x, p);
    }
}

pub fn pools_match_the_oracle_at_inception_shapes<B: Backend>(b: &BackendUnderTest<B>) {
    let mut r = rng(142);
    let s2 = Pool2dParams::new([3, 3], [2, 2], [0, 0]);
    let s1 = Pool2dParams::new([3, 3], [1, 1], [1, 1]);
    // Batch 2; the channels narrowed to at most 8 where the sizes are small.
    let pools = [
        ("maxpool1", [64, 147, 147], s2),
        ("maxpool2", [192, 71, 71], s2),
        ("Mixed_5b pool", [192, 35, 35], s1),
        ("Mixed_6a pool", [288, 35, 35], s2),
        ("Mixed_6b pool", [768, 17, 17], s1),
        ("Mixed_7a pool", [768, 17, 17], s2),
        ("Mixed_7b pool", [1280, 8, 8], s1),
        ("Mixed_7c pool", [2048, 8, 8], s1),
    ];
    for (name, [c, h, w], p) in pools {
        let shape = [2, b.sizes.pick(c, c.min(8)), h, w];
        let x = rand_tensor(&mut r, &shape, -2.0, 2.0);
        check_pools(b, &format!("{name} {shape:?}"), &x, p);
    }
}

pub fn global_avg_pool2d_matches_the_oracle<B: Backend>(b: &BackendUnderTest<B>) {
    let mut r = rng(143);
    let mut shapes = vec![[2, 64, 8, 8], [3, 5, 37, 37], [1, 5, 1, 1], [4, 7, 3, 11]];
    shapes.extend(b.sizes.pick(vec![[2, 2048, 8, 8], [3, 64, 73, 73]], vec![]));
    for shape in shapes {
        let x = rand_tensor(&mut r, &shape, -2.0, 2.0);
        let ours = b.down(&b.global_avg_pool2d(&b.up(&x)).unwrap());
        assert_eq!(ours.shape(), &[shape[0], shape[1]]);
        assert_tensor_close(&format!("global_avg_pool2d {shape:?}"), &ours, &oracle::global_avg_pool2d(&arr(&x)), TOL);
    }
}

pub fn pools_propagate_nan<B: Backend>(b: &BackendUnderTest<B>) {
    let mut x = Tensor::new(&[1, 1, 3, 3], (1..=9).map(|v| v as f32).collect()).unwrap();
    x.data_mut()[4] = f32::NAN;
    let xt = b.up(&x);
    let p = Pool2dParams::new([3, 3], [1, 1], [1, 1]);
    assert!(b.down(&b.max_pool2d(&xt, p).unwrap()).data().iter().all(|v| v.is_nan()), "max_pool2d keeps NaN");
    assert!(b.down(&b.avg_pool2d(&xt, p, false).unwrap()).data().iter().all(|v| v.is_nan()), "avg_pool2d keeps NaN");
}

pub fn pool_bad_input<B: Backend>(b: &BackendUnderTest<B>) {
    let (c, o) = (CpuBackend::new(), ReferenceBackend);
    let x = Tensor::zeros(&[1, 2, 5, 5]);
    let (xt, xo) = (b.up(&x), o.upload(&x).unwrap());
    let too_much_pad = Pool2dParams::new([3, 3], [1, 1], [2, 2]);
    let what = "max_pool2d pad > k/2";
    let msg = assert_rejected(what, InvalidArgument, b.max_pool2d(&xt, too_much_pad), c.max_pool2d(&x, too_much_pad), &["[2, 2]"]);
    assert_oracle_rejects_alike(what, o.max_pool2d(&xo, too_much_pad), &msg);
    let zero_stride = Pool2dParams::new([3, 3], [0, 1], [0, 0]);
    let what = "avg_pool2d zero stride";
    let msg =
        assert_rejected(what, InvalidArgument, b.avg_pool2d(&xt, zero_stride, false), c.avg_pool2d(&x, zero_stride, false), &["[0, 1]"]);
    assert_oracle_rejects_alike(what, o.avg_pool2d(&xo, zero_stride, false), &msg);
    let big = Pool2dParams::new([7, 3], [1, 1], [0, 0]);
    let what = "avg_pool2d window too big";
    let msg = assert_rejected(what, Shape, b.avg_pool2d(&xt, big, true), c.avg_pool2d(&x, big, true), &["[1, 2, 5, 5]"]);
    assert_oracle_rejects_alike(what, o.avg_pool2d(&xo, big, true), &msg);
    let flat = Tensor::zeros(&[2, 5]);
    let what = "global_avg_pool2d 2-d input";
    let msg = assert_rejected(what, Shape, b.global_avg_pool2d(&b.up(&flat)), c.global_avg_pool2d(&flat), &["[2, 5]"]);
    assert_oracle_rejects_alike(what, o.global_avg_pool2d(&o.upload(&flat).unwrap()), &msg);
}
