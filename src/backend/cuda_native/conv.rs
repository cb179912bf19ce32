//! conv2d and its two backward passes: shape checks, tile and split-K planning, and the launches of
//! kernels/cuda/conv.cu, whose header describes the implicit GEMMs, the stride-phase decomposition of the
//! backward-data pass and the kernel versions (v1 naive, v2 SIMT tiles, v3 TF32 tensor cores, v4 cp.async-fed
//! TF32 and bf16).
//! conv_transpose2d needs nothing here: the trait's default methods route it through these three.
//!
//! [`Precision::Fp32`] launches the v2 `*_simt` kernels (exact f32, the conformance path);
//! [`Precision::Tf32`] the v4 `*_tf32_pipe` kernels (mma.sync m16n8k8 fed by a cp.async pipeline, f32
//! accumulation), [`Precision::Bf16`] the v4 `*_bf16_pipe` ones (m16n8k16, bf16 operands), for all three
//! passes ([`ConvKernels`]; v3 `*_tf32` stays for the tests), and where an operand is bf16 storage (an
//! activation, a weight's shadow: [`Precision::Bf16`]) the v6 `*_bf16_store_<in0>_<in1>` ones, which read it as
//! such and store a forward convolution's output as bf16. All take the same tiles, so one plan serves all: a 64×64 output tile per block of 256 threads (16×64
//! when the GEMM has at most 16 rows), and, when that leaves too few blocks to fill a GPU, the reduction
//! split over gridDim.z into partial outputs that `conv_sum_splits` adds in order (no atomics: the result
//! does not depend on scheduling).

use cxr_gan_kernels::cuda::Family;

use super::launch::{u32_of, Arg, Dims};
use std::sync::Arc;

use super::{CudaNativeBackend, CudaNativeTensor, Precision, Storage};
use crate::backend::{shapes, Conv2dParams};
use crate::error::Result;
use crate::tensor::dims4;

const FAMILY: Family = Family::Conv;
/// Threads of a tiled conv block (`CONV_THREADS`).
const THREADS: u32 = 256;
/// Output-tile columns (`CONV_BN`).
const TILE_N: usize = 64;
/// Reduction depth of one shared-memory step (`CONV_BK`): split-K chunks are multiples of it.
const TILE_K: usize = 16;
/// Output-tile rows: 64, or 16 (the `*_m16` kernels) for GEMMs of at most 16 rows.
const TILE_M: usize = 64;
const TILE_M_SMALL: usize = 16;

/// The kernels' view of one launch (`ConvGeom` in kernels/cuda/conv.cu): the convolution, the GEMM this
/// launch computes, and for conv2d_bwd_data its stride phase.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct ConvGeom {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    o: u32,
    kh: u32,
    kw: u32,
    ho: u32,
    wo: u32,
    stride_h: u32,
    stride_w: u32,
    pad_h: u32,
    pad_w: u32,
    /// GEMM rows, columns, reduction length; split z reduces [z·kchunk, (z+1)·kchunk) into out[z·out_len..].
    m: u32,
    cols: u32,
    kdim: u32,
    kchunk: u32,
    out_len: u32,
    a_h: u32,
    a_w: u32,
    taps_h: u32,
    taps_w: u32,
    ih0: u32,
    iw0: u32,
    t_h: u32,
    t_w: u32,
    base_h: u32,
    base_w: u32,
    /// Where this launch's channel statistics go: one partial per `stats_seg` columns, at column
    /// `stats_base + n0 / stats_seg + j` of `stats_per_row` per output channel.
    stats_base: u32,
    stats_per_row: u32,
    stats_seg: u32,
    /// 1: the output is stored as bf16 (one split only; v6's activations at `--precision bf16`).
    out_bf16: u32,
}

impl ConvGeom {
    /// The convolution x `xs` * w `ws` → y `ys` (every size checked against the kernels' 32-bit indexing);
    /// the GEMM fields are the caller's.
    fn new(op: &'static str, xs: [usize; 4], ws: [usize; 4], ys: [usize; 4], p: Conv2dParams) -> Result<ConvGeom> {
        let u = |v: usize| u32_of(op, v);
        Ok(ConvGeom {
            n: u(xs[0])?,
            c: u(xs[1])?,
            h: u(xs[2])?,
            w: u(xs[3])?,
            o: u(ws[0])?,
            kh: u(ws[2])?,
            kw: u(ws[3])?,
            ho: u(ys[2])?,
            wo: u(ys[3])?,
            stride_h: u(p.stride[0])?,
            stride_w: u(p.stride[1])?,
            pad_h: u(p.padding[0])?,
            pad_w: u(p.padding[1])?,
            stats_seg: TILE_N as u32,
            ..ConvGeom::default()
        })
    }
}

/// Whether a convolution's output should carry its channels' per-tile statistics (a forward convolution, which
/// a batch norm may follow, and whose output is an activation, stored as bf16 at `--precision bf16`) or not (a
/// gradient, f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ChannelStats {
    Want,
    Skip,
}

/// The per-segment statistics of a convolution's output channels, written by the kernels' epilogue
/// (`conv_tile_stats` in conv.cu): [channels, per_row, 3] triples (count, mean, M2), one per `seg` GEMM
/// columns, for the tensor of `shape` they were computed from. `batch_norm2d_train` combines a channel's
/// triples instead of reading that tensor, and `instance_norm2d` a plane's where `seg` divides H·W.
pub(super) struct ChannelPartials {
    pub(super) partials: CudaNativeTensor,
    pub(super) per_row: usize,
    pub(super) seg: usize,
    /// Whether the GEMM columns run image by image, pixel by pixel (conv2d), so that an image's plane is a
    /// run of whole segments where `seg` divides H·W; conv_transpose2d's stride phases interleave them.
    pub(super) planes: bool,
    pub(super) shape: Vec<usize>,
}

