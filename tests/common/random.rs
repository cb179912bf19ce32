//! Seeded random inputs: f32 tensors fed both to a backend and (widened) to the f64 oracle, so the only
//! difference a comparison measures is the backend's own arithmetic.

use cxr_gan::Tensor;
use cxr_gan_reference::Array;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Uniform in [lo, hi), as f32 (the values both sides see).
pub fn rand_tensor(rng: &mut ChaCha8Rng, shape: &[usize], lo: f32, hi: f32) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(shape, (0..n).map(|_| rng.gen_range(lo..hi)).collect()).unwrap()
}

/// The same values as the oracle's f64 array.
pub fn arr(t: &Tensor) -> Array {
    Array::new(t.shape(), t.to_f64())
}
