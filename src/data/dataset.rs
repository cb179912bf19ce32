//! The training set: which files (a seeded, reproducible choice), their preprocessed tensors (computed in
//! parallel), and a safetensors cache so a resumed run does not redo the preprocessing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use super::load::load_gray;
use super::preprocess::{preprocess, PreprocessConfig};
use crate::error::{Error, Result};
use crate::fsio::write_atomic;
use crate::tensor::Tensor;

/// Metadata key / value marking a file as this module's cache (and its layout version).
const CACHE_FORMAT_KEY: &str = "format";
const CACHE_FORMAT: &str = "cxr-gan dataset cache v1";
const CACHE_FILES_KEY: &str = "files";
const CACHE_TENSOR: &str = "images";
/// The smallest image side accepted for training: smaller files are thumbnails or icons, not X-rays
/// (CLAHE's 8×8 tile grid needs at least two pixels per tile).
pub const MIN_IMAGE_SIDE: usize = 16;

/// Preprocessed images and the files they came from, in the same order.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub files: Vec<PathBuf>,
    /// One `[3, size, size]` tensor per file (size 64 with the default configuration).
    pub images: Vec<Tensor>,
}

/// The folder to name in messages about a file list: the first file's parent.
fn folder_of(files: &[PathBuf]) -> String {
    files.first().and_then(|f| f.parent()).map_or_else(|| "(no files)".into(), |p| p.display().to_string())
}

impl Dataset {
    /// A reproducible random subset: the files shuffled with ChaCha8 seeded by `seed`, then the first
    /// `count` (all of them when `None`). Smaller counts are prefixes of larger ones for the same seed.
    /// Errors when the list is empty or holds fewer than `count` files, naming the folder and both counts.
    pub fn select(files: &[PathBuf], count: Option<usize>, seed: u64) -> Result<Vec<PathBuf>> {
        let want = count.unwrap_or(files.len());
        if files.is_empty() || want > files.len() {
            return Err(Error::Other(format!("{}: asked for {want} images but only {} are available", folder_of(files), files.len())));
        }
        if want == 0 {
            return Err(Error::invalid("Dataset::select", "image count must be positive"));
        }
        let mut chosen = files.to_vec();
        chosen.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        chosen.truncate(want);
        Ok(chosen)
    }

    /// Loads and preprocesses `files` in parallel (rayon); the result keeps their order. The first file
    /// that fails to load aborts the whole load with an error naming it.
    pub fn load(files: &[PathBuf], cfg: &PreprocessConfig) -> Result<Dataset> {
        Self::load_cancellable(files, cfg, &AtomicBool::new(false))
    }

