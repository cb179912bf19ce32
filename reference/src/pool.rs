//! Pooling: avg_pool2d, max_pool2d and the global average pool (`adaptive_avg_pool2d(x, 1)`), plus the two
//! channel-wise helpers the Inception blocks need: concat_channels (`torch.cat(dim=1)`) and affine_channels
//! (eval-mode BatchNorm as y = s·x + t, then an optional ReLU). FID's InceptionV3 never differentiates; the
//! backwards (of all but affine_channels) are for training a classifier.
//!
//! Windows follow PyTorch (ceil_mode = False): output length ⌊(L + 2p − k)/s⌋ + 1, window of output o
//! over input rows [o·s − p, o·s − p + k). Padding must be at most half the kernel, as PyTorch requires.

use crate::Array;

/// Output length along one axis of a pooling window (ceil_mode False).
pub fn pool_out_len(len: usize, k: usize, stride: usize, pad: usize) -> usize {
    assert!(k >= 1 && stride >= 1, "kernel and stride must be >= 1");
    assert!(2 * pad <= k, "padding {pad} larger than half the kernel {k}");
    assert!(len + 2 * pad >= k, "kernel {k} larger than padded input {len} + 2*{pad}");
    (len + 2 * pad - k) / stride + 1
}

/// The input indices [lo, hi) of window `o` clipped to the input, and the unclipped window's extent
/// within the padded input (PyTorch's `pool_size` before clipping).
fn window(o: usize, k: usize, stride: usize, pad: usize, len: usize) -> (usize, usize, usize) {
    let start = (o * stride) as isize - pad as isize;
    let end_padded = (start + k as isize).min((len + pad) as isize);
    let padded_extent = (end_padded - start) as usize;
    let lo = start.max(0) as usize;
    let hi = end_padded.min(len as isize) as usize;
    (lo, hi, padded_extent)
}

/// F.avg_pool2d(x, kernel, stride, padding, ceil_mode=False, count_include_pad). With count_include_pad the
/// divisor is the window's size in the padded input (kh·kw); without, only the elements inside the input.
pub fn avg_pool2d(x: &Array, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2], count_include_pad: bool) -> Array {
    let [n_, c_, h_, w_] = x.dims4();
    let ho = pool_out_len(h_, kernel[0], stride[0], padding[0]);
    let wo = pool_out_len(w_, kernel[1], stride[1], padding[1]);
    let mut y = Array::zeros(&[n_, c_, ho, wo]);
    for n in 0..n_ {
        for c in 0..c_ {
            for oh in 0..ho {
                let (h0, h1, ph) = window(oh, kernel[0], stride[0], padding[0], h_);
                for ow in 0..wo {
                    let (w0, w1, pw) = window(ow, kernel[1], stride[1], padding[1], w_);
                    let mut sum = 0.0;
                    for ih in h0..h1 {
                        for iw in w0..w1 {
                            sum += x.data[x.idx4(n, c, ih, iw)];
                        }
                    }
                    let count = if count_include_pad { ph * pw } else { (h1 - h0) * (w1 - w0) };
                    let yi = y.idx4(n, c, oh, ow);
                    y.data[yi] = sum / count as f64;
                }
            }
        }
    }
    y
}

/// F.max_pool2d(x, kernel, stride, padding, dilation=1, ceil_mode=False): padding never wins (it is −∞),
/// and a NaN in the window is the result (PyTorch propagates NaN).
pub fn max_pool2d(x: &Array, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2]) -> Array {
    let [n_, c_, h_, w_] = x.dims4();
    let ho = pool_out_len(h_, kernel[0], stride[0], padding[0]);
    let wo = pool_out_len(w_, kernel[1], stride[1], padding[1]);
    let mut y = Array::zeros(&[n_, c_, ho, wo]);
    for n in 0..n_ {
        for c in 0..c_ {
            for oh in 0..ho {
                let (h0, h1, _) = window(oh, kernel[0], stride[0], padding[0], h_);
                for ow in 0..wo {
                    let (w0, w1, _) = window(ow, kernel[1], stride[1], padding[1], w_);
                    let mut m = f64::NEG_INFINITY;
                    for ih in h0..h1 {
                        for iw in w0..w1 {
                            let v = x.data[x.idx4(n, c, ih, iw)];
                            if v > m || v.is_nan() {
                                m = v;
                            }
                        }
                    }
                    let yi = y.idx4(n, c, oh, ow);
                    y.data[yi] = m;
                }
            }
        }
    }
    y
}

