//! concat_channels and its backward (copies: exact) and affine_channels (folded eval BatchNorm, optionally
//! fused with ReLU) against the oracle at Inception's channel splits; NaN through the ReLU; bad input.

use crate::common::backends::BackendUnderTest;
use crate::common::compare::{assert_tensor_close, TOL};
use crate::common::random::{arr, rand_tensor, rng};
use crate::common::reference_backend::ReferenceBackend;
use crate::common::rejection::{assert_oracle_rejects_alike, assert_rejected, Rejection::*};
use cxr_gan::backend::cpu::CpuBackend;
use cxr_gan::backend::Backend;
use cxr_gan::Tensor;
use cxr_gan_reference as oracle;

pub fn concat_and_affine_channels_match_the_oracle<B: Backend>(b: &BackendUnderTest<B>) {
    let mut r = rng(161);
    // Mixed_5b's and Mixed_7c's splits (where the sizes are full), a narrowed one, and degenerate ones.
    let mut cases: Vec<(usize, usize, usize, Vec<usize>)> = vec![(2, 9, 9, vec![16, 16, 24, 8]), (1, 4, 5, vec![1]), (2, 3, 1, vec![2, 5])];
    cases.extend(b.sizes.pick(vec![(2, 35, 35, vec![64, 64, 96, 32]), (3, 8, 8, vec![320, 768, 768, 192])], vec![]));
    for (n, h, w, chans) in cases {
        let xs: Vec<Tensor> = chans.iter().map(|&c| rand_tensor(&mut r, &[n, c, h, w], -2.0, 2.0)).collect();
        let xts: Vec<B::Tensor> = xs.iter().map(|x| b.up(x)).collect();
        let cat = b.concat_channels(&xts.iter().collect::<Vec<_>>()).unwrap();
        let reference = oracle::concat_channels(&xs.iter().map(arr).collect::<Vec<_>>().iter().collect::<Vec<_>>());
        let cat_host = b.down(&cat);
        assert_eq!(cat_host.shape(), reference.shape.as_slice(), "concat_channels {chans:?}");
        assert_eq!(cat_host.to_f64(), reference.data, "concat_channels {chans:?} (a copy: exact)");

        let c: usize = chans.iter().sum();
        let scale = rand_tensor(&mut r, &[c], -2.0, 2.0);
        let shift = rand_tensor(&mut r, &[c], -2.0, 2.0);
        for relu in [false, true] {
            let mut a = cat.clone();
            b.affine_channels(&mut a, &b.up(&scale), &b.up(&shift), relu).unwrap();
            let a = b.down(&a);
            let expect = oracle::affine_channels(&reference, &scale.to_f64(), &shift.to_f64(), relu);
            assert_tensor_close(&format!("affine_channels relu={relu} [{n}, {c}, {h}, {w}]"), &a, &expect, TOL);
            if relu {
                assert!(a.data().iter().all(|&v| v >= 0.0), "affine_channels relu=true gives no negatives");
            }
        }
        assert_eq!(b.down(&cat).to_f64(), reference.data, "affine_channels leaves clones alone");
    }
}

