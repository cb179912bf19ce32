//! conv2d and its two backward passes as tiled implicit GEMMs: the im2col matrix is never formed; each
//! cube gathers the [`TILE_K`]-deep slices of its operands straight from the NCHW tensors into shared
//! memory and multiplies them there. (conv_transpose2d runs through these via the trait's default
//! methods: its forward is `conv2d_bwd_data`, its backward-data `conv2d`, its backward-weight
//! `conv2d_bwd_weight` with the roles of input and output swapped.)
//!
//! Tiling, shared by the three kernels: a cube of [`TILE_UNITS`] = 16×16 units owns a [`TILE_M`]×[`TILE_N`]
//! block of the output matrix; per step it stages a TILE_K×TILE_M slice of A and a TILE_K×TILE_N slice of
//! B (8 KiB) in shared memory, and each unit accumulates a 4×4 register block (rows ty + 16i, columns
//! tx + 16j: conflict-free shared reads, coalesced global writes). Accumulation is f32 along K. Outputs
//! of at most 16 rows use a 16×64 tile (one row per unit, `tm` = 1) instead.
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

/// Output-block rows per cube: 16·tm, tm (rows per unit) a comptime parameter of every conv kernel, 4
/// (64 rows) normally and 1 (16 rows) when the output has at most 16 rows (the 3 colour channels of the
/// generator's last layer, the discriminator's single output), which would leave a 64-row tile mostly idle.
pub const TILE_M: usize = 64;
/// The small-output tile's rows (tm = 1).
pub const TILE_M_SMALL: usize = 16;
/// Output-block columns per cube.
pub const TILE_N: usize = 64;
/// Depth of one shared-memory step along the reduction.
pub const TILE_K: usize = 16;
/// Units per cube (16 × 16, each owning a 4 × 4 register block).
pub const TILE_UNITS: usize = 256;

/// acc[i·4 + j] += Σ_kk A[kk][ty + 16i] · B[kk][tx + 16j] over one staged TILE_K step (i < tm, j < 4).
#[cube]
fn tile_fma(a_s: &SharedMemory<f32>, b_s: &SharedMemory<f32>, acc: &mut Array<f32>, ty: usize, tx: usize, #[comptime] tm: usize) {
    let mut a_reg = Array::<f32>::new(4usize);
    let mut b_reg = Array::<f32>::new(4usize);
    #[unroll]
    for kk in 0..TILE_K {
        #[unroll]
        for i in 0..tm {
            a_reg[i] = a_s[kk * (16 * tm) + ty + 16 * i];
        }
        #[unroll]
        for j in 0..4usize {
            b_reg[j] = b_s[kk * TILE_N + tx + 16 * j];
        }
        #[unroll]
        for i in 0..tm {
            #[unroll]
            for j in 0..4usize {
                acc[i * 4 + j] += a_reg[i] * b_reg[j];
            }
        }
    }
}

/// A zeroed 4 × 4 register block.
#[cube]
fn zero_acc() -> Array<f32> {
    let mut acc = Array::<f32>::new(16usize);
    #[unroll]
    for i in 0..16usize {
        acc[i] = 0.0f32;
    }
    acc
}

