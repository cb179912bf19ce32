//! conv2d and its two backward passes as tiled implicit GEMMs: the im2col matrix is never formed; each
//! cube gathers the [`TILE_K`]-deep slices of its operands straight from the NCHW tensors into shared
//! memory and multiplies them there. (conv_transpose2d runs through these via the trait's default
//! methods: its forward is `conv2d_bwd_data`, its backward-data `conv2d`, its backward-weight
//! `conv2d_bwd_weight` with the roles of input and output swapped.)
//!
//! Tiling, shared by the three kernels: a cube of [`TILE_UNITS`] = 16×16 units owns a tile_m×[`TILE_N`]
//! block of the output matrix ([`ConvTile`]: 64 rows, or 16 for outputs of at most 16 rows); per step it
//! stages a TILE_K×tile_m slice of A and a TILE_K×TILE_N slice of B (8 KiB) in shared memory, and each
//! unit accumulates a tm×4 register block (rows ty + 16i, columns tx + 16j: conflict-free shared reads,
//! coalesced global writes). Accumulation is f32 along K.
//!
//! | kernel              | rows (M) | columns (N)          | reduction (K)           | A        | B                |
//! |---------------------|----------|----------------------|-------------------------|----------|------------------|
//! | `conv2d`            | O        | N·Ho·Wo              | C·kh·kw                 | w        | im2col(x)        |
//! | `conv2d_bwd_data`   | C        | N·Ht·Wt (one phase)  | O·⌈kh/s⌉·⌈kw/s⌉ (taps)  | wᵀ       | gathered dy      |
//! | `conv2d_bwd_weight` | O        | C·kh·kw              | N·Ho·Wo (split over z)  | dy       | im2col(x)ᵀ       |
//!
//! `conv2d_bwd_data` is split by stride phase (sub-pixel decomposition): the input rows ih ≡ a − p (mod s)
//! receive only the kernel rows kh ≡ a (mod s), so each of the s_h·s_w phases is a dense GEMM over its own
//! taps, one launch each, with no multiply by the zeros a strided scatter would insert.
//! Split-K: when the output has too few tiles to fill a GPU (always for `conv2d_bwd_weight`, whose
//! reduction runs over the whole batch; for the others, layers like the discriminator's last, O = 1 with
//! K = 8192), the reduction is split into chunks along CUBE_POS_Z, each writing a partial output, which
//! [`super::sum_splits`] adds: more cubes, and shorter f32 sums.

use cubecl::prelude::*;

/// Units along each side of a cube's 16 × 16 unit grid: unit (ty, tx) owns output rows ty + 16i and
/// columns tx + 16j of the tile.
pub const UNITS_PER_SIDE: usize = 16;
/// Output columns per unit (j < 4).
pub const COLS_PER_UNIT: usize = 4;
/// Output-block columns per cube.
pub const TILE_N: usize = UNITS_PER_SIDE * COLS_PER_UNIT;
/// Depth of one shared-memory step along the reduction.
pub const TILE_K: usize = 16;
/// Units per cube.
pub const TILE_UNITS: usize = UNITS_PER_SIDE * UNITS_PER_SIDE;
/// Staging A (TILE_K × tile_m): unit u loads column u % TILE_K, rows u / TILE_K + A_ROW_STEP·i.
const A_ROW_STEP: usize = TILE_UNITS / TILE_K;
/// Staging B (TILE_K × TILE_N): unit u loads column u % TILE_N, rows u / TILE_N + B_ROW_STEP·i.
const B_ROW_STEP: usize = TILE_UNITS / TILE_N;

/// The output tile's height, a comptime parameter of every conv kernel: 64 rows (4 per unit) normally, 16
/// (1 per unit) when the output has at most 16 rows (the 3 colour channels of the generator's last layer,
/// the discriminator's single output), which would leave a 64-row tile mostly idle.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ConvTile {
    Large,
    Small,
}

impl ConvTile {
    /// The tile for an output of `rows` rows.
    pub const fn for_rows(rows: usize) -> Self {
        if rows <= ConvTile::Small.rows() {
            ConvTile::Small
        } else {
            ConvTile::Large
        }
    }

    /// Rows per unit (tm): the height of its register block.
    pub const fn rows_per_unit(self) -> usize {
        match self {
            ConvTile::Large => 4,
            ConvTile::Small => 1,
        }
    }

