//! pytorch-fid's FID InceptionV3 (`pytorch_fid.inception.InceptionV3` with `use_fid_inception=True`, the
//! TensorFlow `inception-2015-12-05` graph) over the [`Backend`] trait, forward only.
//!
//! Input: RGB images with values in [0, 1] (`uint8 / 255`), any size. As pytorch-fid (resize_input and
//! normalize_input on): bilinear resize to 299×299 (align_corners False), then 2x − 1. Then four blocks:
//!
//! | block | layers | output | FID dims |
//! |---|---|---|---|
//! | 0 | Conv2d_1a_3x3 (stride 2), 2a, 2b (padding 1), max pool 3×3 s2 | 64 × 73 × 73 | 64 |
//! | 1 | Conv2d_3b_1x1, 4a, max pool 3×3 s2 | 192 × 35 × 35 | 192 |
//! | 2 | Mixed_5b/5c/5d (FIDInceptionA), Mixed_6a (InceptionB), 6b–6e (FIDInceptionC) | 768 × 17 × 17 | 768 |
//! | 3 | Mixed_7a (InceptionD), 7b (FIDInceptionE_1), 7c (FIDInceptionE_2) | 2048 × 8 × 8 | 2048 |
//!
//! and each block's output, global-average-pooled, is the feature vector of that dimension (pytorch-fid's
//! `--dims`). Every BasicConv2d is conv (no bias) → BatchNorm (eval, eps 1e-3) → ReLU; the BatchNorm is
//! folded here, in f64, into a per-channel affine map y = scale·x + shift, and runs fused with the ReLU
//! ([`Backend::affine_channels`]). The FID variants differ from torchvision's blocks only in their pools:
//! FIDInceptionA / C / E_1 average with `count_include_pad=False`, FIDInceptionE_2 max-pools (3×3, s1, p1).
//!
//! Weights: `pt_inception_fid.safetensors`, pytorch-fid's state_dict names (`Conv2d_1a_3x3.conv.weight`,
//! `Mixed_7c.branch_pool.bn.running_var`, ...); [`find_weights`] says where it is looked for.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use crate::backend::{Backend, Conv2dParams, Pool2dParams};
use crate::error::{Error, Result};
use crate::tensor::{fmt_shape, Tensor};

/// The weights file's name (in the user cache, and what `--weights` must hold).
pub const WEIGHTS_FILE: &str = "pt_inception_fid.safetensors";
/// The environment variable that names the weights file.
pub const WEIGHTS_ENV: &str = "CXR_GAN_FID_WEIGHTS";
/// The feature dimensions FID can use: the pooled output of blocks 0, 1, 2 and 3.
pub const FID_DIMS: [usize; 4] = [64, 192, 768, 2048];
/// The network's input size: every image is resized to this.
pub const INPUT_SIZE: usize = 299;
/// BatchNorm's epsilon in every BasicConv2d (TensorFlow's 0.001).
pub const BN_EPS: f64 = 1e-3;

/// The block whose pooled output has `dims` features, or an error naming the allowed values.
pub fn block_for_dims(dims: usize) -> Result<usize> {
    FID_DIMS.iter().position(|&d| d == dims).ok_or_else(|| {
        Error::invalid("fid", format!("--dims {dims} is not a feature size of the FID Inception; use one of 64, 192, 768, 2048"))
    })
}

// ------------------------------------------------------------------ where the weights are

/// `$XDG_CACHE_HOME/cxr-gan/pt_inception_fid.safetensors`, else `$HOME/.cache/cxr-gan/...`.
pub fn user_cache_path() -> Option<PathBuf> {
    let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let base = nonempty("XDG_CACHE_HOME").or_else(|| nonempty("HOME").map(|h| h.join(".cache")))?;
    Some(base.join("cxr-gan").join(WEIGHTS_FILE))
}

/// The weights file of this repository's shared folder (`../shared/weights/` from the crate root), which the
/// tests and the golden runner use when nothing else is set.
pub fn repo_weights_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/weights").join(WEIGHTS_FILE)
}

