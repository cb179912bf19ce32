//! Training: the DCGAN and WGAN-GP iterations and the optimizer.

pub mod dcgan;
pub mod optim;
pub mod wgan_gp;
