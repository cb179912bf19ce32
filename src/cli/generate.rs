//! `cxr-gan generate --checkpoint FILE --count N --out DIR [--seed S] [--force]`
//!
//! Writes `00000.png` … into DIR, with `generate.json` recording what was written. DIR must be new or
//! empty; `--force` replaces the outputs of an earlier `generate` there (and nothing else), so a folder
//! never mixes two generators' images, and no file this command did not write is overwritten.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::Args;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::backend::{dispatch, Backend, BackendTask};
use crate::error::{Error, Result};
use crate::fsio::{remove_stale_temps, write_atomic};
use crate::train::checkpoint::load_generator;
use crate::train::samples::{noise, png_name, sample, save_pngs, SAMPLE_BATCH};

/// The record of one `generate` in its output folder.
const MANIFEST: &str = "generate.json";

#[derive(Args)]
pub struct GenerateArgs {
    /// A checkpoint written by `train` (e.g. RUN_DIR/checkpoints/last.safetensors).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// How many 64×64 RGB PNGs to write.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// Output folder: new, empty, or (with --force) one an earlier `generate` wrote.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// Replace the images of an earlier `generate` in --out (only those; any other file is refused).
    #[arg(long)]
    pub force: bool,
}

/// generate.json: what was asked, and every file written (listed before the first is written, so that a
/// killed run's partial output is still known to be ours).
#[derive(Serialize, Deserialize)]
struct Manifest {
    checkpoint: PathBuf,
    seed: u64,
    count: usize,
    complete: bool,
    files: Vec<String>,
}

/// Makes `out` ready for `count` new images: created if missing; if it holds anything, `force` must be
/// given and everything in it must be an earlier `generate`'s output (then that output is removed).
fn prepare_out(out: &Path, force: bool) -> Result<()> {
    if out.exists() && !out.is_dir() {
        return Err(Error::Other(format!("--out {} exists and is not a folder", out.display())));
    }
    if out.is_dir() {
        remove_stale_temps(out);
        let present: BTreeSet<String> = std::fs::read_dir(out)
            .map_err(|e| Error::io(out, e))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if !present.is_empty() {
            if !force {
                return Err(Error::Other(format!(
                    "--out {} is not empty; pass --force to replace an earlier `generate`'s images there (only those), or choose a new folder",
                    out.display()
                )));
            }
            let ours = read_manifest(out)?;
            let foreign: Vec<&String> = present.iter().filter(|n| *n != MANIFEST && !ours.contains(*n)).collect();
            if let Some(first) = foreign.first() {
                return Err(Error::Other(format!(
                    "--out {} holds {} file(s) that `generate` did not write (e.g. {first}); refusing to mix or overwrite them",
                    out.display(),
                    foreign.len()
                )));
            }
            for name in present.iter().filter(|n| ours.contains(*n)) {
                std::fs::remove_file(out.join(name)).map_err(|e| Error::io(out.join(name), e))?;
            }
            std::fs::remove_file(out.join(MANIFEST)).map_err(|e| Error::io(out.join(MANIFEST), e))?;
        }
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))
}

/// The file names an earlier `generate` recorded in `out`; an error if it left no record.
fn read_manifest(out: &Path) -> Result<BTreeSet<String>> {
    let path = out.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|_| {
        Error::Other(format!("--out {} was not written by `generate` (no {MANIFEST}); refusing to touch its files", out.display()))
    })?;
    let m: Manifest = serde_json::from_str(&text).map_err(|e| Error::format(&path, format!("not a generate record: {e}")))?;
    Ok(m.files.into_iter().collect())
}

struct Generate(GenerateArgs);

impl BackendTask for Generate {
    type Output = ();
    fn run<B: Backend>(self, b: &B) -> Result<()> {
        let a = self.0;
        let (g, widths) = load_generator(b, &a.checkpoint)?;
        prepare_out(&a.out, a.force)?;
        let mut manifest = Manifest {
            checkpoint: a.checkpoint.clone(),
            seed: a.seed,
            count: a.count,
            complete: false,
            files: (0..a.count).map(png_name).collect(),
        };
        let save = |m: &Manifest| {
            let json = serde_json::to_string_pretty(m).map_err(|e| Error::Other(e.to_string()))?;
            write_atomic(&a.out.join(MANIFEST), json.as_bytes())
        };
        save(&manifest)?;
        let mut rng = ChaCha8Rng::seed_from_u64(a.seed);
        let bar = indicatif::ProgressBar::new(a.count as u64);
        for start in (0..a.count).step_by(SAMPLE_BATCH) {
            let n = SAMPLE_BATCH.min(a.count - start);
            let images = sample(b, &g, &noise(&mut rng, n, widths.nz))?;
            save_pngs(&images, &a.out, start).map_err(|e| match e {
                Error::NonFinite(m) => Error::NonFinite(format!("{m}; checkpoint {}", a.checkpoint.display())),
                e => e,
            })?;
            bar.inc(n as u64);
        }
        bar.finish_and_clear();
        manifest.complete = true;
        save(&manifest)?;
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
