//! InceptionV3's pools: avg_pool2d (with and without count_include_pad), max_pool2d (exact: every output is
//! an input) and global_avg_pool2d against the oracle, on random windows and at InceptionV3's own shapes; NaN
//! as PyTorch; and their backward passes (max_pool2d_bwd's first-maximum rule on ties, the last NaN and −∞; elements
//! no window covers get 0); bad input, rejected alike by the oracle behind the trait.

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

/// max_pool2d_bwd and avg_pool2d_bwd (both ways) of one (x, dy) against the oracle.
fn check_pool_bwds<B: Backend>(b: &BackendUnderTest<B>, tag: &str, x: &Tensor, dy: &Tensor, p: Pool2dParams) {
    let (xt, dyt, dya) = (b.up(x), b.up(dy), arr(dy));
    let x_shape: [usize; 4] = x.shape().try_into().unwrap();
    let ours = b.down(&b.max_pool2d_bwd(&dyt, &xt, p).unwrap());
    let reference = oracle::max_pool2d_bwd(&dya, &arr(x), p.kernel, p.stride, p.padding);
    assert_tensor_close(&format!("max_pool2d_bwd {tag}"), &ours, &reference, TOL);
    for include in [false, true] {
        let ours = b.down(&b.avg_pool2d_bwd(&dyt, x_shape, p, include).unwrap());
        let reference = oracle::avg_pool2d_bwd(&dya, x_shape, p.kernel, p.stride, p.padding, include);
        assert_tensor_close(&format!("avg_pool2d_bwd count_include_pad={include} {tag}"), &ours, &reference, TOL);
    }
}

/// dy of the pool of x [N, C, H, W] by p, uniform in [−1, 1).
fn rand_dy(r: &mut rand_chacha::ChaCha8Rng, x_shape: [usize; 4], p: Pool2dParams) -> Tensor {
    let out = |len: usize, a: usize| (len + 2 * p.padding[a] - p.kernel[a]) / p.stride[a] + 1;
    rand_tensor(r, &[x_shape[0], x_shape[1], out(x_shape[2], 0), out(x_shape[3], 1)], -1.0, 1.0)
}

pub fn pool_bwds_match_the_oracle_on_random_shapes<B: Backend>(b: &BackendUnderTest<B>) {
    let mut r = rng(144);
    for case in 0..b.sizes.pick(40, 16) {
        let kernel = [r.gen_range(1..=5), r.gen_range(1..=5)];
        let padding = [r.gen_range(0..=kernel[0] / 2), r.gen_range(0..=kernel[1] / 2)];
        let stride = [r.gen_range(1..=3), r.gen_range(1..=3)];
        let shape =
            [r.gen_range(1..=3), r.gen_range(1..=5), r.gen_range(kernel[0]..=kernel[0] + 12), r.gen_range(kernel[1]..=kernel[1] + 12)];
        let p = Pool2dParams::new(kernel, stride, padding);
        let x = rand_tensor(&mut r, &shape, -2.0, 2.0);
        let dy = rand_dy(&mut r, shape, p);
        check_pool_bwds(b, &format!("#{case} x {shape:?} {p:?}"), &x, &dy, p);
    }
}

pub fn pool_bwds_match_the_oracle_at_inception_shapes<B: Backend>(b: &BackendUnderTest<B>) {
    let mut r = rng(145);
    let s2 = Pool2dParams::new([3, 3], [2, 2], [0, 0]);
    let s1 = Pool2dParams::new([3, 3], [1, 1], [1, 1]);
    let two = Pool2dParams::new([2, 2], [2, 2], [0, 0]);
    // Inception's 3×3 s2 on odd sizes (and an even one, whose last row and column no window covers), its
    // 3×3 s1 p1 (both divisors), and 2×2 s2 on even and odd sizes; channels narrowed where the sizes are small.
    let pools = [
        ("maxpool1", [64, 147, 147], s2),
        ("Mixed_6a pool", [288, 35, 35], s2),
        ("Mixed_7a pool", [768, 17, 17], s2),
        ("3x3 s2 even", [5, 8, 10], s2),
        ("Mixed_5b pool", [192, 35, 35], s1),
        ("Mixed_6b pool", [768, 17, 17], s1),
        ("Mixed_7b pool", [1280, 8, 8], s1),
        ("2x2 s2 even", [16, 16, 16], two),
        ("2x2 s2 odd", [7, 9, 11], two),
    ];
    for (name, [c, h, w], p) in pools {
        let shape = [2, b.sizes.pick(c, c.min(4)), h, w];
        let x = rand_tensor(&mut r, &shape, -2.0, 2.0);
        let dy = rand_dy(&mut r, shape, p);
        check_pool_bwds(b, &format!("{name} {shape:?}"), &x, &dy, p);
    }
}

