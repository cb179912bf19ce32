//! The two kinds of work behind a table: training a run, and scoring a cell of it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use safetensors::{Dtype, SafeTensors};

use super::grid::{Cell, Grid, RunKey, RunPlan};
use super::store::{CellResult, ReproduceDir};
use super::Options;
use crate::backend::Backend;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::fid::features::DEFAULT_BATCH;
use crate::fid::{features_of_images, InceptionV3, Score};
use crate::fsio::{copy_atomic, remove_stale_temps, write_atomic};
use crate::tensor::Tensor;
use crate::train::checkpoint::load_generator;
use crate::train::quality::Quality;
use crate::train::samples::{check_finite, noise, quantize, sample, SAMPLE_COUNT};
use crate::train::{load_config, save_config, train, RunDir, RunOptions, TrainConfig};

/// Mixed into a cell's seed for the noise of its generated images: apart from training's streams.
const SCORE_NOISE_STREAM: u64 = 0x5c0e_0000;

/// The run directory of a run.
pub fn run_dir(dir: &ReproduceDir, key: &RunKey) -> RunDir {
    RunDir(dir.runs().join(key.to_string()))
}

/// A config with what may differ between two calls on one run blanked: the epochs (a later table may
/// extend the run; a call trains only as far as its own cells need), the backend and the version.
fn comparable(c: &TrainConfig) -> TrainConfig {
    TrainConfig { epochs: 0, backend: String::new(), version: String::new(), ..c.clone() }
}

/// Trains `plan`'s run up to its last epoch, unless every checkpoint its cells score exists already.
/// An existing run directory is resumed from its last checkpoint; one a kill left before its config was
/// written (nothing to resume) is started again.
#[allow(clippy::too_many_arguments)]
pub fn train_run<B: Backend>(
    b: &B,
    dir: &ReproduceDir,
    grid: &Grid,
    plan: &RunPlan,
    data: &Path,
    all_files: &[PathBuf],
    o: &Options,
    step: &str,
) -> Result<()> {
    let run = run_dir(dir, &plan.key);
    let last = *plan.epochs.last().expect("a run has at least one cell");
    if plan.epochs.iter().all(|&e| run.epoch_checkpoint(e - 1).exists()) {
        println!("{step}: trained before (epochs {:?} checkpointed); kept", plan.epochs);
        return Ok(());
    }
    let files = Dataset::select(all_files, Some(plan.key.images), plan.key.seed)?;
    let cfg = grid.train_config(plan, last, data.to_path_buf(), files, b.name());
    let resume = run.config().exists();
    let mut created = None;
    if resume {
        let have = load_config(&run.config())?;
        if comparable(&have) != comparable(&cfg) {
            return Err(Error::Other(format!(
                "{} was trained with other settings than this call's; remove it or use another --out",
                run.0.display()
            )));
        }
        remove_stale_temps(&run.0);
        remove_stale_temps(&run.checkpoints());
    } else {
        if run.0.exists() {
            // Killed before config.json: nothing in it can be resumed, and only `reproduce` writes here.
            std::fs::remove_dir_all(&run.0).map_err(|e| Error::io(&run.0, e))?;
        }
        created = Some(RunDir::create(&run.0, false, Some(data))?);
    }
    let dataset = match Dataset::load_cache(&run.dataset_cache()) {
        Ok(d) if d.files == cfg.files => d,
        _ => {
            let d = Dataset::load_cancellable(&cfg.files, &cfg.preprocess()?, &o.stop)?;
            d.save_cache(&run.dataset_cache())?;
            d
        }
    };
    save_config(&run.config(), &cfg)?;
    println!(
        "{step}: training {} on {} images to epoch {last} (batch {}, width {}{})",
        cfg.model.name(),
        dataset.len(),
        cfg.batch_size,
        cfg.widths.ngf,
        if resume { ", resumed from its last checkpoint" } else { "" }
    );
    let opts = RunOptions { progress: o.progress, stop: o.stop.clone(), max_iterations: None, graphs: true };
    let summary = train(b, &cfg, &run, &dataset, resume, &opts)?;
    if let Some(c) = created {
        c.keep();
    }
    if summary.interrupted {
        return Err(Error::Interrupted(format!(
            "stopped while training {} (checkpoint written); run the same command again to continue",
            plan.key
        )));
    }
    Ok(())
}

const FEATURES_TENSOR: &str = "features";
const FEATURES_FILES_KEY: &str = "files";

