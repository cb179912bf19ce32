//! The command line: parse, call the library, print. One file per subcommand.

pub mod bench;
pub mod classify;
pub mod conformance;
pub mod cuda_check;
pub mod devices;
pub mod fid;
pub mod generate;
pub mod reproduce;
pub mod train;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cxr-gan", version, about = "DCGAN and WGAN-GP on chest X-rays, judged by FID")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// How the cuda-native backend computes its convolutions: fp32 (SIMT, exact f32), tf32 (tensor cores,
    /// TF32 inputs, f32 accumulation; PyTorch's default for convolutions) or bf16 (tensor cores, bf16 inputs,
    /// f32 accumulation; storage stays f32). Other backends are always fp32.
    #[arg(long, global = true, default_value = "fp32", value_parser = ["fp32", "tf32", "bf16"])]
    pub precision: String,
}

// Parsed once per process: the size of the largest variant costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum Command {
    /// Train a DCGAN or WGAN-GP (with no --data: on a generated demo set of synthetic phantoms).
    Train(train::TrainArgs),
    /// Write images from a checkpoint's generator.
    Generate(generate::GenerateArgs),
    /// The FID between two image folders or .npz statistics, as pytorch-fid (or --save-stats FOLDER OUT.npz).
    Fid(fid::FidArgs),
    /// The paper's Tables 1–3 (FID vs data size, vs epochs, DCGAN vs WGAN-GP), resumable, with floors, CIs and KID.
    Reproduce(reproduce::ReproduceArgs),
    Classify(classify::ClassifyArgs),
    /// Check every kernel against `cpu`, then time it; then whole DCGAN / WGAN-GP iterations and FID images/s.
    Bench(bench::BenchArgs),
    /// What each backend can run on here: for CUDA, the driver, devices, NVRTC, headers and PTX target.
    Devices(devices::DevicesArgs),
    /// CI: compile every CubeCL and kernels/cuda kernel to CUDA offline (NVRTC + ptxas from NVIDIA's wheels).
    #[command(hide = true)]
    CudaCompileCheck(cuda_check::CudaCheckArgs),
    /// The golden conformance run (as `cargo test --test golden`, without the f64 oracle) on cpu, wgpu, cuda.
    Conformance(conformance::ConformanceArgs),
}

pub fn main() -> crate::Result<()> {
    let cli = Cli::parse();
    crate::backend::set_precision(crate::backend::cuda_native::Precision::parse(&cli.precision)?);
    match cli.command {
        Command::Train(a) => train::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Fid(a) => fid::run(a),
        Command::Reproduce(a) => reproduce::run(a),
        Command::Classify(a) => classify::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Devices(a) => devices::run(a),
        Command::CudaCompileCheck(a) => cuda_check::run(a),
        Command::Conformance(a) => conformance::run(a),
    }
}

/// The flag a long command polls: the first Ctrl-C sets it (the command stops at `when`, keeping what it
/// finished, and exits 130); a second one exits 130 at once (atomic writes keep every file whole; a stray
/// temp file is removed by the next run).
pub fn stop_on_ctrl_c(when: &'static str) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nCtrl-C: stopping {when} (press again to quit at once)");
    });
    stop
}