/// Finds the weights: `--weights FILE` if given, else `$CXR_GAN_FID_WEIGHTS` if set, else the user cache
/// ([`user_cache_path`]). A place that is named but holds no file is an error (not skipped); when nothing
/// is found the error lists every place looked at and how to get the file.
pub fn find_weights(explicit: Option<&Path>) -> Result<PathBuf> {
    find_weights_from(explicit, std::env::var_os(WEIGHTS_ENV).as_deref(), user_cache_path())
}

/// [`find_weights`] with the environment variable's value and the cache path given (for tests).
pub fn find_weights_from(explicit: Option<&Path>, env: Option<&OsStr>, cache: Option<PathBuf>) -> Result<PathBuf> {
    let mut looked = Vec::new();
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        if p.is_dir() {
            return Err(Error::format(p, format!("--weights names a folder; give the weights file itself ({WEIGHTS_FILE})")));
        }
        looked.push(format!("--weights {}: no such file", p.display()));
        return Err(weights_not_found(&looked));
    }
    looked.push("--weights FILE: not given".to_string());
    match env.filter(|v| !v.is_empty()) {
        Some(v) => {
            let p = PathBuf::from(v);
            if p.is_file() {
                return Ok(p);
            }
            looked.push(format!("${WEIGHTS_ENV} = {}: no such file", p.display()));
            return Err(weights_not_found(&looked));
        }
        None => looked.push(format!("${WEIGHTS_ENV}: not set")),
    }
    match cache {
        Some(p) if p.is_file() => return Ok(p),
        Some(p) => looked.push(format!("{}: absent", p.display())),
        None => looked.push("the user cache: neither $XDG_CACHE_HOME nor $HOME is set".to_string()),
    }
    Err(weights_not_found(&looked))
}

fn weights_not_found(looked: &[String]) -> Error {
    Error::Other(format!(
        "FID needs the InceptionV3 weights file {WEIGHTS_FILE} (pytorch-fid's FID Inception weights as float32 \
         safetensors, 87 MB) and did not find it. Looked at:\n  {}\nTo get it: convert pytorch-fid's \
         pt_inception-2015-12-05-6726825d.pth (https://github.com/mseitzer/pytorch-fid/releases) with \
         `python3 scripts/convert_fid_weights.py pt_inception-2015-12-05-6726825d.pth {WEIGHTS_FILE}`, then pass \
         --weights FILE, set ${WEIGHTS_ENV}, or copy it to {}",
        looked.join("\n  "),
        user_cache_path().map(|p| p.display().to_string()).unwrap_or_else(|| format!("~/.cache/cxr-gan/{WEIGHTS_FILE}")),
    ))
}

/// The weights the golden runner and the tests use: `$CXR_GAN_FID_WEIGHTS`, else the repository's shared
/// copy, else the user cache; `Err` says where it looked.
pub fn conformance_weights() -> std::result::Result<PathBuf, String> {
    let mut looked = Vec::new();
    if let Some(v) = std::env::var_os(WEIGHTS_ENV).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(v);
        if p.is_file() {
            return Ok(p);
        }
        looked.push(format!("${WEIGHTS_ENV} = {}", p.display()));
    }
    for p in [Some(repo_weights_path()), user_cache_path()].into_iter().flatten() {
        if p.is_file() {
            return Ok(p);
        }
        looked.push(p.display().to_string());
    }
    Err(format!("{WEIGHTS_FILE} not found (looked at {})", looked.join(", ")))
}

// ------------------------------------------------------------------ layers

/// Average pool of the FID blocks' pool branch: 3×3, stride 1, padding 1 (with count_include_pad False).
const AVG_3X3: Pool2dParams = Pool2dParams::new([3, 3], [1, 1], [1, 1]);
/// The stem's and the reduction blocks' max pool: 3×3, stride 2.
const MAX_3X3_S2: Pool2dParams = Pool2dParams::new([3, 3], [2, 2], [0, 0]);
/// FIDInceptionE_2's max pool: 3×3, stride 1, padding 1.
const MAX_3X3_S1: Pool2dParams = Pool2dParams::new([3, 3], [1, 1], [1, 1]);

