//! Checkpoints: one safetensors file holding both networks' state_dicts behind the golden files'
//! prefixes (`G.main.0.weight`, `D.main.3.running_mean`, critic `C.…`), so that stripping the prefix
//! gives dicts PyTorch's `load_state_dict(strict=True)` takes; the Adam moments under `adam.G.…`; and, in
//! the metadata, the model, widths, progress and RNG state needed to resume bit for bit.
//! Written atomically: a temp file in the same folder, then a rename.

use std::collections::HashMap;
use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use safetensors::{Dtype, SafeTensors};

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::fsio::write_atomic;
use crate::nn::dcgan::{generator, Widths};
use crate::nn::Sequential;
use crate::tensor::Tensor;
use crate::train::config::{ModelKind, TrainConfig};
use crate::train::optim::Adam;

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

/// Where a run stands; saved in every checkpoint's metadata.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Progress {
    /// The epoch being run (0-based) and the next batch in it.
    pub epoch: usize,
    pub batch: usize,
    /// Iterations done (D/critic iterations).
    pub iteration: u64,
    /// The noise stream's position (ChaCha8 word position).
    pub rng_word_pos: u128,
}

/// A network with its optimizer under its checkpoint prefix: `("G", &g, &opt_g)`.
pub type NetState<'a, T> = (&'static str, &'a Sequential<T>, &'a Adam<T>);
pub type NetStateMut<'a, T> = (&'static str, &'a mut Sequential<T>, &'a mut Adam<T>);

/// Writes both networks, their Adam states, the widths and `p` to `path` (atomically).
pub fn save_training<B: Backend>(b: &B, cfg: &TrainConfig, nets: [NetState<B::Tensor>; 2], p: Progress, path: &Path) -> Result<()> {
    let mut tensors = Vec::new();
    let mut meta = HashMap::new();
    for (tag, net, adam) in nets {
        tensors.extend(net.download_state_dict(b, &format!("{tag}."))?);
        for (name, m, v) in &adam.state {
            tensors.push((format!("adam.{tag}.{name}.exp_avg"), b.download(m)?));
            tensors.push((format!("adam.{tag}.{name}.exp_avg_sq"), b.download(v)?));
        }
        meta.insert(format!("adam.{tag}.step"), adam.step.to_string());
    }
    for (k, v) in [
        ("format", "cxr-gan checkpoint v1".to_string()),
        ("model", cfg.model.name().to_string()),
        ("nz", cfg.widths.nz.to_string()),
        ("ngf", cfg.widths.ngf.to_string()),
        ("ndf", cfg.widths.ndf.to_string()),
        ("epoch", p.epoch.to_string()),
        ("batch", p.batch.to_string()),
        ("iteration", p.iteration.to_string()),
        ("rng_word_pos", p.rng_word_pos.to_string()),
        ("seed", cfg.seed.to_string()),
    ] {
        meta.insert(k.to_string(), v);
    }
    Checkpoint { tensors, meta }.save(path)
}

/// Checks that a checkpoint belongs to `model` with `widths`; a clear error otherwise.
pub fn check_compatible(ck: &Checkpoint, path: &Path, model: Option<ModelKind>, widths: Option<Widths>) -> Result<(ModelKind, Widths)> {
    let m = match ck.meta(path, "model")? {
        "dcgan" => ModelKind::Dcgan,
        "wgan-gp" => ModelKind::WganGp,
        other => return Err(Error::format(path, format!("unknown model `{other}` in checkpoint"))),
    };
    let w = Widths { nz: ck.meta_parse(path, "nz")?, ngf: ck.meta_parse(path, "ngf")?, ndf: ck.meta_parse(path, "ndf")? };
    if let Some(want) = model.filter(|&x| x != m) {
        return Err(Error::format(path, format!("checkpoint is a {} model, this run is {}", m.name(), want.name())));
    }
    if let Some(want) = widths.filter(|&x| x != w) {
        return Err(Error::format(path, format!("checkpoint has widths {w:?}, this run needs {want:?}")));
    }
    Ok((m, w))
}

/// The generator of a checkpoint (any model), and its widths.
pub fn load_generator<B: Backend>(b: &B, path: &Path) -> Result<(Sequential<B::Tensor>, Widths)> {
    let ck = Checkpoint::load(path)?;
    let (_, widths) = check_compatible(&ck, path, None, None)?;
    // The initial weights are all replaced; the seed only has to make a valid network.
    let mut g = generator(b, widths, &mut ChaCha8Rng::seed_from_u64(0))?;
    g.load_state_dict(b, "G.", |k| ck.get(k).cloned()).map_err(|e| Error::format(path, e.to_string()))?;
    Ok((g, widths))
}

/// Loads what [`save_training`] wrote into networks built for `cfg`, and returns where the run stood.
pub fn load_training<B: Backend>(b: &B, cfg: &TrainConfig, nets: [NetStateMut<B::Tensor>; 2], path: &Path) -> Result<Progress> {
    let ck = Checkpoint::load(path)?;
    check_compatible(&ck, path, Some(cfg.model), Some(cfg.widths))?;
    for (tag, net, adam) in nets {
        net.load_state_dict(b, &format!("{tag}."), |k| ck.get(k).cloned()).map_err(|e| Error::format(path, e.to_string()))?;
        for (name, m, v) in adam.state.iter_mut() {
            for (suffix, slot) in [("exp_avg", m), ("exp_avg_sq", v)] {
                let key = format!("adam.{tag}.{name}.{suffix}");
                let t = ck.get(&key).ok_or_else(|| Error::format(path, format!("checkpoint has no {key}")))?;
                *slot = b.upload(t)?;
            }
        }
        adam.step = ck.meta_parse(path, &format!("adam.{tag}.step"))?;
    }
    Ok(Progress {
        epoch: ck.meta_parse(path, "epoch")?,
        batch: ck.meta_parse(path, "batch")?,
        iteration: ck.meta_parse(path, "iteration")?,
        rng_word_pos: ck.meta_parse(path, "rng_word_pos")?,
    })
}
