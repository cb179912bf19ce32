//! conv2d (no bias) and its two backward passes as im2col / col2im + one f32 GEMM (the `gemm` crate).
//! conv_transpose2d needs nothing here: the trait routes it through conv2d_bwd_data / conv2d / bwd_weight.
//!
//! Layout. For a chunk of `b` samples, the column matrix is cols [K, b·P] row-major, K = C·kh·kw (row
//! (c, ki, kj)) and P = Ho·Wo (column (sample, oy, ox)); for a tile of one sample, [K, t]. Then
//!   forward      y   [O, b·P] = w [O, K] · cols [K, b·P]
//!   bwd_data     dcols [K, b·P] = wᵀ [K, O] · dy [O, b·P], then col2im scatters-adds dcols into dx
//!   bwd_weight   dw [O, K] += dy [O, b·P] · colsᵀ [b·P, K]
//! which keeps the long spatial dimension (b·P) contiguous in every operand that im2col writes, and lets
//! the GEMM read w and wᵀ in place through strides (no transposed copy of the weights).
//!
//! Forward: one sample at a time, in column tiles. Every sample with P ≥ MIN_SAMPLE_COLS (and every
//! pointwise conv) is cut into tiles of t output positions, with the tile's column block [K, t] at most
//! TILE_BYTES (half an L2; t a multiple of 16 so the GEMM reads the block in place instead of repacking
//! it). A rayon task per (sample, tile) builds the block with im2col and multiplies it straight into
//! y[s, :, tile] (row stride P): no scatter, and the block is still in cache when the GEMM reads it. (One
//! 299² image has a 25 MB column matrix at InceptionV3's Conv2d_2a/2b; built whole, it went to memory and
//! back and those convs ran at 28–50 GFLOP/s per core on the dev machine, against 50–68 tiled.) A pointwise conv needs no im2col at
//! all: its GEMM reads the tile's columns of x[s] in place (on Inception's 8×8 maps 8–15% faster than
//! copying it into chunks and scattering y back). Non-pointwise convs on maps of MIN_SAMPLE_COLS (8×8) and
//! up ran per sample as fast as in chunks or faster; on 4×4 maps chunks were ahead.
//!
//! Backward, and forward on maps under MIN_SAMPLE_COLS: samples are grouped into chunks of `b` with
//! b·P ≈ TARGET_COLS, so that deep layers with tiny images (4×4 → P = 16) still get a GEMM with a few
//! hundred columns (per-sample bwd_data GEMMs repack wᵀ for every sample, and per-sample bwd_weight GEMMs
//! would add into the [O, K] accumulator once per sample), while large images (P ≥ TARGET_COLS) use one
//! sample per chunk, read dy in place, and go through it in the same column tiles as the forward pass
//! (in order, since bwd_data's tiles overlap in dx and bwd_weight's add into one accumulator).
//!
//! Threading. The tasks (tiles, chunks) run in parallel on rayon, each calling the GEMM single-threaded
//! (`Parallelism::None`) on scratch it reuses. We chose this over one GEMM at a time with
//! `Parallelism::Rayon` because im2col / col2im / gather / scatter (10–25% of a 1-thread conv) then run in
//! parallel too instead of being a serial fraction that caps the speedup on many cores, no thread waits on
//! a GEMM-internal barrier, and a column block stays in the L2 of the core that wrote it.
//! `Parallelism::Rayon` is used only where there are fewer tasks than threads, in bwd_weight when the
//! reduction leaves threads idle (see there), and for dense layers.
//!
//! Dense layers (the kernel covers the whole unpadded input, one output position: the discriminator's last
//! conv, the generator's first) skip im2col entirely: they are one [N, K] × [K, O] GEMM over the batch.
//!
//! Results do not depend on scheduling: each output element is produced by exactly one task (forward,
//! bwd_data), and bwd_weight sums a fixed partition of chunks per worker in a fixed order. The
//! per-sample forward pass does not depend on the thread count either (its tiles follow from the shapes
//! alone); chunks do.

use gemm::Parallelism;
use rayon::prelude::*;

use super::CpuBackend;
use crate::backend::{shapes, Conv2dParams};
use crate::error::Result;
use crate::tensor::Tensor;

/// Columns (b·P) one chunk's GEMM aims for: enough that packing costs are amortised and the micro-kernel
/// runs full tiles, small enough that cols [K, b·P] stays a few MiB.
const TARGET_COLS: usize = 512;

/// The fewest GEMM columns (the reduction length b·P) one bwd_weight worker sums before its [O, K]
/// partial is worth having.
const MIN_WORKER_COLS: usize = 1024;

/// The fewest output positions per sample (8×8) for which the forward pass of a non-pointwise conv runs one
/// GEMM per sample (per tile) writing y in place, rather than grouping samples into chunks.
const MIN_SAMPLE_COLS: usize = 64;

/// The most bytes one tile's column block [K, t] may take: about half a core's L2, so that the block
/// im2col writes is still there when the GEMM reads it, beside the GEMM's own packed weights.
const TILE_BYTES: usize = 1 << 19;

/// The fewest output positions a tile has (unless the image has fewer): below this the GEMM's per-call
/// costs (packing the weights) stop being small next to its work.
const MIN_TILE_COLS: usize = 128;

/// The geometry of one conv2d: x [n, c, h, w], weight [o, c, kh, kw], y [n, o, ho, wo].
#[derive(Clone, Copy, Debug)]
struct Geom {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    ho: usize,
    wo: usize,
    stride: [usize; 2],
    pad: [usize; 2],
}

