//! The check before the timing: the same inputs through the backend under test and through `cpu`, every
//! output compared by its relative L2 error ‖ours − cpu‖₂ / ‖cpu‖₂ (as tests/cube_ops.rs), the worst one
//! reported against a stated tolerance.

use serde::Serialize;

use super::op::Output;
use crate::backend::cuda_native::Precision;
use crate::backend::Backend;
use crate::error::Result;

/// Relative L2 error of one op's outputs, per tensor: f32 kernels that sum in another order differ by
/// ~1e-7 to 1e-6; a wrong index or a missed element by far more.
pub const OP_TOLERANCE: f64 = 1e-5;
/// Whole iterations and the FID pass chain dozens of ops (and batch statistics), so rounding compounds.
pub const CHAIN_TOLERANCE: f64 = 1e-4;
/// How much a reduced-precision convolution's error may grow through a chain of them (an iteration's
/// forward and backward passes, FID's 94 convolutions), relative to one convolution's tolerance. Batch
/// norm's backward cancels (it removes the mean and the x̂ component of dy), so relative errors grow with
/// depth: at f32 the chain's ~1e-5 – 1e-4 is ~100× an op's ~1e-7 – 1e-6, and a bf16 DCGAN iteration on the
/// emulator differs from cpu by 0.17 in its deepest gradient (`grad G.main.0.weight`, one op: 2.1e-3).
pub const CHAIN_GROWTH: f64 = 50.0;

/// The tolerances results of backend `b` are checked at: f32 everywhere, except the convolutions of
/// cuda-native at `--precision tf32 | bf16`, which round their inputs (the precision's stated tolerance,
/// and [`CHAIN_GROWTH`] times that for whole iterations and FID).
#[derive(Clone, Copy, Debug)]
pub struct Tolerances {
    pub op: f64,
    pub conv: f64,
    pub chain: f64,
}

impl Tolerances {
    pub fn of<B: Backend>(b: &B) -> Tolerances {
        match b.conv_precision() {
            Precision::Fp32 => Tolerances { op: OP_TOLERANCE, conv: OP_TOLERANCE, chain: CHAIN_TOLERANCE },
            reduced => {
                let conv = reduced.tolerance();
                Tolerances { op: OP_TOLERANCE, conv, chain: CHAIN_TOLERANCE.max(CHAIN_GROWTH * conv) }
            }
        }
    }
}

/// One output on the host, named, in f64.
#[derive(Clone, Debug)]
pub struct Named {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl Named {
    pub fn scalars(name: impl Into<String>, data: Vec<f64>) -> Self {
        Named { name: name.into(), shape: vec![data.len()], data }
    }
    pub fn tensor<B: Backend>(b: &B, name: impl Into<String>, t: &B::Tensor) -> Result<Self> {
        Ok(Named { name: name.into(), shape: b.shape(t), data: b.download_f64(t)? })
    }
}

/// Downloads an op's outputs.
pub fn download<B: Backend>(b: &B, outs: &[Output<B::Tensor>]) -> Result<Vec<Named>> {
    outs.iter()
        .map(|o| match o {
            Output::Tensor(name, t) => Named::tensor(b, *name, t),
            Output::Scalars(name, v) => Ok(Named::scalars(*name, v.clone())),
        })
        .collect()
}

#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// The largest relative L2 error over the outputs (infinite where shapes differ; NaN where a value is).
    pub max_rel_err: f64,
    /// The output that has it.
    pub worst: String,
    pub tolerance: f64,
    pub pass: bool,
}

/// ‖got − want‖₂ / ‖want‖₂; 0 when both are zero, infinite when only `want` is. NaN anywhere gives NaN.
pub fn rel_l2(got: &[f64], want: &[f64]) -> f64 {
    let (mut diff, mut norm) = (0.0f64, 0.0f64);
    for (g, w) in got.iter().zip(want) {
        diff += (g - w) * (g - w);
        norm += w * w;
    }
    if got.len() != want.len() {
        return f64::INFINITY;
    }
    match (diff, norm) {
        (d, _) if d.is_nan() => f64::NAN,
        (d, 0.0) => {
            if d == 0.0 {
                0.0
            } else {
                f64::INFINITY
            }
        }
        (d, n) => (d / n).sqrt(),
    }
}

/// Compares `got` (the backend under test) with `want` (cpu), output by output.
pub fn compare(got: &[Named], want: &[Named], tolerance: f64) -> Check {
    let mut worst = (0.0f64, String::from("-"));
    if got.len() != want.len() {
        worst = (f64::INFINITY, format!("{} outputs vs cpu's {}", got.len(), want.len()));
    }
    for (g, w) in got.iter().zip(want) {
        let err = if g.shape != w.shape || g.name != w.name { f64::INFINITY } else { rel_l2(&g.data, &w.data) };
        // NaN ranks above everything: it must be the one reported.
        if err.is_nan() || (!worst.0.is_nan() && err > worst.0) {
            let what = if g.shape != w.shape { format!("{} (shape {:?} vs cpu's {:?})", g.name, g.shape, w.shape) } else { g.name.clone() };
            worst = (err, what);
        }
    }
    Check { max_rel_err: worst.0, worst: worst.1, tolerance, pass: worst.0 <= tolerance }
}