/// The Inception features of a run's training images (the 64×64 tensors the discriminator sees, as 8-bit
/// images: the paper's protocol), cached per training set: runs on the same images share them.
fn real_features<B: Backend>(
    b: &B,
    model: &InceptionV3<B::Tensor>,
    dir: &ReproduceDir,
    key: &RunKey,
    dataset: &Dataset,
    dims: usize,
) -> Result<Vec<f64>> {
    let path = dir.real_features().join(format!("n{}-s{}-d{dims}.safetensors", key.images, key.seed));
    let files: Vec<String> = dataset.files.iter().map(|f| f.to_string_lossy().into_owned()).collect();
    if let Ok(bytes) = std::fs::read(&path) {
        let cached = (|| {
            let (_, header) = SafeTensors::read_metadata(&bytes).ok()?;
            let same = header.metadata().as_ref()?.get(FEATURES_FILES_KEY)? == &serde_json::to_string(&files).ok()?;
            let st = SafeTensors::deserialize(&bytes).ok()?;
            let view = st.tensor(FEATURES_TENSOR).ok()?;
            (same && view.dtype() == Dtype::F64 && view.shape() == [files.len(), dims])
                .then(|| view.data().chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
        })();
        if let Some(rows) = cached {
            return Ok(rows);
        }
    }
    let (images, shape) = quantize(&dataset.to_batch_tensor()?);
    let rows = features_of_images(b, model, &images, shape, dims, DEFAULT_BATCH)?;
    let view = safetensors::tensor::TensorView::new(Dtype::F64, vec![files.len(), dims], bytemuck::cast_slice(&rows))
        .map_err(|e| Error::format(&path, e.to_string()))?;
    let meta = HashMap::from([(FEATURES_FILES_KEY.to_string(), serde_json::to_string(&files).expect("strings serialise"))]);
    let bytes = safetensors::serialize([(FEATURES_TENSOR, view)], &Some(meta)).map_err(|e| Error::format(&path, e.to_string()))?;
    write_atomic(&path, &bytes)?;
    Ok(rows)
}

/// The first `n` images of a batch [N, ...].
fn first(batch: &Tensor, n: usize) -> Result<Tensor> {
    let n = n.min(batch.shape()[0]);
    let per: usize = batch.shape()[1..].iter().product();
    let mut shape = batch.shape().to_vec();
    shape[0] = n;
    Tensor::new(&shape, batch.data()[..n * per].to_vec())
}

/// Scores one cell: `grid.generated` images from the generator of the run's checkpoint at the cell's epoch
/// (noise seeded by the cell), their Inception features against the training images' ([`Score`]), the
/// sample quality of the first 64, and the run's sample grid at that epoch copied beside the results.
pub fn score_cell<B: Backend>(
    b: &B,
    model: &InceptionV3<B::Tensor>,
    dir: &ReproduceDir,
    grid: &Grid,
    cell: &Cell,
    dims: usize,
) -> Result<CellResult> {
    let t0 = Instant::now();
    let run = run_dir(dir, &cell.run());
    let checkpoint = run.epoch_checkpoint(cell.epochs - 1);
    let (g, widths) = load_generator(b, &checkpoint)?;
    let dataset = Dataset::load_cache(&run.dataset_cache())?;
    let real = real_features(b, model, dir, &cell.run(), &dataset, dims)?;
    let z = noise(&mut ChaCha8Rng::seed_from_u64(cell.seed ^ SCORE_NOISE_STREAM ^ cell.epochs as u64), grid.generated, widths.nz);
    let images = sample(b, &g, &z)?;
    check_finite(&images, &format!("{cell} not scored; checkpoint {}", checkpoint.display()))?;
    let (bytes, shape) = quantize(&images);
    let generated = features_of_images(b, model, &bytes, shape, dims, DEFAULT_BATCH)?;
    let score = Score::of_features(&generated, &real, dims, cell.seed)?;
    let training = dataset.gather(&(0..dataset.len().min(SAMPLE_COUNT)).collect::<Vec<_>>())?;
    let quality = Quality::measure(&first(&images, SAMPLE_COUNT)?, &training)?;
    copy_atomic(&run.sample_grid(cell.epochs - 1), &dir.grid_image(cell))?;
    Ok(CellResult { cell: *cell, score, quality, seconds: t0.elapsed().as_secs_f64() })
}
