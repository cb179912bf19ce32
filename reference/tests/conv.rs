//! conv2d / conv_transpose2d: hand examples, an independent gather formula, the transpose-vs-conv2d
//! identities, and every backward by central finite differences.

mod common;

use common::{check, dot, fd_grad, Rng, FD_TOL};
use cxr_gan_reference::*;

/// (input shape, weight shape, stride, padding).
type Case = ([usize; 4], [usize; 4], [usize; 2], [usize; 2]);

/// (x shape, w shape [O, C, kh, kw], stride, padding): non-square kernels, stride 2, padding combos,
/// rectangular images, and a case where floor division leaves an input row unused (H = 6, k = 3, s = 2).
const CONV_CASES: &[Case] = &[
    ([2, 3, 7, 6], [4, 3, 3, 3], [1, 1], [1, 1]),
    ([2, 2, 8, 9], [3, 2, 1, 7], [1, 1], [0, 3]),
    ([1, 3, 9, 8], [2, 3, 7, 1], [2, 1], [3, 0]),
    ([2, 2, 6, 7], [3, 2, 3, 2], [2, 2], [0, 1]),
    ([2, 3, 8, 8], [2, 3, 4, 4], [2, 2], [1, 1]),
    ([1, 2, 5, 4], [2, 2, 4, 4], [1, 1], [0, 0]),
    ([2, 2, 7, 5], [2, 2, 2, 3], [3, 2], [1, 2]),
];

/// (x shape [N, Cin, H, W], w shape [Cin, Cout, kh, kw], stride, padding).
const TRANSPOSE_CASES: &[Case] = &[
    ([2, 3, 4, 4], [3, 2, 4, 4], [2, 2], [1, 1]),
    ([1, 2, 3, 5], [2, 3, 1, 7], [1, 2], [0, 3]),
    ([2, 2, 4, 3], [2, 2, 7, 1], [2, 1], [3, 0]),
    ([2, 4, 1, 1], [4, 3, 4, 4], [1, 1], [0, 0]),
    ([1, 2, 3, 3], [2, 2, 3, 3], [2, 2], [1, 1]),
    ([2, 3, 5, 4], [3, 2, 3, 2], [3, 2], [0, 1]),
];

/// conv2d written independently as a gather with signed indices.
fn conv2d_gather(x: &Array, w: &Array, s: [usize; 2], p: [usize; 2]) -> Array {
    let [n_, c_, h_, w_] = x.dims4();
    let [o_, _, kh, kw] = w.dims4();
    let ho = (h_ + 2 * p[0] - kh) / s[0] + 1;
    let wo = (w_ + 2 * p[1] - kw) / s[1] + 1;
    let mut y = Array::zeros(&[n_, o_, ho, wo]);
    for n in 0..n_ {
        for o in 0..o_ {
            for oh in 0..ho {
                for ow in 0..wo {
                    let mut acc = 0.0;
                    for c in 0..c_ {
                        for i in 0..kh {
                            for j in 0..kw {
                                let ih = (oh * s[0]) as isize + i as isize - p[0] as isize;
                                let iw = (ow * s[1]) as isize + j as isize - p[1] as isize;
                                if ih >= 0 && iw >= 0 && (ih as usize) < h_ && (iw as usize) < w_ {
                                    acc += x.data[x.idx4(n, c, ih as usize, iw as usize)] * w.data[w.idx4(o, c, i, j)];
                                }
                            }
                        }
                    }
                    let yi = y.idx4(n, o, oh, ow);
                    y.data[yi] = acc;
                }
            }
        }
    }
    y
}