/// conv (no bias) → BatchNorm (eval) → ReLU, with the BatchNorm as a per-channel affine map.
pub struct BasicConv2d<T> {
    w: T,
    scale: T,
    shift: T,
    p: Conv2dParams,
}

impl<T> BasicConv2d<T> {
    fn forward<B: Backend<Tensor = T>>(&self, b: &B, x: &T) -> Result<T> {
        let mut y = b.conv2d(x, &self.w, self.p)?;
        b.affine_channels(&mut y, &self.scale, &self.shift, true)?;
        Ok(y)
    }
}

/// x through `convs` in order.
fn chain<B: Backend>(b: &B, x: &B::Tensor, convs: &[&BasicConv2d<B::Tensor>]) -> Result<B::Tensor> {
    let (first, rest) = convs.split_first().expect("a branch has at least one conv");
    let mut y = first.forward(b, x)?;
    for c in rest {
        y = c.forward(b, &y)?;
    }
    Ok(y)
}

/// Mixed_5b/5c/5d: 1×1 | 1×1 → 5×5 | 1×1 → 3×3 → 3×3 | avg pool → 1×1.
struct InceptionA<T> {
    branch1x1: BasicConv2d<T>,
    branch5x5: [BasicConv2d<T>; 2],
    branch3x3dbl: [BasicConv2d<T>; 3],
    branch_pool: BasicConv2d<T>,
}

/// Mixed_6a: 3×3 s2 | 1×1 → 3×3 → 3×3 s2 | max pool s2.
struct InceptionB<T> {
    branch3x3: BasicConv2d<T>,
    branch3x3dbl: [BasicConv2d<T>; 3],
}

/// Mixed_6b–6e: 1×1 | 1×1 → 1×7 → 7×1 | 1×1 → 7×1 → 1×7 → 7×1 → 1×7 | avg pool → 1×1.
struct InceptionC<T> {
    branch1x1: BasicConv2d<T>,
    branch7x7: [BasicConv2d<T>; 3],
    branch7x7dbl: [BasicConv2d<T>; 5],
    branch_pool: BasicConv2d<T>,
}

/// Mixed_7a: 1×1 → 3×3 s2 | 1×1 → 1×7 → 7×1 → 3×3 s2 | max pool s2.
struct InceptionD<T> {
    branch3x3: [BasicConv2d<T>; 2],
    branch7x7x3: [BasicConv2d<T>; 4],
}

/// Mixed_7b / 7c: 1×1 | 1×1 → (1×3, 3×1) | 1×1 → 3×3 → (1×3, 3×1) | pool → 1×1.
struct InceptionE<T> {
    branch1x1: BasicConv2d<T>,
    branch3x3_1: BasicConv2d<T>,
    branch3x3_2: [BasicConv2d<T>; 2],
    branch3x3dbl_12: [BasicConv2d<T>; 2],
    branch3x3dbl_3: [BasicConv2d<T>; 2],
    branch_pool: BasicConv2d<T>,
    /// FIDInceptionE_2 (Mixed_7c) max-pools; FIDInceptionE_1 averages without the padding.
    max_pool: bool,
}

enum Layer<T> {
    Conv(BasicConv2d<T>),
    MaxPool,
    A(InceptionA<T>),
    B(InceptionB<T>),
    C(InceptionC<T>),
    D(InceptionD<T>),
    E(InceptionE<T>),
}