/// F.adaptive_avg_pool2d(x, 1) flattened: the mean of every (n, c) plane, [N, C].
pub fn global_avg_pool2d(x: &Array) -> Array {
    let [n_, c_, h_, w_] = x.dims4();
    let hw = h_ * w_;
    assert!(hw > 0, "global_avg_pool2d of an empty plane");
    let data = (0..n_ * c_).map(|p| x.data[p * hw..(p + 1) * hw].iter().sum::<f64>() / hw as f64).collect();
    Array::new(&[n_, c_], data)
}

/// torch.cat(xs, dim=1) of 4-d arrays that agree in N, H and W.
pub fn concat_channels(xs: &[&Array]) -> Array {
    assert!(!xs.is_empty(), "concat_channels of nothing");
    let [n_, _, h_, w_] = xs[0].dims4();
    let mut c_total = 0;
    for x in xs {
        let [n, c, h, w] = x.dims4();
        assert!(n == n_ && h == h_ && w == w_, "concat_channels: {:?} vs {:?}", x.shape, xs[0].shape);
        c_total += c;
    }
    let mut y = Array::zeros(&[n_, c_total, h_, w_]);
    for n in 0..n_ {
        let mut c0 = 0;
        for x in xs {
            let c_ = x.dims4()[1];
            for c in 0..c_ {
                for h in 0..h_ {
                    for w in 0..w_ {
                        let yi = y.idx4(n, c0 + c, h, w);
                        y.data[yi] = x.data[x.idx4(n, c, h, w)];
                    }
                }
            }
            c0 += c_;
        }
    }
    y
}

/// y[n, c, h, w] = scale[c]·x[n, c, h, w] + shift[c], then max(y, 0) when `relu`. Eval-mode batch norm is
/// this with scale = γ/√(var + eps) and shift = β − mean·scale.
pub fn affine_channels(x: &Array, scale: &[f64], shift: &[f64], relu: bool) -> Array {
    let [n_, c_, h_, w_] = x.dims4();
    assert!(scale.len() == c_ && shift.len() == c_, "affine_channels: {} / {} values for {c_} channels", scale.len(), shift.len());
    let mut y = Array::zeros(&x.shape);
    for n in 0..n_ {
        for c in 0..c_ {
            for h in 0..h_ {
                for w in 0..w_ {
                    let i = x.idx4(n, c, h, w);
                    let v = scale[c] * x.data[i] + shift[c];
                    // NaN stays NaN (as torch.relu).
                    y.data[i] = if relu && v < 0.0 { 0.0 } else { v };
                }
            }
        }
    }
    y
}

// ---------------------------------------------------------------- backwards (the classifier trains through these)

