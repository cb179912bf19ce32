//! conv2d and conv_transpose2d (no bias), forward and both backwards.
//!
//! Each op family is ONE loop over its multiply-accumulates ("taps"): the forward computes
//! `y[yi] += x[xi]·w[wi]`, and since that is bilinear, the backwards are the same visits with the roles
//! permuted (`dx[xi] += dy[yi]·w[wi]`, `dw[wi] += x[xi]·dy[yi]`). So each backward is the exact adjoint
//! of its forward by construction. conv_transpose2d gets its own (scatter) loop, written from its
//! definition rather than through conv2d, so that comparing the two families checks both.

use crate::Array;

/// Output length along one axis of conv2d. Floor division, as PyTorch: trailing input rows that no
/// window reaches are ignored (and get zero gradient).
fn conv_out_len(len: usize, k: usize, stride: usize, pad: usize) -> usize {
    assert!(stride >= 1, "stride must be >= 1");
    assert!(len + 2 * pad >= k, "kernel {k} larger than padded input {len} + 2*{pad}");
    (len + 2 * pad - k) / stride + 1
}

/// Output length along one axis of conv_transpose2d (output_padding 0): (len−1)·s − 2p + k.
fn conv_transpose_out_len(len: usize, k: usize, stride: usize, pad: usize) -> usize {
    assert!(stride >= 1 && len >= 1, "stride and input length must be >= 1");
    let full = (len - 1) * stride + k;
    assert!(full > 2 * pad, "padding {pad} removes the whole output of length {full}");
    full - 2 * pad
}

/// The conv2d output shape for input `x` [N, C, H, W] and weight `w` [O, C, kh, kw].
fn conv2d_out_shape(x: [usize; 4], w: [usize; 4], stride: [usize; 2], padding: [usize; 2]) -> [usize; 4] {
    assert_eq!(x[1], w[1], "conv2d: input has {} channels, weight expects {}", x[1], w[1]);
    [x[0], w[0], conv_out_len(x[2], w[2], stride[0], padding[0]), conv_out_len(x[3], w[3], stride[1], padding[1])]
}

/// The conv_transpose2d output shape for input `x` [N, Cin, H, W] and weight `w` [Cin, Cout, kh, kw].
fn conv_transpose2d_out_shape(x: [usize; 4], w: [usize; 4], stride: [usize; 2], padding: [usize; 2]) -> [usize; 4] {
    assert_eq!(x[1], w[0], "conv_transpose2d: input has {} channels, weight expects {}", x[1], w[0]);
    [x[0], w[1], conv_transpose_out_len(x[2], w[2], stride[0], padding[0]), conv_transpose_out_len(x[3], w[3], stride[1], padding[1])]
}

