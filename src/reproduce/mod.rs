//! `cxr-gan reproduce`: the paper's Tables 1–3 in one command, resumable cell by cell.
//!
//! - [`grid`]: the tables as cells and training runs, at the paper's scale and two smaller ones.
//! - [`store`]: the output folder (settings, runs, one JSON per finished cell, sample grids) and the rules
//!   that make a killed call continue where it stopped.
//! - [`cells`]: training a run (an ordinary `train` run directory, resumed if it exists) and scoring a cell
//!   (its checkpoint's generator → images → Inception features → FID, interval, floor, KID).
//! - [`report`]: results.md and results.csv beside the paper's values; [`figures`]: the plots.

pub mod cells;
pub mod figures;
pub mod grid;
pub mod report;
pub mod store;
pub mod table4;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::backend::Backend;
use crate::data::list_images;
use crate::error::{Error, Result};
use crate::fid::inception::{block_for_dims, find_weights};
use crate::fid::InceptionV3;
use crate::train::config::version;

pub use grid::{Grid, Scale, Table};
pub use store::{CellResult, ReproduceDir, Settings};

/// What one call does.
pub struct Options {
    /// The folder of X-rays (flat, or the Radiography Database's COVID/ with images/).
    pub data: PathBuf,
    pub tables: Vec<Table>,
    pub scale: Scale,
    /// Repeat every cell with seeds 0..seeds.
    pub seeds: u64,
    /// Inception feature size of every FID.
    pub dims: usize,
    pub out: PathBuf,
    pub fid_weights: Option<PathBuf>,
    /// Set by Ctrl-C: stop after the current iteration or cell.
    pub stop: Arc<AtomicBool>,
    /// Progress bars (off in tests).
    pub progress: bool,
    /// Table 4 (the classifier with and without GAN images): the folder of negative (normal) images. Its
    /// generators are Table 3's, so `tables` must hold Table 3.
    pub table4_negative: Option<PathBuf>,
}

/// What a finished call reports.
pub struct Outcome {
    pub cells: usize,
    /// Cells scored by this call (the rest were finished before).
    pub scored_now: usize,
    pub results: PathBuf,
}

fn check_stop(stop: &AtomicBool, out: &std::path::Path) -> Result<()> {
    if stop.load(Ordering::SeqCst) {
        return Err(Error::Interrupted(format!(
            "stopped; every finished cell is kept in {}: run the same command again to continue",
            out.display()
        )));
    }
    Ok(())
}

/// Trains what the tables need, scores every cell not scored before, and writes the results.
pub fn reproduce<B: Backend>(b: &B, o: &Options) -> Result<Outcome> {
    let t0 = Instant::now();
    block_for_dims(o.dims)?;
    if o.table4_negative.is_some() && !o.tables.contains(&Table::T3) {
        return Err(Error::invalid("reproduce", "Table 4 adds the images of Table 3's generators: run it with Table 3"));
    }
    if o.seeds == 0 {
        return Err(Error::invalid("reproduce", "--seeds must be at least 1"));
    }
    let grid = Grid::of(o.scale);
    let data = std::path::absolute(&o.data).map_err(|e| Error::io(&o.data, e))?;
    let files = list_images(&data)?;
    let need = grid.images_needed(&o.tables);
    if files.len() < need {
        return Err(Error::Other(format!(
            "--scale {} needs {need} images for these tables (the largest training set); {} holds {}",
            o.scale.name(),
            data.display(),
            files.len()
        )));
    }
    // Missing weights fail now, not after an hour of training.
    let weights = find_weights(o.fid_weights.as_deref())?;
    let settings = Settings { grid: grid.clone(), dims: o.dims, data: data.clone(), version: version() };
    let dir = ReproduceDir::open(&o.out, &settings)?;
    let runs = grid.runs(&o.tables, o.seeds);
    let cells = store::cells_of(&grid, &o.tables, o.seeds);
    println!(
        "reproduce: tables {} at {} scale, {} training runs, {} cells ({} seeds), FID{} of {} generated images each; data {} ({} images); out {}",
        o.tables.iter().map(|t| t.number().to_string()).collect::<Vec<_>>().join(","),
        o.scale.name(),
        runs.len(),
        cells.len(),
        o.seeds,
        o.dims,
        grid.generated,
        data.display(),
        files.len(),
        o.out.display()
    );
    let mut inception = None;
    let mut scored_now = 0;
    for (i, plan) in runs.iter().enumerate() {
        check_stop(&o.stop, &o.out)?;
        let step = format!("[run {}/{}] {}", i + 1, runs.len(), plan.key);
        cells::train_run(b, &dir, &grid, plan, &data, &files, o, &step)?;
        for cell in cells.iter().filter(|c| c.run() == plan.key) {
            if dir.cell_result(cell)?.is_some() {
                println!("{step}: {cell} was scored before; kept");
                continue;
            }
            check_stop(&o.stop, &o.out)?;
            let model = match &inception {
                Some(m) => m,
                None => inception.insert(InceptionV3::load(b, &weights)?),
            };
            let result = cells::score_cell(b, model, &dir, &grid, cell, o.dims)?;
            println!("{step}: {cell}: {} ({:.0} s)", result.score, result.seconds);
            dir.save_cell_result(&result)?;
            scored_now += 1;
            report::write(&dir, &grid, &o.tables, o.seeds)?;
        }
    }
    let mut results = report::write(&dir, &grid, &o.tables, o.seeds)?;
    if let Some(negative) = &o.table4_negative {
        check_stop(&o.stop, &o.out)?;
        table4::run(b, &dir, &grid, &data, negative, o.seeds, o)?;
        results = append_table4(&dir, &grid, &o.tables, o.seeds, results)?;
    }
    println!(
        "reproduce: done in {:.0} s; {} and results.csv, plots and sample grids in {}",
        t0.elapsed().as_secs_f64(),
        results.display(),
        o.out.display()
    );
    Ok(Outcome { cells: cells.len(), scored_now, results })
}

/// results.md with Table 4 after the FID tables.
fn append_table4(dir: &ReproduceDir, grid: &Grid, tables: &[Table], seeds: u64, results: PathBuf) -> Result<PathBuf> {
    let results = report::write(dir, grid, tables, seeds).unwrap_or(results);
    if let Some(t4) = table4::markdown(dir, grid, seeds)? {
        let mut text = std::fs::read_to_string(&results).map_err(|e| Error::io(&results, e))?;
        text.push_str(&t4);
        crate::fsio::write_atomic(&results, text.as_bytes())?;
    }
    Ok(results)
}
