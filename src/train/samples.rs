//! Images out of the generator: torchvision's `save_image` mapping from [−1, 1] to 8 bits, single PNGs
//! and the 8×8 sample grids of the paper's figures (`make_grid` with 2-pixel black padding).

use std::path::Path;

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::fsio::write_atomic;

/// torchvision `save_image(normalize=True, value_range=(-1, 1))`: (x + 1)/2 clamped to [0, 1], ·255, +0.5, truncated.
pub fn to_u8(x: f32) -> u8 {
    (((x + 1.0) / 2.0).clamp(0.0, 1.0) * 255.0 + 0.5) as u8
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

/// One PNG per image of the batch: `dir/{start + i:05}.png`.
pub fn save_pngs(batch: &Tensor, dir: &Path, start: usize) -> Result<()> {
    let [n, _, h, w] = batch.dims4("save_pngs", "images")?;
    for i in 0..n {
        encode_png(&dir.join(format!("{:05}.png", start + i)), w, h, rgb_bytes(batch, i)?)?;
    }
    Ok(())
}

/// An 8-column grid with 2-pixel padding, as torchvision's `make_grid` + `save_image`.
pub fn save_grid(batch: &Tensor, path: &Path) -> Result<()> {
    const COLS: usize = 8;
    const PAD: usize = 2;
    let [n, _, h, w] = batch.dims4("save_grid", "images")?;
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
