//! The classifier's backwards: max/avg/global pooling, concat, linear, cross-entropy and dropout, checked by
//! central finite differences of L = Σ y·r (r fixed and random) or of the loss itself, plus PyTorch's
//! conventions by hand (max pooling's first-maximum rule, cross-entropy's stability at huge logits).

mod common;

use common::{check, dot, fd_grad, Rng, FD_TOL};
use cxr_gan_reference::*;

/// (x shape, kernel, stride, padding).
type PoolCase = ([usize; 4], [usize; 2], [usize; 2], [usize; 2]);

/// Overlapping windows (3×3 s2 on 13×13, 3×3 s1 p1), disjoint ones (2×2 s2), rectangular and one-sided.
const POOL_CASES: &[PoolCase] = &[
    ([2, 3, 13, 13], [3, 3], [2, 2], [0, 0]),
    ([2, 3, 9, 9], [3, 3], [1, 1], [1, 1]),
    ([2, 3, 8, 8], [2, 2], [2, 2], [0, 0]),
    ([1, 2, 8, 9], [3, 2], [2, 1], [1, 1]),
    ([1, 2, 10, 7], [5, 3], [3, 2], [2, 0]),
];

/// A random permutation of 0..n (Fisher–Yates).
fn permutation(rng: &mut Rng, n: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        p.swap(i, rng.below(i + 1));
    }
    p
}

/// Distinct values at least 0.05 apart (a shuffled ramp around 0, mostly negative so that a −∞ padding
/// matters): no ties, and a finite-difference step cannot change any window's maximum.
fn distinct(rng: &mut Rng, shape: &[usize]) -> Array {
    let n: usize = shape.iter().product();
    let data = permutation(rng, n).into_iter().map(|k| 0.05 * k as f64 - 0.04 * n as f64).collect();
    Array::new(shape, data)
}

fn scaled(a: &Array, s: f64) -> Array {
    Array::new(&a.shape, a.data.iter().map(|v| s * v).collect())
}

#[test]
fn max_pool2d_bwd_by_finite_differences() {
    let mut rng = Rng::new(40);
    for &(xs, k, s, p) in POOL_CASES {
        let x = distinct(&mut rng, &xs);
        let y = max_pool2d(&x, k, s, p);
        let r = rng.randn(&y.shape);
        let dx = max_pool2d_bwd(&r, &x, k, s, p);
        let fd = fd_grad(&x.data, |v| dot(&r.data, &max_pool2d(&Array::new(&xs, v.to_vec()), k, s, p).data));
        check(&format!("max_pool2d_bwd {xs:?} k{k:?} s{s:?} p{p:?}"), &dx.data, &fd, FD_TOL);
        // Every output sends its whole dy somewhere: the sums agree.
        let (sum_dx, sum_r) = (dx.data.iter().sum::<f64>(), r.data.iter().sum::<f64>());
        assert!((sum_dx - sum_r).abs() < 1e-12 * r.len() as f64, "{sum_dx} vs {sum_r}");
    }
}

#[test]
fn max_pool2d_bwd_overlapping_windows_accumulate() {
    // 1×5, kernel 1×3, stride 1: the 9 at position 2 is the maximum of all three windows.
    let x = Array::new(&[1, 1, 1, 5], vec![1.0, 2.0, 9.0, 3.0, 4.0]);
    let dy = Array::new(&[1, 1, 1, 3], vec![1.0, 10.0, 100.0]);
    assert_eq!(max_pool2d_bwd(&dy, &x, [1, 3], [1, 1], [0, 0]).data, vec![0.0, 0.0, 111.0, 0.0, 0.0]);
    // With padding 1 there are five windows; the first and last see only [1, 2] and [3, 4].
    let dy = Array::new(&[1, 1, 1, 5], vec![1.0, 10.0, 100.0, 1000.0, 10000.0]);
    assert_eq!(max_pool2d_bwd(&dy, &x, [1, 3], [1, 1], [0, 1]).data, vec![0.0, 1.0, 1110.0, 0.0, 10000.0]);
}