pub fn max_pool2d_bwd_takes_the_first_maximum<B: Backend>(b: &BackendUnderTest<B>) {
    let mut r = rng(146);
    // Few distinct values: windows full of ties, where the gradient must go to the first maximum in
    // row-major order; NaN (the last NaN of a window takes it all, as PyTorch) and −∞ (a window of only −∞
    // gives it to its first element).
    let shape = [2, 3, 11, 9];
    let mut x = Tensor::new(&shape, (0..shape.iter().product()).map(|_| r.gen_range(0..3) as f32).collect()).unwrap();
    for i in (0..x.len()).step_by(37) {
        x.data_mut()[i] = f32::NAN;
        x.data_mut()[i + 1] = f32::NAN; // two in a row: the second takes the gradient
    }
    // One plane of −∞ with a few finite values; one plane all −∞.
    let plane = 11 * 9;
    for (j, v) in x.data_mut()[plane..2 * plane].iter_mut().enumerate() {
        *v = if j % 13 == 0 { j as f32 } else { f32::NEG_INFINITY };
    }
    x.data_mut()[2 * plane..3 * plane].fill(f32::NEG_INFINITY);
    for p in [
        Pool2dParams::new([3, 3], [2, 2], [0, 0]),
        Pool2dParams::new([3, 3], [1, 1], [1, 1]),
        Pool2dParams::new([2, 2], [2, 2], [0, 0]),
        Pool2dParams::new([4, 3], [1, 2], [2, 1]),
    ] {
        let dy = rand_dy(&mut r, shape, p);
        let ours = b.down(&b.max_pool2d_bwd(&b.up(&dy), &b.up(&x), p).unwrap());
        let reference = oracle::max_pool2d_bwd(&arr(&dy), &arr(&x), p.kernel, p.stride, p.padding);
        assert_tensor_close(&format!("max_pool2d_bwd ties, NaN and -inf {p:?}"), &ours, &reference, TOL);
        // Which elements receive a gradient is decided by comparisons alone: exactly the oracle's.
        let got: Vec<bool> = ours.data().iter().map(|&v| v != 0.0).collect();
        let want: Vec<bool> = reference.data.iter().map(|&v| v != 0.0).collect();
        assert_eq!(got, want, "max_pool2d_bwd {p:?}: the elements that receive a gradient");
    }
}

pub fn global_avg_pool2d_bwd_matches_the_oracle<B: Backend>(b: &BackendUnderTest<B>) {
    let mut r = rng(147);
    let mut shapes = vec![[2, 64, 8, 8], [3, 5, 37, 37], [1, 5, 1, 1], [4, 7, 3, 11]];
    shapes.extend(b.sizes.pick(vec![[2, 2048, 8, 8]], vec![]));
    for shape in shapes {
        let dy = rand_tensor(&mut r, &shape[..2], -1.0, 1.0);
        let ours = b.down(&b.global_avg_pool2d_bwd(&b.up(&dy), shape).unwrap());
        assert_tensor_close(&format!("global_avg_pool2d_bwd {shape:?}"), &ours, &oracle::global_avg_pool2d_bwd(&arr(&dy), shape), TOL);
    }
}

