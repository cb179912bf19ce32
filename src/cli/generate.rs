//! `cxr-gan generate --checkpoint FILE --count N --out DIR [--seed S]`

use std::path::PathBuf;

use clap::Args;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::backend::{dispatch, Backend, BackendTask};
use crate::error::{Error, Result};
use crate::nn::dcgan::generator;
use crate::tensor::Tensor;
use crate::train::checkpoint::Checkpoint;
use crate::train::run::{check_compatible, sample, SAMPLE_BATCH};
use crate::train::samples::save_pngs;

#[derive(Args)]
pub struct GenerateArgs {
    /// A checkpoint written by `train` (e.g. RUN_DIR/checkpoints/last.safetensors).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// How many 64×64 RGB PNGs to write.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// Output folder (created).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value = "auto")]
    pub backend: String,
}

struct Generate(GenerateArgs);

impl BackendTask for Generate {
    type Output = ();
    fn run<B: Backend>(self, b: &B) -> Result<()> {
        let a = self.0;
        let ck = Checkpoint::load(&a.checkpoint)?;
        let (_, widths) = check_compatible(&ck, &a.checkpoint, None, None)?;
        let mut g = generator(b, widths, &mut ChaCha8Rng::seed_from_u64(0))?;
        g.load_state_dict(b, "G.", |k| ck.get(k).cloned()).map_err(|e| Error::format(&a.checkpoint, e.to_string()))?;
        std::fs::create_dir_all(&a.out).map_err(|e| Error::io(&a.out, e))?;
        let mut rng = ChaCha8Rng::seed_from_u64(a.seed);
        let bar = indicatif::ProgressBar::new(a.count as u64);
        for start in (0..a.count).step_by(SAMPLE_BATCH) {
            let n = SAMPLE_BATCH.min(a.count - start);
            let z: Vec<f32> = (0..n * widths.nz).map(|_| rng.sample(StandardNormal)).collect();
            let images = sample(b, &g, &Tensor::new(&[n, widths.nz, 1, 1], z)?)?;
            save_pngs(&images, &a.out, start)?;
            bar.inc(n as u64);
        }
        bar.finish_and_clear();
        println!("wrote {} images to {}", a.count, a.out.display());
        Ok(())
    }
}

pub fn run(a: GenerateArgs) -> Result<()> {
    if a.count == 0 {
        return Err(Error::invalid("generate", "--count must be positive"));
    }
    let backend = a.backend.clone();
    dispatch(&backend, Generate(a))
}
