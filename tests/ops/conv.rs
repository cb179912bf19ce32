//! conv2d, conv2d_bwd_data and conv2d_bwd_weight, and conv_transpose2d with its two backward passes,
//! against the oracle; poisoned and plain backends agreeing bit for bit; bad input.

use crate::common::backends::{BackendUnderTest, Sizes};
use crate::common::compare::assert_close;
use crate::common::random::{arr, rand_tensor, rng};
use crate::common::rejection::{assert_rejected, Rejection::*};
use cxr_gan::backend::cpu::CpuBackend;
use cxr_gan::backend::{Backend, Conv2dParams};
use cxr_gan::Tensor;
use cxr_gan_reference as oracle;

/// conv2d, conv2d_bwd_data and conv2d_bwd_weight at one shape against the oracle.
fn check_conv<B: Backend>(b: &BackendUnderTest<B>, seed: u64, xs: [usize; 4], ws: [usize; 4], stride: [usize; 2], padding: [usize; 2]) {
    let mut r = rng(seed);
    let p = Conv2dParams::new(stride, padding);
    let x = rand_tensor(&mut r, &xs, -1.0, 1.0);
    let w = rand_tensor(&mut r, &ws, -1.0, 1.0);
    let tag = format!("x {xs:?} w {ws:?} s {stride:?} p {padding:?}");
    let (xd, wd) = (b.up(&x), b.up(&w));

    let y = b.down(&b.conv2d(&xd, &wd, p).unwrap());
    let y_ref = oracle::conv2d(&arr(&x), &arr(&w), stride, padding);
    assert_eq!(y.shape(), &y_ref.shape[..], "conv2d {tag}");
    assert_close(&format!("conv2d {tag}"), y.data(), &y_ref.data, b.conv_tol);

    let dy = rand_tensor(&mut r, &y_ref.shape, -1.0, 1.0);
    let dyd = b.up(&dy);
    let dx = b.down(&b.conv2d_bwd_data(&dyd, &wd, xs, p).unwrap());
    let dx_ref = oracle::conv2d_bwd_data(&arr(&dy), &arr(&w), xs, stride, padding);
    assert_eq!(dx.shape(), &xs[..]);
    assert_close(&format!("conv2d_bwd_data {tag}"), dx.data(), &dx_ref.data, b.conv_tol);

    let dw = b.down(&b.conv2d_bwd_weight(&xd, &dyd, ws, p).unwrap());
    let dw_ref = oracle::conv2d_bwd_weight(&arr(&x), &arr(&dy), ws, stride, padding);
    assert_eq!(dw.shape(), &ws[..]);
    assert_close(&format!("conv2d_bwd_weight {tag}"), dw.data(), &dw_ref.data, b.conv_tol);
}

pub fn conv2d_small_shapes<B: Backend>(b: &BackendUnderTest<B>) {
    check_conv(b, 1, [2, 3, 7, 9], [4, 3, 3, 3], [1, 1], [1, 1]);
    check_conv(b, 2, [1, 3, 8, 8], [4, 3, 3, 3], [2, 2], [0, 0]);
    check_conv(b, 3, [5, 3, 5, 5], [2, 3, 3, 3], [3, 3], [0, 0]);
    check_conv(b, 4, [2, 3, 10, 13], [5, 3, 4, 4], [2, 2], [1, 1]);
    check_conv(b, 5, [3, 2, 9, 12], [4, 2, 3, 5], [2, 3], [2, 1]);
    // A kernel as large as the padded input, and padding wider than the kernel reach.
    check_conv(b, 6, [2, 2, 3, 4], [3, 2, 5, 6], [1, 1], [1, 1]);
    check_conv(b, 7, [2, 2, 3, 3], [3, 2, 2, 2], [1, 1], [2, 2]);
    // A stride larger than the kernel: some input positions get no tap (a phase of zeros).
    check_conv(b, 8, [2, 3, 9, 9], [4, 3, 2, 2], [3, 3], [0, 0]);
}