    /// [`Dataset::load`] that stops early with [`Error::Interrupted`] once `stop` is set (Ctrl-C).
    pub fn load_cancellable(files: &[PathBuf], cfg: &PreprocessConfig, stop: &AtomicBool) -> Result<Dataset> {
        cfg.validate()?;
        let images = files
            .par_iter()
            .map(|f| {
                if stop.load(Ordering::Relaxed) {
                    return Err(Error::Interrupted("stopped while loading the images; nothing was kept".into()));
                }
                let g = load_gray(f)?;
                if g.width < MIN_IMAGE_SIDE || g.height < MIN_IMAGE_SIDE {
                    return Err(Error::format(
                        f,
                        format!(
                            "image is {}×{}; a radiograph must be at least {MIN_IMAGE_SIDE}×{MIN_IMAGE_SIDE} pixels",
                            g.width, g.height
                        ),
                    ));
                }
                Ok(preprocess(&g, cfg))
            })
            .collect::<Result<Vec<Tensor>>>()?;
        Ok(Dataset { files: files.to_vec(), images })
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// The common `[C, H, W]` of the images; errors when empty or mixed.
    fn item_shape(&self) -> Result<Vec<usize>> {
        let first = self.images.first().ok_or_else(|| Error::shape("Dataset", "the data set is empty"))?;
        let shape = first.shape().to_vec();
        if let Some((i, t)) = self.images.iter().enumerate().find(|(_, t)| t.shape() != shape.as_slice()) {
            return Err(Error::shape("Dataset", format!("image {i} has shape {:?}, image 0 has {shape:?}", t.shape())));
        }
        Ok(shape)
    }

    /// All images stacked into one `[N, 3, size, size]` tensor.
    pub fn to_batch_tensor(&self) -> Result<Tensor> {
        self.gather(&(0..self.len()).collect::<Vec<_>>())
    }

    /// The images at `indices` (repeats allowed) stacked into `[indices.len(), 3, size, size]`: one
    /// mini-batch.
    pub fn gather(&self, indices: &[usize]) -> Result<Tensor> {
        let item = self.item_shape()?;
        let per: usize = item.iter().product();
        let mut data = Vec::with_capacity(per * indices.len());
        for &i in indices {
            let t = self
                .images
                .get(i)
                .ok_or_else(|| Error::invalid("Dataset::gather", format!("index {i} out of range for {} images", self.len())))?;
            data.extend_from_slice(t.data());
        }
        let mut shape = vec![indices.len()];
        shape.extend(item);
        Tensor::new(&shape, data)
    }

    /// Writes the tensors (one F32 `[N, 3, size, size]` tensor) and the file list (JSON in the metadata)
    /// to a safetensors file, atomically: a temporary file beside `path`, then a rename, so an interrupted
    /// run never leaves a truncated cache behind.
    pub fn save_cache(&self, path: &Path) -> Result<()> {
        let batch = self.to_batch_tensor()?;
        let bytes: &[u8] = bytemuck::cast_slice(batch.data());
        let view = TensorView::new(Dtype::F32, batch.shape().to_vec(), bytes)
            .map_err(|e| Error::format(path, format!("cannot build cache tensor: {e}")))?;
        let files: Vec<String> = self.files.iter().map(|f| f.to_string_lossy().into_owned()).collect();
        let meta = HashMap::from([
            (CACHE_FORMAT_KEY.to_string(), CACHE_FORMAT.to_string()),
            (CACHE_FILES_KEY.to_string(), serde_json::to_string(&files).expect("strings serialise")),
        ]);
        let out = safetensors::serialize([(CACHE_TENSOR, view)], &Some(meta))
            .map_err(|e| Error::format(path, format!("cannot serialise cache: {e}")))?;
        write_atomic(path, &out)
    }

    /// Reads a cache written by [`Dataset::save_cache`]. Errors name the file when it is missing, not a
    /// safetensors file, or not this module's cache.
    pub fn load_cache(path: &Path) -> Result<Dataset> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let fmt = |d: String| Error::format(path, d);
        let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| fmt(format!("not a safetensors file: {e}")))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        if meta.get(CACHE_FORMAT_KEY).map(String::as_str) != Some(CACHE_FORMAT) {
            return Err(fmt(format!("not a data set cache (metadata `{CACHE_FORMAT_KEY}` is not {CACHE_FORMAT:?})")));
        }
        let files: Vec<String> = serde_json::from_str(meta.get(CACHE_FILES_KEY).map_or("", String::as_str))
            .map_err(|e| fmt(format!("metadata `{CACHE_FILES_KEY}` is not a JSON list of paths: {e}")))?;
        let st = SafeTensors::deserialize(&bytes).map_err(|e| fmt(format!("not a safetensors file: {e}")))?;
        let view = st.tensor(CACHE_TENSOR).map_err(|e| fmt(format!("no tensor `{CACHE_TENSOR}`: {e}")))?;
        let shape = view.shape().to_vec();
        if view.dtype() != Dtype::F32 || shape.len() != 4 || shape[0] != files.len() {
            return Err(fmt(format!("tensor `{CACHE_TENSOR}` is {:?} {shape:?}; expected F32 [{}, C, H, W]", view.dtype(), files.len())));
        }
        let values: Vec<f32> = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let per: usize = shape[1..].iter().product();
        let images = if per == 0 {
            vec![Tensor::zeros(&shape[1..]); files.len()]
        } else {
            values.chunks_exact(per).map(|c| Tensor::new(&shape[1..], c.to_vec())).collect::<Result<Vec<_>>>()?
        };
        Ok(Dataset { files: files.into_iter().map(PathBuf::from).collect(), images })
    }
}