/// The gradient of max_pool2d: each output's dy goes to the FIRST maximum of its window in row-major scan
/// order (PyTorch's `if val > max || isnan(val)` update, starting from the window's first element; so with
/// several NaNs the last one gets it), and gradients add up where windows overlap. Padding is −∞ and never
/// receives anything.
pub fn max_pool2d_bwd(dy: &Array, x: &Array, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2]) -> Array {
    let [n_, c_, h_, w_] = x.dims4();
    let ho = pool_out_len(h_, kernel[0], stride[0], padding[0]);
    let wo = pool_out_len(w_, kernel[1], stride[1], padding[1]);
    assert_eq!(dy.shape, vec![n_, c_, ho, wo], "max_pool2d_bwd: dy shape");
    let mut dx = Array::zeros(&x.shape);
    for n in 0..n_ {
        for c in 0..c_ {
            for oh in 0..ho {
                let (h0, h1, _) = window(oh, kernel[0], stride[0], padding[0], h_);
                for ow in 0..wo {
                    let (w0, w1, _) = window(ow, kernel[1], stride[1], padding[1], w_);
                    let mut m = f64::NEG_INFINITY;
                    let mut arg = x.idx4(n, c, h0, w0);
                    for ih in h0..h1 {
                        for iw in w0..w1 {
                            let i = x.idx4(n, c, ih, iw);
                            let v = x.data[i];
                            if v > m || v.is_nan() {
                                m = v;
                                arg = i;
                            }
                        }
                    }
                    dx.data[arg] += dy.data[dy.idx4(n, c, oh, ow)];
                }
            }
        }
    }
    dx
}

/// The gradient of avg_pool2d: each output's dy / divisor goes to every input element of its window
/// (the divisor as in the forward: kh·kw clipped to the padded input with count_include_pad, else the
/// number of elements inside the input).
pub fn avg_pool2d_bwd(
    dy: &Array,
    x_shape: [usize; 4],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    count_include_pad: bool,
) -> Array {
    let [n_, c_, h_, w_] = x_shape;
    let ho = pool_out_len(h_, kernel[0], stride[0], padding[0]);
    let wo = pool_out_len(w_, kernel[1], stride[1], padding[1]);
    assert_eq!(dy.shape, vec![n_, c_, ho, wo], "avg_pool2d_bwd: dy shape");
    let mut dx = Array::zeros(&x_shape);
    for n in 0..n_ {
        for c in 0..c_ {
            for oh in 0..ho {
                let (h0, h1, ph) = window(oh, kernel[0], stride[0], padding[0], h_);
                for ow in 0..wo {
                    let (w0, w1, pw) = window(ow, kernel[1], stride[1], padding[1], w_);
                    let count = if count_include_pad { ph * pw } else { (h1 - h0) * (w1 - w0) };
                    let g = dy.data[dy.idx4(n, c, oh, ow)] / count as f64;
                    for ih in h0..h1 {
                        for iw in w0..w1 {
                            let i = dx.idx4(n, c, ih, iw);
                            dx.data[i] += g;
                        }
                    }
                }
            }
        }
    }
    dx
}

/// The gradient of global_avg_pool2d: dy[n, c] / (H·W) everywhere in plane (n, c).
pub fn global_avg_pool2d_bwd(dy: &Array, x_shape: [usize; 4]) -> Array {
    let [n_, c_, h_, w_] = x_shape;
    assert_eq!(dy.shape, vec![n_, c_], "global_avg_pool2d_bwd: dy shape");
    let hw = h_ * w_;
    assert!(hw > 0, "global_avg_pool2d_bwd of an empty plane");
    let data = (0..n_ * c_ * hw).map(|i| dy.data[i / hw] / hw as f64).collect();
    Array::new(&x_shape, data)
}

/// The gradient of concat_channels: torch.split(dy, channels, dim=1).
pub fn concat_channels_bwd(dy: &Array, channels: &[usize]) -> Vec<Array> {
    let [n_, c_total, h_, w_] = dy.dims4();
    assert_eq!(channels.iter().sum::<usize>(), c_total, "concat_channels_bwd: {channels:?} vs {c_total} channels");
    let mut out = Vec::with_capacity(channels.len());
    let mut c0 = 0;
    for &c_ in channels {
        let mut dx = Array::zeros(&[n_, c_, h_, w_]);
        for n in 0..n_ {
            for c in 0..c_ {
                for h in 0..h_ {
                    for w in 0..w_ {
                        let i = dx.idx4(n, c, h, w);
                        dx.data[i] = dy.data[dy.idx4(n, c0 + c, h, w)];
                    }
                }
            }
        }
        out.push(dx);
        c0 += c_;
    }
    out
}