pub fn concat_channels_bwd_matches_the_oracle<B: Backend>(b: &BackendUnderTest<B>) {
    let mut r = rng(162);
    // Inception's 4-way splits (Mixed_5b's narrowed, and Mixed_5b's and Mixed_7c's where the sizes are full),
    // a 3-way split, one piece, and pieces of one channel.
    let mut cases: Vec<(usize, usize, usize, Vec<usize>)> =
        vec![(2, 9, 9, vec![16, 16, 24, 8]), (3, 5, 7, vec![2, 5, 3]), (1, 4, 5, vec![3]), (2, 3, 1, vec![1, 1, 1, 1])];
    cases.extend(b.sizes.pick(vec![(2, 35, 35, vec![64, 64, 96, 32]), (3, 8, 8, vec![320, 768, 768, 192])], vec![]));
    for (n, h, w, chans) in cases {
        let c: usize = chans.iter().sum();
        let dy = rand_tensor(&mut r, &[n, c, h, w], -2.0, 2.0);
        let dyt = b.up(&dy);
        let ours = b.concat_channels_bwd(&dyt, &chans).unwrap();
        let reference = oracle::concat_channels_bwd(&arr(&dy), &chans);
        assert_eq!(ours.len(), chans.len(), "concat_channels_bwd {chans:?}: one gradient per piece");
        for (i, (o, want)) in ours.iter().zip(&reference).enumerate() {
            let o = b.down(o);
            assert_eq!(o.shape(), want.shape.as_slice(), "concat_channels_bwd {chans:?} piece {i}");
            assert_eq!(o.to_f64(), want.data, "concat_channels_bwd {chans:?} piece {i} (a copy: exact)");
        }
        // The pieces concatenate back to dy.
        let back = b.concat_channels(&ours.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!(b.down(&back), dy, "concat_channels(concat_channels_bwd(dy)) = dy {chans:?}");
    }
}

pub fn affine_channels_keeps_nan<B: Backend>(b: &BackendUnderTest<B>) {
    let mut x = Tensor::new(&[1, 1, 3, 3], (1..=9).map(|v| v as f32).collect()).unwrap();
    x.data_mut()[4] = f32::NAN;
    let mut xt = b.up(&x);
    b.affine_channels(&mut xt, &b.up(&Tensor::full(&[1], 1.0)), &b.up(&Tensor::zeros(&[1])), true).unwrap();
    let y = b.down(&xt);
    assert!(y.data()[4].is_nan(), "relu(NaN) = NaN");
    assert_eq!(y.data()[0], 1.0);
}

pub fn channels_bad_input<B: Backend>(b: &BackendUnderTest<B>) {
    let (c, o) = (CpuBackend::new(), ReferenceBackend);
    let x = Tensor::zeros(&[1, 2, 5, 5]);
    let other = Tensor::zeros(&[1, 2, 4, 5]);
    let (xt, ot) = (b.up(&x), b.up(&other));
    let (xo, oo) = (o.upload(&x).unwrap(), o.upload(&other).unwrap());
    let what = "concat_channels H mismatch";
    let msg =
        assert_rejected(what, Shape, b.concat_channels(&[&xt, &ot]), c.concat_channels(&[&x, &other]), &["[1, 2, 4, 5]", "[1, 2, 5, 5]"]);
    assert_oracle_rejects_alike(what, o.concat_channels(&[&xo, &oo]), &msg);
    let what = "concat_channels nothing";
    let msg = assert_rejected(what, InvalidArgument, b.concat_channels(&[]), c.concat_channels(&[]), &[]);
    assert_oracle_rejects_alike(what, o.concat_channels(&[]), &msg);
    let s3 = Tensor::zeros(&[3]);
    let (mut xm, mut xc, mut xom) = (xt.clone(), x.clone(), xo.clone());
    let s3o = o.upload(&s3).unwrap();
    let what = "affine_channels scale";
    let msg = assert_rejected(
        what,
        Shape,
        b.affine_channels(&mut xm, &b.up(&s3), &b.up(&s3), false),
        c.affine_channels(&mut xc, &s3, &s3, false),
        &["scale [3] must be [2]"],
    );
    assert_oracle_rejects_alike(what, o.affine_channels(&mut xom, &s3o, &s3o, false), &msg);
}

pub fn concat_channels_bwd_bad_input<B: Backend>(b: &BackendUnderTest<B>) {
    let (c, o) = (CpuBackend::new(), ReferenceBackend);
    let dy = Tensor::zeros(&[2, 6, 3, 3]);
    let (dyt, dyo) = (b.up(&dy), o.upload(&dy).unwrap());
    for (what, chans, names) in [
        ("concat_channels_bwd channels short of dy's", vec![2, 3], &["[2, 3]", "6"][..]),
        ("concat_channels_bwd a channel count of 0", vec![2, 0, 4], &["[2, 0, 4]"][..]),
        ("concat_channels_bwd no pieces", vec![], &["[]"][..]),
    ] {
        let msg = assert_rejected(what, Shape, b.concat_channels_bwd(&dyt, &chans), c.concat_channels_bwd(&dy, &chans), names);
        assert_oracle_rejects_alike(what, o.concat_channels_bwd(&dyo, &chans), &msg);
    }
    let flat = Tensor::zeros(&[2, 6]);
    let what = "concat_channels_bwd 2-d dy";
    let msg = assert_rejected(what, Shape, b.concat_channels_bwd(&b.up(&flat), &[6]), c.concat_channels_bwd(&flat, &[6]), &["[2, 6]"]);
    assert_oracle_rejects_alike(what, o.concat_channels_bwd(&o.upload(&flat).unwrap(), &[6]), &msg);
}