#[test]
fn max_pool2d_bwd_ties_go_to_the_first_maximum() {
    // A constant plane: every window's first element (row-major) takes the gradient.
    let x = Array::new(&[1, 1, 4, 4], vec![0.5; 16]);
    let dy = Array::new(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let dx = max_pool2d_bwd(&dy, &x, [2, 2], [2, 2], [0, 0]);
    #[rustfmt::skip]
    let want = vec![
        1.0, 0.0, 2.0, 0.0,
        0.0, 0.0, 0.0, 0.0,
        3.0, 0.0, 4.0, 0.0,
        0.0, 0.0, 0.0, 0.0,
    ];
    assert_eq!(dx.data, want);
    // A tie across rows: (0, 1) comes before (1, 0) in row-major order.
    let x = Array::new(&[1, 1, 2, 2], vec![0.0, 7.0, 7.0, 1.0]);
    let dx = max_pool2d_bwd(&Array::new(&[1, 1, 1, 1], vec![5.0]), &x, [2, 2], [1, 1], [0, 0]);
    assert_eq!(dx.data, vec![0.0, 5.0, 0.0, 0.0]);
    // Padding (−∞) never receives anything, even when every input is very negative: a padded border
    // window's gradient goes to its first in-bounds maximum. F.max_pool2d(x, 3, 1, 1) on
    // [[−5, −5], [−5, −5]]: every window holds all four; the first, (0, 0), gets everything.
    let x = Array::new(&[1, 1, 2, 2], vec![-5.0; 4]);
    let dx = max_pool2d_bwd(&Array::new(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]), &x, [3, 3], [1, 1], [1, 1]);
    assert_eq!(dx.data, vec![10.0, 0.0, 0.0, 0.0]);
}

#[test]
fn max_pool2d_bwd_nan_takes_the_gradient() {
    // PyTorch updates on `val > max || isnan(val)`: a NaN wins its windows (the last NaN, if several).
    let x = Array::new(&[1, 1, 1, 4], vec![1.0, f64::NAN, 9.0, f64::NAN]);
    let dx = max_pool2d_bwd(&Array::new(&[1, 1, 1, 1], vec![2.0]), &x, [1, 4], [1, 1], [0, 0]);
    assert_eq!(dx.data, vec![0.0, 0.0, 0.0, 2.0]);
    let dx = max_pool2d_bwd(&Array::new(&[1, 1, 1, 2], vec![2.0, 3.0]), &x, [1, 2], [1, 2], [0, 0]);
    assert_eq!(dx.data, vec![0.0, 2.0, 0.0, 3.0]);
}

#[test]
fn avg_pool2d_bwd_by_finite_differences() {
    let mut rng = Rng::new(41);
    for &(xs, k, s, p) in POOL_CASES {
        for include in [true, false] {
            let x = rng.randn(&xs);
            let y = avg_pool2d(&x, k, s, p, include);
            let r = rng.randn(&y.shape);
            let dx = avg_pool2d_bwd(&r, xs, k, s, p, include);
            let fd = fd_grad(&x.data, |v| dot(&r.data, &avg_pool2d(&Array::new(&xs, v.to_vec()), k, s, p, include).data));
            let name = format!("avg_pool2d_bwd {xs:?} k{k:?} s{s:?} p{p:?} count_include_pad={include}");
            check(&name, &dx.data, &fd, FD_TOL);
            // The adjoint identity ⟨avg(x), r⟩ = ⟨x, avg_bwd(r)⟩ holds to rounding.
            let (lhs, rhs) = (dot(&y.data, &r.data), dot(&x.data, &dx.data));
            assert!((lhs - rhs).abs() <= 1e-12 * lhs.abs().max(1.0), "{name}: adjoint {lhs} vs {rhs}");
        }
    }
}

