//! RGB → gray exactly as `cv2.cvtColor(..., COLOR_RGB2GRAY)`: BT.601 luma in OpenCV's fixed point, so
//! colour inputs (a few public CXR sets ship RGB PNGs/JPEGs) give the same bytes as the Python pipeline.

use super::GrayImage;

/// BT.601 weights scaled by 2¹⁵ (OpenCV's `RY15`, `GY15`, `BY15`), the 8-bit path since OpenCV 4.0; they
/// sum to exactly 2¹⁵ so gray stays gray. (The 2¹⁴ set below differs on ~0.05% of pixels: the golden
/// `rgb_to_gray` file rules it out for 8-bit.)
pub const RY15: u32 = 9798;
pub const GY15: u32 = 19235;
pub const BY15: u32 = 3735;

/// BT.601 weights scaled by 2¹⁴ (OpenCV's `R2Y`, `G2Y`, `B2Y`, with `yuv_shift` 14): its 16-bit path.
pub const R2Y: u32 = 4899;
pub const G2Y: u32 = 9617;
pub const B2Y: u32 = 1868;

/// One 8-bit pixel: `(r·RY15 + g·GY15 + b·BY15 + 2¹⁴) >> 15`, OpenCV's `RGB2Gray<uchar>`.
#[inline]
pub fn luma8(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * RY15 + g as u32 * GY15 + b as u32 * BY15 + (1 << 14)) >> 15) as u8
}

/// One 16-bit pixel: `CV_DESCALE(r·R2Y + g·G2Y + b·B2Y, 14)`, OpenCV's `RGB2Gray<ushort>`.
#[inline]
pub fn luma16(r: u16, g: u16, b: u16) -> u16 {
    ((r as u32 * R2Y + g as u32 * G2Y + b as u32 * B2Y + (1 << 13)) >> 14) as u16
}

/// Interleaved 8-bit RGB (`width * height * 3` bytes) → gray, bit-exact to OpenCV for 8-bit input.
///
/// Panics when `rgb` does not hold `width * height * 3` bytes (a caller bug, not a data error).
pub fn rgb_to_gray(rgb: &[u8], width: usize, height: usize) -> GrayImage {
    assert_eq!(rgb.len(), width * height * 3, "rgb_to_gray: {width}×{height}×3 needs {} bytes", width * height * 3);
    let pixels = rgb.chunks_exact(3).map(|p| luma8(p[0], p[1], p[2])).collect();
    GrayImage { width, height, pixels }
}

/// Interleaved 16-bit RGB → 16-bit gray, OpenCV's `RGB2Gray<ushort>`.
pub fn rgb16_to_gray16(rgb: &[u16]) -> Vec<u16> {
    rgb.chunks_exact(3).map(|p| luma16(p[0], p[1], p[2])).collect()
}

/// Interleaved float RGB → float gray, OpenCV's `RGB2Gray<float>` (0.299, 0.587, 0.114, summed B, G, R).
pub fn rgbf_to_grayf(rgb: &[f32]) -> Vec<f32> {
    rgb.chunks_exact(3).map(|p| p[2] * 0.114 + p[1] * 0.587 + p[0] * 0.299).collect()
}
