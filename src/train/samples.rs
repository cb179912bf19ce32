//! Images out of the generator: sampling it in batches, torchvision's `save_image` mapping from [−1, 1]
//! to 8 bits, single PNGs and the 8×8 sample grids of the paper's figures (`make_grid` with 2-pixel black
//! padding). A non-finite pixel is an error, never a black PNG.

use std::path::Path;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::fsio::write_atomic;
use crate::nn::{Mode, Sequential};
use crate::tensor::Tensor;

/// Images in the fixed-noise sample grid (8×8, as the paper's figures).
pub const SAMPLE_COUNT: usize = 64;
/// The generator's batch when sampling: BN uses batch statistics, as the tutorial (it never calls eval()).
pub const SAMPLE_BATCH: usize = 64;

/// `n` noise vectors z ~ N(0, 1) as [n, nz, 1, 1], drawn from `rng`.
pub fn noise(rng: &mut ChaCha8Rng, n: usize, nz: usize) -> Tensor {
    let data = (0..n * nz).map(|_| rng.sample::<f32, _>(StandardNormal)).collect();
    Tensor::new(&[n, nz, 1, 1], data).expect("n · nz values for [n, nz, 1, 1]")
}

/// G's images for `noise` [N, nz, 1, 1], in batches of [`SAMPLE_BATCH`] with batch statistics, on a copy
/// of G so that its running statistics do not move.
pub fn sample<B: Backend>(b: &B, g: &Sequential<B::Tensor>, noise: &Tensor) -> Result<Tensor> {
    let [n, nz, _, _] = noise.dims4("sample", "noise")?;
    let mut out = Vec::new();
    let mut shape = vec![0, 0, 0, 0];
    for start in (0..n).step_by(SAMPLE_BATCH) {
        let m = SAMPLE_BATCH.min(n - start);
        let z = Tensor::new(&[m, nz, 1, 1], noise.data()[start * nz..(start + m) * nz].to_vec())?;
        let (y, _) = g.clone().forward(b, &b.upload(&z)?, Mode::Train)?;
        let y = b.download(&y)?;
        shape = y.shape().to_vec();
        out.extend_from_slice(y.data());
    }
    shape[0] = n;
    Tensor::new(&shape, out)
}

/// Refuses to turn non-finite generator output into pixels (it would clamp to black or white);
/// `consequence` says what was therefore not done.
pub fn check_finite(batch: &Tensor, consequence: &str) -> Result<()> {
    match batch.data().iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::NonFinite(format!(
            "the generator's output holds {} (element {i} of {:?}); {consequence} (is the checkpoint diverged?)",
            batch.data()[i],
            batch.shape(),
        ))),
    }
}

fn nothing_written_to(path: &Path) -> String {
    format!("nothing written to {}", path.display())
}

/// torchvision `save_image(normalize=True, value_range=(-1, 1))`: (x + 1)/2 clamped to [0, 1], ·255, +0.5, truncated.
pub fn to_u8(x: f32) -> u8 {
    (((x + 1.0) / 2.0).clamp(0.0, 1.0) * 255.0 + 0.5) as u8
}

/// 8-bit images [N, 3, H, W] as `generate` writes them (torchvision's save_image mapping), with their shape.
pub fn quantize(batch: &Tensor) -> (Vec<u8>, [usize; 4]) {
    let s = batch.shape();
    (batch.data().iter().map(|&v| to_u8(v)).collect(), [s[0], s[1], s[2], s[3]])
}

/// Sample `i` of a batch [N, 3, H, W] as interleaved RGB bytes.
pub fn rgb_bytes(batch: &Tensor, i: usize) -> Result<Vec<u8>> {
    let [_, c, h, w] = batch.dims4("rgb_bytes", "images")?;
    if c != 3 {
        return Err(Error::shape("rgb_bytes", format!("images must have 3 channels, got {:?}", batch.shape())));
    }
    let plane = h * w;
    let img = &batch.data()[i * 3 * plane..(i + 1) * 3 * plane];
    Ok((0..plane).flat_map(|p| (0..3).map(move |ch| to_u8(img[ch * plane + p]))).collect())
}

fn encode_png(path: &Path, width: usize, height: usize, rgb: Vec<u8>) -> Result<()> {
    let img = image::RgbImage::from_raw(width as u32, height as u32, rgb).ok_or_else(|| Error::format(path, "bad image size"))?;
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .map_err(|e| Error::format(path, format!("cannot encode PNG: {e}")))?;
    write_atomic(path, &bytes)
}

/// The file name of generated image `i`: `00000.png`, `00001.png`, ...
pub fn png_name(i: usize) -> String {
    format!("{i:05}.png")
}

/// One PNG per image of the batch: `dir/` [`png_name`]`(start + i)`.
pub fn save_pngs(batch: &Tensor, dir: &Path, start: usize) -> Result<()> {
    let [n, _, h, w] = batch.dims4("save_pngs", "images")?;
    check_finite(batch, &nothing_written_to(dir))?;
    for i in 0..n {
        encode_png(&dir.join(png_name(start + i)), w, h, rgb_bytes(batch, i)?)?;
    }
    Ok(())
}

/// An 8-column grid with 2-pixel padding, as torchvision's `make_grid` + `save_image`.
pub fn save_grid(batch: &Tensor, path: &Path) -> Result<()> {
    const COLS: usize = 8;
    const PAD: usize = 2;
    let [n, _, h, w] = batch.dims4("save_grid", "images")?;
    check_finite(batch, &nothing_written_to(path))?;
    let cols = COLS.min(n.max(1));
    let rows = n.div_ceil(cols);
    let (gw, gh) = (cols * (w + PAD) + PAD, rows * (h + PAD) + PAD);
    let mut grid = vec![0u8; gw * gh * 3];
    for i in 0..n {
        let (x0, y0) = (PAD + (i % cols) * (w + PAD), PAD + (i / cols) * (h + PAD));
        let rgb = rgb_bytes(batch, i)?;
        for y in 0..h {
            let dst = ((y0 + y) * gw + x0) * 3;
            grid[dst..dst + w * 3].copy_from_slice(&rgb[y * w * 3..(y + 1) * w * 3]);
        }
    }
    encode_png(path, gw, gh, grid)
}