impl ChannelPartials {
    /// A buffer for `channels` × `per_row` partials of `seg` columns each, of an output of `shape`, or None
    /// where statistics are not wanted or the reduction is split (the kernels' epilogue then sees partial
    /// sums, not the output).
    #[allow(clippy::too_many_arguments)]
    fn plan(
        be: &CudaNativeBackend,
        op: &'static str,
        want: ChannelStats,
        splits: usize,
        channels: usize,
        per_row: usize,
        seg: usize,
        planes: bool,
        shape: &[usize],
    ) -> Result<Option<ChannelPartials>> {
        if want == ChannelStats::Skip || splits != 1 {
            return Ok(None);
        }
        let partials = be.alloc(op, &[channels * per_row * 3])?;
        Ok(Some(ChannelPartials { partials, per_row, seg, planes, shape: shape.to_vec() }))
    }
}

/// The statistics segment of a conv2d with `plane` = Ho·Wo output pixels per image: the plane where it
/// divides a column tile (then no segment straddles two images, and instance norm can use them), else the
/// whole tile.
fn stats_segment(plane: usize) -> usize {
    if plane > 0 && TILE_N.is_multiple_of(plane) {
        plane
    } else {
        TILE_N
    }
}

/// Which GEMM of the convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    Fwd,
    BwdData,
    BwdWeight,
}

/// Output-tile rows for a GEMM of `rows` rows.
fn tile_rows(rows: usize) -> usize {
    if rows <= TILE_M_SMALL {
        TILE_M_SMALL
    } else {
        TILE_M
    }
}

/// The versions of the tiled kernels (kernels/cuda/conv.cu's header says what each changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ConvKernels {
    /// v2 `*_simt`: exact f32.
    Simt,
    /// v3 `*_tf32`: TF32 tensor cores, register staging (launched by the tests: v4's bit-exact reference).
    #[cfg_attr(not(test), allow(dead_code))]
    Tf32,
    /// v4 `*_tf32_pipe`: v3's MMAs fed by a cp.async pipeline.
    Tf32Pipe,
    /// v4 `*_bf16_pipe`: bf16 MMAs fed by a cp.async pipeline.
    Bf16Pipe,
    /// v5 `*_tf32_wgmma`: v4's pipeline into Hopper's warpgroup MMAs (sm_90a; 64-row tiles, the 16-row tile
    /// is v4's).
    Tf32Wgmma,
}

impl ConvKernels {
    /// The version each precision launches, on a device with `wgmma` (an sm_90a target) or without.
    pub(super) fn of(precision: Precision, wgmma: bool) -> ConvKernels {
        match precision {
            Precision::Fp32 => ConvKernels::Simt,
            Precision::Tf32 if wgmma => ConvKernels::Tf32Wgmma,
            Precision::Tf32 => ConvKernels::Tf32Pipe,
            Precision::Bf16 => ConvKernels::Bf16Pipe,
        }
    }
}

/// The tiled kernel of version `v` for `pass` on a GEMM of `rows` rows.
fn tiled_kernel(pass: Pass, v: ConvKernels, rows: usize) -> &'static str {
    /// [pass][version][16-row tile].
    const NAMES: [[[&str; 2]; 5]; 3] = [
        [
            ["conv2d_fwd_simt", "conv2d_fwd_simt_m16"],
            ["conv2d_fwd_tf32", "conv2d_fwd_tf32_m16"],
            ["conv2d_fwd_tf32_pipe", "conv2d_fwd_tf32_pipe_m16"],
            ["conv2d_fwd_bf16_pipe", "conv2d_fwd_bf16_pipe_m16"],
            ["conv2d_fwd_tf32_wgmma", "conv2d_fwd_tf32_pipe_m16"],
        ],
        [
            ["conv2d_bwd_data_simt", "conv2d_bwd_data_simt_m16"],
            ["conv2d_bwd_data_tf32", "conv2d_bwd_data_tf32_m16"],
            ["conv2d_bwd_data_tf32_pipe", "conv2d_bwd_data_tf32_pipe_m16"],
            ["conv2d_bwd_data_bf16_pipe", "conv2d_bwd_data_bf16_pipe_m16"],
            ["conv2d_bwd_data_tf32_wgmma", "conv2d_bwd_data_tf32_pipe_m16"],
        ],
        [
            ["conv2d_bwd_weight_simt", "conv2d_bwd_weight_simt_m16"],
            ["conv2d_bwd_weight_tf32", "conv2d_bwd_weight_tf32_m16"],
            ["conv2d_bwd_weight_tf32_pipe", "conv2d_bwd_weight_tf32_pipe_m16"],
            ["conv2d_bwd_weight_bf16_pipe", "conv2d_bwd_weight_bf16_pipe_m16"],
            ["conv2d_bwd_weight_tf32_wgmma", "conv2d_bwd_weight_tf32_pipe_m16"],
        ],
    ];
    NAMES[pass as usize][v as usize][usize::from(tile_rows(rows) == TILE_M_SMALL)]
}

/// The v6 `*_bf16_store_<in0>_<in1>` kernel for `pass` on a GEMM of `rows` rows reading operands stored as
/// `s0`, `s1`, at least one of them bf16 (two f32 operands take v4 `*_bf16_pipe`).
fn bf16_store_kernel(pass: Pass, s0: Storage, s1: Storage, rows: usize) -> Option<&'static str> {
    /// [pass][(bf16, bf16), (bf16, f32), (f32, bf16)][16-row tile].
    const NAMES: [[[&str; 2]; 3]; 3] = [
        [
            ["conv2d_fwd_bf16_store_bf16_bf16", "conv2d_fwd_bf16_store_bf16_bf16_m16"],
            ["conv2d_fwd_bf16_store_bf16_f32", "conv2d_fwd_bf16_store_bf16_f32_m16"],
            ["conv2d_fwd_bf16_store_f32_bf16", "conv2d_fwd_bf16_store_f32_bf16_m16"],
        ],
        [
            ["conv2d_bwd_data_bf16_store_bf16_bf16", "conv2d_bwd_data_bf16_store_bf16_bf16_m16"],
            ["conv2d_bwd_data_bf16_store_bf16_f32", "conv2d_bwd_data_bf16_store_bf16_f32_m16"],
            ["conv2d_bwd_data_bf16_store_f32_bf16", "conv2d_bwd_data_bf16_store_f32_bf16_m16"],
        ],
        [
            ["conv2d_bwd_weight_bf16_store_bf16_bf16", "conv2d_bwd_weight_bf16_store_bf16_bf16_m16"],
            ["conv2d_bwd_weight_bf16_store_bf16_f32", "conv2d_bwd_weight_bf16_store_bf16_f32_m16"],
            ["conv2d_bwd_weight_bf16_store_f32_bf16", "conv2d_bwd_weight_bf16_store_f32_bf16_m16"],
        ],
    ];
    let combo = match (s0, s1) {
        (Storage::Bf16, Storage::Bf16) => 0,
        (Storage::Bf16, Storage::F32) => 1,
        (Storage::F32, Storage::Bf16) => 2,
        (Storage::F32, Storage::F32) => return None,
    };
    Some(NAMES[pass as usize][combo][usize::from(tile_rows(rows) == TILE_M_SMALL)])
}