impl<T> Layer<T> {
    /// The PyTorch module's class name (the golden `inception_fid_layers` keys use it).
    fn kind(&self) -> &'static str {
        match self {
            Layer::Conv(_) => "BasicConv2d",
            Layer::MaxPool => "MaxPool2d",
            Layer::A(_) => "FIDInceptionA",
            Layer::B(_) => "InceptionB",
            Layer::C(_) => "FIDInceptionC",
            Layer::D(_) => "InceptionD",
            Layer::E(e) if e.max_pool => "FIDInceptionE_2",
            Layer::E(_) => "FIDInceptionE_1",
        }
    }

    fn forward<B: Backend<Tensor = T>>(&self, b: &B, x: &T) -> Result<T> {
        match self {
            Layer::Conv(c) => c.forward(b, x),
            Layer::MaxPool => b.max_pool2d(x, MAX_3X3_S2),
            Layer::A(m) => {
                let b1 = m.branch1x1.forward(b, x)?;
                let b5 = chain(b, x, &[&m.branch5x5[0], &m.branch5x5[1]])?;
                let b3 = chain(b, x, &[&m.branch3x3dbl[0], &m.branch3x3dbl[1], &m.branch3x3dbl[2]])?;
                let bp = m.branch_pool.forward(b, &b.avg_pool2d(x, AVG_3X3, false)?)?;
                b.concat_channels(&[&b1, &b5, &b3, &bp])
            }
            Layer::B(m) => {
                let b3 = m.branch3x3.forward(b, x)?;
                let bd = chain(b, x, &[&m.branch3x3dbl[0], &m.branch3x3dbl[1], &m.branch3x3dbl[2]])?;
                let bp = b.max_pool2d(x, MAX_3X3_S2)?;
                b.concat_channels(&[&b3, &bd, &bp])
            }
            Layer::C(m) => {
                let b1 = m.branch1x1.forward(b, x)?;
                let b7 = chain(b, x, &m.branch7x7.iter().collect::<Vec<_>>())?;
                let bd = chain(b, x, &m.branch7x7dbl.iter().collect::<Vec<_>>())?;
                let bp = m.branch_pool.forward(b, &b.avg_pool2d(x, AVG_3X3, false)?)?;
                b.concat_channels(&[&b1, &b7, &bd, &bp])
            }
            Layer::D(m) => {
                let b3 = chain(b, x, &m.branch3x3.iter().collect::<Vec<_>>())?;
                let b7 = chain(b, x, &m.branch7x7x3.iter().collect::<Vec<_>>())?;
                let bp = b.max_pool2d(x, MAX_3X3_S2)?;
                b.concat_channels(&[&b3, &b7, &bp])
            }
            Layer::E(m) => {
                let b1 = m.branch1x1.forward(b, x)?;
                let t = m.branch3x3_1.forward(b, x)?;
                let (b3a, b3b) = (m.branch3x3_2[0].forward(b, &t)?, m.branch3x3_2[1].forward(b, &t)?);
                drop(t);
                let t = chain(b, x, &[&m.branch3x3dbl_12[0], &m.branch3x3dbl_12[1]])?;
                let (bda, bdb) = (m.branch3x3dbl_3[0].forward(b, &t)?, m.branch3x3dbl_3[1].forward(b, &t)?);
                drop(t);
                let pooled = if m.max_pool { b.max_pool2d(x, MAX_3X3_S1)? } else { b.avg_pool2d(x, AVG_3X3, false)? };
                let bp = m.branch_pool.forward(b, &pooled)?;
                drop(pooled);
                b.concat_channels(&[&b1, &b3a, &b3b, &bda, &bdb, &bp])
            }
        }
    }
}

// ------------------------------------------------------------------ loading

/// Builds BasicConv2d layers from named tensors, collecting every missing or mis-shaped tensor.
struct Builder<'a, B: Backend, F> {
    b: &'a B,
    get: F,
    problems: Vec<String>,
    found: usize,
}

