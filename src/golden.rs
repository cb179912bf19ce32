//! Reading the golden conformance files (PyTorch / OpenCV / SciPy / pytorch-fid outputs) and judging
//! results against them. The format is `../shared/golden/README.md`: one safetensors file per case whose
//! metadata holds `op`, `params` (JSON) and `tol` (JSON: output tensor → the bar it must meet).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Where the golden files are: `CXR_GAN_GOLDEN_DIR`, else `../shared/golden` from the crate root.
pub fn golden_dir() -> PathBuf {
    std::env::var_os("CXR_GAN_GOLDEN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/golden"))
}

/// A golden tensor: floats are stored as F64, images as U8.
#[derive(Clone, Debug)]
pub enum GoldenTensor {
    F64 { shape: Vec<usize>, data: Vec<f64> },
    U8 { shape: Vec<usize>, data: Vec<u8> },
}

impl GoldenTensor {
    pub fn shape(&self) -> &[usize] {
        match self {
            GoldenTensor::F64 { shape, .. } | GoldenTensor::U8 { shape, .. } => shape,
        }
    }
    /// The values as f64 (images converted).
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            GoldenTensor::F64 { data, .. } => data.clone(),
            GoldenTensor::U8 { data, .. } => data.iter().map(|&v| v as f64).collect(),
        }
    }
}

/// The bar one output must meet.
#[derive(Clone, Debug, PartialEq)]
pub enum Tolerance {
    /// ‖ours − ref‖₂ / ‖ref‖₂ ≤ r (where ‖ref‖ = 0: ‖ours‖₂ ≤ r).
    Relative(f64),
    /// max |ours − ref| ≤ a.
    Absolute(f64),
    /// For a weight after an optimizer step: the update's relative error, against the matching `in.` tensor.
    Update(f64),
    /// uint8 images: at least `identical` of the pixels equal and none off by more than `max_diff`.
    Pixels { identical: f64, max_diff: f64 },
}

impl Tolerance {
    pub fn parse(v: &serde_json::Value) -> std::result::Result<Self, String> {
        if let Some(r) = v.as_f64() {
            return Ok(Tolerance::Relative(r));
        }
        let s = v.as_str().ok_or_else(|| format!("tolerance {v} is neither a number nor a string"))?;
        let num = |t: &str| t.trim().parse::<f64>().map_err(|_| format!("bad number in tolerance {s:?}"));
        if let Some(a) = s.strip_prefix("abs:") {
            return Ok(Tolerance::Absolute(num(a)?));
        }
        if let Some(r) = s.strip_prefix("update:") {
            return Ok(Tolerance::Update(num(r)?));
        }
        if let Some(rest) = s.strip_prefix("pixels:") {
            let (mut identical, mut max_diff) = (0.0, f64::INFINITY);
            for part in rest.split(',') {
                if let Some(f) = part.strip_prefix("identical>=") {
                    identical = num(f)?;
                } else if let Some(d) = part.strip_prefix("maxdiff<=") {
                    max_diff = num(d)?;
                } else {
                    return Err(format!("unknown pixel rule {part:?} in {s:?}"));
                }
            }
            return Ok(Tolerance::Pixels { identical, max_diff });
        }
        Err(format!("unknown tolerance {s:?}"))
    }
}

/// The verdict on one output tensor.
#[derive(Clone, Debug)]
pub struct Check {
    pub name: String,
    /// The error achieved, in the rule's own measure (relative, absolute, or the fraction of pixels not identical).
    pub error: f64,
    pub passed: bool,
    pub detail: String,
}

/// One golden case.
pub struct GoldenFile {
    pub path: PathBuf,
    pub name: String,
    pub op: String,
    pub params: serde_json::Value,
    pub tol: BTreeMap<String, Tolerance>,
    tensors: HashMap<String, GoldenTensor>,
}

