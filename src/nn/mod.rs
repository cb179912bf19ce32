//! Layers and models over a [`crate::backend::Backend`], with explicit forward and backward passes.

pub mod critic;
pub mod dcgan;
pub mod sequential;

pub use sequential::{Grads, Layer, Mode, Saved, Sequential, Tape};