impl<B: Backend, F: FnMut(&str, &[usize]) -> std::result::Result<Tensor, String>> Builder<'_, B, F> {
    fn tensor(&mut self, key: &str, shape: &[usize]) -> Option<Tensor> {
        match (self.get)(key, shape) {
            Ok(t) if t.shape() == shape => {
                self.found += 1;
                Some(t)
            }
            Ok(t) => {
                self.found += 1;
                self.problems.push(format!("`{key}` has shape {}, expected {}", fmt_shape(t.shape()), fmt_shape(shape)));
                None
            }
            Err(why) => {
                self.problems.push(format!("`{key}` {why}"));
                None
            }
        }
    }

    /// `name.conv.weight` [cout, cin, kh, kw] and `name.bn.{weight, bias, running_mean, running_var}` [cout].
    fn conv(
        &mut self,
        name: &str,
        cin: usize,
        cout: usize,
        k: [usize; 2],
        stride: usize,
        pad: [usize; 2],
    ) -> Result<BasicConv2d<B::Tensor>> {
        let p = Conv2dParams::new([stride, stride], pad);
        let w = self.tensor(&format!("{name}.conv.weight"), &[cout, cin, k[0], k[1]]);
        let bn: Vec<Option<Tensor>> =
            ["weight", "bias", "running_mean", "running_var"].iter().map(|s| self.tensor(&format!("{name}.bn.{s}"), &[cout])).collect();
        let (Some(w), Some(g), Some(beta), Some(mean), Some(var)) = (w, &bn[0], &bn[1], &bn[2], &bn[3]) else {
            // A placeholder: the load fails once every problem is collected.
            let z = self.b.zeros(&[1])?;
            return Ok(BasicConv2d { w: z.clone(), scale: z.clone(), shift: z, p });
        };
        let (mut scale, mut shift) = (Vec::with_capacity(cout), Vec::with_capacity(cout));
        for c in 0..cout {
            let s = g.data()[c] as f64 / (var.data()[c] as f64 + BN_EPS).sqrt();
            scale.push(s);
            shift.push(beta.data()[c] as f64 - mean.data()[c] as f64 * s);
        }
        Ok(BasicConv2d { w: self.b.upload(&w)?, scale: self.b.upload_f64(&[cout], &scale)?, shift: self.b.upload_f64(&[cout], &shift)?, p })
    }

    fn inception_a(&mut self, name: &str, cin: usize, pool_features: usize) -> Result<InceptionA<B::Tensor>> {
        let n = |s: &str| format!("{name}.{s}");
        Ok(InceptionA {
            branch1x1: self.conv(&n("branch1x1"), cin, 64, [1, 1], 1, [0, 0])?,
            branch5x5: [
                self.conv(&n("branch5x5_1"), cin, 48, [1, 1], 1, [0, 0])?,
                self.conv(&n("branch5x5_2"), 48, 64, [5, 5], 1, [2, 2])?,
            ],
            branch3x3dbl: [
                self.conv(&n("branch3x3dbl_1"), cin, 64, [1, 1], 1, [0, 0])?,
                self.conv(&n("branch3x3dbl_2"), 64, 96, [3, 3], 1, [1, 1])?,
                self.conv(&n("branch3x3dbl_3"), 96, 96, [3, 3], 1, [1, 1])?,
            ],
            branch_pool: self.conv(&n("branch_pool"), cin, pool_features, [1, 1], 1, [0, 0])?,
        })
    }

    fn inception_b(&mut self, name: &str, cin: usize) -> Result<InceptionB<B::Tensor>> {
        let n = |s: &str| format!("{name}.{s}");
        Ok(InceptionB {
            branch3x3: self.conv(&n("branch3x3"), cin, 384, [3, 3], 2, [0, 0])?,
            branch3x3dbl: [
                self.conv(&n("branch3x3dbl_1"), cin, 64, [1, 1], 1, [0, 0])?,
                self.conv(&n("branch3x3dbl_2"), 64, 96, [3, 3], 1, [1, 1])?,
                self.conv(&n("branch3x3dbl_3"), 96, 96, [3, 3], 2, [0, 0])?,
            ],
        })
    }

    fn inception_c(&mut self, name: &str, cin: usize, c7: usize) -> Result<InceptionC<B::Tensor>> {
        let n = |s: &str| format!("{name}.{s}");
        let (k17, k71, p17, p71) = ([1, 7], [7, 1], [0, 3], [3, 0]);
        Ok(InceptionC {
            branch1x1: self.conv(&n("branch1x1"), cin, 192, [1, 1], 1, [0, 0])?,
            branch7x7: [
                self.conv(&n("branch7x7_1"), cin, c7, [1, 1], 1, [0, 0])?,
                self.conv(&n("branch7x7_2"), c7, c7, k17, 1, p17)?,
                self.conv(&n("branch7x7_3"), c7, 192, k71, 1, p71)?,
            ],
            branch7x7dbl: [
                self.conv(&n("branch7x7dbl_1"), cin, c7, [1, 1], 1, [0, 0])?,
                self.conv(&n("branch7x7dbl_2"), c7, c7, k71, 1, p71)?,
                self.conv(&n("branch7x7dbl_3"), c7, c7, k17, 1, p17)?,
                self.conv(&n("branch7x7dbl_4"), c7, c7, k71, 1, p71)?,
                self.conv(&n("branch7x7dbl_5"), c7, 192, k17, 1, p17)?,
            ],
            branch_pool: self.conv(&n("branch_pool"), cin, 192, [1, 1], 1, [0, 0])?,
        })
    }

    fn inception_d(&mut self, name: &str, cin: usize) -> Result<InceptionD<B::Tensor>> {
        let n = |s: &str| format!("{name}.{s}");
        Ok(InceptionD {
            branch3x3: [
                self.conv(&n("branch3x3_1"), cin, 192, [1, 1], 1, [0, 0])?,
                self.conv(&n("branch3x3_2"), 192, 320, [3, 3], 2, [0, 0])?,
            ],
            branch7x7x3: [
                self.conv(&n("branch7x7x3_1"), cin, 192, [1, 1], 1, [0, 0])?,
                self.conv(&n("branch7x7x3_2"), 192, 192, [1, 7], 1, [0, 3])?,
                self.conv(&n("branch7x7x3_3"), 192, 192, [7, 1], 1, [3, 0])?,
                self.conv(&n("branch7x7x3_4"), 192, 192, [3, 3], 2, [0, 0])?,
            ],
        })
    }

    fn inception_e(&mut self, name: &str, cin: usize, max_pool: bool) -> Result<InceptionE<B::Tensor>> {
        let n = |s: &str| format!("{name}.{s}");
        Ok(InceptionE {
            branch1x1: self.conv(&n("branch1x1"), cin, 320, [1, 1], 1, [0, 0])?,
            branch3x3_1: self.conv(&n("branch3x3_1"), cin, 384, [1, 1], 1, [0, 0])?,
            branch3x3_2: [
                self.conv(&n("branch3x3_2a"), 384, 384, [1, 3], 1, [0, 1])?,
                self.conv(&n("branch3x3_2b"), 384, 384, [3, 1], 1, [1, 0])?,
            ],
            branch3x3dbl_12: [
                self.conv(&n("branch3x3dbl_1"), cin, 448, [1, 1], 1, [0, 0])?,
                self.conv(&n("branch3x3dbl_2"), 448, 384, [3, 3], 1, [1, 1])?,
            ],
            branch3x3dbl_3: [
                self.conv(&n("branch3x3dbl_3a"), 384, 384, [1, 3], 1, [0, 1])?,
                self.conv(&n("branch3x3dbl_3b"), 384, 384, [3, 1], 1, [1, 0])?,
            ],
            branch_pool: self.conv(&n("branch_pool"), cin, 192, [1, 1], 1, [0, 0])?,
            max_pool,
        })
    }
}