pub fn pool_bwd_bad_input<B: Backend>(b: &BackendUnderTest<B>) {
    let (c, o) = (CpuBackend::new(), ReferenceBackend);
    let x = Tensor::zeros(&[1, 2, 5, 5]);
    let (xt, xo) = (b.up(&x), o.upload(&x).unwrap());
    let p = Pool2dParams::new([3, 3], [2, 2], [0, 0]);
    // The pool of [1, 2, 5, 5] by 3×3 s2 is [1, 2, 2, 2].
    let dy = Tensor::zeros(&[1, 2, 3, 3]);
    let (dyt, dyo) = (b.up(&dy), o.upload(&dy).unwrap());
    let what = "max_pool2d_bwd dy of the wrong shape";
    let msg = assert_rejected(what, Shape, b.max_pool2d_bwd(&dyt, &xt, p), c.max_pool2d_bwd(&dy, &x, p), &["[1, 2, 3, 3]", "[1, 2, 2, 2]"]);
    assert_oracle_rejects_alike(what, o.max_pool2d_bwd(&dyo, &xo, p), &msg);
    let what = "avg_pool2d_bwd dy of the wrong shape";
    let msg = assert_rejected(
        what,
        Shape,
        b.avg_pool2d_bwd(&dyt, [1, 2, 5, 5], p, true),
        c.avg_pool2d_bwd(&dy, [1, 2, 5, 5], p, true),
        &["[1, 2, 3, 3]", "[1, 2, 2, 2]"],
    );
    assert_oracle_rejects_alike(what, o.avg_pool2d_bwd(&dyo, [1, 2, 5, 5], p, true), &msg);
    let too_much_pad = Pool2dParams::new([3, 3], [1, 1], [2, 2]);
    let what = "avg_pool2d_bwd pad > k/2";
    let msg = assert_rejected(
        what,
        InvalidArgument,
        b.avg_pool2d_bwd(&dyt, [1, 2, 5, 5], too_much_pad, false),
        c.avg_pool2d_bwd(&dy, [1, 2, 5, 5], too_much_pad, false),
        &["[2, 2]"],
    );
    assert_oracle_rejects_alike(what, o.avg_pool2d_bwd(&dyo, [1, 2, 5, 5], too_much_pad, false), &msg);
    let what = "max_pool2d_bwd zero stride";
    let zero_stride = Pool2dParams::new([3, 3], [0, 1], [0, 0]);
    let msg = assert_rejected(
        what,
        InvalidArgument,
        b.max_pool2d_bwd(&dyt, &xt, zero_stride),
        c.max_pool2d_bwd(&dy, &x, zero_stride),
        &["[0, 1]"],
    );
    assert_oracle_rejects_alike(what, o.max_pool2d_bwd(&dyo, &xo, zero_stride), &msg);
    let dy3 = Tensor::zeros(&[1, 3]);
    let what = "global_avg_pool2d_bwd dy of the wrong shape";
    let msg = assert_rejected(
        what,
        Shape,
        b.global_avg_pool2d_bwd(&b.up(&dy3), [1, 2, 5, 5]),
        c.global_avg_pool2d_bwd(&dy3, [1, 2, 5, 5]),
        &["[1, 3]", "[1, 2]"],
    );
    assert_oracle_rejects_alike(what, o.global_avg_pool2d_bwd(&o.upload(&dy3).unwrap(), [1, 2, 5, 5]), &msg);
    let what = "global_avg_pool2d_bwd empty plane";
    let dy12 = Tensor::zeros(&[1, 2]);
    let msg = assert_rejected(
        what,
        Shape,
        b.global_avg_pool2d_bwd(&b.up(&dy12), [1, 2, 0, 5]),
        c.global_avg_pool2d_bwd(&dy12, [1, 2, 0, 5]),
        &["[1, 2, 0, 5]"],
    );
    assert_oracle_rejects_alike(what, o.global_avg_pool2d_bwd(&o.upload(&dy12).unwrap(), [1, 2, 0, 5]), &msg);
}
