//! Checkpoints: one safetensors file holding both networks' state_dicts behind the golden files'
//! prefixes (`G.main.0.weight`, `D.main.3.running_mean`, critic `C.…`), so that stripping the prefix
//! gives dicts PyTorch's `load_state_dict(strict=True)` takes; the Adam moments under `adam.G.…`; and, in
//! the metadata, the model, widths, progress and RNG state needed to resume bit for bit.
//! Written atomically: a temp file in the same folder, then a rename.

use std::collections::HashMap;
use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::fsio::write_atomic;
use crate::tensor::Tensor;

/// Everything in a checkpoint, on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// Name → tensor, names with their prefixes.
    pub tensors: Vec<(String, Tensor)>,
    /// String metadata (model, widths, epoch, iteration, RNG state, ...).
    pub meta: HashMap<String, String>,
}

impl Checkpoint {
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// A metadata entry, or an error naming the file and the key.
    pub fn meta(&self, path: &Path, key: &str) -> Result<&str> {
        self.meta.get(key).map(String::as_str).ok_or_else(|| Error::format(path, format!("checkpoint metadata has no `{key}`")))
    }

    pub fn meta_parse<T: std::str::FromStr>(&self, path: &Path, key: &str) -> Result<T> {
        let v = self.meta(path, key)?;
        v.parse().map_err(|_| Error::format(path, format!("checkpoint metadata `{key}` = {v:?} is not valid")))
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let views: Vec<(String, safetensors::tensor::TensorView)> = self
            .tensors
            .iter()
            .map(|(n, t)| {
                let view = safetensors::tensor::TensorView::new(Dtype::F32, t.shape().to_vec(), bytemuck::cast_slice(t.data()))
                    .map_err(|e| Error::Other(format!("tensor {n}: {e}")))?;
                Ok((n.clone(), view))
            })
            .collect::<Result<_>>()?;
        let bytes = safetensors::serialize(views, &Some(self.meta.clone())).map_err(|e| Error::Other(e.to_string()))?;
        write_atomic(path, &bytes)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| Error::format(path, format!("not a checkpoint: {e}")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let st = SafeTensors::deserialize(&bytes).map_err(|e| Error::format(path, format!("not a checkpoint: {e}")))?;
        let mut tensors = Vec::new();
        for (name, view) in st.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(Error::format(path, format!("tensor {name} is {:?}, expected F32", view.dtype())));
            }
            let data: Vec<f32> = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            tensors.push((name, Tensor::new(view.shape(), data)?));
        }
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Checkpoint { tensors, meta })
    }
}