/// Every tensor of a safetensors weights file, as f32 host tensors, or why one is unusable (its dtype, a
/// non-finite value): the reason is reported against the key only if the model asks for that key.
pub fn read_tensors(path: &Path) -> Result<HashMap<String, std::result::Result<Tensor, String>>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| Error::format(path, format!("not a safetensors file: {e}")))?;
    let convert = |view: safetensors::tensor::TensorView| {
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => view.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
            Dtype::F64 => view.data().chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32).collect(),
            other => return Err(format!("has dtype {other:?}, expected F32")),
        };
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(format!("holds a non-finite value ({} at element {i})", data[i]));
        }
        Tensor::new(view.shape(), data).map_err(|e| e.to_string())
    };
    Ok(st.tensors().into_iter().map(|(k, v)| (k, convert(v))).collect())
}

/// pytorch-fid's FID InceptionV3 with its weights in a backend `T`.
pub struct InceptionV3<T> {
    blocks: [Vec<Layer<T>>; 4],
}

impl<T: Clone> InceptionV3<T> {
    /// Loads the weights file at `path` (see [`find_weights`]).
    pub fn load<B: Backend<Tensor = T>>(b: &B, path: &Path) -> Result<Self> {
        let tensors = read_tensors(path)?;
        Self::from_fn(b, |key| tensors.get(key).cloned().unwrap_or_else(|| Err("is missing".to_string()))).map_err(|e| match e {
            Error::Other(m) => Error::format(path, m),
            e => e,
        })
    }