/// y = conv2d(x, w): x [N, C, H, W], w [O, C, kh, kw] → y [N, O, Ho, Wo]. Grid: (⌈N·Ho·Wo / TILE_N⌉,
/// ⌈O / TILE_M⌉, splits); `cols` = N·Ho·Wo. Split z sums the reduction range [z·kchunk, (z + 1)·kchunk) into
/// y[z·out_len ..] (with one split, y itself; else partials that [`super::sum_splits`] adds).
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    x: &Array<f32>, w: &Array<f32>, y: &mut Array<f32>, c: u32, h: u32, wd: u32, o: u32, kh: u32, kw: u32, ho: u32,
    wo: u32, stride_h: u32, stride_w: u32, pad_h: u32, pad_w: u32, cols: u32, kchunk: u32, out_len: u32,
    #[comptime] tm: usize,
) {
    let mut a_s = SharedMemory::<f32>::new(TILE_K * 16 * tm);
    let mut b_s = SharedMemory::<f32>::new(TILE_K * TILE_N);
    let u = UNIT_POS as usize;
    let tx = u % 16;
    let ty = u / 16;
    let row0 = CUBE_POS_Y as usize * (16 * tm);
    let col0 = CUBE_POS_X as usize * TILE_N;
    let (c, h, wd, o) = (c as usize, h as usize, wd as usize, o as usize);
    let (kh, kw, ho, wo) = (kh as usize, kw as usize, ho as usize, wo as usize);
    let (sh, sw, ph, pw) = (stride_h as usize, stride_w as usize, pad_h as usize, pad_w as usize);
    let ncols = cols as usize;
    let khw = kh * kw;
    let kdim = c * khw;
    let hw_out = ho * wo;

    // B = im2col(x): this unit always stages column b_col, rows b_k + 4i.
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
    // A = w: this unit always stages column a_k, rows a_m + 16i.
    let a_k = u % TILE_K;
    let a_m = u / TILE_K;

    let z = CUBE_POS_Z as usize;
    let kchunk = kchunk as usize;
    let k_begin = z * kchunk;
    let k_end = select(k_begin + kchunk < kdim, k_begin + kchunk, kdim);
    let y_off = z * out_len as usize;

    let mut acc = zero_acc();
    let mut k0 = k_begin;
    while k0 < k_end {
        let ka = k0 + a_k;
        #[unroll]
        for i in 0..tm {
            let mm = a_m + 16 * i;
            let row = row0 + mm;
            let mut v = 0.0f32;
            if row < o && ka < k_end {
                v = w[row * kdim + ka];
            }
            a_s[a_k * (16 * tm) + mm] = v;
        }
        #[unroll]
        for i in 0..4usize {
            let kk = b_k + 4 * i;
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
        tile_fma(&a_s, &b_s, &mut acc, ty, tx, tm);
        sync_cube();
        k0 += TILE_K;
    }

    #[unroll]
    for i in 0..tm {
        #[unroll]
        for j in 0..4usize {
            let row = row0 + ty + 16 * i;
            let col = col0 + tx + 16 * j;
            if row < o && col < ncols {
                y[y_off + ((col / hw_out) * o + row) * hw_out + col % hw_out] = acc[i * 4 + j];
            }
        }
    }
}

/// dx of conv2d for one stride phase (a_h, a_w): the input positions ih = ih0 + s_h·th (th < Ht), iw =
/// iw0 + s_w·tw (tw < Wt), which receive the kernel taps kh = a_h + s_h·jh (jh < taps_h), kw = a_w + s_w·jw
/// (jw < taps_w) from dy at oh = base_h + th − jh, ow = base_w + tw − jw (when inside dy). dy [N, O, Ho, Wo],
/// w [O, C, kh, kw] → dx [N, C, H, W]. Grid: (⌈N·Ht·Wt / TILE_N⌉, ⌈C / TILE_M⌉, splits); `cols` = N·Ht·Wt;
/// split z sums the taps [z·kchunk, (z + 1)·kchunk) into dx[z·out_len ..], as conv2d. A phase without taps
/// (s > kernel) writes zeros.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub fn conv2d_bwd_data(
    dy: &Array<f32>, w: &Array<f32>, dx: &mut Array<f32>, c: u32, h: u32, wd: u32, o: u32, kh: u32, kw: u32, ho: u32,
    wo: u32, stride_h: u32, stride_w: u32, a_h: u32, a_w: u32, taps_h: u32, taps_w: u32, ih0: u32, iw0: u32, t_h: u32,
    t_w: u32, base_h: u32, base_w: u32, cols: u32, kchunk: u32, out_len: u32,
    #[comptime] tm: usize,
) {
    let mut a_s = SharedMemory::<f32>::new(TILE_K * 16 * tm);
    let mut b_s = SharedMemory::<f32>::new(TILE_K * TILE_N);
    let u = UNIT_POS as usize;
    let tx = u % 16;
    let ty = u / 16;
    let row0 = CUBE_POS_Y as usize * (16 * tm);
    let col0 = CUBE_POS_X as usize * TILE_N;
    let (c, h, wd, o) = (c as usize, h as usize, wd as usize, o as usize);
    let (kh, kw, ho, wo) = (kh as usize, kw as usize, ho as usize, wo as usize);
    let (sh, sw) = (stride_h as usize, stride_w as usize);
    let (a_h, a_w, taps_h, taps_w) = (a_h as usize, a_w as usize, taps_h as usize, taps_w as usize);
    let (t_h, t_w, base_h, base_w) = (t_h as usize, t_w as usize, base_h as usize, base_w as usize);
    let ncols = cols as usize;
    let taps = taps_h * taps_w;
    let kdim = o * taps;
    let t_hw = t_h * t_w;

    // B = gathered dy: this unit always stages column b_col (a phase position), rows b_k + 4i (taps).
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
    // A = wᵀ: column a_k (a tap), rows a_m + 16i (input channels).
    let a_k = u % TILE_K;
    let a_m = u / TILE_K;

    let z = CUBE_POS_Z as usize;
    let kchunk = kchunk as usize;
    let k_begin = z * kchunk;
    let k_end = select(k_begin + kchunk < kdim, k_begin + kchunk, kdim);
    let dx_off = z * out_len as usize;

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
            let mm = a_m + 16 * i;
            let ci = row0 + mm;
            let mut v = 0.0f32;
            if ci < c && ka_ok {
                v = w[w_off + ci * kh * kw];
            }
            a_s[a_k * (16 * tm) + mm] = v;
        }
        #[unroll]
        for i in 0..4usize {
            let kk = b_k + 4 * i;
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
        tile_fma(&a_s, &b_s, &mut acc, ty, tx, tm);
        sync_cube();
        k0 += TILE_K;
    }

    #[unroll]
    for i in 0..tm {
        #[unroll]
        for j in 0..4usize {
            let ci = row0 + ty + 16 * i;
            let col = col0 + tx + 16 * j;
            if ci < c && col < ncols {
                let nb = col / t_hw;
                let t = col % t_hw;
                let ih = ih0 as usize + sh * (t / t_w);
                let iw = iw0 as usize + sw * (t % t_w);
                dx[dx_off + ((nb * c + ci) * h + ih) * wd + iw] = acc[i * 4 + j];
            }
        }
    }
}

