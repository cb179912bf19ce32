//! Runs this module's ops on golden conformance files (`clahe`, `resize`, `rgb_to_gray`, `preprocess`)
//! and judges the results by each file's own tolerance, for the golden runner and the tests.

use super::clahe::clahe;
use super::gray::rgb_to_gray;
use super::preprocess::{preprocess, PreprocessConfig};
use super::resize::{resize_area, resize_linear, ResizeMode};
use super::GrayImage;
use crate::error::{Error, Result};
use crate::golden::{Check, GoldenFile};

/// The ops this module answers for.
pub const OPS: &[&str] = &["clahe", "resize", "rgb_to_gray", "preprocess"];

/// The `[H, W]` uint8 image `name` of `file`.
fn gray_input(file: &GoldenFile, name: &str) -> Result<GrayImage> {
    let (shape, data) = file.u8(name)?;
    match shape[..] {
        [h, w] => GrayImage::new(w, h, data),
        _ => Err(Error::format(&file.path, format!("`{name}` must be [H, W], got {shape:?}"))),
    }
}

fn as_f64(img: &GrayImage) -> Vec<f64> {
    img.pixels.iter().map(|&v| v as f64).collect()
}

/// Runs `file`'s op and checks every output it has a tolerance for. `Ok(None)` when the op is not one of
/// [`OPS`] (someone else's file); errors when the file lacks an input or parameter the op needs.
pub fn run_golden(file: &GoldenFile) -> Result<Option<Vec<Check>>> {
    let checks = match file.op.as_str() {
        "clahe" => {
            let img = gray_input(file, "in.image")?;
            let clip = file.param_f64("clip_limit")?;
            let tiles = file.param_pair("tiles")?;
            vec![file.check("out.image", &as_f64(&clahe(&img, clip, tiles)))?]
        }
        "resize" => {
            let img = gray_input(file, "in.image")?;
            let [out_w, out_h] = file.param_pair("size").unwrap_or([64, 64]);
            let mut checks = Vec::new();
            for (name, f) in
                [("out.resized_linear", resize_linear as fn(&GrayImage, usize, usize) -> GrayImage), ("out.resized_area", resize_area)]
            {
                if file.tol.contains_key(name) {
                    checks.push(file.check(name, &as_f64(&f(&img, out_w, out_h)))?);
                }
            }
            checks
        }
        "rgb_to_gray" => {
            let (shape, data) = file.u8("in.image")?;
            let [h, w] = match shape[..] {
                [h, w, 3] => [h, w],
                _ => return Err(Error::format(&file.path, format!("`in.image` must be [H, W, 3], got {shape:?}"))),
            };
            vec![file.check("out.image", &as_f64(&rgb_to_gray(&data, w, h)))?]
        }
        "preprocess" => {
            let img = gray_input(file, "in.image")?;
            let clip = file.param_f64("clahe_clip").unwrap_or(2.0);
            let tiles = file.param_pair("clahe_tiles").unwrap_or([8, 8]);
            if tiles[0] != tiles[1] {
                return Err(Error::format(&file.path, format!("non-square CLAHE grid {tiles:?} is not supported")));
            }
            let size = file.param("size").ok().and_then(|v| v.as_u64()).unwrap_or(64) as usize;
            let resize = match file.param("resize").ok().and_then(|v| v.as_str()) {
                Some(s) => s.parse::<ResizeMode>().map_err(|e| Error::format(&file.path, e))?,
                None => ResizeMode::Linear,
            };
            let cfg = PreprocessConfig { clahe: Some((clip, tiles[0])), size, resize };
            cfg.validate()?;
            vec![file.check("out.tensor", &preprocess(&img, &cfg).to_f64())?]
        }
        _ => return Ok(None),
    };
    Ok(Some(checks))
}