    /// Builds the model from named host tensors: `get(key)` returns the tensor or why it cannot (missing,
    /// wrong dtype). Every missing or mis-shaped tensor is listed in the error.
    pub fn from_fn<B: Backend<Tensor = T>>(b: &B, get: impl Fn(&str) -> std::result::Result<Tensor, String>) -> Result<Self> {
        Self::build(b, |key, _| get(key))
    }

    /// The architecture with random weights, deterministic in `seed`: He-normal convolutions and identity
    /// batch norms, so activations keep their scale through the 94 layers. For timing (the speed does not
    /// depend on the values) where the real weights are not at hand.
    pub fn random<B: Backend<Tensor = T>>(b: &B, seed: u64) -> Result<Self> {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        Self::build(b, |key, shape| {
            let len = shape.iter().product();
            let data = if key.ends_with(".conv.weight") {
                let fan_in: usize = shape[1..].iter().product();
                let he = Normal::new(0.0, (2.0 / fan_in as f32).sqrt()).map_err(|e| e.to_string())?;
                (0..len).map(|_| he.sample(&mut rng)).collect()
            } else if key.ends_with(".bn.weight") || key.ends_with(".bn.running_var") {
                vec![1.0; len]
            } else {
                vec![0.0; len]
            };
            Tensor::new(shape, data).map_err(|e| e.to_string())
        })
    }

    /// Builds the model, asking `get(key, expected shape)` for every tensor.
    fn build<B: Backend<Tensor = T>>(b: &B, get: impl FnMut(&str, &[usize]) -> std::result::Result<Tensor, String>) -> Result<Self> {
        let mut bl = Builder { b, get, problems: Vec::new(), found: 0 };
        let block0 = vec![
            Layer::Conv(bl.conv("Conv2d_1a_3x3", 3, 32, [3, 3], 2, [0, 0])?),
            Layer::Conv(bl.conv("Conv2d_2a_3x3", 32, 32, [3, 3], 1, [0, 0])?),
            Layer::Conv(bl.conv("Conv2d_2b_3x3", 32, 64, [3, 3], 1, [1, 1])?),
            Layer::MaxPool,
        ];
        let block1 = vec![
            Layer::Conv(bl.conv("Conv2d_3b_1x1", 64, 80, [1, 1], 1, [0, 0])?),
            Layer::Conv(bl.conv("Conv2d_4a_3x3", 80, 192, [3, 3], 1, [0, 0])?),
            Layer::MaxPool,
        ];
        let block2 = vec![
            Layer::A(bl.inception_a("Mixed_5b", 192, 32)?),
            Layer::A(bl.inception_a("Mixed_5c", 256, 64)?),
            Layer::A(bl.inception_a("Mixed_5d", 288, 64)?),
            Layer::B(bl.inception_b("Mixed_6a", 288)?),
            Layer::C(bl.inception_c("Mixed_6b", 768, 128)?),
            Layer::C(bl.inception_c("Mixed_6c", 768, 160)?),
            Layer::C(bl.inception_c("Mixed_6d", 768, 160)?),
            Layer::C(bl.inception_c("Mixed_6e", 768, 192)?),
        ];
        let block3 = vec![
            Layer::D(bl.inception_d("Mixed_7a", 768)?),
            Layer::E(bl.inception_e("Mixed_7b", 1280, false)?),
            Layer::E(bl.inception_e("Mixed_7c", 2048, true)?),
        ];
        if !bl.problems.is_empty() {
            let n = bl.problems.len();
            const SHOWN: usize = 3;
            let mut list = bl.problems.iter().take(SHOWN).cloned().collect::<Vec<_>>().join("; ");
            if n > SHOWN {
                list.push_str(&format!("; and {} more", n - SHOWN));
            }
            let hint = if bl.found == 0 {
                " (none of the expected tensors is there: is this pytorch-fid's FID InceptionV3 state_dict?)"
            } else {
                ""
            };
            return Err(Error::Other(format!("not the FID Inception weights{hint}: {n} tensor problem(s): {list}")));
        }
        Ok(InceptionV3 { blocks: [block0, block1, block2, block3] })
    }