pub fn conv2d_non_square_kernels<B: Backend>(b: &BackendUnderTest<B>) {
    // Inception's factorised 1x7 / 7x1 (and 1x3 / 3x1) convolutions keep the spatial size.
    check_conv(b, 11, [3, 5, 11, 8], [6, 5, 1, 7], [1, 1], [0, 3]);
    check_conv(b, 12, [2, 4, 9, 10], [3, 4, 7, 1], [1, 1], [3, 0]);
    check_conv(b, 13, [2, 6, 8, 8], [4, 6, 1, 3], [1, 1], [0, 1]);
    check_conv(b, 14, [2, 6, 8, 8], [4, 6, 3, 1], [2, 1], [1, 0]);
}

pub fn conv2d_pointwise<B: Backend>(b: &BackendUnderTest<B>) {
    // 1x1 stride 1: the cpu backend's column matrix is the input itself.
    check_conv(b, 21, [3, 8, 6, 5], [16, 8, 1, 1], [1, 1], [0, 0]);
    check_conv(b, 22, [1, 8, 6, 5], [16, 8, 1, 1], [1, 1], [0, 0]);
}

pub fn conv2d_batched_chunks<B: Backend>(b: &BackendUnderTest<B>) {
    // Tiny outputs: on cpu many samples share one GEMM (the gather / scatter path).
    check_conv(b, 23, [40, 4, 4, 4], [6, 4, 4, 4], [2, 2], [1, 1]);
    check_conv(b, 24, [37, 8, 4, 4], [16, 8, 4, 4], [1, 1], [0, 0]);
    check_conv(b, 25, [9, 3, 6, 7], [5, 3, 3, 3], [1, 1], [1, 1]);
}

pub fn conv2d_dense_kernels<B: Backend>(b: &BackendUnderTest<B>) {
    // A kernel covering the whole unpadded input is a fully connected layer (the discriminator's last conv;
    // as conv_transpose2d, the generator's first), with or without a stride.
    check_conv(b, 26, [5, 8, 4, 4], [3, 8, 4, 4], [1, 1], [0, 0]);
    check_conv(b, 27, [3, 4, 5, 3], [2, 4, 5, 3], [2, 3], [0, 0]);
    check_conv(b, 28, [1, 6, 2, 2], [7, 6, 2, 2], [1, 1], [0, 0]);
}

pub fn conv2d_tiled_and_split_k<B: Backend>(b: &BackendUnderTest<B>) {
    // More than one GPU tile along every axis (rows > 64, columns > 64, K > 16 with a ragged last step), and
    // a batch reduction long enough that conv2d_bwd_weight splits it (8·8·8 = 512 positions → 2 chunks).
    check_conv(b, 28, [2, 70, 5, 5], [80, 70, 3, 3], [1, 1], [1, 1]);
    check_conv(b, 29, [8, 16, 16, 16], [32, 16, 4, 4], [2, 2], [1, 1]);
    // Few output tiles over a long reduction: conv2d and conv2d_bwd_data split K (the discriminator's last
    // layer has O = 1 and K = 8192; here K = 1024 → 4 splits).
    check_conv(b, 30, [3, 64, 4, 4], [2, 64, 4, 4], [1, 1], [0, 0]);
    // Outputs of 16 rows or fewer take the 16-row tile; 17 rows the 64-row one.
    check_conv(b, 31, [2, 16, 9, 9], [16, 16, 3, 3], [1, 1], [1, 1]);
    check_conv(b, 32, [2, 17, 9, 9], [17, 17, 3, 3], [2, 2], [1, 1]);
}

pub fn conv2d_dcgan_size<B: Backend>(b: &BackendUnderTest<B>) {
    // The discriminator's second layer at batch 16 (2 where the sizes are small).
    check_conv(b, 31, [b.sizes.pick(16, 2), 64, 32, 32], [128, 64, 4, 4], [2, 2], [1, 1]);
}

pub fn conv2d_empty_batch<B: Backend>(b: &BackendUnderTest<B>) {
    let p = Conv2dParams::new([2, 2], [1, 1]);
    let x = b.up(&Tensor::zeros(&[0, 3, 8, 8]));
    let w = b.up(&Tensor::full(&[4, 3, 4, 4], 1.0));
    assert_eq!(b.shape(&b.conv2d(&x, &w, p).unwrap()), vec![0, 4, 4, 4]);
    let dy = b.up(&Tensor::zeros(&[0, 4, 4, 4]));
    assert_eq!(b.shape(&b.conv2d_bwd_data(&dy, &w, [0, 3, 8, 8], p).unwrap()), vec![0, 3, 8, 8]);
    let dw = b.down(&b.conv2d_bwd_weight(&x, &dy, [4, 3, 4, 4], p).unwrap());
    assert!(dw.data().iter().all(|&v| v == 0.0), "an empty batch contributes no gradient");
}

