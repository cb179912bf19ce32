//! Training: the DCGAN and WGAN-GP iterations, the optimizer, and the loop that runs them with its
//! configuration, run directory, checkpoints, metrics, samples and plots.

pub mod checkpoint;
pub mod config;
pub mod dcgan;
pub mod fid_probe;
pub mod graphed;
pub mod metrics;
pub mod optim;
pub mod plots;
pub mod quality;
pub mod run;
pub mod run_dir;
pub mod samples;
pub mod wgan_gp;

pub use config::{load_config, save_config, ModelKind, TrainConfig};
pub use run::{train, RunOptions, Summary};
pub use run_dir::RunDir;