    /// Output-block rows per cube (tile_m).
    pub const fn rows(self) -> usize {
        UNITS_PER_SIDE * self.rows_per_unit()
    }
}

/// The largest register block: [`ConvTile::Large`]'s rows per unit × [`COLS_PER_UNIT`].
const MAX_ROWS_PER_UNIT: usize = ConvTile::Large.rows_per_unit();

launch_args! {
    /// One convolution's shapes: x [N, C, H, W], w [O, C, kh, kw], y [N, O, Ho, Wo], stride and padding.
    Conv2dGeom => Conv2dGeomLaunch: usize { n, c, h, w, o, kh, kw, ho, wo, stride_h, stride_w, pad_h, pad_w }
}

launch_args! {
    /// A split-K GEMM's output columns and reduction chunk: split z = CUBE_POS_Z sums the reduction range
    /// [z·kchunk, (z + 1)·kchunk) into out[z·out_len ..] (with one split, the output itself; else partials
    /// that [`super::sum_splits`] adds).
    SplitK => SplitKLaunch: usize { cols, kchunk, out_len }
}

launch_args! {
    /// One stride phase (a_h, a_w) of conv2d_bwd_data: the input positions ih = ih0 + s_h·th (th < t_h),
    /// iw = iw0 + s_w·tw (tw < t_w), which receive the kernel taps kh = a_h + s_h·jh (jh < taps_h),
    /// kw = a_w + s_w·jw (jw < taps_w) from dy at oh = base_h + th − jh, ow = base_w + tw − jw.
    BwdDataPhase => BwdDataPhaseLaunch: usize { a_h, a_w, taps_h, taps_w, ih0, iw0, t_h, t_w, base_h, base_w }
}

/// acc[i·4 + j] += Σ_kk A[kk][ty + 16i] · B[kk][tx + 16j] over one staged TILE_K step (i < tm, j < 4).
#[cube]
fn tile_fma(a_s: &SharedMemory<f32>, b_s: &SharedMemory<f32>, acc: &mut Array<f32>, ty: usize, tx: usize, #[comptime] tile: ConvTile) {
    let tm = comptime![tile.rows_per_unit()];
    let tile_m = comptime![tile.rows()];
    let mut a_reg = Array::<f32>::new(MAX_ROWS_PER_UNIT);
    let mut b_reg = Array::<f32>::new(COLS_PER_UNIT);
    #[unroll]
    for kk in 0..TILE_K {
        #[unroll]
        for i in 0..tm {
            a_reg[i] = a_s[kk * tile_m + ty + UNITS_PER_SIDE * i];
        }
        #[unroll]
        for j in 0..COLS_PER_UNIT {
            b_reg[j] = b_s[kk * TILE_N + tx + UNITS_PER_SIDE * j];
        }
        #[unroll]
        for i in 0..tm {
            #[unroll]
            for j in 0..COLS_PER_UNIT {
                acc[i * COLS_PER_UNIT + j] += a_reg[i] * b_reg[j];
            }
        }
    }
}

/// A zeroed register block.
#[cube]
fn zero_acc() -> Array<f32> {
    let mut acc = Array::<f32>::new(MAX_ROWS_PER_UNIT * COLS_PER_UNIT);
    #[unroll]
    for i in 0..MAX_ROWS_PER_UNIT * COLS_PER_UNIT {
        acc[i] = 0.0f32;
    }
    acc
}