#[test]
fn conv2d_hand_example() {
    // Cross-correlation (no kernel flip), as PyTorch.
    let x = Array::new(&[1, 1, 3, 3], (1..=9).map(f64::from).collect());
    let w = Array::new(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(conv2d(&x, &w, [1, 1], [0, 0]).data, vec![37.0, 47.0, 67.0, 77.0]);
    let y = conv2d(&x, &w, [2, 2], [1, 1]);
    assert_eq!(y.shape, vec![1, 1, 2, 2]);
    assert_eq!(y.data, vec![4.0, 18.0, 36.0, 77.0]);
}

#[test]
fn conv_transpose2d_hand_example() {
    // Each input pixel stamps the kernel at stride 2: [1, 2] * [[1, 2], [3, 4]].
    let x = Array::new(&[1, 1, 1, 2], vec![1.0, 2.0]);
    let w = Array::new(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let y = conv_transpose2d(&x, &w, [2, 2], [0, 0]);
    assert_eq!(y.shape, vec![1, 1, 2, 4]);
    assert_eq!(y.data, vec![1.0, 2.0, 2.0, 4.0, 3.0, 4.0, 6.0, 8.0]);
    // Padding p crops p pixels off every border of the full stamp: a 1×1 input, a 3×3 kernel and p = 1
    // keep only the kernel's centre.
    let w3 = Array::new(&[1, 1, 3, 3], (1..=9).map(f64::from).collect());
    let y = conv_transpose2d(&Array::new(&[1, 1, 1, 1], vec![2.0]), &w3, [1, 1], [1, 1]);
    assert_eq!(y.data, vec![10.0]); // 2 · w[1][1] = 2 · 5
}

#[test]
fn conv2d_matches_gather_definition() {
    let mut rng = Rng::new(1);
    for &(xs, ws, s, p) in CONV_CASES {
        let (x, w) = (rng.randn(&xs), rng.randn(&ws));
        let y = conv2d(&x, &w, s, p);
        let want = conv2d_gather(&x, &w, s, p);
        assert_eq!(y.shape, want.shape);
        check(&format!("conv2d fwd {xs:?} {ws:?} s{s:?} p{p:?}"), &y.data, &want.data, 1e-14);
    }
}

#[test]
fn conv2d_backwards_by_finite_differences() {
    let mut rng = Rng::new(2);
    for &(xs, ws, s, p) in CONV_CASES {
        let (x, w) = (rng.randn(&xs), rng.randn(&ws));
        let r = rng.randn(&conv2d(&x, &w, s, p).shape); // L = ⟨r, conv2d(x, w)⟩
        let tag = format!("{xs:?} {ws:?} s{s:?} p{p:?}");

        let dx = conv2d_bwd_data(&r, &w, xs, s, p);
        let fd = fd_grad(&x.data, |xd| dot(&r.data, &conv2d(&Array::new(&xs, xd.to_vec()), &w, s, p).data));
        check(&format!("conv2d_bwd_data {tag}"), &dx.data, &fd, FD_TOL);

        let dw = conv2d_bwd_weight(&x, &r, ws, s, p);
        let fd = fd_grad(&w.data, |wd| dot(&r.data, &conv2d(&x, &Array::new(&ws, wd.to_vec()), s, p).data));
        check(&format!("conv2d_bwd_weight {tag}"), &dw.data, &fd, FD_TOL);
    }
}

#[test]
fn conv_transpose2d_matches_conv2d_adjoint() {
    // conv_transpose2d(x, w) is conv2d's backward-data with w [Cin, Cout, ...] read as [O, C, ...]; its
    // backwards are conv2d and conv2d's backward-weight with x and dy swapped. Two independent loops.
    let mut rng = Rng::new(3);
    for &(xs, ws, s, p) in TRANSPOSE_CASES {
        let (x, w) = (rng.randn(&xs), rng.randn(&ws));
        let y = conv_transpose2d(&x, &w, s, p);
        let [n, cout, ho, wo] = y.dims4();
        assert_eq!([n, cout], [xs[0], ws[1]]);
        assert_eq!(ho, (xs[2] - 1) * s[0] + ws[2] - 2 * p[0]);
        assert_eq!(wo, (xs[3] - 1) * s[1] + ws[3] - 2 * p[1]);
        let tag = format!("{xs:?} {ws:?} s{s:?} p{p:?}");
        check(&format!("conv_transpose2d fwd {tag}"), &y.data, &conv2d_bwd_data(&x, &w, [n, cout, ho, wo], s, p).data, 1e-14);

        let dy = rng.randn(&y.shape);
        let dx = conv_transpose2d_bwd_data(&dy, &w, s, p);
        assert_eq!(dx.shape, x.shape);
        check(&format!("conv_transpose2d_bwd_data = conv2d {tag}"), &dx.data, &conv2d(&dy, &w, s, p).data, 1e-14);
        let dw = conv_transpose2d_bwd_weight(&x, &dy, ws, s, p);
        check(
            &format!("conv_transpose2d_bwd_weight = conv2d_bwd_weight {tag}"),
            &dw.data,
            &conv2d_bwd_weight(&dy, &x, ws, s, p).data,
            1e-14,
        );
    }
}

#[test]
fn conv_transpose2d_backwards_by_finite_differences() {
    let mut rng = Rng::new(4);
    for &(xs, ws, s, p) in TRANSPOSE_CASES {
        let (x, w) = (rng.randn(&xs), rng.randn(&ws));
        let r = rng.randn(&conv_transpose2d(&x, &w, s, p).shape);
        let tag = format!("{xs:?} {ws:?} s{s:?} p{p:?}");

        let dx = conv_transpose2d_bwd_data(&r, &w, s, p);
        let fd = fd_grad(&x.data, |xd| dot(&r.data, &conv_transpose2d(&Array::new(&xs, xd.to_vec()), &w, s, p).data));
        check(&format!("conv_transpose2d_bwd_data {tag}"), &dx.data, &fd, FD_TOL);

        let dw = conv_transpose2d_bwd_weight(&x, &r, ws, s, p);
        let fd = fd_grad(&w.data, |wd| dot(&r.data, &conv_transpose2d(&x, &Array::new(&ws, wd.to_vec()), s, p).data));
        check(&format!("conv_transpose2d_bwd_weight {tag}"), &dw.data, &fd, FD_TOL);
    }
}

#[test]
#[should_panic]
fn conv2d_rejects_channel_mismatch() {
    conv2d(&Array::zeros(&[1, 2, 4, 4]), &Array::zeros(&[1, 3, 3, 3]), [1, 1], [0, 0]);
}
