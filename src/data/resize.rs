//! `cv2.resize` for 8-bit gray images, INTER_LINEAR and INTER_AREA, ported from OpenCV 4.6's
//! imgproc/src/resize.cpp (`hal::resize`, `resizeGeneric_`, `resizeArea_`, `resizeAreaFast_`) with the
//! x86 SIMD kernels' own rounding (the pip wheels the reference ran on use them), so the 64×64 training
//! images match the Python pipeline's bytes.

use super::{saturate_u8_f32, GrayImage};

/// How to resample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResizeMode {
    /// `cv2.INTER_LINEAR`: bilinear on half-pixel centres, 11-bit fixed-point weights (the paper's choice).
    #[default]
    Linear,
    /// `cv2.INTER_AREA`: pixel-area average when shrinking (anti-aliased), bilinear-like when enlarging.
    Area,
}

impl std::str::FromStr for ResizeMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "linear" | "bilinear" | "inter_linear" => Ok(ResizeMode::Linear),
            "area" | "inter_area" => Ok(ResizeMode::Area),
            _ => Err(format!("unknown resize mode {s:?} (expected linear or area)")),
        }
    }
}

impl std::fmt::Display for ResizeMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResizeMode::Linear => "linear",
            ResizeMode::Area => "area",
        })
    }
}

/// Resizes `img` to `out_w × out_h` with `mode`.
pub fn resize(img: &GrayImage, out_w: usize, out_h: usize, mode: ResizeMode) -> GrayImage {
    match mode {
        ResizeMode::Linear => resize_linear(img, out_w, out_h),
        ResizeMode::Area => resize_area(img, out_w, out_h),
    }
}

/// `INTER_RESIZE_COEF_BITS`: bilinear weights are integers scaled by 2¹¹.
const COEF_BITS: u32 = 11;
const COEF_SCALE: f32 = (1 << COEF_BITS) as f32;

/// The size-derived facts `hal::resize` decides on: scales (source/destination, as doubles) and whether
/// both are exact integers (the "fast area" case).
struct Scales {
    scale_x: f64,
    scale_y: f64,
    inv_x: f64,
    inv_y: f64,
    /// `Some((ix, iy))` when both scales are integers within `DBL_EPSILON`.
    integer: Option<(usize, usize)>,
}

fn scales(img: &GrayImage, out_w: usize, out_h: usize) -> Scales {
    let inv_x = out_w as f64 / img.width as f64;
    let inv_y = out_h as f64 / img.height as f64;
    let (scale_x, scale_y) = (1.0 / inv_x, 1.0 / inv_y);
    let (ix, iy) = (scale_x.round_ties_even(), scale_y.round_ties_even());
    let exact = (scale_x - ix).abs() < f64::EPSILON && (scale_y - iy).abs() < f64::EPSILON;
    Scales { scale_x, scale_y, inv_x, inv_y, integer: exact.then_some((ix as usize, iy as usize)) }
}

/// Rejects degenerate sizes (OpenCV asserts on them) and handles the identity (`cv::resize` copies).
fn trivial(img: &GrayImage, out_w: usize, out_h: usize) -> Option<GrayImage> {
    assert!(out_w > 0 && out_h > 0, "resize: output size {out_w}×{out_h} must be positive");
    assert!(img.width > 0 && img.height > 0, "resize: input image is empty");
    (out_w == img.width && out_h == img.height).then(|| img.clone())
}

/// `cv2.resize(img, (out_w, out_h), interpolation=cv2.INTER_LINEAR)`.
///
/// Source coordinate `(d + 0.5)·scale − 0.5` (computed in double, kept in float), weights rounded to
/// 2¹¹, horizontal pass into 32-bit sums, vertical pass rounded by 2²² — through the SSE kernel's
/// `(((S0>>4)·b0)>>16 + ((S1>>4)·b1)>>16 + 2) >> 2` on all but the last `width % 8` columns, which take
/// the scalar `(S0·b0 + S1·b1 + 2²¹) >> 22`. An exact 2× shrink is INTER_AREA's 2×2 mean, as in OpenCV.
pub fn resize_linear(img: &GrayImage, out_w: usize, out_h: usize) -> GrayImage {
    if let Some(same) = trivial(img, out_w, out_h) {
        return same;
    }
    let s = scales(img, out_w, out_h);
    if s.integer == Some((2, 2)) {
        return area_fast(img, out_w, out_h, 2, 2);
    }
    linear_fixed_point(img, out_w, out_h, &s, false)
}

