//! Layers and models over a [`crate::backend::Backend`], with explicit forward and backward passes.

pub mod classifier;
pub mod critic;
pub mod dcgan;
pub mod inception_v3;
pub mod sequential;

pub use sequential::{Grads, Layer, Mode, Saved, Sequential, Tape};

/// A model an optimizer can step: its trainable parameters by PyTorch name, in `named_parameters()` order.
pub trait Parameters<T> {
    fn parameters_mut(&mut self) -> Vec<(String, &mut T)>;
}

impl<T: Clone> Parameters<T> for Sequential<T> {
    fn parameters_mut(&mut self) -> Vec<(String, &mut T)> {
        Sequential::parameters_mut(self)
    }
}

/// PyTorch's default initialisation of a conv or linear weight or bias (kaiming_uniform with a = √5):
/// U(−1/√fan_in, 1/√fan_in).
pub fn default_init(rng: &mut rand_chacha::ChaCha8Rng, shape: &[usize], fan_in: usize) -> crate::Result<crate::Tensor> {
    use rand::Rng;
    let bound = 1.0 / (fan_in as f32).sqrt();
    crate::Tensor::new(shape, (0..shape.iter().product()).map(|_| rng.gen_range(-bound..bound)).collect())
}
