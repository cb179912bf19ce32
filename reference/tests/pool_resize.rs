//! Pooling, bilinear resize and the channel helpers of the oracle, checked against their definitions:
//! hand examples with PyTorch's printed values, independent formulations through the oracle's conv2d
//! (average pooling is a convolution with a box filter; the count_include_pad=False divisor is that box
//! filter applied to ones), brute force over an explicitly padded array, and exact reproduction of linear
//! ramps by the bilinear resize. Their forward passes only: the pools' and concat's backward passes (the
//! classifier's) are checked by finite differences in classifier_ops.rs; the linear ops are checked for
//! linearity here.

mod common;

use common::{check, Rng};
use cxr_gan_reference::*;

/// (x shape, kernel, stride, padding).
type PoolCase = ([usize; 4], [usize; 2], [usize; 2], [usize; 2]);

/// Odd and even kernels, stride 1 to 3, rectangular, one-sided padding.
const POOL_CASES: &[PoolCase] = &[
    ([2, 3, 7, 6], [3, 3], [1, 1], [1, 1]),
    ([1, 2, 9, 8], [3, 3], [2, 2], [0, 0]),
    ([2, 2, 8, 9], [3, 2], [2, 1], [1, 1]),
    ([1, 3, 5, 7], [2, 4], [1, 3], [1, 2]),
    ([2, 1, 6, 6], [1, 1], [1, 1], [0, 0]),
    ([1, 2, 10, 7], [5, 3], [3, 2], [2, 0]),
];

fn one_channel_planes(x: &Array) -> Array {
    let [n, c, h, w] = x.dims4();
    Array::new(&[n * c, 1, h, w], x.data.clone())
}

#[test]
fn avg_pool2d_hand_example() {
    // x = 1..9 on 3×3; F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)[0,0] = mean(1, 2, 4, 5) = 3.
    let x = Array::new(&[1, 1, 3, 3], (1..=9).map(f64::from).collect());
    let ex = avg_pool2d(&x, [3, 3], [1, 1], [1, 1], false);
    assert_eq!(ex.data, vec![3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0]);
    let inc = avg_pool2d(&x, [3, 3], [1, 1], [1, 1], true);
    let sums = [12.0, 21.0, 16.0, 27.0, 45.0, 33.0, 24.0, 39.0, 28.0];
    assert_eq!(inc.data, sums.iter().map(|s| s / 9.0).collect::<Vec<_>>());
    // Stride 2 without padding: one window, the mean of everything.
    assert_eq!(avg_pool2d(&x, [3, 3], [2, 2], [0, 0], false).data, vec![5.0]);
}

#[test]
fn avg_pool2d_is_a_box_filter_convolution() {
    let mut rng = Rng::new(11);
    for &(xs, k, s, p) in POOL_CASES {
        let x = rng.randn(&xs);
        let planes = one_channel_planes(&x);
        let ones_w = Array::new(&[1, 1, k[0], k[1]], vec![1.0; k[0] * k[1]]);
        let box_sum = conv2d(&planes, &ones_w, s, p);
        let counts = conv2d(&Array::new(&planes.shape, vec![1.0; planes.len()]), &ones_w, s, p);
        let include: Vec<f64> = box_sum.data.iter().map(|v| v / (k[0] * k[1]) as f64).collect();
        let exclude: Vec<f64> = box_sum.data.iter().zip(&counts.data).map(|(v, c)| v / c).collect();
        let name = format!("avg_pool2d {xs:?} k{k:?} s{s:?} p{p:?}");
        check(&format!("{name} count_include_pad"), &avg_pool2d(&x, k, s, p, true).data, &include, 1e-14);
        check(&format!("{name} exclude pad"), &avg_pool2d(&x, k, s, p, false).data, &exclude, 1e-14);
    }
}