/// `cv2.resize(img, (out_w, out_h), interpolation=cv2.INTER_AREA)`.
///
/// Shrinking by integer factors: the box mean (`round(sum · (1/area))`, and `(sum + 2) >> 2` on the SIMD
/// part of a 2× shrink). Shrinking otherwise: each output pixel averages the source pixels it covers,
/// weighting partly covered ones by the covered fraction, accumulated in float like `resizeArea_`.
/// Enlarging (either axis): OpenCV's area-flavoured bilinear weights.
pub fn resize_area(img: &GrayImage, out_w: usize, out_h: usize) -> GrayImage {
    if let Some(same) = trivial(img, out_w, out_h) {
        return same;
    }
    let s = scales(img, out_w, out_h);
    if s.scale_x >= 1.0 && s.scale_y >= 1.0 {
        if let Some((ix, iy)) = s.integer {
            return area_fast(img, out_w, out_h, ix, iy);
        }
        return area_general(img, out_w, out_h, &s);
    }
    linear_fixed_point(img, out_w, out_h, &s, true)
}

/// Per destination coordinate: the first source index, and the two 11-bit weights.
fn linear_table(src: usize, dst: usize, scale: f64, inv_scale: f64, area_mode: bool, clamp: bool) -> Vec<(isize, i32, i32)> {
    (0..dst)
        .map(|d| {
            let (mut s, mut f): (isize, f32);
            if area_mode {
                s = (d as f64 * scale).floor() as isize;
                let ff = ((d + 1) as f64 - (s + 1) as f64 * inv_scale) as f32;
                f = if ff <= 0.0 { 0.0 } else { ff - ff.floor() };
            } else {
                let ff = ((d as f64 + 0.5) * scale - 0.5) as f32;
                s = ff.floor() as isize;
                f = ff - s as f32;
            }
            // Horizontally OpenCV pins out-of-range taps to the edge pixel with weight 1; vertically it
            // keeps the weights and clamps the row indices instead (handled by the caller).
            if clamp {
                if s < 0 {
                    f = 0.0;
                    s = 0;
                }
                if s >= src as isize - 1 {
                    f = 0.0;
                    s = src as isize - 1;
                }
            }
            // saturate_cast<short>(float): round half to even.
            let w0 = ((1.0f32 - f) * COEF_SCALE).round_ties_even() as i32;
            let w1 = (f * COEF_SCALE).round_ties_even() as i32;
            (s, w0, w1)
        })
        .collect()
}

/// The fixed-point bilinear path of `resizeGeneric_` for `uchar` (`HResizeLinear` + `VResizeLinear`).
fn linear_fixed_point(img: &GrayImage, out_w: usize, out_h: usize, s: &Scales, area_mode: bool) -> GrayImage {
    let (w, h) = (img.width, img.height);
    let xt = linear_table(w, out_w, s.scale_x, s.inv_x, area_mode, true);
    let yt = linear_table(h, out_h, s.scale_y, s.inv_y, area_mode, false);
    let hpass = |y: usize| -> Vec<i32> {
        let r = img.row(y);
        xt.iter()
            .map(|&(sx, a0, a1)| {
                let sx = sx as usize;
                r[sx] as i32 * a0 + r[(sx + 1).min(w - 1)] as i32 * a1
            })
            .collect()
    };
    let clamp_row = |y: isize| y.clamp(0, h as isize - 1) as usize;
    // The SSE kernel covers whole groups of 8 columns; the scalar loop finishes the rest.
    let simd_end = out_w - out_w % 8;
    let mut out = vec![0u8; out_w * out_h];
    let mut cache: Option<(usize, Vec<i32>)> = None;
    for (dst, &(sy, b0, b1)) in out.chunks_exact_mut(out_w).zip(&yt) {
        let (y0, y1) = (clamp_row(sy), clamp_row(sy + 1));
        let r0 = match cache.take() {
            Some((y, v)) if y == y0 => v,
            _ => hpass(y0),
        };
        let r1 = if y1 == y0 { r0.clone() } else { hpass(y1) };
        for (x, d) in dst.iter_mut().enumerate() {
            let (s0, s1) = (r0[x], r1[x]);
            let v = if x < simd_end {
                // v_pack(S >> 4) then v_mul_hi (>> 16), add, v_rshr_pack_u<2>.
                let p0 = ((s0 >> 4).clamp(i16::MIN as i32, i16::MAX as i32) * b0) >> 16;
                let p1 = ((s1 >> 4).clamp(i16::MIN as i32, i16::MAX as i32) * b1) >> 16;
                (p0 + p1 + 2) >> 2
            } else {
                (s0 * b0 + s1 * b1 + (1 << 21)) >> 22
            };
            *d = v.clamp(0, 255) as u8;
        }
        cache = Some((y1, r1));
    }
    GrayImage { width: out_w, height: out_h, pixels: out }
}

