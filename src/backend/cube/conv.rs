//! conv2d and its two backward passes: shape checks, split-K planning ([`super::launch`]) and the launches
//! of kernels/src/cube/conv.rs, whose docs describe the tiling and the stride-phase decomposition of the
//! backward-data pass.

use cubecl::server::Handle;
use cubecl::Runtime;
use cxr_gan_kernels::cube as kern;
use cxr_gan_kernels::cube::conv::{BwdDataPhase, Conv2dGeom, ConvTile, SplitK, TILE_K};

use super::launch::{arr, block, grid, split_k, tile_count, tile_dim, tiles};
use super::{CubeBackend, CubeTensor};
use crate::backend::{shapes, Conv2dParams};
use crate::error::Result;
use crate::tensor::dims4;

/// The kernels' view of a convolution with input x, weight w, output y.
fn geom(x: [usize; 4], w: [usize; 4], y: [usize; 4], p: Conv2dParams) -> Conv2dGeom {
    let ([n, c, h, wd], [o, _, kh, kw], [_, _, ho, wo]) = (x, w, y);
    let ([stride_h, stride_w], [pad_h, pad_w]) = (p.stride, p.padding);
    Conv2dGeom { n, c, h, w: wd, o, kh, kw, ho, wo, stride_h, stride_w, pad_h, pad_w }
}

/// Stride phase `a` of conv2d_bwd_data along one axis (stride s, padding `pad`, kernel k, input length
/// `len`): the first input index of the phase, how many input positions it has, its kernel taps, and the
/// output index its first position reads at tap 0.
fn stride_phase(a: usize, s: usize, pad: usize, k: usize, len: usize) -> (usize, usize, usize, usize) {
    let first = (a as isize - pad as isize).rem_euclid(s as isize) as usize;
    let count = if first < len { (len - first).div_ceil(s) } else { 0 };
    let taps = if a < k { (k - a).div_ceil(s) } else { 0 };
    let base = (first + pad - a) / s;
    (first, count, taps, base)
}

impl<R: Runtime> CubeBackend<R> {
    pub(super) fn launch_conv2d(&self, x: &CubeTensor, w: &CubeTensor, p: Conv2dParams) -> Result<CubeTensor> {
        const OP: &str = "conv2d";
        let ys = shapes::conv2d_out(OP, x.shape(), w.shape(), p)?;
        let (xs, ws) = (dims4(x.shape(), OP, "x")?, dims4(w.shape(), OP, "w")?);
        for v in [x.len(), w.len(), ys.iter().product()] {
            self.u32_of(OP, v)?;
        }
        let y = self.alloc(OP, &ys)?;
        let g = geom(xs, ws, ys, p);
        let cols = g.n * g.ho * g.wo;
        if cols == 0 || g.o == 0 {
            return Ok(y);
        }
        let (splits, kchunk) = split_k(tile_count(g.o, cols), g.c * g.kh * g.kw);
        let out = self.split_buffer(OP, &y, splits)?;
        let split = SplitK { cols, kchunk, out_len: y.len() };
        // SAFETY: every global read and write of the conv kernels is guarded by an explicit bounds test
        // (their inputs are sized by the shape checks above); shared-memory indices stay within the tiles.
        unsafe {
            kern::conv::conv2d::launch_unchecked::<R>(
                &self.client,
                tiles(OP, g.o, cols, splits)?,
                tile_dim(),
                arr(&x.handle, x.len()),
                arr(&w.handle, w.len()),
                arr(&out, splits * y.len()),
                g.launch(),
                split.launch(),
                ConvTile::for_rows(g.o),
            )
        };
        self.sum_split_parts(&out, &y, splits);
        Ok(y)
    }