/// max_pool2d by brute force over a copy of x padded with −∞.
fn max_pool_brute(x: &Array, k: [usize; 2], s: [usize; 2], p: [usize; 2]) -> Vec<f64> {
    let [n_, c_, h_, w_] = x.dims4();
    let (hp, wp) = (h_ + 2 * p[0], w_ + 2 * p[1]);
    let mut padded = vec![f64::NEG_INFINITY; n_ * c_ * hp * wp];
    for pl in 0..n_ * c_ {
        for h in 0..h_ {
            for w in 0..w_ {
                padded[(pl * hp + h + p[0]) * wp + w + p[1]] = x.data[(pl * h_ + h) * w_ + w];
            }
        }
    }
    let (ho, wo) = ((hp - k[0]) / s[0] + 1, (wp - k[1]) / s[1] + 1);
    let mut out = Vec::new();
    for pl in 0..n_ * c_ {
        for oh in 0..ho {
            for ow in 0..wo {
                let mut m = f64::NEG_INFINITY;
                for i in 0..k[0] {
                    for j in 0..k[1] {
                        m = m.max(padded[(pl * hp + oh * s[0] + i) * wp + ow * s[1] + j]);
                    }
                }
                out.push(m);
            }
        }
    }
    out
}

#[test]
fn max_pool2d_matches_brute_force_with_infinite_padding() {
    let mut rng = Rng::new(12);
    for &(xs, k, s, p) in POOL_CASES {
        // All-negative inputs: zero padding would win every border window; −∞ padding must not.
        let x = rng.randn(&xs);
        let neg = Array::new(&xs, x.data.iter().map(|v| -v.abs() - 1.0).collect());
        for (tag, a) in [("randn", &x), ("negative", &neg)] {
            let y = max_pool2d(a, k, s, p);
            assert_eq!(y.data, max_pool_brute(a, k, s, p), "max_pool2d {tag} {xs:?} k{k:?} s{s:?} p{p:?}");
            assert!(y.data.iter().all(|v| v.is_finite()));
        }
    }
}

#[test]
fn max_pool2d_propagates_nan() {
    let mut x = Array::new(&[1, 1, 3, 3], (1..=9).map(f64::from).collect());
    x.data[4] = f64::NAN; // the centre: in every 3×3 window with padding 1
    let y = max_pool2d(&x, [3, 3], [1, 1], [1, 1]);
    assert!(y.data.iter().all(|v| v.is_nan()), "{:?}", y.data);
    let y = max_pool2d(&x, [2, 2], [1, 1], [0, 0]);
    assert!(y.data.iter().all(|v| v.is_nan()));
}

#[test]
fn global_avg_pool2d_is_the_full_window_average() {
    let mut rng = Rng::new(13);
    let x = rng.randn(&[3, 4, 5, 7]);
    let g = global_avg_pool2d(&x);
    assert_eq!(g.shape, vec![3, 4]);
    check("global_avg_pool2d", &g.data, &avg_pool2d(&x, [5, 7], [1, 1], [0, 0], true).data, 1e-15);
}