#[test]
fn avg_pool2d_bwd_divisors_by_hand() {
    // 3×3, kernel 3, stride 1, padding 1, dy = 1 only at the corner output (0, 0): its window holds
    // x[0..2, 0..2], 4 elements; the padded window has 9.
    let mut dy = Array::zeros(&[1, 1, 3, 3]);
    dy.data[0] = 1.0;
    let ex = avg_pool2d_bwd(&dy, [1, 1, 3, 3], [3, 3], [1, 1], [1, 1], false);
    assert_eq!(ex.data, vec![0.25, 0.25, 0.0, 0.25, 0.25, 0.0, 0.0, 0.0, 0.0]);
    let inc = avg_pool2d_bwd(&dy, [1, 1, 3, 3], [3, 3], [1, 1], [1, 1], true);
    let ninth = 1.0 / 9.0;
    assert_eq!(inc.data, vec![ninth, ninth, 0.0, ninth, ninth, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn global_avg_pool2d_bwd_by_finite_differences() {
    let mut rng = Rng::new(42);
    for xs in [[2, 5, 7, 6], [1, 3, 1, 1], [3, 2, 4, 9]] {
        let x = rng.randn(&xs);
        let r = rng.randn(&[xs[0], xs[1]]);
        let dx = global_avg_pool2d_bwd(&r, xs);
        let fd = fd_grad(&x.data, |v| dot(&r.data, &global_avg_pool2d(&Array::new(&xs, v.to_vec())).data));
        check(&format!("global_avg_pool2d_bwd {xs:?}"), &dx.data, &fd, FD_TOL);
        check(
            &format!("global_avg_pool2d_bwd {xs:?} = avg_pool2d_bwd"),
            &dx.data,
            &avg_pool2d_bwd(&Array::new(&[xs[0], xs[1], 1, 1], r.data.clone()), xs, [xs[2], xs[3]], [1, 1], [0, 0], true).data,
            1e-15,
        );
    }
}

#[test]
fn concat_channels_bwd_by_finite_differences_and_split() {
    let mut rng = Rng::new(43);
    let chans = [3, 1, 4];
    let xs: Vec<Array> = chans.iter().map(|&c| rng.randn(&[2, c, 5, 4])).collect();
    let y = concat_channels(&xs.iter().collect::<Vec<_>>());
    let r = rng.randn(&y.shape);
    let dxs = concat_channels_bwd(&r, &chans);
    assert_eq!(dxs.len(), 3);
    for (j, (x, dx)) in xs.iter().zip(&dxs).enumerate() {
        assert_eq!(dx.shape, x.shape);
        let fd = fd_grad(&x.data, |v| {
            let moved = Array::new(&x.shape, v.to_vec());
            let parts: Vec<&Array> = xs.iter().enumerate().map(|(i, a)| if i == j { &moved } else { a }).collect();
            dot(&r.data, &concat_channels(&parts).data)
        });
        check(&format!("concat_channels_bwd part {j}"), &dx.data, &fd, FD_TOL);
    }
    // split(cat(xs)) = xs exactly.
    let back = concat_channels_bwd(&y, &chans);
    assert!(back.iter().zip(&xs).all(|(a, b)| a == b));
}

#[test]
fn linear_values_by_hand() {
    // x = [[1, 2, 3]], w = [[1, 0, -1], [0.5, 0.5, 0.5]], b = [10, -1]: y = [[10 − 2, 3 − 1]].
    let x = Array::new(&[1, 3], vec![1.0, 2.0, 3.0]);
    let w = Array::new(&[2, 3], vec![1.0, 0.0, -1.0, 0.5, 0.5, 0.5]);
    let y = linear(&x, &w, &[10.0, -1.0]);
    assert_eq!(y.shape, vec![1, 2]);
    assert_eq!(y.data, vec![8.0, 2.0]);
    let (dx, dw, db) = linear_bwd(&Array::new(&[1, 2], vec![1.0, 2.0]), &x, &w);
    assert_eq!(dx.data, vec![2.0, 1.0, 0.0]);
    assert_eq!(dw.data, vec![1.0, 2.0, 3.0, 2.0, 4.0, 6.0]);
    assert_eq!(db, vec![1.0, 2.0]);
}

#[test]
fn linear_bwd_by_finite_differences() {
    let mut rng = Rng::new(44);
    for (n, i, o) in [(4, 64, 2), (3, 17, 10), (1, 1, 1)] {
        let x = rng.randn(&[n, i]);
        let w = scaled(&rng.randn(&[o, i]), 0.3);
        let b = rng.normals(o);
        let r = rng.randn(&[n, o]);
        let (dx, dw, db) = linear_bwd(&r, &x, &w);
        let fdx = fd_grad(&x.data, |v| dot(&r.data, &linear(&Array::new(&[n, i], v.to_vec()), &w, &b).data));
        let fdw = fd_grad(&w.data, |v| dot(&r.data, &linear(&x, &Array::new(&[o, i], v.to_vec()), &b).data));
        let fdb = fd_grad(&b, |v| dot(&r.data, &linear(&x, &w, v).data));
        let name = format!("linear_bwd N={n} in={i} out={o}");
        check(&format!("{name} dx"), &dx.data, &fdx, FD_TOL);
        check(&format!("{name} dw"), &dw.data, &fdw, FD_TOL);
        check(&format!("{name} db"), &db, &fdb, FD_TOL);
    }
}

/// −ln softmax(z)[t] averaged over rows, the textbook way (fine for moderate logits).
fn naive_cross_entropy(z: &Array, t: &[usize]) -> f64 {
    let k = z.shape[1];
    let rows = t.len();
    (0..rows)
        .map(|n| {
            let row = &z.data[n * k..(n + 1) * k];
            let s: f64 = row.iter().map(|v| v.exp()).sum();
            -(row[t[n]].exp() / s).ln()
        })
        .sum::<f64>()
        / rows as f64
}

#[test]
fn cross_entropy_gradient_by_finite_differences() {
    let mut rng = Rng::new(45);
    for (n, k, scale) in [(8, 2, 2.0), (5, 10, 1.5), (3, 4, 0.1)] {
        let z = scaled(&rng.randn(&[n, k]), scale);
        let t: Vec<usize> = (0..n).map(|_| rng.below(k)).collect();
        let (loss, dz) = cross_entropy(&z, &t);
        let want = naive_cross_entropy(&z, &t);
        assert!((loss - want).abs() <= 1e-13 * want.abs(), "cross_entropy value {loss} vs {want}");
        let fd = fd_grad(&z.data, |v| cross_entropy(&Array::new(&[n, k], v.to_vec()), &t).0);
        check(&format!("cross_entropy N={n} K={k} dlogits"), &dz.data, &fd, FD_TOL);
        // Each row of (softmax − onehot)/N sums to 0.
        for row in dz.data.chunks(k) {
            assert!(row.iter().sum::<f64>().abs() < 1e-15);
        }
    }
}

#[test]
fn cross_entropy_large_logits_are_stable() {
    // ±50-scale logits: e^{50} alone is fine in f64, but the test also covers ±1000, where the naive
    // form overflows. Rows confidently right, confidently wrong and split.
    let mut rng = Rng::new(46);
    let z = scaled(&rng.randn(&[4, 3]), 50.0);
    let t = vec![0, 1, 2, 1];
    let (loss, dz) = cross_entropy(&z, &t);
    assert!(loss.is_finite() && dz.data.iter().all(|v| v.is_finite()));
    let want = naive_cross_entropy(&z, &t);
    assert!((loss - want).abs() <= 1e-12 * want.abs().max(1.0), "cross_entropy value {loss} vs {want}");
    let fd = fd_grad(&z.data, |v| cross_entropy(&Array::new(&[4, 3], v.to_vec()), &t).0);
    check("cross_entropy large logits dlogits", &dz.data, &fd, FD_TOL);

    let z = Array::new(&[3, 3], vec![1000.0, -1000.0, 0.0, 1000.0, -1000.0, 0.0, 1000.0, 1000.0, -1000.0]);
    let (loss, dz) = cross_entropy(&z, &[0, 1, 1]);
    // Row 0 right: 0; row 1 wrong by 2000: 2000; row 2 a 50/50 split: ln 2.
    let want = (0.0 + 2000.0 + 2f64.ln()) / 3.0;
    assert!((loss - want).abs() <= 1e-15 * want, "{loss} vs {want}");
    let third = 1.0 / 3.0;
    let want_dz = [0.0, 0.0, 0.0, third, -third, 0.0, 0.5 * third, -0.5 * third, 0.0];
    assert_eq!(dz.data, want_dz);
}

#[test]
fn dropout_values_and_gradient() {
    let mut rng = Rng::new(47);
    for (shape, p) in [(vec![4, 16], 0.5), (vec![2, 3, 4, 4], 0.2)] {
        let x = rng.randn(&shape);
        let n = x.len();
        let mask = Array::new(&shape, (0..n).map(|_| if rng.uniform() < p { 0.0 } else { 1.0 }).collect());
        let y = dropout(&x, &mask, p);
        // ATen's order: x·(mask/(1 − p)), the noise scaled first (x/(1 − p) can differ in the last bit).
        for ((y, x), m) in y.data.iter().zip(&x.data).zip(&mask.data) {
            assert_eq!(*y, if *m == 0.0 { 0.0 } else { x * (1.0 / (1.0 - p)) });
        }
        check(
            &format!("dropout {shape:?} p={p} y = x·mask/(1 − p)"),
            &y.data,
            &x.data.iter().zip(&mask.data).map(|(x, m)| x * m / (1.0 - p)).collect::<Vec<_>>(),
            1e-15,
        );
        let r = rng.randn(&shape);
        let fd = fd_grad(&x.data, |v| dot(&r.data, &dropout(&Array::new(&shape, v.to_vec()), &mask, p).data));
        check(&format!("dropout {shape:?} p={p} dx"), &dropout(&r, &mask, p).data, &fd, FD_TOL);
    }
}