    /// The global-average-pooled output ([N, C]) of blocks 0..=`last_block` for images `x` [N, 3, H, W] with
    /// values in [0, 1]: the features of dims 64, 192, 768, 2048 in that order.
    pub fn pooled<B: Backend<Tensor = T>>(&self, b: &B, x: &T, last_block: usize) -> Result<Vec<T>> {
        self.forward_with(b, x, last_block, |_, _| Ok(()))
    }

    /// [`InceptionV3::pooled`], calling `tap(stage, output)` after every layer with the stage named as
    /// pytorch-fid's modules are (`block2.3.InceptionB`; the last, `block3.3.AdaptiveAvgPool2d`, gets
    /// [N, 2048, 1, 1]).
    pub fn forward_with<B: Backend<Tensor = T>>(
        &self,
        b: &B,
        x: &T,
        last_block: usize,
        mut tap: impl FnMut(&str, &T) -> Result<()>,
    ) -> Result<Vec<T>> {
        let shape = b.shape(x);
        if shape.len() != 4 || shape[1] != 3 {
            return Err(Error::shape("InceptionV3", format!("expected RGB images [N, 3, H, W], got {}", fmt_shape(&shape))));
        }
        if last_block >= self.blocks.len() {
            return Err(Error::invalid("InceptionV3", format!("block {last_block} does not exist (0..=3)")));
        }
        // pytorch-fid: F.interpolate(x, (299, 299), 'bilinear', align_corners=False), then 2x − 1. The resize
        // is exactly the identity at 299×299, so it is skipped there.
        let mut x =
            if shape[2] == INPUT_SIZE && shape[3] == INPUT_SIZE { x.clone() } else { b.resize_bilinear(x, INPUT_SIZE, INPUT_SIZE)? };
        let (two, minus_one) = (b.full(&[3], 2.0)?, b.full(&[3], -1.0)?);
        b.affine_channels(&mut x, &two, &minus_one, false)?;
        let mut pooled = Vec::with_capacity(last_block + 1);
        for (bi, block) in self.blocks.iter().enumerate().take(last_block + 1) {
            for (li, layer) in block.iter().enumerate() {
                x = layer.forward(b, &x)?;
                tap(&format!("block{bi}.{li}.{}", layer.kind()), &x)?;
            }
            let p = b.global_avg_pool2d(&x)?;
            if bi == 3 {
                let s = b.shape(&p);
                tap(&format!("block3.{}.AdaptiveAvgPool2d", block.len()), &b.reshape(&p, &[s[0], s[1], 1, 1])?)?;
            }
            pooled.push(p);
        }
        Ok(pooled)
    }

    /// The `dims`-dimensional features ([N, dims] row-major, f64) of `x` [N, 3, H, W] in [0, 1].
    pub fn features<B: Backend<Tensor = T>>(&self, b: &B, x: &T, dims: usize) -> Result<Vec<f64>> {
        let block = block_for_dims(dims)?;
        let pooled = self.pooled(b, x, block)?;
        b.download_f64(pooled.last().expect("one pooled output per block"))
    }
}

/// uint8 images [N, 3, H, W] as the network's input: values / 255 (torchvision's ToTensor), f32.
pub fn images_to_unit(data: &[u8], shape: [usize; 4]) -> Result<Tensor> {
    if shape[1] != 3 {
        return Err(Error::shape("InceptionV3", format!("expected RGB images [N, 3, H, W], got {}", fmt_shape(&shape))));
    }
    Tensor::new(&shape, data.iter().map(|&v| v as f32 / 255.0).collect())
}
