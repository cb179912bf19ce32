//! Images → batched Inception features → [`Statistics`], as pytorch-fid's `compute_statistics_of_path`.
//!
//! - In memory: uint8 RGB batches [N, 3, H, W] ([`features_of_images`], [`statistics_of_images`],
//!   [`fid_of_images`] against precomputed reference statistics).
//! - From disk: image files ([`features_of_files`], [`statistics_of_files`], [`statistics_of_folder`]), decoded in parallel and
//!   converted as PIL's `Image.open(p).convert('RGB')`, `batch` files at a time (default 50, pytorch-fid's).
//!
//! Each image is resized to 299×299 by the network itself, so images of different sizes can share a batch:
//! a batch holding several sizes is resized group by group (the network's own first op, bilinear) and the
//! groups are joined before the rest of the network runs. Features do not depend on how images are batched,
//! so a batch larger than the backend's largest buffer holds ([`Backend::max_buffer_bytes`]) runs as
//! several forward passes ([`images_per_pass`]).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use image::DynamicImage;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

use super::frechet::frechet_distance;
use super::inception::{block_for_dims, images_to_unit, InceptionV3, INPUT_SIZE};
use super::stats::{Statistics, StreamingStats};
use crate::backend::Backend;
use crate::data::list_images;
use crate::data::load::decode_image;
use crate::error::{Error, Result};

/// pytorch-fid's default batch size.
pub const DEFAULT_BATCH: usize = 50;

/// The largest activation of FID's InceptionV3 per image, in f32: Conv2d_2b_3x3's output [64, 147, 147]
/// (the 299×299 input is 149×149 after Conv2d_1a's stride 2 and 147×147 after Conv2d_2a; every later
/// layer is smaller).
pub const LARGEST_ACTIVATION_PER_IMAGE: usize = 64 * 147 * 147;

/// How many of `batch` images of `height`×`width` pixels one forward pass on `b` takes: all of them, or as
/// many as the backend's largest buffer holds of the network's largest tensor (its largest activation, or
/// its input when that is larger); at least one (a backend that cannot hold one image then says so).
pub fn images_per_pass<B: Backend>(b: &B, batch: usize, height: usize, width: usize) -> usize {
    let per_image = 4 * LARGEST_ACTIVATION_PER_IMAGE.max(3 * height * width);
    match b.max_buffer_bytes() {
        Some(max) => batch.min(max / per_image).max(1),
        None => batch,
    }
}

/// An 8-bit RGB image as planes [3, H, W].
#[derive(Clone, Debug, PartialEq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub chw: Vec<u8>,
}

/// Loads an image as PIL's `Image.open(path).convert('RGB')` does: gray is replicated to three channels,
/// alpha is dropped (not composited), 16-bit gray is clipped to 255 (PIL's `I;16` → `RGB`), 16-bit colour
/// keeps its high byte (PIL decodes such PNGs to 8 bits that way). Errors name the file.
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    let img = decode_image(path)?;
    let (width, height) = (img.width() as usize, img.height() as usize);
    // Interleaved RGB first, then planes.
    let gray = |v: Vec<u8>| v.into_iter().flat_map(|g| [g, g, g]).collect::<Vec<u8>>();
    let rgb: Vec<u8> = match img {
        DynamicImage::ImageLuma8(b) => gray(b.into_raw()),
        DynamicImage::ImageLumaA8(b) => gray(b.into_raw().chunks_exact(2).map(|p| p[0]).collect()),
        DynamicImage::ImageRgb8(b) => b.into_raw(),
        DynamicImage::ImageRgba8(b) => b.into_raw().chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect(),
        DynamicImage::ImageLuma16(b) => gray(b.into_raw().into_iter().map(|v| v.min(255) as u8).collect()),
        DynamicImage::ImageLumaA16(b) => gray(b.into_raw().chunks_exact(2).map(|p| p[0].min(255) as u8).collect()),
        DynamicImage::ImageRgb16(b) => b.into_raw().into_iter().map(|v| (v >> 8) as u8).collect(),
        DynamicImage::ImageRgba16(b) => b.into_raw().chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]].map(|v| (v >> 8) as u8)).collect(),
        other => other.to_rgb8().into_raw(),
    };
    let hw = width * height;
    let mut chw = vec![0u8; 3 * hw];
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        chw[i] = px[0];
        chw[hw + i] = px[1];
        chw[2 * hw + i] = px[2];
    }
    Ok(RgbImage { width, height, chw })
}