/// y = conv2d(x, w): x [N, C, H, W], w [O, C, kh, kw] → y [N, O, Ho, Wo]. Grid: (⌈N·Ho·Wo / TILE_N⌉,
/// ⌈O / tile_m⌉, splits); `split.cols` = N·Ho·Wo, the reduction runs over C·kh·kw.
#[cube(launch_unchecked)]
pub fn conv2d(x: &Array<f32>, w: &Array<f32>, y: &mut Array<f32>, g: Conv2dGeom, split: SplitK, #[comptime] tile: ConvTile) {
    let tm = comptime![tile.rows_per_unit()];
    let tile_m = comptime![tile.rows()];
    let mut a_s = SharedMemory::<f32>::new(TILE_K * tile_m);
    let mut b_s = SharedMemory::<f32>::new(TILE_K * TILE_N);
    let u = UNIT_POS as usize;
    let tx = u % UNITS_PER_SIDE;
    let ty = u / UNITS_PER_SIDE;
    let row0 = CUBE_POS_Y as usize * tile_m;
    let col0 = CUBE_POS_X as usize * TILE_N;
    let (c, h, wd, o) = (g.c, g.h, g.w, g.o);
    let (kh, kw, ho, wo) = (g.kh, g.kw, g.ho, g.wo);
    let (sh, sw, ph, pw) = (g.stride_h, g.stride_w, g.pad_h, g.pad_w);
    let ncols = split.cols;
    let khw = kh * kw;
    let kdim = c * khw;
    let hw_out = ho * wo;

    // B = im2col(x): this unit always stages column b_col, rows b_k + B_ROW_STEP·i.
    let b_col = u % TILE_N;
    let b_k = u / TILE_N;
    let col = col0 + b_col;
    let col_ok = col < ncols;
    let colc = select(col_ok, col, 0usize);
    let nb = colc / hw_out;
    let q = colc % hw_out;
    let ih_base = (q / wo) * sh;
    let iw_base = (q % wo) * sw;
    let x_base = nb * c * h * wd;
    // A = w: this unit always stages column a_k, rows a_m + A_ROW_STEP·i.
    let a_k = u % TILE_K;
    let a_m = u / TILE_K;

    let z = CUBE_POS_Z as usize;
    let k_begin = z * split.kchunk;
    let k_end = select(k_begin + split.kchunk < kdim, k_begin + split.kchunk, kdim);
    let y_off = z * split.out_len;

    let mut acc = zero_acc();
    let mut k0 = k_begin;
    while k0 < k_end {
        let ka = k0 + a_k;
        #[unroll]
        for i in 0..tm {
            let mm = a_m + A_ROW_STEP * i;
            let row = row0 + mm;
            let mut v = 0.0f32;
            if row < o && ka < k_end {
                v = w[row * kdim + ka];
            }
            a_s[a_k * tile_m + mm] = v;
        }
        #[unroll]
        for i in 0..TILE_K / B_ROW_STEP {
            let kk = b_k + B_ROW_STEP * i;
            let k = k0 + kk;
            let mut v = 0.0f32;
            if col_ok && k < k_end {
                let ci = k / khw;
                let rr = k % khw;
                let ih = ih_base + rr / kw;
                let iw = iw_base + rr % kw;
                if ih >= ph && ih < h + ph && iw >= pw && iw < wd + pw {
                    v = x[x_base + (ci * h + ih - ph) * wd + iw - pw];
                }
            }
            b_s[kk * TILE_N + b_col] = v;
        }
        sync_cube();
        tile_fma(&a_s, &b_s, &mut acc, ty, tx, tile);
        sync_cube();
        k0 += TILE_K;
    }

    #[unroll]
    for i in 0..tm {
        #[unroll]
        for j in 0..COLS_PER_UNIT {
            let row = row0 + ty + UNITS_PER_SIDE * i;
            let col = col0 + tx + UNITS_PER_SIDE * j;
            if row < o && col < ncols {
                y[y_off + ((col / hw_out) * o + row) * hw_out + col % hw_out] = acc[i * COLS_PER_UNIT + j];
            }
        }
    }
}