impl Geom {
    fn new(x: [usize; 4], w: [usize; 4], y: [usize; 4], p: Conv2dParams) -> Self {
        Geom { n: x[0], c: x[1], h: x[2], w: x[3], o: w[0], kh: w[2], kw: w[3], ho: y[2], wo: y[3], stride: p.stride, pad: p.padding }
    }
    /// Rows of the column matrix: c·kh·kw.
    fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }
    /// Output positions per sample: ho·wo.
    fn p(&self) -> usize {
        self.ho * self.wo
    }
    fn x_sample(&self) -> usize {
        self.c * self.h * self.w
    }
    fn y_sample(&self) -> usize {
        self.o * self.p()
    }
    /// A 1×1, stride-1, unpadded conv: the column matrix of one sample is the sample itself.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.pad == [0, 0]
    }
    /// Whether the forward pass goes one sample at a time (see the module comment): always for a pointwise
    /// conv (no im2col at all), else when a sample has at least MIN_SAMPLE_COLS output positions.
    fn per_sample(&self) -> bool {
        self.pointwise() || self.p() >= MIN_SAMPLE_COLS
    }
    /// A kernel covering the whole unpadded input (one output position): the conv is a fully connected
    /// layer, y [N, O] = x [N, K] · wᵀ, with no im2col at all (the discriminator's last layer, the
    /// generator's first).
    fn dense(&self) -> bool {
        self.kh == self.h && self.kw == self.w && self.pad == [0, 0] && self.ho == 1 && self.wo == 1
    }
}

/// For one kernel offset along an axis: the output positions [lo, hi) whose input index
/// o·stride + offset − pad lies inside [0, len_in), and the input index `start` of position `lo`.
/// Precomputing this keeps the im2col / col2im inner loops free of per-element bounds tests.
#[derive(Clone, Copy, Debug)]
struct Taps {
    lo: usize,
    hi: usize,
    start: usize,
}

fn taps(len_in: usize, len_out: usize, stride: usize, offset: usize, pad: usize) -> Taps {
    let lo = if pad > offset { (pad - offset).div_ceil(stride) } else { 0 };
    let hi = if len_in + pad > offset { ((len_in - 1 + pad - offset) / stride + 1).min(len_out) } else { 0 };
    let lo = lo.min(hi);
    Taps { lo, hi, start: (lo * stride + offset).saturating_sub(pad) }
}

/// The taps of every kernel row ki and column kj.
fn all_taps(g: &Geom) -> (Vec<Taps>, Vec<Taps>) {
    let rows = (0..g.kh).map(|ki| taps(g.h, g.ho, g.stride[0], ki, g.pad[0])).collect();
    let cols = (0..g.kw).map(|kj| taps(g.w, g.wo, g.stride[1], kj, g.pad[1])).collect();
    (rows, cols)
}

/// d[i] = src[i·S] for i < d.len(). S is a const so that LLVM sees a fixed stride: S = 1 is a straight
/// copy, S = 2 vectorizes as wide loads + shuffles. Short runs (tiny feature maps) are copied inline
/// rather than through a memcpy call whose fixed cost would dominate.
#[inline(always)]
fn gather_run<const S: usize>(d: &mut [f32], src: &[f32]) {
    let n = d.len();
    if n == 0 {
        return;
    }
    if S == 1 && n >= 32 {
        d.copy_from_slice(&src[..n]);
        return;
    }
    let (last, body) = d.split_last_mut().expect("n > 0");
    for (d, s) in body.iter_mut().zip(src.chunks_exact(S)) {
        *d = s[0];
    }
    *last = src[(n - 1) * S];
}

/// d[i·S] += src[i] for i < src.len(): the adjoint of [`gather_run`].
#[inline(always)]
fn scatter_add_run<const S: usize>(d: &mut [f32], src: &[f32]) {
    let n = src.len();
    if n == 0 {
        return;
    }
    let (last, body) = src.split_last().expect("n > 0");
    for (d, &v) in d.chunks_exact_mut(S).zip(body) {
        d[0] += v;
    }
    d[(n - 1) * S] += *last;
}

/// Zeroes a short slice inline (padding borders are 0–2 elements wide; a memset call costs more).
#[inline(always)]
fn zero(d: &mut [f32]) {
    for v in d {
        *v = 0.0;
    }
}

/// cols[(c, ki, kj), (s, oy, ox)] = x[s, c, oy·sh + ki − ph, ox·sw + kj − pw], 0 where that is padding;
/// `x` holds the chunk's `b` samples, `cols` is [K, b·P].
fn im2col(g: &Geom, ty: &[Taps], tx: &[Taps], x: &[f32], b: usize, cols: &mut [f32]) {
    match g.stride[1] {
        1 => im2col_s::<1>(g, ty, tx, x, b, cols),
        2 => im2col_s::<2>(g, ty, tx, x, b, cols),
        _ => im2col_s::<0>(g, ty, tx, x, b, cols),
    }
}