fn check_batch(batch: usize) -> Result<()> {
    if batch == 0 {
        return Err(Error::invalid("fid", "--batch-size must be positive"));
    }
    Ok(())
}

/// The `dims`-dimensional features of uint8 images [N, 3, H, W], `batch` images per forward pass,
/// pushed into `stats`.
fn push_images<B: Backend>(
    b: &B,
    model: &InceptionV3<B::Tensor>,
    images: &[u8],
    shape: [usize; 4],
    dims: usize,
    batch: usize,
    stats: &mut StreamingStats,
) -> Result<()> {
    let per = shape[1] * shape[2] * shape[3];
    if images.len() != shape[0] * per {
        return Err(Error::shape("fid", format!("{} bytes for images of shape {:?}", images.len(), shape)));
    }
    let batch = images_per_pass(b, batch, shape[2], shape[3]);
    for (i, chunk) in images.chunks(batch * per.max(1)).enumerate() {
        let n = chunk.len() / per.max(1);
        let x = b.upload(&images_to_unit(chunk, [n, shape[1], shape[2], shape[3]])?)?;
        let f = model.features(b, &x, dims).map_err(|e| Error::Other(format!("images {}..{}: {e}", i * batch, i * batch + n)))?;
        stats.push(&f)?;
    }
    Ok(())
}

/// The `dims`-dimensional features of uint8 RGB images [N, 3, H, W], row-major `[N, dims]`, computed
/// `batch` images at a time (for what needs the rows themselves: KID, bootstrap intervals, subsets).
pub fn features_of_images<B: Backend>(
    b: &B,
    model: &InceptionV3<B::Tensor>,
    images: &[u8],
    shape: [usize; 4],
    dims: usize,
    batch: usize,
) -> Result<Vec<f64>> {
    block_for_dims(dims)?;
    check_batch(batch)?;
    let mut stats = StreamingStats::new(dims);
    push_images(b, model, images, shape, dims, batch, &mut stats)?;
    Ok(stats.into_rows())
}

/// The FID statistics (mean and covariance of the `dims`-dimensional features) of uint8 RGB images
/// [N, 3, H, W], N ≥ 2, computed `batch` images at a time.
pub fn statistics_of_images<B: Backend>(
    b: &B,
    model: &InceptionV3<B::Tensor>,
    images: &[u8],
    shape: [usize; 4],
    dims: usize,
    batch: usize,
) -> Result<Statistics> {
    Statistics::from_features(&features_of_images(b, model, images, shape, dims, batch)?, dims)
}

/// The FID of uint8 RGB images [N, 3, H, W] (e.g. a generator's samples mapped to 0..=255) against
/// `reference` statistics (of the real data, e.g. from [`statistics_of_folder`] or an `.npz`). The feature
/// size is the reference's (`reference.dims`: 64, 192, 768 or 2048); `batch` images per forward pass.
pub fn fid_of_images<B: Backend>(
    b: &B,
    model: &InceptionV3<B::Tensor>,
    images: &[u8],
    shape: [usize; 4],
    reference: &Statistics,
    batch: usize,
) -> Result<f64> {
    let stats = statistics_of_images(b, model, images, shape, reference.dims, batch)?;
    frechet_distance(&stats, reference)
}

/// A progress bar over `len` images on stderr, hidden when asked or when stderr is not a terminal.
fn progress_bar(len: usize, show: bool) -> ProgressBar {
    if !show || !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} images [{elapsed_precise} < {eta_precise}]") {
        bar.set_style(style);
    }
    bar
}