/// A transposed-convolution layer: (Cin, Cout, H, stride, padding).
type TransposedLayer = (usize, usize, usize, usize, usize);

pub fn conv_transpose2d_dcgan_generator_shapes<B: Backend>(b: &BackendUnderTest<B>) {
    let mut r = rng(41);
    // 100 → 512 (1x1 → 4x4), then doubling to 3x64x64; narrowed where the sizes are small (the full widths
    // run in benches/ops.rs on every backend).
    let (n, layers): (usize, &[TransposedLayer]) = b.sizes.pick(
        (3, &[(100, 512, 1, 1, 0), (512, 256, 4, 2, 1), (256, 128, 8, 2, 1), (128, 64, 16, 2, 1), (64, 3, 32, 2, 1)]),
        (2, &[(100, 128, 1, 1, 0), (128, 64, 4, 2, 1), (64, 32, 8, 2, 1), (32, 3, 32, 2, 1)]),
    );
    for &(cin, cout, h, s, pd) in layers {
        let (stride, padding) = ([s, s], [pd, pd]);
        let p = Conv2dParams::new(stride, padding);
        let x = rand_tensor(&mut r, &[n, cin, h, h], -1.0, 1.0);
        let ws = [cin, cout, 4, 4];
        let w = rand_tensor(&mut r, &ws, -0.1, 0.1);
        let tag = format!("x {:?} w {ws:?} s {s} p {pd}", x.shape());
        let (xd, wd) = (b.up(&x), b.up(&w));

        let y = b.down(&b.conv_transpose2d(&xd, &wd, p).unwrap());
        let y_ref = oracle::conv_transpose2d(&arr(&x), &arr(&w), stride, padding);
        assert_eq!(y.shape(), &y_ref.shape[..], "conv_transpose2d {tag}");
        assert_close(&format!("conv_transpose2d {tag}"), y.data(), &y_ref.data, b.conv_tol);

        let dy = rand_tensor(&mut r, &y_ref.shape, -1.0, 1.0);
        let dyd = b.up(&dy);
        let dx = b.down(&b.conv_transpose2d_bwd_data(&dyd, &wd, p).unwrap());
        let dx_ref = oracle::conv_transpose2d_bwd_data(&arr(&dy), &arr(&w), stride, padding);
        assert_eq!(dx.shape(), x.shape());
        assert_close(&format!("conv_transpose2d_bwd_data {tag}"), dx.data(), &dx_ref.data, b.conv_tol);

        let dw = b.down(&b.conv_transpose2d_bwd_weight(&xd, &dyd, ws, p).unwrap());
        let dw_ref = oracle::conv_transpose2d_bwd_weight(&arr(&x), &arr(&dy), ws, stride, padding);
        assert_close(&format!("conv_transpose2d_bwd_weight {tag}"), dw.data(), &dw_ref.data, b.conv_tol);
    }
}

pub fn conv_is_deterministic_and_poison_free<B: Backend>(b: &BackendUnderTest<B>) {
    // The poisoned and the plain backend must agree bit for bit: no kernel reads memory it did not write.
    let mut r = rng(51);
    let p = Conv2dParams::new([2, 2], [1, 1]);
    // Many small samples (cpu: batched GEMMs), then fewer larger ones.
    for (xs, ws) in [([12, 16, 8, 8], [32, 16, 4, 4]), ([6, 16, 16, 16], [32, 16, 4, 4])] {
        let ys = [xs[0], ws[0], xs[2] / 2, xs[3] / 2];
        let x = rand_tensor(&mut r, &xs, -1.0, 1.0);
        let w = rand_tensor(&mut r, &ws, -1.0, 1.0);
        let dy = rand_tensor(&mut r, &ys, -1.0, 1.0);
        let run = |be: &B| {
            let (x, w, dy) = (be.upload(&x).unwrap(), be.upload(&w).unwrap(), be.upload(&dy).unwrap());
            let down = |t: B::Tensor| be.download(&t).unwrap();
            (
                down(be.conv2d(&x, &w, p).unwrap()),
                down(be.conv2d_bwd_data(&dy, &w, xs, p).unwrap()),
                down(be.conv2d_bwd_weight(&x, &dy, ws, p).unwrap()),
            )
        };
        assert_eq!(run(&b.plain), run(&b.backend), "x {xs:?} w {ws:?}");
    }
}