/// [`im2col`] with the width stride as a const (`S = 0`: any stride, read from `g`).
fn im2col_s<const S: usize>(g: &Geom, ty: &[Taps], tx: &[Taps], x: &[f32], b: usize, cols: &mut [f32]) {
    let (p, wo, w, hw) = (g.p(), g.wo, g.w, g.h * g.w);
    let sw = g.stride[1];
    for (row, dst_row) in cols.chunks_exact_mut(b * p).enumerate() {
        let (c, ki, kj) = (row / (g.kh * g.kw), (row / g.kw) % g.kh, row % g.kw);
        let (ry, rx) = (ty[ki], tx[kj]);
        for (s, dst) in dst_row.chunks_exact_mut(p).enumerate() {
            let plane = &x[(s * g.c + c) * hw..][..hw];
            let (top, rest) = dst.split_at_mut(ry.lo * wo);
            let (mid, bottom) = rest.split_at_mut((ry.hi - ry.lo) * wo);
            top.fill(0.0);
            bottom.fill(0.0);
            for (i, d) in mid.chunks_exact_mut(wo).enumerate() {
                let src = &plane[(ry.start + i * g.stride[0]) * w..][..w];
                let (left, rest) = d.split_at_mut(rx.lo);
                let (d, right) = rest.split_at_mut(rx.hi - rx.lo);
                zero(left);
                zero(right);
                let src = &src[rx.start..];
                match S {
                    0 => d.iter_mut().zip(src.iter().step_by(sw)).for_each(|(d, &v)| *d = v),
                    _ => gather_run::<S>(d, src),
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: dx[s, c, iy, ix] = Σ over the (ki, kj, oy, ox) that read it of
/// dcols[(c, ki, kj), (s, oy, ox)]. Overwrites the chunk's `dx` (it zeroes it first). Rows are visited in
/// (c, ki, kj) order, so the kh·kw passes over one input plane hit it while it is still in cache.
fn col2im(g: &Geom, ty: &[Taps], tx: &[Taps], dcols: &[f32], b: usize, dx: &mut [f32]) {
    match g.stride[1] {
        1 => col2im_s::<1>(g, ty, tx, dcols, b, dx),
        2 => col2im_s::<2>(g, ty, tx, dcols, b, dx),
        _ => col2im_s::<0>(g, ty, tx, dcols, b, dx),
    }
}

/// [`col2im`] with the width stride as a const (`S = 0`: any stride, read from `g`).
fn col2im_s<const S: usize>(g: &Geom, ty: &[Taps], tx: &[Taps], dcols: &[f32], b: usize, dx: &mut [f32]) {
    let (p, wo, w, hw) = (g.p(), g.wo, g.w, g.h * g.w);
    let sw = g.stride[1];
    dx.fill(0.0);
    for (row, src_row) in dcols.chunks_exact(b * p).enumerate() {
        let (c, ki, kj) = (row / (g.kh * g.kw), (row / g.kw) % g.kh, row % g.kw);
        let (ry, rx) = (ty[ki], tx[kj]);
        for (s, src) in src_row.chunks_exact(p).enumerate() {
            let plane = &mut dx[(s * g.c + c) * hw..][..hw];
            for (i, src) in src[ry.lo * wo..ry.hi * wo].chunks_exact(wo).enumerate() {
                let dst = &mut plane[(ry.start + i * g.stride[0]) * w..][..w];
                let (src, dst) = (&src[rx.lo..rx.hi], &mut dst[rx.start..]);
                match S {
                    0 => dst.iter_mut().step_by(sw).zip(src).for_each(|(d, &v)| *d += v),
                    _ => scatter_add_run::<S>(dst, src),
                }
            }
        }
    }
}

/// The column block of one tile, output positions [p0, p1) of one sample x [C, H, W]: cols [K, t] with
/// t = p1 − p0, cols[r·t + (p − p0)] = x[c, oy·sh + ki − ph, ox·sw + kj − pw] for r = (c, ki, kj) and
/// p = oy·Wo + ox, 0 where that is padding. [`im2col`] over a range that may start and end mid-row.
fn im2col_tile(g: &Geom, ty: &[Taps], tx: &[Taps], x: &[f32], p0: usize, p1: usize, cols: &mut [f32]) {
    match g.stride[1] {
        1 => im2col_tile_s::<1>(g, ty, tx, x, p0, p1, cols),
        2 => im2col_tile_s::<2>(g, ty, tx, x, p0, p1, cols),
        _ => im2col_tile_s::<0>(g, ty, tx, x, p0, p1, cols),
    }
}

/// Zeroes `d`: inline when short (padding borders are 0–2 elements wide; a memset call costs more).
#[inline(always)]
fn clear(d: &mut [f32]) {
    if d.len() < 32 {
        zero(d);
    } else {
        d.fill(0.0);
    }
}

/// Calls f(oy, ox0, ox1, offset of (oy, ox0) from p0) for each output row's part [ox0, ox1) of the output
/// positions [p0, p1), in order; the first and the last may be partial rows.
#[inline(always)]
fn row_segments(wo: usize, p0: usize, p1: usize, mut f: impl FnMut(usize, usize, usize, usize)) {
    let (mut oy, mut ox0) = (p0 / wo, p0 % wo);
    let mut off = 0;
    let t = p1 - p0;
    while off < t {
        let ox1 = wo.min(ox0 + (t - off));
        f(oy, ox0, ox1, off);
        off += ox1 - ox0;
        oy += 1;
        ox0 = 0;
    }
}

/// The in-bounds output columns [a, b) of the row segment [ox0, ox1) for the column taps `rx`.
#[inline(always)]
fn inside(rx: Taps, ox0: usize, ox1: usize) -> (usize, usize) {
    let a = rx.lo.clamp(ox0, ox1);
    (a, rx.hi.clamp(a, ox1))
}

/// [`im2col_tile`] with the width stride as a const (`S = 0`: any stride, read from `g`).
fn im2col_tile_s<const S: usize>(g: &Geom, ty: &[Taps], tx: &[Taps], x: &[f32], p0: usize, p1: usize, cols: &mut [f32]) {
    let (wo, w, hw) = (g.wo, g.w, g.h * g.w);
    let (sh, sw) = (g.stride[0], g.stride[1]);
    let t = p1 - p0;
    for (r, dst) in cols[..g.k() * t].chunks_exact_mut(t).enumerate() {
        let (c, ki, kj) = (r / (g.kh * g.kw), (r / g.kw) % g.kh, r % g.kw);
        let (ry, rx) = (ty[ki], tx[kj]);
        let plane = &x[c * hw..][..hw];
        row_segments(wo, p0, p1, |oy, ox0, ox1, off| {
            let d = &mut dst[off..off + (ox1 - ox0)];
            if oy < ry.lo || oy >= ry.hi {
                clear(d);
                return;
            }
            let (a, b) = inside(rx, ox0, ox1);
            let (left, rest) = d.split_at_mut(a - ox0);
            let (mid, right) = rest.split_at_mut(b - a);
            zero(left);
            zero(right);
            if b > a {
                let src = &plane[(ry.start + (oy - ry.lo) * sh) * w..][..w];
                let src = &src[rx.start + (a - rx.lo) * sw..];
                match S {
                    0 => mid.iter_mut().zip(src.iter().step_by(sw)).for_each(|(d, &v)| *d = v),
                    _ => gather_run::<S>(mid, src),
                }
            }
        });
    }
}

/// The adjoint of [`im2col_tile`]: dx[c, iy, ix] += Σ over the (ki, kj, p ∈ [p0, p1)) that read it of
/// dcols[r·t + (p − p0)], adding to what dx holds (the caller zeroes it before a sample's first tile).
fn col2im_tile(g: &Geom, ty: &[Taps], tx: &[Taps], dcols: &[f32], p0: usize, p1: usize, dx: &mut [f32]) {
    match g.stride[1] {
        1 => col2im_tile_s::<1>(g, ty, tx, dcols, p0, p1, dx),
        2 => col2im_tile_s::<2>(g, ty, tx, dcols, p0, p1, dx),
        _ => col2im_tile_s::<0>(g, ty, tx, dcols, p0, p1, dx),
    }
}

/// [`col2im_tile`] with the width stride as a const (`S = 0`: any stride, read from `g`).
fn col2im_tile_s<const S: usize>(g: &Geom, ty: &[Taps], tx: &[Taps], dcols: &[f32], p0: usize, p1: usize, dx: &mut [f32]) {
    let (wo, w, hw) = (g.wo, g.w, g.h * g.w);
    let (sh, sw) = (g.stride[0], g.stride[1]);
    let t = p1 - p0;
    for (r, src) in dcols[..g.k() * t].chunks_exact(t).enumerate() {
        let (c, ki, kj) = (r / (g.kh * g.kw), (r / g.kw) % g.kh, r % g.kw);
        let (ry, rx) = (ty[ki], tx[kj]);
        let plane = &mut dx[c * hw..][..hw];
        row_segments(wo, p0, p1, |oy, ox0, ox1, off| {
            if oy < ry.lo || oy >= ry.hi {
                return;
            }
            let (a, b) = inside(rx, ox0, ox1);
            if b > a {
                let s = &src[off + (a - ox0)..off + (b - ox0)];
                let dst = &mut plane[(ry.start + (oy - ry.lo) * sh) * w..][..w];
                let dst = &mut dst[rx.start + (a - rx.lo) * sw..];
                match S {
                    0 => dst.iter_mut().step_by(sw).zip(s).for_each(|(d, &v)| *d += v),
                    _ => scatter_add_run::<S>(dst, s),
                }
            }
        });
    }
}

/// Copies a chunk of `b` samples [b, rows, p] into a matrix [rows, b·p] (sample-major columns).
fn gather(src: &[f32], b: usize, rows: usize, p: usize, dst: &mut [f32]) {
    for (r, dst_row) in dst.chunks_exact_mut(b * p).enumerate() {
        for (s, d) in dst_row.chunks_exact_mut(p).enumerate() {
            d.copy_from_slice(&src[(s * rows + r) * p..][..p]);
        }
    }
}

/// The inverse of [`gather`]: a matrix [rows, b·p] back to samples [b, rows, p].
fn scatter(src: &[f32], b: usize, rows: usize, p: usize, dst: &mut [f32]) {
    for (r, src_row) in src.chunks_exact(b * p).enumerate() {
        for (s, v) in src_row.chunks_exact(p).enumerate() {
            dst[(s * rows + r) * p..][..p].copy_from_slice(v);
        }
    }
}

/// A matrix view into a slice: element (i, j) is data[i·rs + j·cs].
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> Mat<'a> {
    /// A row-major [rows, cols] matrix.
    fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Mat { data, rows, cols, rs: cols, cs: 1 }
    }
    /// The transpose of a row-major [cols, rows] matrix, read in place.
    fn transposed(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Mat { data, rows, cols, rs: 1, cs: rows }
    }
    /// Columns [p0, p1) of a row-major [rows, ld] matrix, read in place.
    fn col_range(data: &'a [f32], rows: usize, ld: usize, p0: usize, p1: usize) -> Self {
        Mat { data: &data[p0..], rows, cols: p1 - p0, rs: ld, cs: 1 }
    }
    /// The transpose of columns [p0, p1) of a row-major [cols, ld] matrix, read in place.
    fn col_range_transposed(data: &'a [f32], cols: usize, ld: usize, p0: usize, p1: usize) -> Self {
        Mat { data: &data[p0..], rows: p1 - p0, cols, rs: 1, cs: ld }
    }
    fn in_bounds(&self) -> bool {
        self.rows == 0 || self.cols == 0 || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// dst [m, n] (row-major) = lhs [m, k] · rhs [k, n], or dst += … when `accumulate`.
fn matmul(dst: &mut [f32], accumulate: bool, lhs: Mat, rhs: Mat, par: Parallelism) {
    let n = rhs.cols;
    // SAFETY: dst is exclusively borrowed, so nothing else touches it; gemm_into checks the bounds.
    unsafe { gemm_into(dst.as_mut_ptr(), dst.len(), n, accumulate, lhs, rhs, par) }
}

/// dst [m, n] with row stride `ld` (element (i, j) at dst[i·ld + j]) = lhs · rhs, or += when `accumulate`.
///
/// # Safety
/// `dst` must be valid for writes of `len` elements, and no other thread may access the elements this
/// writes ((i, j) ↦ i·ld + j, i < m, j < n) during the call. lhs and rhs must not alias them.
unsafe fn gemm_into(dst: *mut f32, len: usize, ld: usize, accumulate: bool, lhs: Mat, rhs: Mat, par: Parallelism) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    // Internal invariants (every caller sizes its buffers from one Geom); checked once per GEMM because
    // they are what makes the raw-pointer call below sound.
    assert!(
        rhs.rows == k && lhs.in_bounds() && rhs.in_bounds() && ld >= n && (m == 0 || n == 0 || (m - 1) * ld + n <= len),
        "matmul: operand sizes"
    );
    // SAFETY: the asserts above keep every index the GEMM touches, (i, j) ↦ i·rs + j·cs, inside its slice
    // (or, for dst, inside the `len` elements the caller vouches for).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            ld as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        );
    }
}

/// An output buffer that parallel tasks write disjoint, interleaved parts of (column tiles of y).
struct SharedOut {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: only a pointer and a length; the tasks that write through it keep to disjoint elements (see the
// one user, `forward_tiled`).
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    fn new(v: &mut [f32]) -> Self {
        SharedOut { ptr: v.as_mut_ptr(), len: v.len() }
    }
    /// The pointer to element `off` and the number of elements from there to the end.
    fn at(&self, off: usize) -> (*mut f32, usize) {
        assert!(off <= self.len, "SharedOut: offset out of bounds");
        // SAFETY: off ≤ len keeps the pointer inside (or one past) the buffer.
        (unsafe { self.ptr.add(off) }, self.len - off)
    }
}

/// How a batch is cut into chunks (see the module comment).
#[derive(Clone, Copy, Debug)]
struct Plan {
    /// Samples per chunk (the last chunk may be shorter).
    b: usize,
    chunks: usize,
    /// Threads for the GEMM inside a chunk.
    par: Parallelism,
}

fn plan(n: usize, p: usize) -> Plan {
    let threads = rayon::current_num_threads().max(1);
    let b = TARGET_COLS.div_ceil(p).clamp(1, n);
    // Round the chunk count up to a multiple of the thread count (where the batch allows) so that the last
    // wave of chunks does not leave threads idle.
    let chunks = n.div_ceil(b).next_multiple_of(threads).min(n);
    let b = n.div_ceil(chunks);
    let chunks = n.div_ceil(b);
    let par = if chunks >= threads { Parallelism::None } else { Parallelism::Rayon(threads) };
    Plan { b, chunks, par }
}

/// Output positions per tile of one sample: all P when its column block [K, P] fits in `bytes`, else the
/// fewest equal tiles that do (at least MIN_TILE_COLS columns each), rounded up to a multiple of 16 (the
/// f32 vector width, which lets the GEMM read the tile's columns in place instead of repacking them).
fn tile_cols(g: &Geom, bytes: usize) -> usize {
    let np = g.p();
    let target = (bytes / (4 * g.k().max(1))).max(MIN_TILE_COLS);
    if target >= np {
        return np;
    }
    let tiles = np.div_ceil(target);
    np.div_ceil(tiles).next_multiple_of(16).min(np)
}

/// Per-task scratch, grown on demand and reused across the chunks a task runs.
#[derive(Default)]
struct Scratch {
    cols: Vec<f32>,
    mat: Vec<f32>,
}

/// The first `len` elements of `v`, reallocated (zeros, or NaN when poisoned) if it is shorter.
fn take<'a>(be: &CpuBackend, v: &'a mut Vec<f32>, len: usize) -> &'a mut [f32] {
    if v.len() < len {
        *v = be.buffer(len);
    }
    &mut v[..len]
}

pub(super) fn conv2d(be: &CpuBackend, x: &Tensor, w: &Tensor, p: Conv2dParams) -> Result<Tensor> {
    conv2d_tiled(be, x, w, p, TILE_BYTES)
}

/// [`conv2d`] with the tile budget as a parameter (the tests force small tiles).
fn conv2d_tiled(be: &CpuBackend, x: &Tensor, w: &Tensor, p: Conv2dParams, tile_bytes: usize) -> Result<Tensor> {
    let y_shape = shapes::conv2d_out("conv2d", x.shape(), w.shape(), p)?;
    let xs = x.dims4("conv2d", "x")?;
    let g = Geom::new(xs, w.dims4("conv2d", "w")?, y_shape, p);
    let mut y = be.alloc(&y_shape);
    if y.is_empty() {
        return Ok(y);
    }
    if x.is_empty() {
        // No input channels or an all-padding input: every output is an empty sum.
        y.data_mut().fill(0.0);
        return Ok(y);
    }
    let (k, np) = (g.k(), g.p());
    if g.dense() {
        matmul(y.data_mut(), false, Mat::rows(x.data(), g.n, k), Mat::transposed(w.data(), k, g.o), Parallelism::Rayon(0));
        return Ok(y);
    }
    let (ty, tx) = all_taps(&g);
    let wm = Mat::rows(w.data(), g.o, k);
    if g.per_sample() {
        forward_tiled(be, &g, &ty, &tx, x.data(), wm, y.data_mut(), tile_cols(&g, tile_bytes));
        return Ok(y);
    }
    let plan = plan(g.n, np);
    y.data_mut().par_chunks_mut(plan.b * g.y_sample()).zip(x.data().par_chunks(plan.b * g.x_sample())).for_each_init(
        Scratch::default,
        |s, (y, x)| {
            let b = y.len() / g.y_sample();
            let cols = take(be, &mut s.cols, k * b * np);
            im2col(&g, &ty, &tx, x, b, cols);
            let cm = Mat::rows(cols, k, b * np);
            if b == 1 {
                matmul(y, false, wm, cm, plan.par);
            } else {
                let out = take(be, &mut s.mat, g.o * b * np);
                matmul(out, false, wm, cm, plan.par);
                scatter(out, b, g.o, np, y);
            }
        },
    );
    Ok(y)
}

/// The forward pass one sample at a time, each cut into column tiles of `t` output positions (see the
/// module comment): a task per (sample, tile) builds the tile's [K, t] column block (none for a pointwise
/// conv: it reads x's columns in place) and multiplies it straight into y[s, :, tile] (row stride P).
#[allow(clippy::too_many_arguments)]
fn forward_tiled(be: &CpuBackend, g: &Geom, ty: &[Taps], tx: &[Taps], x: &[f32], wm: Mat, y: &mut [f32], t: usize) {
    let (k, np) = (g.k(), g.p());
    let tiles = np.div_ceil(t);
    let tasks = g.n * tiles;
    let threads = rayon::current_num_threads().max(1);
    let par = if tasks >= threads { Parallelism::None } else { Parallelism::Rayon(threads) };
    let out = SharedOut::new(y);
    (0..tasks).into_par_iter().for_each_init(Scratch::default, |s, task| {
        let (si, ti) = (task / tiles, task % tiles);
        let (p0, p1) = (ti * t, (ti * t + t).min(np));
        let xs = &x[si * g.x_sample()..][..g.x_sample()];
        let rhs = if g.pointwise() {
            Mat::col_range(xs, k, np, p0, p1)
        } else {
            let cols = take(be, &mut s.cols, k * (p1 - p0));
            im2col_tile(g, ty, tx, xs, p0, p1, cols);
            Mat::rows(cols, k, p1 - p0)
        };
        let (dst, len) = out.at(si * g.y_sample() + p0);
        // SAFETY: task (si, ti) writes exactly y[si, :, p0..p1] (O rows of stride P from dst): the tasks'
        // elements are disjoint, and nothing else touches y until the parallel loop returns.
        unsafe { gemm_into(dst, len, np, false, wm, rhs, par) };
    });
}

pub(super) fn conv2d_bwd_data(be: &CpuBackend, dy: &Tensor, w: &Tensor, x_shape: [usize; 4], p: Conv2dParams) -> Result<Tensor> {
    conv2d_bwd_data_tiled(be, dy, w, x_shape, p, TILE_BYTES)
}

/// [`conv2d_bwd_data`] with the tile budget as a parameter (the tests force small tiles).
fn conv2d_bwd_data_tiled(
    be: &CpuBackend,
    dy: &Tensor,
    w: &Tensor,
    x_shape: [usize; 4],
    p: Conv2dParams,
    tile_bytes: usize,
) -> Result<Tensor> {
    const OP: &str = "conv2d_bwd_data";
    shapes::conv2d_bwd_data(OP, dy.shape(), w.shape(), x_shape, p)?;
    let g = Geom::new(x_shape, w.dims4(OP, "w")?, dy.dims4(OP, "dy")?, p);
    let mut dx = be.alloc(&x_shape);
    if dx.is_empty() {
        return Ok(dx);
    }
    if dy.is_empty() {
        // No output channels: nothing flows back.
        dx.data_mut().fill(0.0);
        return Ok(dx);
    }
    let (k, np) = (g.k(), g.p());
    if g.dense() {
        matmul(dx.data_mut(), false, Mat::rows(dy.data(), g.n, g.o), Mat::rows(w.data(), g.o, k), Parallelism::Rayon(0));
        return Ok(dx);
    }
    // Chunks as in the module comment: per-sample GEMMs on small images would repack the weights for every
    // sample (wᵀ is the GEMM's right-hand side here), so only large images (b = 1) go one sample at a time,
    // cut into column tiles.
    let plan = plan(g.n, np);
    let (ty, tx) = all_taps(&g);
    let wt = Mat::transposed(w.data(), k, g.o);
    let t = tile_cols(&g, tile_bytes);
    dx.data_mut().par_chunks_mut(plan.b * g.x_sample()).zip(dy.data().par_chunks(plan.b * g.y_sample())).for_each_init(
        Scratch::default,
        |s, (dx, dy)| {
            let b = dy.len() / g.y_sample();
            if b == 1 && g.pointwise() {
                matmul(dx, false, wt, Mat::rows(dy, g.o, np), plan.par);
                return;
            }
            let Scratch { cols, mat } = s;
            if b == 1 {
                dx.fill(0.0);
                // One sample, its column tiles in order (they overlap in dx, so one task does them all).
                for p0 in (0..np).step_by(t) {
                    let p1 = (p0 + t).min(np);
                    let dcols = take(be, cols, k * (p1 - p0));
                    matmul(dcols, false, wt, Mat::col_range(dy, g.o, np, p0, p1), plan.par);
                    col2im_tile(&g, &ty, &tx, dcols, p0, p1, dx);
                }
                return;
            }
            let m = take(be, mat, g.o * b * np);
            gather(dy, b, g.o, np, m);
            let dcols = take(be, cols, k * b * np);
            matmul(dcols, false, wt, Mat::rows(m, g.o, b * np), plan.par);
            col2im(&g, &ty, &tx, dcols, b, dx);
        },
    );
    Ok(dx)
}

pub(super) fn conv2d_bwd_weight(be: &CpuBackend, x: &Tensor, dy: &Tensor, w_shape: [usize; 4], p: Conv2dParams) -> Result<Tensor> {
    conv2d_bwd_weight_tiled(be, x, dy, w_shape, p, TILE_BYTES)
}

/// [`conv2d_bwd_weight`] with the tile budget as a parameter (the tests force small tiles).
fn conv2d_bwd_weight_tiled(
    be: &CpuBackend,
    x: &Tensor,
    dy: &Tensor,
    w_shape: [usize; 4],
    p: Conv2dParams,
    tile_bytes: usize,
) -> Result<Tensor> {
    const OP: &str = "conv2d_bwd_weight";
    shapes::conv2d_bwd_weight(OP, x.shape(), dy.shape(), w_shape, p)?;
    let g = Geom::new(x.dims4(OP, "x")?, w_shape, dy.dims4(OP, "dy")?, p);
    if w_shape.iter().product::<usize>() == 0 || x.is_empty() || dy.is_empty() {
        // Nothing to compute, or empty sums: dw is all zeros.
        return Ok(Tensor::zeros(&w_shape));
    }
    let (k, np) = (g.k(), g.p());
    if g.dense() {
        let mut dw = be.alloc(&w_shape);
        let (xm, dyt) = (Mat::rows(x.data(), g.n, k), Mat::transposed(dy.data(), g.o, g.n));
        matmul(dw.data_mut(), false, dyt, xm, Parallelism::Rayon(0));
        return Ok(dw);
    }
    let plan = plan(g.n, np);
    let (ty, tx) = all_taps(&g);
    // One sample's column tiles (a pointwise conv reads x in place: no tiles needed).
    let t = if g.pointwise() { np } else { tile_cols(&g, tile_bytes) };
    // A fixed partition of the chunks over workers, each summing its chunks into its own [O, K] partial in
    // chunk order (and a chunk's tiles in column order), and the partials summed in worker order:
    // deterministic whatever the scheduling. The partials cost O·K memory each plus a final pass over all
    // of them, so a worker gets at least MIN_WORKER_COLS columns of reduction (b·P summed over its chunks)
    // to keep that pass small next to its GEMMs; when that leaves threads over (many cores, deep layers with
    // tiny images) the workers' GEMMs use them instead.
    let threads = rayon::current_num_threads().max(1);
    let workers = plan.chunks.min(threads).min((g.n * np).div_ceil(MIN_WORKER_COLS)).max(1);
    let per_worker = plan.chunks.div_ceil(workers);
    let workers = plan.chunks.div_ceil(per_worker);
    let par = if threads / workers > 1 { Parallelism::Rayon(threads / workers) } else { Parallelism::None };
    let mut partials: Vec<Vec<f32>> = (0..workers)
        .into_par_iter()
        .map(|wi| {
            let mut s = Scratch::default();
            let mut acc = be.buffer(g.o * k);
            // The first GEMM overwrites the (uninitialised) accumulator, the rest add to it.
            let mut first = true;
            for ci in wi * per_worker..((wi + 1) * per_worker).min(plan.chunks) {
                let s0 = ci * plan.b;
                let b = plan.b.min(g.n - s0);
                let xc = &x.data()[s0 * g.x_sample()..][..b * g.x_sample()];
                let dyc = &dy.data()[s0 * g.y_sample()..][..b * g.y_sample()];
                let Scratch { cols, mat } = &mut s;
                if b == 1 {
                    for p0 in (0..np).step_by(t) {
                        let p1 = (p0 + t).min(np);
                        let rhs = if g.pointwise() {
                            Mat::col_range_transposed(xc, k, np, p0, p1)
                        } else {
                            let c = take(be, cols, k * (p1 - p0));
                            im2col_tile(&g, &ty, &tx, xc, p0, p1, c);
                            Mat::transposed(c, p1 - p0, k)
                        };
                        matmul(&mut acc, !first, Mat::col_range(dyc, g.o, np, p0, p1), rhs, par);
                        first = false;
                    }
                    continue;
                }
                let c = take(be, cols, k * b * np);
                im2col(&g, &ty, &tx, xc, b, c);
                let m = take(be, mat, g.o * b * np);
                gather(dyc, b, g.o, np, m);
                matmul(&mut acc, !first, Mat::rows(m, g.o, b * np), Mat::transposed(c, b * np, k), par);
                first = false;
            }
            acc
        })
        .collect();
    if partials.len() == 1 {
        // Every element was written by the first GEMM: the partial is the result.
        return Tensor::new(&w_shape, partials.pop().expect("one partial"));
    }
    let mut dw = be.alloc(&w_shape);
    dw.data_mut().par_chunks_mut(1 << 14).enumerate().for_each(|(ci, o)| {
        let base = ci << 14;
        let len = o.len();
        o.copy_from_slice(&partials[0][base..base + len]);
        for part in &partials[1..] {
            for (o, &v) in o.iter_mut().zip(&part[base..base + len]) {
                *o += v;
            }
        }
    });
    Ok(dw)
}

#[cfg(test)]
mod tests {
    //! The tiled paths at shapes small enough for the f64 oracle, with the tile budget forced down so that
    //! every image is cut into several tiles whose edges fall mid-row.
    use super::*;
    use cxr_gan_reference as oracle;
    use rand::{Rng, SeedableRng};

    fn rand_tensor(r: &mut rand_chacha::ChaCha8Rng, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::new(shape, (0..n).map(|_| r.gen_range(-1.0f32..1.0)).collect()).unwrap()
    }

    fn arr(t: &Tensor) -> oracle::Array {
        oracle::Array::new(t.shape(), t.to_f64())
    }

    fn assert_close(name: &str, ours: &Tensor, reference: &oracle::Array) {
        assert_eq!(ours.shape(), reference.shape.as_slice(), "{name}: shape");
        let (mut diff, mut norm) = (0f64, 0f64);
        for (&o, &r) in ours.data().iter().zip(&reference.data) {
            assert!(o.is_finite(), "{name}: non-finite {o}");
            diff += (o as f64 - r).powi(2);
            norm += r * r;
        }
        let err = (diff / norm).sqrt();
        assert!(err <= 1e-5, "{name}: relative L2 error {err:.3e}");
    }

    type Case = ([usize; 4], [usize; 4], [usize; 2], [usize; 2]);

    /// (x, w, stride, padding): P from 210 to 1200 output positions, so a 1-byte budget cuts every image into
    /// tiles of about MIN_TILE_COLS columns (bwd_data and bwd_weight tile only images of P ≥ TARGET_COLS,
    /// the last three); strides 1, 2 and 3 (the const and the generic im2col), a 1×1 and a 1×7.
    const CASES: [Case; 8] = [
        ([3, 5, 23, 21], [7, 5, 3, 3], [1, 1], [1, 1]),
        ([2, 4, 30, 31], [6, 4, 3, 3], [2, 2], [0, 0]),
        ([1, 6, 19, 17], [8, 6, 1, 7], [1, 1], [0, 3]),
        ([2, 3, 41, 50], [4, 3, 4, 5], [2, 3], [1, 2]),
        ([2, 9, 18, 18], [5, 9, 1, 1], [1, 1], [0, 0]),
        ([2, 4, 40, 30], [5, 4, 3, 3], [1, 1], [1, 1]),
        ([1, 3, 61, 47], [4, 3, 3, 3], [2, 2], [0, 0]),
        ([2, 3, 25, 81], [6, 3, 5, 5], [1, 3], [2, 2]),
    ];

    #[test]
    fn tiled_conv_matches_the_oracle() {
        let be = CpuBackend::poisoned();
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for (xs, ws, stride, padding) in CASES {
            let p = Conv2dParams::new(stride, padding);
            let (x, w) = (rand_tensor(&mut r, &xs), rand_tensor(&mut r, &ws));
            let y_ref = oracle::conv2d(&arr(&x), &arr(&w), stride, padding);
            let dy = rand_tensor(&mut r, &y_ref.shape);
            let dx_ref = oracle::conv2d_bwd_data(&arr(&dy), &arr(&w), xs, stride, padding);
            let dw_ref = oracle::conv2d_bwd_weight(&arr(&x), &arr(&dy), ws, stride, padding);
            let g = Geom::new(xs, ws, y_ref.shape.clone().try_into().unwrap(), p);
            assert!(tile_cols(&g, 1) < g.p(), "{xs:?} {ws:?}: one tile");
            for bytes in [1, TILE_BYTES] {
                let tag = format!("x {xs:?} w {ws:?} s {stride:?} p {padding:?} tile budget {bytes}");
                assert_close(&format!("conv2d {tag}"), &conv2d_tiled(&be, &x, &w, p, bytes).unwrap(), &y_ref);
                assert_close(&format!("bwd_data {tag}"), &conv2d_bwd_data_tiled(&be, &dy, &w, xs, p, bytes).unwrap(), &dx_ref);
                assert_close(&format!("bwd_weight {tag}"), &conv2d_bwd_weight_tiled(&be, &x, &dy, ws, p, bytes).unwrap(), &dw_ref);
            }
        }
    }

    /// The forward pass gives the same bits whatever the thread count (each output element is one task's
    /// GEMM over a tile fixed by the shapes alone); the backward passes, whose chunks follow the thread
    /// count (see `plan`), the same bits from run to run.
    #[test]
    fn tiled_conv_does_not_depend_on_the_thread_count() {
        let be = CpuBackend::poisoned();
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(8);
        for (xs, ws, stride, padding) in CASES {
            let p = Conv2dParams::new(stride, padding);
            let (x, w) = (rand_tensor(&mut r, &xs), rand_tensor(&mut r, &ws));
            let y = conv2d_tiled(&be, &x, &w, p, 1).unwrap();
            let dy = rand_tensor(&mut r, y.shape());
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| {
                    (
                        conv2d_tiled(&be, &x, &w, p, 1).unwrap(),
                        conv2d_bwd_data_tiled(&be, &dy, &w, xs, p, 1).unwrap(),
                        conv2d_bwd_weight_tiled(&be, &x, &dy, ws, p, 1).unwrap(),
                    )
                })
            };
            let one = run(1);
            for threads in [2, 3, 8] {
                let (other, again) = (run(threads), run(threads));
                assert!(other.0 == one.0, "conv2d x {xs:?} w {ws:?}: {threads} threads differ from 1");
                assert!(other == again, "x {xs:?} w {ws:?}: two runs on {threads} threads differ");
            }
        }
    }
}
