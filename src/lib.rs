//! cxr-gan: DCGAN and WGAN-GP on chest X-rays over hand-written compute kernels, judged by FID.
//!
//! Data flows one way: images → preprocessing (`data`) → training (`train`, models in `nn` over a
//! [`backend::Backend`]) → checkpoints and samples → FID (`fid`) → reports.

pub mod backend;
pub mod bench;
pub mod classify;
pub mod cli;
pub mod conformance;
pub mod data;
pub mod error;
pub mod fid;
pub mod fsio;
pub mod golden;
pub mod nn;
pub mod reproduce;
pub mod tensor;
pub mod train;

pub use error::{Error, Result};
pub use tensor::Tensor;
