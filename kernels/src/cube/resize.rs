//! Bilinear resize, `F.interpolate(mode='bilinear', align_corners=False)`: one unit per output. The source
//! taps of every output row and column (i0, i1, λ0, λ1, from PyTorch's src = max((d + 0.5)·in/out − 0.5, 0))
//! are formed on the host in f64 and passed in; each output is λ0h·(λ0w·x00 + λ1w·x01) + λ1h·(λ0w·x10 + λ1w·x11).

use cubecl::prelude::*;

use super::{grid_start, grid_stride};

launch_args! {
    /// Planes of h × w resized to out_h × out_w.
    ResizeDims => ResizeDimsLaunch: usize { h, w, out_h, out_w }
}

/// x [planes, h, w] → y [planes, out_h, out_w]. `idx` holds (i0, i1) per output row then per output column
/// ([2·out_h + 2·out_w]); `lam` the matching (λ0, λ1).
#[cube(launch)]
pub fn resize_bilinear(x: &Array<f32>, idx: &Array<u32>, lam: &Array<f32>, y: &mut Array<f32>, d: ResizeDims) {
    let n = y.len();
    let (h, w, oh, ow) = (d.h, d.w, d.out_h, d.out_w);
    let mut i = grid_start();
    while i < n {
        let plane = i / (oh * ow);
        let q = i % (oh * ow);
        let ty = 2 * (q / ow);
        let tx = 2 * oh + 2 * (q % ow);
        let r0 = plane * h * w + idx[ty] as usize * w;
        let r1 = plane * h * w + idx[ty + 1] as usize * w;
        let (c0, c1) = (idx[tx] as usize, idx[tx + 1] as usize);
        let (l0w, l1w) = (lam[tx], lam[tx + 1]);
        y[i] = lam[ty] * (l0w * x[r0 + c0] + l1w * x[r0 + c1]) + lam[ty + 1] * (l0w * x[r1 + c0] + l1w * x[r1 + c1]);
        i += grid_stride();
    }
}