pub fn conv_bad_input<B: Backend>(b: &BackendUnderTest<B>) {
    let c = CpuBackend::new();
    let mut r = rng(131);
    let p = Conv2dParams::new([1, 1], [0, 0]);
    let x = rand_tensor(&mut r, &[2, 3, 8, 8], -1.0, 1.0);
    let xt = b.up(&x);
    let w_bad_c = rand_tensor(&mut r, &[4, 5, 3, 3], -1.0, 1.0);
    assert_rejected(
        "conv2d channels",
        Shape,
        b.conv2d(&xt, &b.up(&w_bad_c), p),
        c.conv2d(&x, &w_bad_c, p),
        &["[2, 3, 8, 8]", "[4, 5, 3, 3]"],
    );
    let w_big = rand_tensor(&mut r, &[4, 3, 9, 3], -1.0, 1.0);
    assert_rejected(
        "conv2d kernel too large",
        Shape,
        b.conv2d(&xt, &b.up(&w_big), p),
        c.conv2d(&x, &w_big, p),
        &["[2, 3, 8, 8]", "[4, 3, 9, 3]"],
    );

    let w = rand_tensor(&mut r, &[4, 3, 3, 3], -1.0, 1.0);
    let dy_bad = rand_tensor(&mut r, &[2, 4, 5, 6], -1.0, 1.0);
    let (wt, dy_badt) = (b.up(&w), b.up(&dy_bad));
    assert_rejected(
        "conv2d_bwd_data dy",
        Shape,
        b.conv2d_bwd_data(&dy_badt, &wt, [2, 3, 8, 8], p),
        c.conv2d_bwd_data(&dy_bad, &w, [2, 3, 8, 8], p),
        &["[2, 4, 5, 6]", "[2, 4, 6, 6]"],
    );
    assert_rejected(
        "conv2d_bwd_weight dy",
        Shape,
        b.conv2d_bwd_weight(&xt, &dy_badt, [4, 3, 3, 3], p),
        c.conv2d_bwd_weight(&x, &dy_bad, [4, 3, 3, 3], p),
        &["[2, 4, 5, 6]", "[2, 4, 6, 6]"],
    );
    let x3 = rand_tensor(&mut r, &[2, 3, 8], -1.0, 1.0);
    assert_rejected("conv2d 3-d x", Shape, b.conv2d(&b.up(&x3), &wt, p), c.conv2d(&x3, &w, p), &["[2, 3, 8]"]);
    let w_tr = rand_tensor(&mut r, &[5, 2, 4, 4], -1.0, 1.0);
    assert_rejected(
        "conv_transpose2d channels",
        Shape,
        b.conv_transpose2d(&xt, &b.up(&w_tr), p),
        c.conv_transpose2d(&x, &w_tr, p),
        &["[2, 3, 8, 8]", "[5, 2, 4, 4]"],
    );
    let p0 = Conv2dParams::new([0, 1], [0, 0]);
    assert_rejected("conv2d zero stride", InvalidArgument, b.conv2d(&xt, &wt, p0), c.conv2d(&x, &w, p0), &["[0, 1]"]);
}

/// The cpu backend splits the batch (chunks, bwd_weight workers, GEMM threads) by the rayon pool's size:
/// the same checks under several pool sizes.
#[test]
fn cpu_conv2d_any_thread_count() {
    let b = BackendUnderTest {
        name: "cpu",
        backend: CpuBackend::poisoned(),
        plain: CpuBackend::new(),
        sizes: Sizes::Full,
        conv_tol: crate::common::compare::TOL,
    };
    for threads in [1, 3, 8] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            check_conv(&b, 200 + threads as u64, [12, 16, 8, 8], [32, 16, 4, 4], [2, 2], [1, 1]);
            check_conv(&b, 300 + threads as u64, [6, 8, 20, 20], [8, 8, 3, 3], [1, 1], [1, 1]);
            check_conv(&b, 400 + threads as u64, [9, 8, 4, 4], [5, 8, 4, 4], [1, 1], [0, 0]);
        });
    }
}