/// dx of conv2d for one stride phase ([`BwdDataPhase`]): dy [N, O, Ho, Wo], w [O, C, kh, kw] → dx
/// [N, C, H, W]. Grid: (⌈N·t_h·t_w / TILE_N⌉, ⌈C / tile_m⌉, splits); `split.cols` = N·t_h·t_w, the
/// reduction runs over O·taps_h·taps_w, as conv2d. A phase without taps (s > kernel) writes zeros.
#[cube(launch_unchecked)]
pub fn conv2d_bwd_data(
    dy: &Array<f32>,
    w: &Array<f32>,
    dx: &mut Array<f32>,
    g: Conv2dGeom,
    phase: BwdDataPhase,
    split: SplitK,
    #[comptime] tile: ConvTile,
) {
    let tm = comptime![tile.rows_per_unit()];
    let tile_m = comptime![tile.rows()];
    let mut a_s = SharedMemory::<f32>::new(TILE_K * tile_m);
    let mut b_s = SharedMemory::<f32>::new(TILE_K * TILE_N);
    let u = UNIT_POS as usize;
    let tx = u % UNITS_PER_SIDE;
    let ty = u / UNITS_PER_SIDE;
    let row0 = CUBE_POS_Y as usize * tile_m;
    let col0 = CUBE_POS_X as usize * TILE_N;
    let (c, h, wd, o) = (g.c, g.h, g.w, g.o);
    let (kh, kw, ho, wo) = (g.kh, g.kw, g.ho, g.wo);
    let (sh, sw) = (g.stride_h, g.stride_w);
    let (a_h, a_w, taps_h, taps_w) = (phase.a_h, phase.a_w, phase.taps_h, phase.taps_w);
    let (t_h, t_w, base_h, base_w) = (phase.t_h, phase.t_w, phase.base_h, phase.base_w);
    let ncols = split.cols;
    let taps = taps_h * taps_w;
    let kdim = o * taps;
    let t_hw = t_h * t_w;

    // B = gathered dy: this unit always stages column b_col (a phase position), rows b_k + B_ROW_STEP·i (taps).
    let b_col = u % TILE_N;
    let b_k = u / TILE_N;
    let col = col0 + b_col;
    let col_ok = col < ncols;
    let colc = select(col_ok, col, 0usize);
    let nb = colc / t_hw;
    let t = colc % t_hw;
    let oh_base = base_h + t / t_w;
    let ow_base = base_w + t % t_w;
    let dy_base = nb * o * ho * wo;
    // A = wᵀ: column a_k (a tap), rows a_m + A_ROW_STEP·i (input channels).
    let a_k = u % TILE_K;
    let a_m = u / TILE_K;

    let z = CUBE_POS_Z as usize;
    let k_begin = z * split.kchunk;
    let k_end = select(k_begin + split.kchunk < kdim, k_begin + split.kchunk, kdim);
    let dx_off = z * split.out_len;

    let mut acc = zero_acc();
    let mut k0 = k_begin;
    while k0 < k_end {
        let ka = k0 + a_k;
        let mut w_off = 0usize;
        let ka_ok = ka < k_end;
        if ka_ok {
            let oi = ka / taps;
            let rr = ka % taps;
            let khi = a_h + sh * (rr / taps_w);
            let kwi = a_w + sw * (rr % taps_w);
            w_off = (oi * c * kh + khi) * kw + kwi;
        }
        #[unroll]
        for i in 0..tm {
            let mm = a_m + A_ROW_STEP * i;
            let ci = row0 + mm;
            let mut v = 0.0f32;
            if ci < c && ka_ok {
                v = w[w_off + ci * kh * kw];
            }
            a_s[a_k * tile_m + mm] = v;
        }
        #[unroll]
        for i in 0..TILE_K / B_ROW_STEP {
            let kk = b_k + B_ROW_STEP * i;
            let k = k0 + kk;
            let mut v = 0.0f32;
            if col_ok && k < k_end {
                let oi = k / taps;
                let rr = k % taps;
                let jh = rr / taps_w;
                let jw = rr % taps_w;
                if oh_base >= jh && oh_base < ho + jh && ow_base >= jw && ow_base < wo + jw {
                    v = dy[dy_base + (oi * ho + oh_base - jh) * wo + ow_base - jw];
                }
            }
            b_s[kk * TILE_N + b_col] = v;
        }
        sync_cube();
        tile_fma(&a_s, &b_s, &mut acc, ty, tx, tile);
        sync_cube();
        k0 += TILE_K;
    }

    #[unroll]
    for i in 0..tm {
        #[unroll]
        for j in 0..COLS_PER_UNIT {
            let ci = row0 + ty + UNITS_PER_SIDE * i;
            let col = col0 + tx + UNITS_PER_SIDE * j;
            if ci < c && col < ncols {
                let nb = col / t_hw;
                let t = col % t_hw;
                let ih = phase.ih0 + sh * (t / t_w);
                let iw = phase.iw0 + sw * (t % t_w);
                dx[dx_off + ((nb * c + ci) * h + ih) * wd + iw] = acc[i * COLS_PER_UNIT + j];
            }
        }
    }
}

