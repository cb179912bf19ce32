//! Reading radiographs from disk as 8-bit gray the way the reference script's `load_gray` does
//! (`cv2.imread(IMREAD_UNCHANGED)`, colour → gray, deeper than 8 bits → scaled by the image maximum),
//! and finding the images of a data set folder.

use std::path::{Path, PathBuf};

use image::DynamicImage;

use super::gray::{luma8, rgb16_to_gray16, rgbf_to_grayf};
use super::GrayImage;
use crate::error::{Error, Result};

/// File extensions (lower case) treated as images when listing a folder.
pub const IMAGE_EXTENSIONS: &[&str] = &["bmp", "jpg", "jpeg", "pgm", "png", "ppm", "tif", "tiff", "webp"];

/// Whether `path` has one of [`IMAGE_EXTENSIONS`] (case-insensitive).
pub fn is_image_path(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Loads an image file as 8-bit gray.
///
/// Decodes an image file of any supported format (content sniffed, not trusted to the extension);
/// errors name the file, and an image without pixels is an error.
pub fn decode_image(path: &Path) -> Result<DynamicImage> {
    let reader = image::ImageReader::open(path).map_err(|e| Error::io(path, e))?;
    let reader = reader.with_guessed_format().map_err(|e| Error::io(path, e))?;
    if reader.format().is_none() {
        return Err(Error::format(path, "not a recognised image format"));
    }
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::IoError(io) => Error::io(path, io),
        other => Error::format(path, format!("cannot decode image: {other}")),
    })?;
    if img.width() == 0 || img.height() == 0 {
        return Err(Error::format(path, "image has no pixels"));
    }
    Ok(img)
}

/// PNG, JPEG, BMP, TIFF, WebP and PNM; 8- or 16-bit (or float); gray, gray+alpha, RGB or RGBA (alpha is
/// dropped, as `img[:, :, :3]` does). Colour goes through OpenCV's fixed-point BT.601 luma; anything deeper
/// than 8 bits becomes `round(v / max · 255)` (ties to even, numpy's rule) with the maximum taken over the
/// whole image — the reference's choice, which stretches dim 16-bit scans to the full range. An all-black
/// deep image stays black. Errors name the file.
pub fn load_gray(path: impl AsRef<Path>) -> Result<GrayImage> {
    let path = path.as_ref();
    let img = decode_image(path)?;
    let (width, height) = (img.width() as usize, img.height() as usize);
    let pixels = match img {
        DynamicImage::ImageLuma8(b) => b.into_raw(),
        DynamicImage::ImageLumaA8(b) => b.into_raw().chunks_exact(2).map(|p| p[0]).collect(),
        DynamicImage::ImageRgb8(b) => rgb8_to_gray(b.as_raw(), 3),
        DynamicImage::ImageRgba8(b) => rgb8_to_gray(b.as_raw(), 4),
        DynamicImage::ImageLuma16(b) => scale_u16_by_max(b.as_raw()),
        DynamicImage::ImageLumaA16(b) => scale_u16_by_max(&b.as_raw().chunks_exact(2).map(|p| p[0]).collect::<Vec<_>>()),
        DynamicImage::ImageRgb16(b) => scale_u16_by_max(&rgb16_to_gray16(b.as_raw())),
        DynamicImage::ImageRgba16(b) => {
            let rgb: Vec<u16> = b.as_raw().chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
            scale_u16_by_max(&rgb16_to_gray16(&rgb))
        }
        DynamicImage::ImageRgb32F(b) => scale_f32_by_max(&rgbf_to_grayf(b.as_raw())),
        DynamicImage::ImageRgba32F(b) => {
            let rgb: Vec<f32> = b.as_raw().chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
            scale_f32_by_max(&rgbf_to_grayf(&rgb))
        }
        // Future variants of the non-exhaustive enum: through 8-bit RGB.
        other => rgb8_to_gray(other.to_rgb8().as_raw(), 3),
    };
    Ok(GrayImage { width, height, pixels })
}

/// Gray from interleaved 8-bit pixels of `channels` channels, the first three being R, G, B.
fn rgb8_to_gray(data: &[u8], channels: usize) -> Vec<u8> {
    data.chunks_exact(channels).map(|p| luma8(p[0], p[1], p[2])).collect()
}

/// `(img / img.max() * 255).round()` in f64 with ties to even, as numpy computes it.
fn scale_u16_by_max(values: &[u16]) -> Vec<u8> {
    let max = values.iter().copied().max().unwrap_or(0) as f64;
    if max == 0.0 {
        return vec![0; values.len()];
    }
    values.iter().map(|&v| ((v as f64 / max) * 255.0).round_ties_even().clamp(0.0, 255.0) as u8).collect()
}

/// The float counterpart of [`scale_u16_by_max`] (negative values clamp to 0, as the cast would wrap).
fn scale_f32_by_max(values: &[f32]) -> Vec<u8> {
    let max = values.iter().copied().filter(|v| v.is_finite()).fold(f32::NEG_INFINITY, f32::max) as f64;
    if max.is_nan() || max <= 0.0 {
        return vec![0; values.len()];
    }
    values.iter().map(|&v| if v.is_finite() { ((v as f64 / max) * 255.0).round_ties_even().clamp(0.0, 255.0) as u8 } else { 0 }).collect()
}

/// The images of a data set folder, sorted by path.
///
/// Either a flat folder of images, or the COVID-19 Radiography Database layout (`<class>/images/*.png`
/// beside `<class>/masks/*.png`): when `dir/images/` exists only it is read, since the lung masks are not
/// radiographs. Sub-folders are otherwise not descended into. Errors name the folder when it is missing,
/// unreadable or holds no image.
pub fn list_images(dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
    let dir = dir.as_ref();
    if !dir.is_dir() {
        let e = std::io::Error::new(std::io::ErrorKind::NotFound, "image folder not found (or not a folder)");
        return Err(Error::io(dir, e));
    }
    let images_dir = dir.join("images");
    let source = if images_dir.is_dir() { images_dir } else { dir.to_path_buf() };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&source).map_err(|e| Error::io(&source, e))? {
        let entry = entry.map_err(|e| Error::io(&source, e))?;
        let path = entry.path();
        if path.is_file() && is_image_path(&path) {
            // Paths are recorded as text (config.json, the data set cache): refuse one that is not.
            if path.to_str().is_none() {
                return Err(Error::format(&path, "file name is not valid UTF-8; rename the file"));
            }
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(Error::format(&source, format!("no images (extensions {}) in this folder", IMAGE_EXTENSIONS.join(", "))));
    }
    files.sort();
    Ok(files)
}

/// What [`list_images`] skips in `dir`: sub-folders (not searched) and files that are not images, sorted;
/// callers tell the user about them. In the Radiography Database layout, `images/` and `masks/` are expected
/// and not reported.
pub fn ignored_entries(dir: impl AsRef<Path>) -> Vec<PathBuf> {
    let dir = dir.as_ref();
    let images_dir = dir.join("images");
    let source = if images_dir.is_dir() { images_dir } else { dir.to_path_buf() };
    let Ok(entries) = std::fs::read_dir(&source) else { return Vec::new() };
    let mut ignored: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| !(p.is_file() && is_image_path(p)))
        .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    ignored.sort();
    ignored
}
