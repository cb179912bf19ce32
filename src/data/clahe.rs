//! Contrast-limited adaptive histogram equalisation, a port of OpenCV 4.6's 8-bit CPU path
//! (`CLAHE_Impl::apply`, `CLAHE_CalcLut_Body`, `CLAHE_Interpolation_Body` in imgproc/src/clahe.cpp).
//!
//! The paper equalises every radiograph with `cv2.createCLAHE(2.0, (8, 8))`; the numbers below follow
//! OpenCV's integer and `float` arithmetic step by step (including its quirks) so the output bytes match.

use super::{saturate_u8_f32, GrayImage};

/// OpenCV's `borderInterpolate` for `BORDER_REFLECT_101` (`gfedcb|abcdefgh|gfedcba`), iterated so that
/// padding wider than the image still lands inside it.
fn reflect_101(mut p: isize, len: usize) -> usize {
    let len = len as isize;
    if len == 1 {
        return 0;
    }
    while p < 0 || p >= len {
        p = if p < 0 { -p } else { 2 * (len - 1) - p };
    }
    p as usize
}

/// Equalises `img` with OpenCV's CLAHE. `tiles` is `[tiles_x, tiles_y]`, cv2's `tileGridSize` order.
///
/// - Tile histograms have 256 bins. When the image is not divisible by the grid, OpenCV pads it at the
///   bottom and right with `BORDER_REFLECT_101` by `tiles − size % tiles` in *both* directions (so a
///   divisible side still grows by a whole `tiles`, OpenCV's quirk, kept here), computes the tile
///   histograms on the padded image and interpolates over the original pixels only.
/// - `clip_limit > 0` caps each bin at `max(1, (int)(clip_limit · tileArea / 256))` and redistributes the
///   excess; `clip_limit <= 0` means no clipping (plain tiled equalisation).
/// - Each tile's LUT is the cumulative histogram times `255 / tileArea` in `float`, rounded half to even.
/// - Pixels blend the four nearest tiles' LUTs bilinearly in `float`, tile centres at half-tile offsets.
///
/// Panics when a tile count is zero. An empty image is returned unchanged.
pub fn clahe(img: &GrayImage, clip_limit: f64, tiles: [usize; 2]) -> GrayImage {
    let [tiles_x, tiles_y] = tiles;
    assert!(tiles_x > 0 && tiles_y > 0, "clahe: tile grid {tiles_x}×{tiles_y} must have at least one tile each way");
    let (w, h) = (img.width, img.height);
    if w == 0 || h == 0 {
        return img.clone();
    }

    // The image the histograms are taken from: the original, or (OpenCV's `srcExt_`) its padded copy,
    // represented by index maps from padded coordinates to original ones.
    let (pw, ph) = if w % tiles_x == 0 && h % tiles_y == 0 { (w, h) } else { (w + tiles_x - w % tiles_x, h + tiles_y - h % tiles_y) };
    let col: Vec<usize> = (0..pw).map(|x| reflect_101(x as isize, w)).collect();
    let row: Vec<usize> = (0..ph).map(|y| reflect_101(y as isize, h)).collect();
    let (tile_w, tile_h) = (pw / tiles_x, ph / tiles_y);
    let tile_area = (tile_w * tile_h) as i64;
    let lut_scale: f32 = 255.0f32 / tile_area as f32;
    let clip: i64 = if clip_limit > 0.0 { ((clip_limit * tile_area as f64 / 256.0) as i64).max(1) } else { 0 };

    // One 256-entry LUT per tile, row-major over the grid.
    let mut luts = vec![0u8; tiles_x * tiles_y * 256];
    for (k, lut) in luts.chunks_exact_mut(256).enumerate() {
        let (ty, tx) = (k / tiles_x, k % tiles_x);
        let mut hist = [0i64; 256];
        for &sy in &row[ty * tile_h..(ty + 1) * tile_h] {
            let src = img.row(sy);
            for &sx in &col[tx * tile_w..(tx + 1) * tile_w] {
                hist[src[sx] as usize] += 1;
            }
        }
        if clip > 0 {
            let mut clipped = 0i64;
            for b in hist.iter_mut() {
                if *b > clip {
                    clipped += *b - clip;
                    *b = clip;
                }
            }
            // Spread the excess evenly, then the remainder one per bin every `residual_step` bins.
            let batch = clipped / 256;
            let mut residual = clipped - batch * 256;
            for b in hist.iter_mut() {
                *b += batch;
            }
            if residual != 0 {
                let step = (256 / residual).max(1) as usize;
                let mut i = 0usize;
                while i < 256 && residual > 0 {
                    hist[i] += 1;
                    i += step;
                    residual -= 1;
                }
            }
        }
        let mut sum = 0i64;
        for (l, &b) in lut.iter_mut().zip(hist.iter()) {
            sum += b;
            *l = saturate_u8_f32(sum as f32 * lut_scale);
        }
    }

    // Bilinear blend of the LUTs. Horizontal weights and tile indices depend on x only (OpenCV
    // precomputes them the same way, in float).
    let inv_tw: f32 = 1.0f32 / tile_w as f32;
    let xs: Vec<(usize, usize, f32, f32)> = (0..w)
        .map(|x| {
            let txf = x as f32 * inv_tw - 0.5f32;
            let tx1 = txf.floor() as isize;
            let xa = txf - tx1 as f32;
            let t1 = tx1.max(0) as usize;
            let t2 = ((tx1 + 1).min(tiles_x as isize - 1)).max(0) as usize;
            (t1 * 256, t2 * 256, 1.0f32 - xa, xa)
        })
        .collect();
    let inv_th: f32 = 1.0f32 / tile_h as f32;
    let mut out = vec![0u8; w * h];
    for (y, dst) in out.chunks_exact_mut(w).enumerate() {
        let tyf = y as f32 * inv_th - 0.5f32;
        let ty1 = tyf.floor() as isize;
        let ya = tyf - ty1 as f32;
        let ya1 = 1.0f32 - ya;
        let p1 = ty1.max(0) as usize * tiles_x * 256;
        let p2 = ((ty1 + 1).min(tiles_y as isize - 1)).max(0) as usize * tiles_x * 256;
        let (plane1, plane2) = (&luts[p1..p1 + tiles_x * 256], &luts[p2..p2 + tiles_x * 256]);
        for ((d, &v), &(i1, i2, xa1, xa)) in dst.iter_mut().zip(img.row(y)).zip(&xs) {
            let v = v as usize;
            let res = (plane1[i1 + v] as f32 * xa1 + plane1[i2 + v] as f32 * xa) * ya1
                + (plane2[i1 + v] as f32 * xa1 + plane2[i2 + v] as f32 * xa) * ya;
            *d = saturate_u8_f32(res);
        }
    }
    GrayImage { width: w, height: h, pixels: out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_101_matches_opencv() {
        // gfedcb|abcdefgh|gfedcba
        let got: Vec<usize> = (-3..11).map(|p| reflect_101(p, 8)).collect();
        assert_eq!(got, vec![3, 2, 1, 0, 1, 2, 3, 4, 5, 6, 7, 6, 5, 4]);
        assert_eq!(reflect_101(5, 1), 0);
        assert_eq!(reflect_101(4, 2), 0);
    }
}
