//! add, add_assign, scale, lerp_per_sample, mean, and the memory ops (full, zeros, reshape, upload /
//! download, f64 crossings, empty tensors) against f64 arithmetic; bad input.

use crate::common::backends::BackendUnderTest;
use crate::common::compare::{assert_close, assert_close_scalar, TOL};
use crate::common::random::{rand_tensor, rng};
use crate::common::rejection::{assert_rejected, Rejection::*};
use cxr_gan::backend::cpu::CpuBackend;
use cxr_gan::backend::Backend;
use cxr_gan::Tensor;

pub fn elementwise_and_memory<B: Backend>(b: &BackendUnderTest<B>) {
    let mut r = rng(121);
    let shape = [5, 3, 4, 6];
    let x = rand_tensor(&mut r, &shape, -1.0, 1.0);
    let y = rand_tensor(&mut r, &shape, -1.0, 1.0);
    let (xd, yd) = (x.to_f64(), y.to_f64());
    let (xt, yt) = (b.up(&x), b.up(&y));

    let s = b.down(&b.add(&xt, &yt).unwrap());
    assert_close("add", s.data(), &xd.iter().zip(&yd).map(|(a, b)| a + b).collect::<Vec<_>>(), TOL);
    let mut acc = xt.clone();
    b.add_assign(&mut acc, &yt).unwrap();
    assert_eq!(b.down(&acc), s);
    assert_eq!(b.down(&xt), x, "add_assign leaves clones alone");
    let sc = b.down(&b.scale(&xt, -0.25).unwrap());
    assert_close("scale", sc.data(), &xd.iter().map(|a| -0.25 * a).collect::<Vec<_>>(), TOL);

    let alpha = [0.0f32, 1.0, 0.3, 0.75, 0.5];
    let l = b.down(&b.lerp_per_sample(&xt, &yt, &alpha).unwrap());
    let per = 3 * 4 * 6;
    let l_ref: Vec<f64> = (0..xd.len())
        .map(|i| {
            let a = alpha[i / per] as f64;
            a * xd[i] + (1.0 - a) * yd[i]
        })
        .collect();
    assert_close("lerp_per_sample", l.data(), &l_ref, TOL);
    assert_eq!(&l.data()[..per], &y.data()[..per], "alpha 0 is b");
    assert_eq!(&l.data()[per..2 * per], &x.data()[per..2 * per], "alpha 1 is a");

    let mean = b.mean(&xt).unwrap();
    assert_close_scalar("mean", mean, xd.iter().sum::<f64>() / xd.len() as f64, TOL);
    // A mean over many GPU cubes (partials added on the host).
    let big = rand_tensor(&mut r, &[3, 7, 100, 100], 2.0, 3.0);
    let big_ref = big.to_f64().iter().sum::<f64>() / big.len() as f64;
    assert_close_scalar("mean (many cubes)", b.mean(&b.up(&big)).unwrap(), big_ref, TOL);

    let f = b.full(&[2, 3], 1.5).unwrap();
    assert_eq!(b.shape(&f), vec![2, 3]);
    assert!(b.down(&f).data().iter().all(|&v| v == 1.5));
    assert!(b.down(&b.zeros(&[4]).unwrap()).data().iter().all(|&v| v == 0.0));
    let rs = b.reshape(&xt, &[15, 24]).unwrap();
    assert_eq!(b.shape(&rs), vec![15, 24]);
    assert_eq!(b.down(&rs).data(), x.data());
    assert_eq!(b.down(&b.up(&x)), x);
    let empty = b.up(&Tensor::zeros(&[0, 3]));
    assert_eq!(b.down(&empty).shape(), &[0, 3]);
    let f64_up = b.upload_f64(&[2], &[0.1, 0.2]).unwrap();
    assert_eq!(b.download_f64(&f64_up).unwrap(), vec![0.1f32 as f64, 0.2f32 as f64]);
    // The backend reports the name it is tested under (`cuda-native` for `cuda_native`; a precision suffix
    // such as `_tf32` or `_bf16` names the instantiation, not the backend).
    assert_eq!(b.name().replace('-', "_"), b.name.trim_end_matches("_tf32").trim_end_matches("_bf16"));
}

pub fn elementwise_bad_input<B: Backend>(b: &BackendUnderTest<B>) {
    let c = CpuBackend::new();
    let mut r = rng(131);
    let x = rand_tensor(&mut r, &[2, 3, 8, 8], -1.0, 1.0);
    let short = rand_tensor(&mut r, &[2, 3, 8, 7], -1.0, 1.0);
    let xt = b.up(&x);
    let st = b.up(&short);
    assert_rejected("add", Shape, b.add(&xt, &st), c.add(&x, &short), &["[2, 3, 8, 8]", "[2, 3, 8, 7]"]);
    let (mut acc, mut acc_c) = (xt.clone(), x.clone());
    assert_rejected("add_assign", Shape, b.add_assign(&mut acc, &st), c.add_assign(&mut acc_c, &short), &["[2, 3, 8, 8]", "[2, 3, 8, 7]"]);
    assert_rejected(
        "lerp_per_sample alpha",
        Shape,
        b.lerp_per_sample(&xt, &xt, &[0.5; 3]),
        c.lerp_per_sample(&x, &x, &[0.5; 3]),
        &["[2, 3, 8, 8]"],
    );
    assert_rejected("reshape", Shape, b.reshape(&xt, &[5, 5]), c.reshape(&x, &[5, 5]), &["[2, 3, 8, 8]", "[5, 5]"]);
    let empty = Tensor::zeros(&[0, 3]);
    assert_rejected("mean of nothing", Shape, b.mean(&b.up(&empty)), c.mean(&empty), &["[0, 3]"]);
}