#[test]
fn resize_bilinear_matches_pytorch_values() {
    // F.interpolate(torch.tensor([[[[1., 2.], [3., 4.]]]]), size=(4, 4), mode='bilinear', align_corners=False)
    let x = Array::new(&[1, 1, 2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let y = resize_bilinear(&x, 4, 4);
    let expected = [
        1.0, 1.25, 1.75, 2.0, //
        1.5, 1.75, 2.25, 2.5, //
        2.5, 2.75, 3.25, 3.5, //
        3.0, 3.25, 3.75, 4.0,
    ];
    assert_eq!(y.data, expected);
    // Halving without antialiasing: src = 2d + 0.5, the mean of each pair (no wider average).
    let x = Array::new(&[1, 1, 1, 4], vec![1.0, 3.0, 10.0, 30.0]);
    assert_eq!(resize_bilinear(&x, 1, 2).data, vec![2.0, 20.0]);
    // One output from four: src = 1.5.
    assert_eq!(resize_bilinear(&x, 1, 1).data, vec![6.5]);
}

#[test]
fn resize_bilinear_identity_and_constants() {
    let mut rng = Rng::new(14);
    let x = rng.randn(&[2, 3, 7, 5]);
    assert_eq!(resize_bilinear(&x, 7, 5).data, x.data, "same size must be the identity");
    let c = Array::new(&[1, 2, 6, 9], vec![0.37; 108]);
    for (h, w) in [(299, 299), (3, 4), (1, 1), (13, 2)] {
        assert!(resize_bilinear(&c, h, w).data.iter().all(|v| (v - 0.37).abs() < 1e-15));
    }
}

#[test]
fn resize_bilinear_reproduces_ramps_between_the_clamped_borders() {
    // x[h, w] = a·h + b·w + c is reproduced exactly at the source coordinate wherever no clamping occurs:
    // y[dh, dw] = a·src(dh) + b·src(dw) + c, src(d) = (d + 0.5)·in/out − 0.5 within [0, in − 1].
    let (hi, wi) = (64, 80);
    let (a, b, c0) = (0.7, -1.3, 2.0);
    let x = Array::new(&[1, 1, hi, wi], (0..hi * wi).map(|i| a * (i / wi) as f64 + b * (i % wi) as f64 + c0).collect());
    for (ho, wo) in [(299, 299), (17, 33), (64, 160)] {
        let y = resize_bilinear(&x, ho, wo);
        let src = |d: usize, i: usize, o: usize| ((d as f64 + 0.5) * i as f64 / o as f64 - 0.5).clamp(0.0, (i - 1) as f64);
        let expected: Vec<f64> = (0..ho * wo).map(|k| a * src(k / wo, hi, ho) + b * src(k % wo, wi, wo) + c0).collect();
        check(&format!("ramp {hi}x{wi} -> {ho}x{wo}"), &y.data, &expected, 1e-14);
    }
}

#[test]
fn pool_and_resize_are_linear() {
    let mut rng = Rng::new(15);
    let (x, z) = (rng.randn(&[2, 2, 9, 7]), rng.randn(&[2, 2, 9, 7]));
    let comb = Array::new(&x.shape, x.data.iter().zip(&z.data).map(|(a, b)| 2.5 * a - 0.5 * b).collect());
    let lin = |f: &dyn Fn(&Array) -> Array, name: &str| {
        let (fx, fz) = (f(&x), f(&z));
        let expected: Vec<f64> = fx.data.iter().zip(&fz.data).map(|(a, b)| 2.5 * a - 0.5 * b).collect();
        check(name, &f(&comb).data, &expected, 1e-14);
    };
    lin(&|a| resize_bilinear(a, 31, 4), "resize linearity");
    lin(&|a| avg_pool2d(a, [3, 3], [2, 1], [1, 1], false), "avg_pool2d linearity");
    lin(&global_avg_pool2d, "global_avg_pool2d linearity");
}

#[test]
fn concat_channels_stacks_along_dim_1() {
    let mut rng = Rng::new(16);
    let (a, b, c) = (rng.randn(&[2, 3, 4, 5]), rng.randn(&[2, 1, 4, 5]), rng.randn(&[2, 2, 4, 5]));
    let y = concat_channels(&[&a, &b, &c]);
    assert_eq!(y.shape, vec![2, 6, 4, 5]);
    for n in 0..2 {
        for (c0, src) in [(0, &a), (3, &b), (4, &c)] {
            for ch in 0..src.shape[1] {
                for h in 0..4 {
                    for w in 0..5 {
                        assert_eq!(y.data[y.idx4(n, c0 + ch, h, w)], src.data[src.idx4(n, ch, h, w)]);
                    }
                }
            }
        }
    }
}

#[test]
fn affine_channels_is_eval_batch_norm_then_relu() {
    let mut rng = Rng::new(17);
    let x = rng.randn(&[2, 4, 3, 5]);
    let gamma: Vec<f64> = (0..4).map(|_| 1.0 + 0.3 * rng.normal()).collect();
    let beta = rng.normals(4);
    let mean = rng.normals(4);
    let var: Vec<f64> = (0..4).map(|_| 0.5 + rng.uniform()).collect();
    let eps = 1e-3;
    let scale: Vec<f64> = (0..4).map(|c| gamma[c] / (var[c] + eps).sqrt()).collect();
    let shift: Vec<f64> = (0..4).map(|c| beta[c] - mean[c] * scale[c]).collect();
    let bn = batch_norm2d_eval(&x, &gamma, &beta, &mean, &var, eps);
    check("affine_channels = batch_norm2d_eval", &affine_channels(&x, &scale, &shift, false).data, &bn.data, 1e-14);
    let relu: Vec<f64> = bn.data.iter().map(|v| v.max(0.0)).collect();
    check("affine_channels relu", &affine_channels(&x, &scale, &shift, true).data, &relu, 1e-14);
}