/// `resizeAreaFast_` for integer factors `ix × iy` (the output tiles the input exactly).
fn area_fast(img: &GrayImage, out_w: usize, out_h: usize, ix: usize, iy: usize) -> GrayImage {
    let area = (ix * iy) as u32;
    let scale = 1.0f32 / area as f32;
    // ResizeAreaFastVec_SIMD_8u handles 2×2 on whole groups of 8 outputs with round-half-up.
    let simd_end = if ix == 2 && iy == 2 { out_w - out_w % 8 } else { 0 };
    let mut out = vec![0u8; out_w * out_h];
    for (dy, dst) in out.chunks_exact_mut(out_w).enumerate() {
        let sy0 = dy * iy;
        if sy0 + iy > img.height {
            continue; // cannot happen for exact factors; OpenCV writes zeros there too
        }
        for (dx, d) in dst.iter_mut().enumerate() {
            let sx0 = dx * ix;
            let sum: u32 = (sy0..sy0 + iy).map(|y| img.row(y)[sx0..sx0 + ix].iter().map(|&v| v as u32).sum::<u32>()).sum();
            *d = if dx < simd_end { ((sum + 2) >> 2).min(255) as u8 } else { saturate_u8_f32(sum as f32 * scale) };
        }
    }
    GrayImage { width: out_w, height: out_h, pixels: out }
}

/// One entry of OpenCV's `DecimateAlpha` table: destination index, source index, weight.
#[derive(Clone, Copy)]
struct Decimate {
    di: usize,
    si: usize,
    alpha: f32,
}

/// `computeResizeAreaTab`: which source pixels (and what fraction of each) make each output pixel.
fn area_table(ssize: usize, dsize: usize, scale: f64) -> Vec<Decimate> {
    let mut tab = Vec::with_capacity(ssize * 2);
    for dx in 0..dsize {
        let fsx1 = dx as f64 * scale;
        let fsx2 = fsx1 + scale;
        let cell = scale.min(ssize as f64 - fsx1);
        let mut sx1 = fsx1.ceil() as isize;
        let mut sx2 = fsx2.floor() as isize;
        sx2 = sx2.min(ssize as isize - 1);
        sx1 = sx1.min(sx2);
        if sx1 as f64 - fsx1 > 1e-3 {
            tab.push(Decimate { di: dx, si: (sx1 - 1) as usize, alpha: ((sx1 as f64 - fsx1) / cell) as f32 });
        }
        for sx in sx1..sx2 {
            tab.push(Decimate { di: dx, si: sx as usize, alpha: (1.0 / cell) as f32 });
        }
        if fsx2 - sx2 as f64 > 1e-3 {
            let a = (fsx2 - sx2 as f64).min(1.0).min(cell) / cell;
            tab.push(Decimate { di: dx, si: sx2 as usize, alpha: a as f32 });
        }
    }
    tab
}

/// `resizeArea_<uchar, float>`: rows weighted into a float accumulator, flushed when the output row changes.
fn area_general(img: &GrayImage, out_w: usize, out_h: usize, s: &Scales) -> GrayImage {
    let xtab = area_table(img.width, out_w, s.scale_x);
    let ytab = area_table(img.height, out_h, s.scale_y);
    let mut out = vec![0u8; out_w * out_h];
    let mut buf = vec![0f32; out_w];
    let mut sum = vec![0f32; out_w];
    let mut prev_dy = ytab.first().map_or(0, |t| t.di);
    let flush = |out: &mut [u8], dy: usize, sum: &[f32]| {
        for (d, &v) in out[dy * out_w..(dy + 1) * out_w].iter_mut().zip(sum) {
            *d = saturate_u8_f32(v);
        }
    };
    for t in &ytab {
        let row = img.row(t.si);
        buf.iter_mut().for_each(|b| *b = 0.0);
        for x in &xtab {
            buf[x.di] += row[x.si] as f32 * x.alpha;
        }
        if t.di != prev_dy {
            flush(&mut out, prev_dy, &sum);
            for (sm, &b) in sum.iter_mut().zip(&buf) {
                *sm = t.alpha * b;
            }
            prev_dy = t.di;
        } else {
            for (sm, &b) in sum.iter_mut().zip(&buf) {
                *sm += t.alpha * b;
            }
        }
    }
    flush(&mut out, prev_dy, &sum);
    GrayImage { width: out_w, height: out_h, pixels: out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_images_stay_constant() {
        let img = GrayImage::filled(37, 23, 200);
        for (w, h) in [(64, 64), (10, 7), (74, 46), (5, 50)] {
            assert!(resize_linear(&img, w, h).pixels.iter().all(|&v| v == 200), "linear {w}×{h}");
            assert!(resize_area(&img, w, h).pixels.iter().all(|&v| v == 200), "area {w}×{h}");
        }
    }

    #[test]
    fn integer_area_is_box_mean() {
        let img = GrayImage::new(4, 2, vec![0, 2, 10, 11, 4, 6, 20, 21]).unwrap();
        let out = resize_area(&img, 2, 1);
        assert_eq!(out.pixels, vec![3, 16]); // 12/4 = 3, 62/4 = 15.5 → 16 (ties to even)
    }
}
