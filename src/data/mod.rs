//! The paper's image pipeline: load a radiograph as 8-bit gray, equalise it with CLAHE, shrink it to
//! 64×64 and scale it to [−1, 1] — each step reproducing OpenCV 4.6 (the reference implementation the
//! golden files were made with), so that FID numbers are comparable with the Python original.
//!
//! One job per file: [`load`] (decoding, folder listing), [`gray`] (RGB → gray), [`clahe`], [`resize`],
//! [`preprocess`] (the composed pipeline), [`phantom`] (synthetic radiographs so the program runs without
//! real data), [`dataset`] (selection, parallel loading, the on-disk cache) and [`golden_ops`] (the
//! bridge to the golden conformance files).

pub mod clahe;
pub mod dataset;
pub mod golden_ops;
pub mod gray;
pub mod load;
pub mod phantom;
pub mod preprocess;
pub mod resize;

use std::path::Path;

use crate::error::{Error, Result};

pub use clahe::clahe;
pub use dataset::Dataset;
pub use golden_ops::run_golden;
pub use gray::rgb_to_gray;
pub use load::{ignored_entries, list_images, load_gray, IMAGE_EXTENSIONS};
pub use phantom::{phantom, write_demo_set};
pub use preprocess::{preprocess, PreprocessConfig};
pub use resize::{resize, resize_area, resize_linear, ResizeMode};

/// An 8-bit single-channel image, row-major (`pixels[y * width + x]`), the one image type every step
/// of the pipeline works on (OpenCV's `CV_8UC1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrayImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl GrayImage {
    /// An image from its size and pixels; the pixel count must be `width * height`.
    pub fn new(width: usize, height: usize, pixels: Vec<u8>) -> Result<Self> {
        if pixels.len() != width * height {
            return Err(Error::invalid(
                "GrayImage::new",
                format!("{width}×{height} needs {} pixels, got {}", width * height, pixels.len()),
            ));
        }
        Ok(GrayImage { width, height, pixels })
    }

    /// An image of one constant value.
    pub fn filled(width: usize, height: usize, value: u8) -> Self {
        GrayImage { width, height, pixels: vec![value; width * height] }
    }

    /// The pixel at column `x`, row `y` (panics when outside).
    pub fn get(&self, x: usize, y: usize) -> u8 {
        assert!(x < self.width && y < self.height, "pixel ({x}, {y}) outside {}×{}", self.width, self.height);
        self.pixels[y * self.width + x]
    }

    /// One row of pixels.
    pub fn row(&self, y: usize) -> &[u8] {
        &self.pixels[y * self.width..(y + 1) * self.width]
    }

    /// Mean gray level of the rectangle `[x0, x1) × [y0, y1)` (clipped to the image; 0 when empty).
    pub fn mean_in(&self, x0: usize, y0: usize, x1: usize, y1: usize) -> f64 {
        let (x1, y1) = (x1.min(self.width), y1.min(self.height));
        if x0 >= x1 || y0 >= y1 {
            return 0.0;
        }
        let sum: u64 = (y0..y1).map(|y| self.row(y)[x0..x1].iter().map(|&v| v as u64).sum::<u64>()).sum();
        sum as f64 / ((x1 - x0) * (y1 - y0)) as f64
    }

    /// Writes the image as an 8-bit grayscale PNG (not atomic; see [`phantom::write_demo_set`] for that).
    pub fn save_png(&self, path: &Path) -> Result<()> {
        let buf = image::GrayImage::from_raw(self.width as u32, self.height as u32, self.pixels.clone())
            .ok_or_else(|| Error::format(path, "image buffer does not match its size"))?;
        buf.save_with_format(path, image::ImageFormat::Png).map_err(|e| match e {
            image::ImageError::IoError(io) => Error::io(path, io),
            other => Error::format(path, format!("cannot write PNG: {other}")),
        })
    }
}

/// OpenCV's `saturate_cast<uchar>(float)`: round half to even (the FPU's default mode, as `cvRound`),
/// then clamp to 0..=255. NaN maps to 0 like `cvRound`'s integer conversion would saturate.
#[inline]
pub(crate) fn saturate_u8_f32(v: f32) -> u8 {
    let r = v.round_ties_even();
    if r.is_nan() || r <= 0.0 {
        0
    } else if r >= 255.0 {
        255
    } else {
        r as u8
    }
}