/// One batch of decoded images (any sizes) as the network's input [n, 3, H, W] in [0, 1]: one size is passed
/// as is (the network resizes it); several are resized to 299×299 group by group, then joined.
fn batch_input<B: Backend>(b: &B, images: &[RgbImage]) -> Result<B::Tensor> {
    let mut sizes: Vec<(usize, usize)> = Vec::new();
    for im in images {
        if !sizes.contains(&(im.height, im.width)) {
            sizes.push((im.height, im.width));
        }
    }
    let upload = |group: &[&RgbImage], h: usize, w: usize| -> Result<B::Tensor> {
        let data: Vec<u8> = group.iter().flat_map(|im| im.chw.iter().copied()).collect();
        b.upload(&images_to_unit(&data, [group.len(), 3, h, w])?)
    };
    if let [(h, w)] = sizes[..] {
        return upload(&images.iter().collect::<Vec<_>>(), h, w);
    }
    let s = INPUT_SIZE;
    let mut groups = Vec::with_capacity(sizes.len());
    for &(h, w) in &sizes {
        let group: Vec<&RgbImage> = images.iter().filter(|im| (im.height, im.width) == (h, w)).collect();
        let x = upload(&group, h, w)?;
        let x = if (h, w) == (s, s) { x } else { b.resize_bilinear(&x, s, s)? };
        // [n, 3, S, S] viewed as [1, 3n, S, S]: joining along channels is joining along the batch.
        groups.push(b.reshape(&x, &[1, 3 * group.len(), s, s])?);
    }
    let joined = b.concat_channels(&groups.iter().collect::<Vec<_>>())?;
    b.reshape(&joined, &[images.len(), 3, s, s])
}

/// The `dims`-dimensional features of image files (any sizes, at least 2), row-major `[n, dims]`, decoded
/// `batch` at a time in parallel. `progress` shows a bar on stderr when it is a terminal.
pub fn features_of_files<B: Backend>(
    b: &B,
    model: &InceptionV3<B::Tensor>,
    files: &[PathBuf],
    dims: usize,
    batch: usize,
    progress: bool,
) -> Result<Vec<f64>> {
    block_for_dims(dims)?;
    check_batch(batch)?;
    if files.len() < 2 {
        return Err(Error::invalid("fid", format!("{} image(s): FID needs at least 2 per side (a covariance)", files.len())));
    }
    let bar = progress_bar(files.len(), progress);
    let mut stats = StreamingStats::new(dims);
    for chunk in files.chunks(batch) {
        let images: Vec<RgbImage> = chunk.par_iter().map(|p| load_rgb(p)).collect::<Result<_>>()?;
        let (height, width) = images.iter().map(|im| (im.height, im.width)).max_by_key(|&(h, w)| h * w).unwrap_or((0, 0));
        for pass in images.chunks(images_per_pass(b, batch, height, width)) {
            let x = batch_input(b, pass)?;
            let f = model.features(b, &x, dims)?;
            stats.push(&f)?;
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(stats.into_rows())
}

/// The FID statistics of image files: [`features_of_files`] → mean and covariance.
pub fn statistics_of_files<B: Backend>(
    b: &B,
    model: &InceptionV3<B::Tensor>,
    files: &[PathBuf],
    dims: usize,
    batch: usize,
    progress: bool,
) -> Result<Statistics> {
    Statistics::from_features(&features_of_files(b, model, files, dims, batch, progress)?, dims)
}

/// [`statistics_of_files`] over the images of a folder ([`list_images`]: pytorch-fid's extensions bmp, jpg,
/// jpeg, pgm, png, ppm, tif, tiff, webp, sorted). Returns the statistics and the number of images.
pub fn statistics_of_folder<B: Backend>(
    b: &B,
    model: &InceptionV3<B::Tensor>,
    dir: &Path,
    dims: usize,
    batch: usize,
    progress: bool,
) -> Result<Statistics> {
    let files = list_images(dir)?;
    statistics_of_files(b, model, &files, dims, batch, progress).map_err(|e| match e {
        e @ (Error::Io { .. } | Error::Format { .. }) => e,
        other => Error::Other(format!("{}: {other}", dir.display())),
    })
}