    pub(super) fn launch_conv2d_bwd_data(&self, dy: &CubeTensor, w: &CubeTensor, xs: [usize; 4], p: Conv2dParams) -> Result<CubeTensor> {
        const OP: &str = "conv2d_bwd_data";
        shapes::conv2d_bwd_data(OP, dy.shape(), w.shape(), xs, p)?;
        let (ws, ys) = (dims4(w.shape(), OP, "w")?, dims4(dy.shape(), OP, "dy")?);
        for v in [dy.len(), w.len(), xs.iter().product()] {
            self.u32_of(OP, v)?;
        }
        let dx = self.alloc(OP, &xs)?;
        if dx.is_empty() {
            return Ok(dx);
        }
        let g = geom(xs, ws, ys, p);
        let phase_h = |a| stride_phase(a, g.stride_h, g.pad_h, g.kh, g.h);
        let phase_w = |a| stride_phase(a, g.stride_w, g.pad_w, g.kw, g.w);
        // Every phase writes its own positions into the same (partial) buffers, so one split count serves
        // all: the one the first (largest) phase wants.
        let ((_, t_h0, taps_h0, _), (_, t_w0, taps_w0, _)) = (phase_h(0), phase_w(0));
        let (splits, _) = split_k(tile_count(g.c, g.n * t_h0 * t_w0), g.o * taps_h0 * taps_w0);
        let out = self.split_buffer(OP, &dx, splits)?;
        // One launch per stride phase (a_h, a_w); see the kernel's docs.
        for a_h in 0..g.stride_h {
            let (ih0, t_h, taps_h, base_h) = phase_h(a_h);
            for a_w in 0..g.stride_w {
                let (iw0, t_w, taps_w, base_w) = phase_w(a_w);
                let cols = g.n * t_h * t_w;
                if cols == 0 {
                    continue;
                }
                let kchunk = (g.o * taps_h * taps_w).div_ceil(splits).next_multiple_of(TILE_K).max(TILE_K);
                let phase = BwdDataPhase { a_h, a_w, taps_h, taps_w, ih0, iw0, t_h, t_w, base_h, base_w };
                let split = SplitK { cols, kchunk, out_len: dx.len() };
                // SAFETY: as conv2d's launch.
                unsafe {
                    kern::conv::conv2d_bwd_data::launch_unchecked::<R>(
                        &self.client,
                        tiles(OP, g.c, cols, splits)?,
                        tile_dim(),
                        arr(&dy.handle, dy.len()),
                        arr(&w.handle, w.len()),
                        arr(&out, splits * dx.len()),
                        g.launch(),
                        phase.launch(),
                        split.launch(),
                        ConvTile::for_rows(g.c),
                    )
                };
            }
        }
        self.sum_split_parts(&out, &dx, splits);
        Ok(dx)
    }

    pub(super) fn launch_conv2d_bwd_weight(&self, x: &CubeTensor, dy: &CubeTensor, ws: [usize; 4], p: Conv2dParams) -> Result<CubeTensor> {
        const OP: &str = "conv2d_bwd_weight";
        shapes::conv2d_bwd_weight(OP, x.shape(), dy.shape(), ws, p)?;
        let (xs, ys) = (dims4(x.shape(), OP, "x")?, dims4(dy.shape(), OP, "dy")?);
        for v in [x.len(), dy.len(), ws.iter().product()] {
            self.u32_of(OP, v)?;
        }
        let dw = self.alloc(OP, &ws)?;
        let g = geom(xs, ws, ys, p);
        let kdim = g.c * g.kh * g.kw;
        let rdim = g.n * g.ho * g.wo;
        if dw.is_empty() {
            return Ok(dw);
        }
        if rdim == 0 {
            self.fill(&dw.handle, dw.len(), 0.0);
            return Ok(dw);
        }
        let (splits, kchunk) = split_k(tile_count(g.o, kdim), rdim);
        let part = self.split_buffer(OP, &dw, splits)?;
        let split = SplitK { cols: kdim, kchunk, out_len: dw.len() };
        // SAFETY: as conv2d's launch.
        unsafe {
            kern::conv::conv2d_bwd_weight::launch_unchecked::<R>(
                &self.client,
                tiles(OP, g.o, kdim, splits)?,
                tile_dim(),
                arr(&x.handle, x.len()),
                arr(&dy.handle, dy.len()),
                arr(&part, splits * dw.len()),
                g.launch(),
                split.launch(),
                ConvTile::for_rows(g.o),
            )
        };
        self.sum_split_parts(&part, &dw, splits);
        Ok(dw)
    }

    /// Where a split-K GEMM writes: the output itself for one split, else a fresh [splits, len] buffer.
    fn split_buffer(&self, op: &'static str, out: &CubeTensor, splits: usize) -> Result<Handle> {
        if splits == 1 {
            return Ok(out.handle.clone());
        }
        self.u32_of(op, splits * out.len())?;
        self.buffer(op, splits * out.len())
    }

    /// out = Σ of the split-K partials (nothing to do for one split).
    fn sum_split_parts(&self, part: &Handle, out: &CubeTensor, splits: usize) {
        if splits > 1 {
            let len = out.len();
            kern::sum_splits::launch::<R>(&self.client, grid(len), block(), arr(part, splits * len), arr(&out.handle, len), splits, len);
        }
    }
}
