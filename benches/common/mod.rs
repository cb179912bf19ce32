//! What the benches share: the batch size, and the DCGAN's convolutions with their FLOP counts (the list
//! `cxr-gan bench` measures too).
#![allow(dead_code, unused_imports)]

pub use cxr_gan::bench::cases::{dcgan_convs, ConvLayer};

/// The batch: 128 (the paper's), or `CXR_GAN_BENCH_BATCH` for a quicker look.
pub fn batch() -> usize {
    std::env::var("CXR_GAN_BENCH_BATCH").ok().and_then(|v| v.parse().ok()).unwrap_or(128)
}
