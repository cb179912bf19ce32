//! The Table 4 experiment: a COVID-19 classifier trained with and without GAN images.

pub mod metrics;
pub mod run;
pub mod split;