/// Visit every multiply-accumulate of conv2d as `f(xi, wi, yi)`, the flat indices into x [N, C, H, W],
/// w [O, C, kh, kw] and y [N, O, Ho, Wo] of `y[yi] += x[xi]·w[wi]`. Taps that land in the zero padding
/// contribute nothing and are skipped.
fn conv2d_taps(x: [usize; 4], w: [usize; 4], stride: [usize; 2], padding: [usize; 2], mut f: impl FnMut(usize, usize, usize)) {
    let [nn, cc, hh, ww] = x;
    let [oo, _, kh, kw] = w;
    let [_, _, ho, wo] = conv2d_out_shape(x, w, stride, padding);
    for n in 0..nn {
        for o in 0..oo {
            for oh in 0..ho {
                for ow in 0..wo {
                    let yi = ((n * oo + o) * ho + oh) * wo + ow;
                    for c in 0..cc {
                        for i in 0..kh {
                            // Input row oh·s + i − p; None (or ≥ H) means the tap sits in the padding.
                            let Some(ih) = (oh * stride[0] + i).checked_sub(padding[0]).filter(|&v| v < hh) else { continue };
                            for j in 0..kw {
                                let Some(iw) = (ow * stride[1] + j).checked_sub(padding[1]).filter(|&v| v < ww) else { continue };
                                f(((n * cc + c) * hh + ih) * ww + iw, ((o * cc + c) * kh + i) * kw + j, yi);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Visit every multiply-accumulate of conv_transpose2d as `f(xi, wi, yi)` for `y[yi] += x[xi]·w[wi]`,
/// x [N, Cin, H, W], w [Cin, Cout, kh, kw], y [N, Cout, Ho, Wo]. This is the definition (a scatter):
/// input pixel (ih, iw) stamps the kernel, scaled by its value, at output (ih·s − p + i, iw·s − p + j);
/// stamps that fall outside the output (the cropped padding) are dropped.
fn conv_transpose2d_taps(x: [usize; 4], w: [usize; 4], stride: [usize; 2], padding: [usize; 2], mut f: impl FnMut(usize, usize, usize)) {
    let [nn, ci_n, hh, ww] = x;
    let [_, co_n, kh, kw] = w;
    let [_, _, ho, wo] = conv_transpose2d_out_shape(x, w, stride, padding);
    for n in 0..nn {
        for ci in 0..ci_n {
            for ih in 0..hh {
                for iw in 0..ww {
                    let xi = ((n * ci_n + ci) * hh + ih) * ww + iw;
                    for co in 0..co_n {
                        for i in 0..kh {
                            let Some(oh) = (ih * stride[0] + i).checked_sub(padding[0]).filter(|&v| v < ho) else { continue };
                            for j in 0..kw {
                                let Some(ow) = (iw * stride[1] + j).checked_sub(padding[1]).filter(|&v| v < wo) else { continue };
                                f(xi, ((ci * co_n + co) * kh + i) * kw + j, ((n * co_n + co) * ho + oh) * wo + ow);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// y = conv2d(x, w): x [N, C, H, W], w [O, C, kh, kw] → [N, O, Ho, Wo], Ho = (H + 2ph − kh)/sh + 1.
pub fn conv2d(x: &Array, w: &Array, stride: [usize; 2], padding: [usize; 2]) -> Array {
    let mut y = Array::zeros(&conv2d_out_shape(x.dims4(), w.dims4(), stride, padding));
    conv2d_taps(x.dims4(), w.dims4(), stride, padding, |xi, wi, yi| y.data[yi] += x.data[xi] * w.data[wi]);
    y
}

/// dx of conv2d: each tap sends dy back along the weight that carried x forward.
pub fn conv2d_bwd_data(dy: &Array, w: &Array, x_shape: [usize; 4], stride: [usize; 2], padding: [usize; 2]) -> Array {
    assert_eq!(dy.dims4(), conv2d_out_shape(x_shape, w.dims4(), stride, padding), "conv2d_bwd_data: dy shape");
    let mut dx = Array::zeros(&x_shape);
    conv2d_taps(x_shape, w.dims4(), stride, padding, |xi, wi, yi| dx.data[xi] += dy.data[yi] * w.data[wi]);
    dx
}

/// dw of conv2d: each tap's weight collects x·dy over all positions and samples.
pub fn conv2d_bwd_weight(x: &Array, dy: &Array, w_shape: [usize; 4], stride: [usize; 2], padding: [usize; 2]) -> Array {
    assert_eq!(dy.dims4(), conv2d_out_shape(x.dims4(), w_shape, stride, padding), "conv2d_bwd_weight: dy shape");
    let mut dw = Array::zeros(&w_shape);
    conv2d_taps(x.dims4(), w_shape, stride, padding, |xi, wi, yi| dw.data[wi] += x.data[xi] * dy.data[yi]);
    dw
}

/// y = conv_transpose2d(x, w): x [N, Cin, H, W], w [Cin, Cout, kh, kw] (PyTorch's layout),
/// output_padding 0 → [N, Cout, (H − 1)·sh − 2ph + kh, (W − 1)·sw − 2pw + kw].
pub fn conv_transpose2d(x: &Array, w: &Array, stride: [usize; 2], padding: [usize; 2]) -> Array {
    let mut y = Array::zeros(&conv_transpose2d_out_shape(x.dims4(), w.dims4(), stride, padding));
    conv_transpose2d_taps(x.dims4(), w.dims4(), stride, padding, |xi, wi, yi| y.data[yi] += x.data[xi] * w.data[wi]);
    y
}

/// dx of conv_transpose2d. The input shape follows from dy's: H = (Ho + 2p − kh)/s + 1, which is exact
/// because output_padding is 0.
pub fn conv_transpose2d_bwd_data(dy: &Array, w: &Array, stride: [usize; 2], padding: [usize; 2]) -> Array {
    let [n, cout, ho, wo] = dy.dims4();
    let [cin, wcout, kh, kw] = w.dims4();
    assert_eq!(cout, wcout, "conv_transpose2d_bwd_data: dy has {cout} channels, weight expects {wcout}");
    let in_len = |out: usize, k: usize, s: usize, p: usize| {
        assert!(out + 2 * p >= k && (out + 2 * p - k).is_multiple_of(s), "conv_transpose2d_bwd_data: output length {out} fits no input");
        (out + 2 * p - k) / s + 1
    };
    let x_shape = [n, cin, in_len(ho, kh, stride[0], padding[0]), in_len(wo, kw, stride[1], padding[1])];
    assert_eq!(dy.dims4(), conv_transpose2d_out_shape(x_shape, w.dims4(), stride, padding));
    let mut dx = Array::zeros(&x_shape);
    conv_transpose2d_taps(x_shape, w.dims4(), stride, padding, |xi, wi, yi| dx.data[xi] += dy.data[yi] * w.data[wi]);
    dx
}

/// dw of conv_transpose2d; `w_shape` is [Cin, Cout, kh, kw].
pub fn conv_transpose2d_bwd_weight(x: &Array, dy: &Array, w_shape: [usize; 4], stride: [usize; 2], padding: [usize; 2]) -> Array {
    assert_eq!(dy.dims4(), conv_transpose2d_out_shape(x.dims4(), w_shape, stride, padding), "conv_transpose2d_bwd_weight: dy shape");
    let mut dw = Array::zeros(&w_shape);
    conv_transpose2d_taps(x.dims4(), w_shape, stride, padding, |xi, wi, yi| dw.data[wi] += x.data[xi] * dy.data[yi]);
    dw
}