impl GoldenFile {
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let fmt = |d: String| Error::format(path, d);
        let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| fmt(format!("not a safetensors file: {e}")))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let op = meta.get("op").cloned().ok_or_else(|| fmt("metadata has no `op`".into()))?;
        let params = match meta.get("params") {
            Some(p) => serde_json::from_str(p).map_err(|e| fmt(format!("`params` is not JSON: {e}")))?,
            None => serde_json::Value::Object(Default::default()),
        };
        let mut tol = BTreeMap::new();
        if let Some(t) = meta.get("tol") {
            let v: serde_json::Value = serde_json::from_str(t).map_err(|e| fmt(format!("`tol` is not JSON: {e}")))?;
            for (k, bar) in v.as_object().ok_or_else(|| fmt("`tol` is not a JSON object".into()))? {
                tol.insert(k.clone(), Tolerance::parse(bar).map_err(|e| fmt(format!("tol of {k}: {e}")))?);
            }
        }
        let st = SafeTensors::deserialize(&bytes).map_err(|e| fmt(format!("not a safetensors file: {e}")))?;
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
            let shape = view.shape().to_vec();
            let t = match view.dtype() {
                Dtype::F64 => GoldenTensor::F64 {
                    shape,
                    data: view.data().chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect(),
                },
                Dtype::F32 => GoldenTensor::F64 {
                    shape,
                    data: view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64).collect(),
                },
                Dtype::U8 => GoldenTensor::U8 { shape, data: view.data().to_vec() },
                other => return Err(fmt(format!("tensor {name}: unsupported dtype {other:?}"))),
            };
            tensors.insert(name, t);
        }
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(GoldenFile { path: path.to_path_buf(), name, op, params, tol, tensors })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }
    pub fn get(&self, name: &str) -> Result<&GoldenTensor> {
        self.tensors.get(name).ok_or_else(|| Error::format(&self.path, format!("no tensor `{name}`")))
    }
    /// A float tensor's shape and values.
    pub fn f64(&self, name: &str) -> Result<(Vec<usize>, Vec<f64>)> {
        let t = self.get(name)?;
        Ok((t.shape().to_vec(), t.to_f64()))
    }
    /// A float tensor as a host f32 tensor.
    pub fn tensor(&self, name: &str) -> Result<Tensor> {
        let (shape, data) = self.f64(name)?;
        Tensor::from_f64(&shape, &data)
    }
    /// An image tensor's shape and bytes.
    pub fn u8(&self, name: &str) -> Result<(Vec<usize>, Vec<u8>)> {
        match self.get(name)? {
            GoldenTensor::U8 { shape, data } => Ok((shape.clone(), data.clone())),
            _ => Err(Error::format(&self.path, format!("tensor `{name}` is not uint8"))),
        }
    }
    pub fn param(&self, key: &str) -> Result<&serde_json::Value> {
        self.params.get(key).ok_or_else(|| Error::format(&self.path, format!("params has no `{key}`")))
    }
    pub fn param_f64(&self, key: &str) -> Result<f64> {
        self.param(key)?.as_f64().ok_or_else(|| Error::format(&self.path, format!("param `{key}` is not a number")))
    }
    pub fn param_pair(&self, key: &str) -> Result<[usize; 2]> {
        let v = self.param(key)?;
        match v.as_array().map(|a| a.iter().filter_map(|x| x.as_u64()).collect::<Vec<_>>()) {
            Some(a) if a.len() == 2 => Ok([a[0] as usize, a[1] as usize]),
            _ => Err(Error::format(&self.path, format!("param `{key}` = {v} is not a pair of integers"))),
        }
    }

    /// Judges `ours` against the expected tensor `name` by its tolerance rule.
    pub fn check(&self, name: &str, ours: &[f64]) -> Result<Check> {
        self.check_with_floor(name, ours, 0.0)
    }

    /// [`GoldenFile::check`] with a relative bar no tighter than `floor` (a reduced-precision convolution's
    /// stated tolerance: the files' bars are for f32).
    pub fn check_with_floor(&self, name: &str, ours: &[f64], floor: f64) -> Result<Check> {
        let expected = self.get(name)?;
        let tol = self.tol.get(name).ok_or_else(|| Error::format(&self.path, format!("no tolerance for `{name}`")))?;
        let floored = match *tol {
            Tolerance::Relative(r) if r < floor => Tolerance::Relative(floor),
            _ => tol.clone(),
        };
        let tol = &floored;
        let reference = expected.to_f64();
        if ours.len() != reference.len() {
            return Ok(Check {
                name: name.into(),
                error: f64::INFINITY,
                passed: false,
                detail: format!("{} values, expected {} of shape {:?}", ours.len(), reference.len(), expected.shape()),
            });
        }
        let before = match tol {
            Tolerance::Update(_) => {
                let input = format!("in.{}", name.trim_start_matches("out."));
                Some(self.f64(&input)?.1)
            }
            _ => None,
        };
        Ok(judge(name, tol, ours, &reference, before.as_deref()))
    }
}

/// ‖a − b‖₂ / ‖b‖₂, or ‖a‖₂ where ‖b‖ = 0 (the golden README's relative error).
pub fn rel_error(ours: &[f64], reference: &[f64]) -> f64 {
    let diff: f64 = ours.iter().zip(reference).map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt();
    let norm: f64 = reference.iter().map(|b| b * b).sum::<f64>().sqrt();
    if norm == 0.0 {
        diff
    } else {
        diff / norm
    }
}

/// Applies one tolerance rule. `before` is the weight before the step, for `Update`.
pub fn judge(name: &str, tol: &Tolerance, ours: &[f64], reference: &[f64], before: Option<&[f64]>) -> Check {
    let nan = ours.iter().any(|v| v.is_nan());
    let (error, bar, measure) = match *tol {
        Tolerance::Relative(r) => (rel_error(ours, reference), r, "rel"),
        Tolerance::Absolute(a) => (ours.iter().zip(reference).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max), a, "abs"),
        Tolerance::Update(r) => {
            let before = before.unwrap_or(reference);
            let ou: Vec<f64> = ours.iter().zip(before).map(|(a, b)| a - b).collect();
            let ru: Vec<f64> = reference.iter().zip(before).map(|(a, b)| a - b).collect();
            (rel_error(&ou, &ru), r, "update rel")
        }
        Tolerance::Pixels { identical, max_diff } => {
            let diffs: Vec<f64> = ours.iter().zip(reference).map(|(a, b)| (a - b).abs()).collect();
            let same = diffs.iter().filter(|&&d| d == 0.0).count() as f64 / diffs.len().max(1) as f64;
            let worst = diffs.iter().cloned().fold(0.0, f64::max);
            let passed = !nan && same >= identical && worst <= max_diff;
            return Check {
                name: name.into(),
                error: 1.0 - same,
                passed,
                detail: format!("{:.4}% identical (≥ {:.4}%), max diff {worst} (≤ {max_diff})", same * 100.0, identical * 100.0),
            };
        }
    };
    Check { name: name.into(), error, passed: !nan && error <= bar, detail: format!("{measure} {error:.2e} (≤ {bar:.0e})") }
}

/// Every `*.safetensors` file in `dir`, sorted by name.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    Ok(files)
}