/// Partial dw of conv2d over reduction chunk z = CUBE_POS_Z (positions r = (n, oh, ow) in
/// [z·kchunk, min((z + 1)·kchunk, N·Ho·Wo))): part[z][o][c·kh·kw] = Σ_r dy[n, o, oh, ow]·x[n, c, ih, iw].
/// Grid: (⌈C·kh·kw / TILE_N⌉, ⌈O / tile_m⌉, splits); `split.cols` = C·kh·kw, `split.kchunk` a multiple of
/// TILE_K, `split.out_len` = O·C·kh·kw. With one split, `part` is dw itself ([O, C, kh, kw] is the GEMM's
/// row-major layout).
#[cube(launch_unchecked)]
pub fn conv2d_bwd_weight(x: &Array<f32>, dy: &Array<f32>, part: &mut Array<f32>, g: Conv2dGeom, split: SplitK, #[comptime] tile: ConvTile) {
    let tm = comptime![tile.rows_per_unit()];
    let tile_m = comptime![tile.rows()];
    let mut a_s = SharedMemory::<f32>::new(TILE_K * tile_m);
    let mut b_s = SharedMemory::<f32>::new(TILE_K * TILE_N);
    let u = UNIT_POS as usize;
    let tx = u % UNITS_PER_SIDE;
    let ty = u / UNITS_PER_SIDE;
    let row0 = CUBE_POS_Y as usize * tile_m;
    let col0 = CUBE_POS_X as usize * TILE_N;
    let z = CUBE_POS_Z as usize;
    let (c, h, wd, o) = (g.c, g.h, g.w, g.o);
    let (kh, kw, ho, wo) = (g.kh, g.kw, g.ho, g.wo);
    let (sh, sw, ph, pw) = (g.stride_h, g.stride_w, g.pad_h, g.pad_w);
    let khw = kh * kw;
    let kdim = split.cols;
    let hw_out = ho * wo;
    let rdim = g.n * hw_out;
    let r_begin = z * split.kchunk;
    let r_end = select(r_begin + split.kchunk < rdim, r_begin + split.kchunk, rdim);

    // B = im2col(x)ᵀ: this unit always stages column b_col (a weight element), rows b_k + B_ROW_STEP·i
    // (positions).
    let b_col = u % TILE_N;
    let b_k = u / TILE_N;
    let col = col0 + b_col;
    let col_ok = col < kdim;
    let colc = select(col_ok, col, 0usize);
    let ci = colc / khw;
    let dh = (colc % khw) / kw;
    let dw = colc % kw;
    // A = dy: column a_k (a position), rows a_m + A_ROW_STEP·i (output channels).
    let a_k = u % TILE_K;
    let a_m = u / TILE_K;

    let mut acc = zero_acc();
    let mut r0 = r_begin;
    while r0 < r_end {
        let ra = r0 + a_k;
        let ra_ok = ra < r_end;
        let rac = select(ra_ok, ra, 0usize);
        let dy_off = (rac / hw_out) * o * hw_out + rac % hw_out;
        #[unroll]
        for i in 0..tm {
            let mm = a_m + A_ROW_STEP * i;
            let row = row0 + mm;
            let mut v = 0.0f32;
            if row < o && ra_ok {
                v = dy[dy_off + row * hw_out];
            }
            a_s[a_k * tile_m + mm] = v;
        }
        #[unroll]
        for i in 0..TILE_K / B_ROW_STEP {
            let kk = b_k + B_ROW_STEP * i;
            let r = r0 + kk;
            let mut v = 0.0f32;
            if col_ok && r < r_end {
                let nb = r / hw_out;
                let q = r % hw_out;
                let ih = (q / wo) * sh + dh;
                let iw = (q % wo) * sw + dw;
                if ih >= ph && ih < h + ph && iw >= pw && iw < wd + pw {
                    v = x[((nb * c + ci) * h + ih - ph) * wd + iw - pw];
                }
            }
            b_s[kk * TILE_N + b_col] = v;
        }
        sync_cube();
        tile_fma(&a_s, &b_s, &mut acc, ty, tx, tile);
        sync_cube();
        r0 += TILE_K;
    }

    #[unroll]
    for i in 0..tm {
        #[unroll]
        for j in 0..COLS_PER_UNIT {
            let row = row0 + ty + UNITS_PER_SIDE * i;
            let col = col0 + tx + UNITS_PER_SIDE * j;
            if row < o && col < kdim {
                part[z * split.out_len + row * kdim + col] = acc[i * COLS_PER_UNIT + j];
            }
        }
    }
}