/// Partial dw of conv2d over reduction chunk z = CUBE_POS_Z (positions r = (n, oh, ow) in
/// [z·chunk, min((z + 1)·chunk, N·Ho·Wo))): part[z][o][c·kh·kw] = Σ_r dy[n, o, oh, ow]·x[n, c, ih, iw].
/// Grid: (⌈C·kh·kw / TILE_N⌉, ⌈O / TILE_M⌉, splits); `chunk` is a multiple of TILE_K. With one split,
/// `part` is dw itself ([O, C, kh, kw] is the GEMM's row-major layout).
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub fn conv2d_bwd_weight(
    x: &Array<f32>, dy: &Array<f32>, part: &mut Array<f32>, n: u32, c: u32, h: u32, wd: u32, o: u32, kh: u32, kw: u32,
    ho: u32, wo: u32, stride_h: u32, stride_w: u32, pad_h: u32, pad_w: u32, chunk: u32,
    #[comptime] tm: usize,
) {
    let mut a_s = SharedMemory::<f32>::new(TILE_K * 16 * tm);
    let mut b_s = SharedMemory::<f32>::new(TILE_K * TILE_N);
    let u = UNIT_POS as usize;
    let tx = u % 16;
    let ty = u / 16;
    let row0 = CUBE_POS_Y as usize * (16 * tm);
    let col0 = CUBE_POS_X as usize * TILE_N;
    let z = CUBE_POS_Z as usize;
    let (c, h, wd, o) = (c as usize, h as usize, wd as usize, o as usize);
    let (kh, kw, ho, wo) = (kh as usize, kw as usize, ho as usize, wo as usize);
    let (sh, sw, ph, pw) = (stride_h as usize, stride_w as usize, pad_h as usize, pad_w as usize);
    let khw = kh * kw;
    let kdim = c * khw;
    let hw_out = ho * wo;
    let rdim = n as usize * hw_out;
    let chunk = chunk as usize;
    let r_begin = z * chunk;
    let r_end = select(r_begin + chunk < rdim, r_begin + chunk, rdim);

    // B = im2col(x)ᵀ: this unit always stages column b_col (a weight element), rows b_k + 4i (positions).
    let b_col = u % TILE_N;
    let b_k = u / TILE_N;
    let col = col0 + b_col;
    let col_ok = col < kdim;
    let colc = select(col_ok, col, 0usize);
    let ci = colc / khw;
    let dh = (colc % khw) / kw;
    let dw = colc % kw;
    // A = dy: column a_k (a position), rows a_m + 16i (output channels).
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
            let mm = a_m + 16 * i;
            let row = row0 + mm;
            let mut v = 0.0f32;
            if row < o && ra_ok {
                v = dy[dy_off + row * hw_out];
            }
            a_s[a_k * (16 * tm) + mm] = v;
        }
        #[unroll]
        for i in 0..4usize {
            let kk = b_k + 4 * i;
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
        tile_fma(&a_s, &b_s, &mut acc, ty, tx, tm);
        sync_cube();
        r0 += TILE_K;
    }

    #[unroll]
    for i in 0..tm {
        #[unroll]
        for j in 0..4usize {
            let row = row0 + ty + 16 * i;
            let col = col0 + tx + 16 * j;
            if row < o && col < kdim {
                part[(z * o + row) * kdim + col] = acc[i * 4 + j];
            }
        }
    }
}
