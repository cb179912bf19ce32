//! Bilinear resizing as `F.interpolate(x, size=(out_h, out_w), mode='bilinear', align_corners=False)`.
//!
//! PyTorch's source index for output index d along an axis of scale = in/out:
//! src = max((d + 0.5)·scale − 0.5, 0); i0 = ⌊src⌋, i1 = min(i0 + 1, in − 1), λ1 = src − i0, λ0 = 1 − λ1.
//! The output is λ0h·(λ0w·x[i0h, i0w] + λ1w·x[i0h, i1w]) + λ1h·(λ0w·x[i1h, i0w] + λ1w·x[i1h, i1w]).
//! With out = in every src is d exactly, so the resize is the identity. Downscaling does not average a
//! larger neighbourhood (no antialiasing), exactly as PyTorch.

use crate::Array;

/// (i0, i1, λ0, λ1) of every output index along one axis.
pub fn bilinear_taps(len_in: usize, len_out: usize) -> Vec<(usize, usize, f64, f64)> {
    assert!(len_in >= 1 && len_out >= 1, "bilinear resize between empty axes");
    let scale = len_in as f64 / len_out as f64;
    (0..len_out)
        .map(|d| {
            let src = ((d as f64 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (src.floor() as usize).min(len_in - 1);
            let i1 = if i0 + 1 < len_in { i0 + 1 } else { i0 };
            let l1 = src - i0 as f64;
            (i0, i1, 1.0 - l1, l1)
        })
        .collect()
}

/// x [N, C, H, W] → [N, C, out_h, out_w], bilinear, align_corners False.
pub fn resize_bilinear(x: &Array, out_h: usize, out_w: usize) -> Array {
    let [n_, c_, h_, w_] = x.dims4();
    let th = bilinear_taps(h_, out_h);
    let tw = bilinear_taps(w_, out_w);
    let mut y = Array::zeros(&[n_, c_, out_h, out_w]);
    for n in 0..n_ {
        for c in 0..c_ {
            for (oh, &(h0, h1, lh0, lh1)) in th.iter().enumerate() {
                for (ow, &(w0, w1, lw0, lw1)) in tw.iter().enumerate() {
                    let at = |h, w| x.data[x.idx4(n, c, h, w)];
                    let v = lh0 * (lw0 * at(h0, w0) + lw1 * at(h0, w1)) + lh1 * (lw0 * at(h1, w0) + lw1 * at(h1, w1));
                    let yi = y.idx4(n, c, oh, ow);
                    y.data[yi] = v;
                }
            }
        }
    }
    y
}
