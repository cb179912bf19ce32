//! The command line: parse, call the library, print. One file per subcommand.

pub mod bench;
pub mod conformance;
pub mod cuda_check;
pub mod devices;
pub mod fid;
pub mod generate;
pub mod train;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cxr-gan", version, about = "DCGAN and WGAN-GP on chest X-rays, judged by FID")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Train a DCGAN or WGAN-GP (with no --data: on a generated demo set of synthetic phantoms).
    Train(train::TrainArgs),
    /// Write images from a checkpoint's generator.
    Generate(generate::GenerateArgs),
    /// The FID between two image folders or .npz statistics, as pytorch-fid (or --save-stats FOLDER OUT.npz).
    Fid(fid::FidArgs),
    /// Check every kernel against `cpu`, then time it; then whole DCGAN / WGAN-GP iterations and FID images/s.
    Bench(bench::BenchArgs),
    /// What each backend can run on here: for CUDA, the driver, devices, NVRTC, headers and PTX target.
    Devices(devices::DevicesArgs),
    /// CI: compile every cube-backend kernel to CUDA offline (NVRTC + ptxas from NVIDIA's wheels).
    #[command(hide = true)]
    CudaCompileCheck(cuda_check::CudaCheckArgs),
    /// The golden conformance run (as `cargo test --test golden`, without the f64 oracle) on cpu, wgpu, cuda.
    Conformance(conformance::ConformanceArgs),
}

pub fn main() -> crate::Result<()> {
    match Cli::parse().command {
        Command::Train(a) => train::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Fid(a) => fid::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Devices(a) => devices::run(a),
        Command::CudaCompileCheck(a) => cuda_check::run(a),
        Command::Conformance(a) => conformance::run(a),
    }
}