/// Output tiles of a GEMM of `rows` × `cols`.
fn tile_count(rows: usize, cols: usize) -> usize {
    rows.div_ceil(tile_rows(rows)).max(1) * cols.div_ceil(TILE_N).max(1)
}

/// Split-K for a tiled GEMM of `tiles` output tiles and reduction length `k`: (splits, chunk). Enough
/// splits that there are ~512 blocks to fill a large GPU, each chunk at least 256 long (so a split's
/// partial buffer and the extra pass stay cheap) and a whole number of TILE_K steps; at most 64. (The cube
/// backend's plan, so both backends cut the same sums.)
fn split_k(tiles: usize, k: usize) -> (usize, usize) {
    const TARGET_BLOCKS: usize = 512;
    const MIN_CHUNK: usize = 256;
    if k == 0 {
        return (1, TILE_K);
    }
    let max_splits = k.div_ceil(MIN_CHUNK).clamp(1, 64);
    let want = TARGET_BLOCKS.div_ceil(tiles).clamp(1, max_splits);
    let chunk = k.div_ceil(want).next_multiple_of(TILE_K);
    (k.div_ceil(chunk), chunk)
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

impl CudaNativeBackend {
    pub(super) fn launch_conv2d(
        &self,
        x: &CudaNativeTensor,
        w: &CudaNativeTensor,
        p: Conv2dParams,
        want: ChannelStats,
    ) -> Result<CudaNativeTensor> {
        const OP: &str = "conv2d";
        let ys = shapes::conv2d_out(OP, x.shape(), w.shape(), p)?;
        let (xs, ws) = (dims4(x.shape(), OP, "x")?, dims4(w.shape(), OP, "w")?);
        for v in [x.len(), w.len()] {
            u32_of(OP, v)?;
        }
        let (x, w) = (self.conv_operand(OP, x)?, self.conv_weight(OP, w)?);
        let mut y = self.alloc_as(OP, &ys, self.conv_output_storage(want))?;
        let cols = ys[0] * ys[2] * ys[3];
        if y.is_empty() {
            return Ok(y);
        }
        let kdim = xs[1] * ws[2] * ws[3];
        let (splits, kchunk) = split_k(tile_count(ws[0], cols), kdim);
        let mut g = ConvGeom::new(OP, xs, ws, ys, p)?;
        (g.m, g.cols, g.kdim, g.kchunk, g.out_len) = (g.o, u32_of(OP, cols)?, u32_of(OP, kdim)?, u32_of(OP, kchunk)?, u32_of(OP, y.len())?);
        let seg = stats_segment(ys[2] * ys[3]);
        let stats = ChannelPartials::plan(self, OP, want, splits, ws[0], cols.div_ceil(seg), seg, true, &ys)?;
        if let Some(s) = &stats {
            (g.stats_per_row, g.stats_seg) = (u32_of(OP, s.per_row)?, u32_of(OP, s.seg)?);
        }
        let part = self.split_buffer(OP, &y, splits)?;
        self.launch_tiled(OP, Pass::Fwd, &x, &w, part.as_ref().unwrap_or(&y), stats.as_ref(), &g, splits)?;
        self.sum_splits(OP, part.as_ref(), &y, splits)?;
        y.stats = stats.map(Arc::new);
        Ok(y)
    }

    pub(super) fn launch_conv2d_bwd_data(
        &self,
        dy: &CudaNativeTensor,
        w: &CudaNativeTensor,
        xs: [usize; 4],
        p: Conv2dParams,
        want: ChannelStats,
    ) -> Result<CudaNativeTensor> {
        const OP: &str = "conv2d_bwd_data";
        shapes::conv2d_bwd_data(OP, dy.shape(), w.shape(), xs, p)?;
        let (ws, ys) = (dims4(w.shape(), OP, "w")?, dims4(dy.shape(), OP, "dy")?);
        for v in [dy.len(), w.len()] {
            u32_of(OP, v)?;
        }
        let (dy, w) = (self.conv_operand(OP, dy)?, self.conv_weight(OP, w)?);
        let mut dx = self.alloc_as(OP, &xs, self.conv_output_storage(want))?;
        if dx.is_empty() {
            return Ok(dx);
        }
        let [n, c, h, wd] = xs;
        let [o, _, kh, kw] = ws;
        let ([sh, sw], [ph, pw]) = (p.stride, p.padding);
        let phase_h = |a| stride_phase(a, sh, ph, kh, h);
        let phase_w = |a| stride_phase(a, sw, pw, kw, wd);
        // Every phase writes its own positions into the same (partial) buffers, so one split count serves
        // all: the one the first (largest) phase wants. A phase whose chunk of some split is empty (or that
        // has no taps at all, stride > kernel) writes zeros there.
        let ((_, t_h0, taps_h0, _), (_, t_w0, taps_w0, _)) = (phase_h(0), phase_w(0));
        let (splits, _) = split_k(tile_count(c, n * t_h0 * t_w0), o * taps_h0 * taps_w0);
        let part = self.split_buffer(OP, &dx, splits)?;
        // Channel statistics: each phase's column tiles after the previous phases'.
        let phase_tiles = |a_h, a_w| n * phase_h(a_h).1 * phase_w(a_w).1;
        let per_row: usize =
            (0..sh).flat_map(|a_h| (0..sw).map(move |a_w| (a_h, a_w))).map(|(a, b)| phase_tiles(a, b).div_ceil(TILE_N)).sum();
        let stats = ChannelPartials::plan(self, OP, want, splits, c, per_row, TILE_N, false, &xs)?;
        let mut stats_base = 0;
        let base =
            ConvGeom { stats_per_row: stats.as_ref().map_or(Ok(0), |s| u32_of(OP, s.per_row))?, ..ConvGeom::new(OP, xs, ws, ys, p)? };
        for a_h in 0..sh {
            let (ih0, t_h, taps_h, base_h) = phase_h(a_h);
            for a_w in 0..sw {
                let (iw0, t_w, taps_w, base_w) = phase_w(a_w);
                let cols = n * t_h * t_w;
                if cols == 0 {
                    continue;
                }
                let kdim = o * taps_h * taps_w;
                let kchunk = kdim.div_ceil(splits).next_multiple_of(TILE_K).max(TILE_K);
                let u = |v: usize| u32_of(OP, v);
                let g = ConvGeom {
                    m: base.c,
                    cols: u(cols)?,
                    kdim: u(kdim)?,
                    kchunk: u(kchunk)?,
                    out_len: u(dx.len())?,
                    a_h: u(a_h)?,
                    a_w: u(a_w)?,
                    taps_h: u(taps_h)?,
                    taps_w: u(taps_w)?,
                    ih0: u(ih0)?,
                    iw0: u(iw0)?,
                    t_h: u(t_h)?,
                    t_w: u(t_w)?,
                    base_h: u(base_h)?,
                    base_w: u(base_w)?,
                    stats_base: u(stats_base)?,
                    ..base
                };
                self.launch_tiled(OP, Pass::BwdData, &dy, &w, part.as_ref().unwrap_or(&dx), stats.as_ref(), &g, splits)?;
                stats_base += cols.div_ceil(TILE_N);
            }
        }
        self.sum_splits(OP, part.as_ref(), &dx, splits)?;
        dx.stats = stats.map(Arc::new);
        Ok(dx)
    }

    pub(super) fn launch_conv2d_bwd_weight(
        &self,
        x: &CudaNativeTensor,
        dy: &CudaNativeTensor,
        ws: [usize; 4],
        p: Conv2dParams,
    ) -> Result<CudaNativeTensor> {
        const OP: &str = "conv2d_bwd_weight";
        shapes::conv2d_bwd_weight(OP, x.shape(), dy.shape(), ws, p)?;
        let (xs, ys) = (dims4(x.shape(), OP, "x")?, dims4(dy.shape(), OP, "dy")?);
        for v in [x.len(), dy.len()] {
            u32_of(OP, v)?;
        }
        let (x, dy) = (self.conv_operand(OP, x)?, self.conv_operand(OP, dy)?);
        let dw = self.alloc(OP, &ws)?;
        if dw.is_empty() {
            return Ok(dw);
        }
        // Columns: the weight elements c·kh·kw (so the output index m·cols + n is dw's row-major layout);
        // reduction: the positions (image, oh, ow) of the batch.
        let cols = ws[1] * ws[2] * ws[3];
        let rdim = ys[0] * ys[2] * ys[3];
        if rdim == 0 {
            // An empty batch contributes no gradient.
            self.fill(OP, dw.buf.ptr, dw.len(), 0.0)?;
            return Ok(dw);
        }
        let (splits, kchunk) = split_k(tile_count(ws[0], cols), rdim);
        let mut g = ConvGeom::new(OP, xs, ws, ys, p)?;
        (g.m, g.cols, g.kdim, g.kchunk, g.out_len) =
            (g.o, u32_of(OP, cols)?, u32_of(OP, rdim)?, u32_of(OP, kchunk)?, u32_of(OP, dw.len())?);
        let part = self.split_buffer(OP, &dw, splits)?;
        self.launch_tiled(OP, Pass::BwdWeight, &x, &dy, part.as_ref().unwrap_or(&dw), None, &g, splits)?;
        self.sum_splits(OP, part.as_ref(), &dw, splits)?;
        Ok(dw)
    }

    /// One tiled GEMM launch: grid (⌈cols / 64⌉, ⌈m / tile rows⌉, splits) of [`THREADS`] threads; `stats`
    /// receives the output channels' per-tile statistics (one split only).
    #[allow(clippy::too_many_arguments)]
    fn launch_tiled(
        &self,
        op: &'static str,
        pass: Pass,
        in0: &CudaNativeTensor,
        in1: &CudaNativeTensor,
        out: &CudaNativeTensor,
        stats: Option<&ChannelPartials>,
        g: &ConvGeom,
        splits: usize,
    ) -> Result<()> {
        let (rows, cols) = (g.m as usize, g.cols as usize);
        let dims = Dims::tiles([cols.div_ceil(TILE_N), rows.div_ceil(tile_rows(rows)), splits], THREADS);
        // conv_operand gave the f32 versions f32 operands; a bf16 one means v6.
        let name = bf16_store_kernel(pass, in0.storage, in1.storage, rows).unwrap_or(tiled_kernel(pass, self.conv_kernels(), rows));
        let stats = stats.map_or(Arg::Ptr(0), |s| s.partials.arg());
        let g = ConvGeom { out_bf16: u32::from(out.is_bf16()), ..*g };
        self.launch(op, FAMILY, name, dims, &[in0.arg(), in1.arg(), out.arg(), stats, Arg::pod(&g)])
    }

    /// Where a split-K GEMM writes: `None` (the output itself) for one split, else a fresh [splits·len]
    /// buffer of partials.
    fn split_buffer(&self, op: &'static str, out: &CudaNativeTensor, splits: usize) -> Result<Option<CudaNativeTensor>> {
        if splits == 1 {
            return Ok(None);
        }
        Ok(Some(self.alloc(op, &[splits * out.len()])?))
    }

    /// out = Σ of the split-K partials, in split order (nothing to do for one split).
    fn sum_splits(&self, op: &'static str, part: Option<&CudaNativeTensor>, out: &CudaNativeTensor, splits: usize) -> Result<()> {
        let Some(part) = part else { return Ok(()) };
        let (len, splits) = (u32_of(op, out.len())?, u32_of(op, splits)?);
        let args = [part.arg(), out.arg(), Arg::U32(len), Arg::U32(splits), Arg::U32(u32::from(out.is_bf16()))];
        self.launch(op, FAMILY, "conv_sum_splits", Dims::grid_stride(out.len()), &args)
    }

    /// Whether this backend's convolutions multiply in bf16 (v4 `*_bf16_pipe` / v6), so that they may read bf16
    /// storage as it is: rounding an operand to bf16 is what their MMAs do anyway.
    fn conv_reads_bf16(&self) -> bool {
        self.conv_kernels() == ConvKernels::Bf16Pipe
    }

    /// An activation or gradient operand as the convolution kernels read it: as stored where they multiply in
    /// bf16, widened to f32 for the f32 and TF32 versions.
    fn conv_operand(&self, op: &'static str, t: &CudaNativeTensor) -> Result<CudaNativeTensor> {
        if self.conv_reads_bf16() {
            Ok(t.clone())
        } else {
            self.f32_of(op, t)
        }
    }

    /// A weight as the convolution kernels read it: its bf16 shadow where they multiply in bf16.
    fn conv_weight(&self, op: &'static str, w: &CudaNativeTensor) -> Result<CudaNativeTensor> {
        if self.conv_reads_bf16() {
            self.weight_bf16(op, w)
        } else {
            self.f32_of(op, w)
        }
    }

    /// A forward convolution's output is an activation, stored as the precision stores them; a gradient is f32.
    fn conv_output_storage(&self, want: ChannelStats) -> Storage {
        match want {
            ChannelStats::Want => self.activation_storage(),
            ChannelStats::Skip => Storage::F32,
        }
    }
}

#[cfg(test)]
mod tests {
    //! On the CPU emulator: the v4 TF32 and bf16 kernels against the cpu backend (relative L2 within
    //! [`Precision::tolerance`]), v4 TF32 against v3 (bit for bit), and the v2 SIMT kernels against the v1
    //! naive ones, on a few shapes
    //! including stride 2 with padding 1 and the DCGAN's 4×4 kernels, 16-row and 64-row tiles, several
    //! tiles along every axis, and split-K.
    use super::*;
    use crate::backend::cpu::CpuBackend;
    use crate::backend::Backend;
    use crate::tensor::Tensor;
    use rand::{Rng, SeedableRng};

    type Case = ([usize; 4], [usize; 4], [usize; 2], [usize; 2]);

    /// (x, w, stride, padding).
    const CASES: [Case; 7] = [
        // The DCGAN discriminator's 4×4 stride-2 pad-1 layers (narrowed), 64-row tile, bwd_weight split in 2
        // (8·8·8 = 512 positions).
        ([8, 16, 16, 16], [80, 16, 4, 4], [2, 2], [1, 1]),
        // 3 output channels (16-row tile), stride 2 pad 1: the generator's last layer as conv2d's adjoint.
        ([2, 8, 16, 16], [3, 8, 4, 4], [2, 2], [1, 1]),
        // 3×3 pad 1, several tiles along every axis, a ragged last K step.
        ([2, 70, 5, 5], [80, 70, 3, 3], [1, 1], [1, 1]),
        // Few output tiles over a long reduction: conv2d and bwd_data split K.
        ([3, 64, 4, 4], [2, 64, 4, 4], [1, 1], [0, 0]),
        // Stride larger than the kernel (phases without taps), non-square stride and kernel.
        ([2, 3, 9, 9], [4, 3, 2, 2], [3, 3], [0, 0]),
        ([3, 2, 9, 12], [20, 2, 3, 5], [2, 3], [2, 1]),
        // Inception's 1×7.
        ([3, 5, 11, 8], [6, 5, 1, 7], [1, 1], [0, 3]),
    ];

    fn rand_tensor(r: &mut rand_chacha::ChaCha8Rng, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::new(shape, (0..n).map(|_| r.gen_range(-1.0f32..1.0)).collect()).unwrap()
    }

    /// ‖a − b‖ / ‖b‖ in f64; every element of `a` finite.
    fn rel_l2(name: &str, a: &Tensor, b: &Tensor) -> f64 {
        assert_eq!(a.shape(), b.shape(), "{name}: shape");
        let (mut diff, mut norm) = (0f64, 0f64);
        for (&x, &y) in a.data().iter().zip(b.data()) {
            assert!(x.is_finite(), "{name}: non-finite {x}");
            diff += (x as f64 - y as f64).powi(2);
            norm += (y as f64).powi(2);
        }
        (diff / norm.max(f64::MIN_POSITIVE)).sqrt()
    }

    /// (y, dx, dw) of `be` at one case.
    fn run3<B: Backend>(be: &B, x: &Tensor, w: &Tensor, dy: &Tensor, case: Case) -> (Tensor, Tensor, Tensor) {
        let (xs, ws, stride, padding) = case;
        let p = Conv2dParams::new(stride, padding);
        let (xd, wd, dyd) = (be.upload(x).unwrap(), be.upload(w).unwrap(), be.upload(dy).unwrap());
        let down = |t: B::Tensor| be.download(&t).unwrap();
        (
            down(be.conv2d(&xd, &wd, p).unwrap()),
            down(be.conv2d_bwd_data(&dyd, &wd, xs, p).unwrap()),
            down(be.conv2d_bwd_weight(&xd, &dyd, ws, p).unwrap()),
        )
    }

    fn inputs(seed: u64, case: Case) -> (Tensor, Tensor, Tensor) {
        let (xs, ws, stride, padding) = case;
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let (x, w) = (rand_tensor(&mut r, &xs), rand_tensor(&mut r, &ws));
        let ys = shapes::conv2d_out("test", &xs, &ws, Conv2dParams::new(stride, padding)).unwrap();
        let dy = rand_tensor(&mut r, &ys);
        (x, w, dy)
    }

    #[test]
    fn tensor_core_convs_match_the_cpu_backend() {
        let cpu = CpuBackend::new();
        let fp32 = CudaNativeBackend::emulator().poisoned();
        for precision in [Precision::Tf32, Precision::Bf16] {
            let be = CudaNativeBackend::emulator().with_precision(precision).poisoned();
            let tol = precision.tolerance();
            for (i, case) in CASES.into_iter().enumerate() {
                let (x, w, dy) = inputs(100 + i as u64, case);
                let want = run3(&cpu, &x, &w, &dy, case);
                let got = run3(&be, &x, &w, &dy, case);
                let exact = run3(&fp32, &x, &w, &dy, case);
                for (name, g, e, f) in [
                    ("conv2d", &got.0, &want.0, &exact.0),
                    ("bwd_data", &got.1, &want.1, &exact.1),
                    ("bwd_weight", &got.2, &want.2, &exact.2),
                ] {
                    let tag = format!("{} {name} {case:?}", precision.name());
                    let err = rel_l2(&tag, g, e);
                    println!("{tag}: relative L2 error {err:.3e}");
                    assert!(err <= tol, "{tag}: relative L2 error {err:.3e} > {tol:.0e}");
                    // The tensor-core path really ran: rounding the inputs moves the result off the exact f32
                    // one (every case has reductions of 8 terms or more).
                    assert!(g != f, "{tag}: gave the f32 result bit for bit");
                    let err32 = rel_l2(&tag, f, e);
                    assert!(err32 <= Precision::Fp32.tolerance(), "{tag}: fp32 relative L2 error {err32:.3e}");
                }
            }
        }
    }

    /// v4's TF32 pipeline feeds v3's MMAs the same operands in the same order: the same result bit for bit,
    /// though every stage lands only when its thread waits for it (the emulator's strict cp.async).
    #[test]
    fn pipelined_tf32_equals_v3_bit_for_bit() {
        let v4 = CudaNativeBackend::emulator().with_precision(Precision::Tf32).poisoned();
        let mut v3 = v4.clone();
        v3.conv_kernels = Some(ConvKernels::Tf32);
        assert_eq!(v4.conv_kernels(), ConvKernels::Tf32Pipe);
        for (i, case) in CASES.into_iter().enumerate() {
            let (x, w, dy) = inputs(300 + i as u64, case);
            let (a, b) = (run3(&v4, &x, &w, &dy, case), run3(&v3, &x, &w, &dy, case));
            for (name, p, q) in [("conv2d", &a.0, &b.0), ("bwd_data", &a.1, &b.1), ("bwd_weight", &a.2, &b.2)] {
                assert!(p.data().iter().all(|v| v.is_finite()), "{name} {case:?}: v4 left an element unwritten");
                assert!(p.data() == q.data(), "{name} {case:?}: v4 differs from v3");
            }
        }
    }

    /// v5 stages v4's operands, rounded to TF32 in shared memory, into wgmma's core-matrix layout and multiplies
    /// them with warpgroup MMAs; the emulator sums a wgmma's products in k order as it does an mma's, so any
    /// slip in the layout, the descriptors, the accumulator map or the rounding breaks bit-equality with v4.
    #[test]
    fn wgmma_tf32_equals_v4_bit_for_bit() {
        let v4 = CudaNativeBackend::emulator().with_precision(Precision::Tf32).poisoned();
        let mut v5 = v4.clone();
        v5.conv_kernels = Some(ConvKernels::Tf32Wgmma);
        assert_eq!(ConvKernels::of(Precision::Tf32, true), ConvKernels::Tf32Wgmma);
        for (i, case) in CASES.into_iter().enumerate() {
            let (x, w, dy) = inputs(400 + i as u64, case);
            let (a, b) = (run3(&v5, &x, &w, &dy, case), run3(&v4, &x, &w, &dy, case));
            for (name, p, q) in [("conv2d", &a.0, &b.0), ("bwd_data", &a.1, &b.1), ("bwd_weight", &a.2, &b.2)] {
                assert!(p.data().iter().all(|v| v.is_finite()), "{name} {case:?}: v5 left an element unwritten");
                assert!(p.data() == q.data(), "{name} {case:?}: v5 differs from v4");
            }
        }
    }

    /// The v1 naive kernel of `pass` on the emulator (one thread per output element).
    fn naive(be: &CudaNativeBackend, pass: Pass, x: &Tensor, w: &Tensor, dy: &Tensor, case: Case) -> Tensor {
        let (xs, ws, stride, padding) = case;
        let p = Conv2dParams::new(stride, padding);
        let ys = shapes::conv2d_out("naive", &xs, &ws, p).unwrap();
        let g = ConvGeom::new("naive", xs, ws, ys, p).unwrap();
        let (xd, wd, dyd) = (be.upload(x).unwrap(), be.upload(w).unwrap(), be.upload(dy).unwrap());
        let (name, a, b, shape) = match pass {
            Pass::Fwd => ("conv2d_fwd_naive", &xd, &wd, ys),
            Pass::BwdData => ("conv2d_bwd_data_naive", &dyd, &wd, xs),
            Pass::BwdWeight => ("conv2d_bwd_weight_naive", &xd, &dyd, ws),
        };
        let out = be.alloc("naive", &shape).unwrap();
        be.launch("naive", FAMILY, name, Dims::grid_stride(out.len()), &[a.arg(), b.arg(), out.arg(), Arg::pod(&g)]).unwrap();
        be.download(&out).unwrap()
    }

    #[test]
    fn simt_conv_matches_the_naive_kernels() {
        let be = CudaNativeBackend::emulator().poisoned();
        for (i, case) in CASES.into_iter().enumerate() {
            let (x, w, dy) = inputs(200 + i as u64, case);
            let (y, dx, dw) = run3(&be, &x, &w, &dy, case);
            for (pass, got) in [(Pass::Fwd, &y), (Pass::BwdData, &dx), (Pass::BwdWeight, &dw)] {
                let tag = format!("{pass:?} {case:?}");
                let err = rel_l2(&tag, got, &naive(&be, pass, &x, &w, &dy, case));
                assert!(err <= 1e-6, "{tag}: v2 against v1, relative L2 error {err:.3e}");
            }
        }
    }

    /// A batch norm after conv2d / conv_transpose2d combines the epilogue's per-tile statistics (Chan) instead
    /// of reading its input: the same result as from the data itself (the same tensor re-uploaded, which
    /// carries none), and as the cpu backend's. Gradients, split-K outputs and tensors changed in place
    /// carry none.
    #[test]
    fn batch_norm_uses_the_convolutions_tile_statistics() {
        let cpu = CpuBackend::new();
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for precision in [Precision::Fp32, Precision::Bf16] {
            let be = CudaNativeBackend::emulator().with_precision(precision).poisoned();
            // ((x, w, stride, padding), transposed): a ragged last column tile (9·9·4 = 324 columns) and
            // 16- and 64-row tiles; conv_transpose2d's four stride phases, each with its own column tiles.
            let cases: [(Case, bool); 3] = [
                (([4, 8, 9, 9], [20, 8, 3, 3], [1, 1], [1, 1]), false),
                (([2, 16, 12, 12], [70, 16, 4, 4], [2, 2], [1, 1]), false),
                (([3, 16, 5, 5], [16, 12, 4, 4], [2, 2], [1, 1]), true),
            ];
            for ((xs, ws, stride, pad), transposed) in cases {
                let tag = format!("{} x {xs:?} w {ws:?} transposed {transposed}", precision.name());
                let p = Conv2dParams::new(stride, pad);
                let (x, w) = (rand_tensor(&mut r, &xs), rand_tensor(&mut r, &ws));
                let (xd, wd) = (be.upload(&x).unwrap(), be.upload(&w).unwrap());
                let y = if transposed { be.conv_transpose2d(&xd, &wd, p) } else { be.conv2d(&xd, &wd, p) }.unwrap();
                assert!(y.stats.is_some(), "{tag}: the output carries no statistics");
                let host = be.download(&y).unwrap();
                let plain = be.upload(&host).unwrap();
                let c = host.shape()[1];
                let (gamma, beta) = (rand_tensor(&mut r, &[c]), rand_tensor(&mut r, &[c]));
                let run_mean = rand_tensor(&mut r, &[c]);
                let run_var = Tensor::new(&[c], vec![0.5; c]).unwrap();
                let bn = |b: &CudaNativeBackend, t: &CudaNativeTensor| {
                    let (g, bt) = (b.upload(&gamma).unwrap(), b.upload(&beta).unwrap());
                    let (mut rm, mut rv) = (b.upload(&run_mean).unwrap(), b.upload(&run_var).unwrap());
                    let (out, st) = b.batch_norm2d_train(t, &g, &bt, &mut rm, &mut rv, 1e-5, 0.1).unwrap();
                    [out, st.mean, st.invstd, rm, rv].map(|t| b.download(&t).unwrap())
                };
                let fused = bn(&be, &y);
                let direct = bn(&be, &plain);
                let reference = {
                    let (g, bt) = (cpu.upload(&gamma).unwrap(), cpu.upload(&beta).unwrap());
                    let (mut rm, mut rv) = (run_mean.clone(), run_var.clone());
                    let (out, st) = cpu.batch_norm2d_train(&host, &g, &bt, &mut rm, &mut rv, 1e-5, 0.1).unwrap();
                    [out, st.mean, st.invstd, rm, rv]
                };
                let storage = precision.storage_tolerance();
                for (i, name) in ["y", "mean", "invstd", "running_mean", "running_var"].into_iter().enumerate() {
                    // y alone differs by its storage: the statistics are those of the stored values.
                    let storage = if name == "y" { storage } else { 0.0 };
                    let e = rel_l2(&tag, &fused[i], &direct[i]);
                    assert!(e <= storage.max(1e-6), "{tag}: {name} from the tile statistics vs from x: {e:.3e}");
                    let e = rel_l2(&tag, &fused[i], &reference[i]);
                    assert!(e <= storage.max(Precision::Fp32.tolerance()), "{tag}: {name} vs the cpu backend: {e:.3e}");
                }
                // What must not carry statistics: a gradient, a reshaped view, a tensor changed in place.
                let dx = be.conv2d_bwd_data(&y, &wd, xs, p);
                assert!(dx.map_or(true, |t| t.stats.is_none()), "{tag}: a gradient carries statistics");
                assert!(be.reshape(&y, &[host.len()]).unwrap().stats.is_none(), "{tag}: a reshaped view carries statistics");
                let mut changed = y.clone();
                be.add_assign(&mut changed, &plain).unwrap();
                assert!(changed.stats.is_none() && y.stats.is_some(), "{tag}: add_assign kept stale statistics");
            }
        }
        // A split reduction (few output tiles, long K) leaves the epilogue partial sums: no statistics.
        let be = CudaNativeBackend::emulator();
        let (x, w) = (rand_tensor(&mut r, &[3, 64, 4, 4]), rand_tensor(&mut r, &[2, 64, 4, 4]));
        let y = be.conv2d(&be.upload(&x).unwrap(), &be.upload(&w).unwrap(), Conv2dParams::new([1, 1], [0, 0])).unwrap();
        assert!(y.stats.is_none(), "split-K output carries statistics");
    }

    /// An instance norm after a conv2d whose Ho·Wo divides a column tile (or is a multiple of it) combines
    /// each plane's segment statistics from the epilogue: the same result as from the data itself and as the
    /// cpu backend's; the statistics really are read (zeroed partials change the output), and a plane the
    /// segments do not tile (9·9 = 81 pixels) is read from x.
    #[test]
    fn instance_norm_uses_the_convolutions_plane_statistics() {
        let cpu = CpuBackend::new();
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for precision in [Precision::Fp32, Precision::Bf16] {
            let be = CudaNativeBackend::emulator().with_precision(precision).poisoned();
            // (x, w, stride, padding, whether the planes are tiled): 2×2 planes (20 columns, 5 segments),
            // 4×4 planes with a ragged single tile (48 columns) and 64-row tiles, 8×8 (a segment per tile),
            // 16×16 (four tiles per plane), 9×9 (segments of a whole tile straddle planes).
            let cases: [(Case, bool); 5] = [
                (([5, 3, 4, 4], [6, 3, 4, 4], [2, 2], [1, 1]), true),
                (([3, 8, 8, 8], [20, 8, 4, 4], [2, 2], [1, 1]), true),
                (([2, 4, 16, 16], [12, 4, 4, 4], [2, 2], [1, 1]), true),
                (([2, 3, 16, 16], [5, 3, 3, 3], [1, 1], [1, 1]), true),
                (([2, 3, 9, 9], [5, 3, 3, 3], [1, 1], [1, 1]), false),
            ];
            for ((xs, ws, stride, pad), tiled) in cases {
                let tag = format!("{} x {xs:?} w {ws:?}", precision.name());
                let p = Conv2dParams::new(stride, pad);
                let (x, w) = (rand_tensor(&mut r, &xs), rand_tensor(&mut r, &ws));
                let y = be.conv2d(&be.upload(&x).unwrap(), &be.upload(&w).unwrap(), p).unwrap();
                let segs = y.stats.as_deref().unwrap_or_else(|| panic!("{tag}: the output carries no statistics"));
                let hw = y.shape()[2] * y.shape()[3];
                assert_eq!(hw.is_multiple_of(segs.seg), tiled, "{tag}: segments of {} columns for planes of {hw}", segs.seg);
                let host = be.download(&y).unwrap();
                let c = host.shape()[1];
                let (gamma, beta) = (rand_tensor(&mut r, &[c]), rand_tensor(&mut r, &[c]));
                let inorm = |b: &CudaNativeBackend, t: &CudaNativeTensor| {
                    let (out, st) = b.instance_norm2d(t, &b.upload(&gamma).unwrap(), &b.upload(&beta).unwrap(), 1e-5).unwrap();
                    [out, st.mean, st.invstd].map(|t| b.download(&t).unwrap())
                };
                let fused = inorm(&be, &y);
                let direct = inorm(&be, &be.upload(&host).unwrap());
                let reference = {
                    let (out, st) = cpu.instance_norm2d(&host, &gamma, &beta, 1e-5).unwrap();
                    [out, st.mean, st.invstd]
                };
                let storage = precision.storage_tolerance();
                for (i, name) in ["y", "mean", "invstd"].into_iter().enumerate() {
                    // y alone differs by its storage: the statistics are those of the stored values.
                    let storage = if name == "y" { storage } else { 0.0 };
                    let e = rel_l2(&tag, &fused[i], &direct[i]);
                    assert!(e <= storage.max(1e-6), "{tag}: {name} from the segment statistics vs from x: {e:.3e}");
                    let e = rel_l2(&tag, &fused[i], &reference[i]);
                    assert!(e <= storage.max(Precision::Fp32.tolerance()), "{tag}: {name} vs the cpu backend: {e:.3e}");
                }
                // The same tensor with zeroed partials: a different result exactly where they are used.
                let mut zeroed = y.clone();
                let blank = be.upload(&Tensor::zeros(segs.partials.shape())).unwrap();
                zeroed.stats = Some(Arc::new(ChannelPartials {
                    partials: blank,
                    per_row: segs.per_row,
                    seg: segs.seg,
                    planes: segs.planes,
                    shape: segs.shape.clone(),
                }));
                let from_zeros = be
                    .download(&be.instance_norm2d(&zeroed, &be.upload(&gamma).unwrap(), &be.upload(&beta).unwrap(), 1e-5).unwrap().0)
                    .unwrap();
                assert_eq!(from_zeros != fused[0], tiled, "{tag}: whether the partials were read");
            }
        }
    }

    /// conv_transpose2d's partials follow its stride phases, not its images' planes: an instance norm after it
    /// reads its input (here 8×8 planes, which a conv2d's 64-column segments would tile), matching the norm
    /// of the same data re-uploaded without statistics.
    #[test]
    fn instance_norm_after_conv_transpose2d_reads_its_input() {
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(13);
        let be = CudaNativeBackend::emulator().poisoned();
        let (x, w) = (rand_tensor(&mut r, &[2, 16, 4, 4]), rand_tensor(&mut r, &[16, 6, 4, 4]));
        let y = be.conv_transpose2d(&be.upload(&x).unwrap(), &be.upload(&w).unwrap(), Conv2dParams::new([2, 2], [1, 1])).unwrap();
        assert!(y.stats.as_deref().is_some_and(|s| !s.planes), "conv_transpose2d's partials");
        let (gamma, beta) = (rand_tensor(&mut r, &[6]), rand_tensor(&mut r, &[6]));
        let inorm = |t: &CudaNativeTensor| {
            let out = be.instance_norm2d(t, &be.upload(&gamma).unwrap(), &be.upload(&beta).unwrap(), 1e-5).unwrap().0;
            be.download(&out).unwrap()
        };
        let plain = be.upload(&be.download(&y).unwrap()).unwrap();
        assert!(inorm(&y) == inorm(&plain), "instance norm after conv_transpose2d differs from the norm of its data");
    }

    #[test]
    fn split_k_plans_cover_the_reduction() {
        for (tiles, k) in [(1, 0), (1, 1), (1, 8192), (16, 1024), (600, 100_000), (2, 300)] {
            let (splits, chunk) = split_k(tiles, k);
            assert!(chunk % TILE_K == 0 && (1..=64).contains(&splits), "{tiles} {k}: {splits} × {chunk}");
            assert!(splits * chunk >= k && (splits - 1) * chunk < k.max(1), "{tiles} {k}: {splits} × {chunk}");
        }
    }
}
