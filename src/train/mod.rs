//! Training: the DCGAN and WGAN-GP iterations and the optimizer.

pub mod checkpoint;
pub mod dcgan;
pub mod optim;
pub mod plots;
pub mod run;
pub mod samples;
pub mod wgan_gp;
