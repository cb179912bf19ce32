//! The output folder of `reproduce` and what makes it resumable:
//!
//! ```text
//! OUT/reproduce.json          the grid, feature size and data folder every cell here was made with
//! OUT/runs/<run>/             one `train` run directory per training run (resumed where it stopped)
//! OUT/real_features/*.safetensors   Inception features of each training set, computed once
//! OUT/cells/<cell>.json       one finished cell: its FID, interval, floor, KID and sample quality
//! OUT/grids/<cell>.png        the run's fixed-noise sample grid at the cell's epoch
//! OUT/results.md, results.csv, *.png   the report, rewritten after every cell
//! ```
//!
//! A cell is done when its JSON exists (written atomically, last); a call skips it. A call with other
//! settings (scale, feature size, data) than the folder's is refused: its cells would not be comparable.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::grid::{Cell, Grid, Table};
use crate::error::{Error, Result};
use crate::fid::Score;
use crate::fsio::{remove_stale_temps, write_atomic};
use crate::train::quality::Quality;

const SETTINGS: &str = "reproduce.json";

/// What every cell of a folder shares.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub grid: Grid,
    pub dims: usize,
    /// The data folder, absolute.
    pub data: PathBuf,
    /// The version that created the folder (informative; not compared).
    pub version: String,
}

/// One finished cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    pub cell: Cell,
    pub score: Score,
    /// 64 generated images against 64 training images.
    pub quality: Quality,
    /// Seconds spent scoring (generation, features, statistics).
    pub seconds: f64,
}

/// Every cell of the tables, seed by seed, each once (tables share cells).
pub fn cells_of(grid: &Grid, tables: &[Table], seeds: u64) -> Vec<Cell> {
    let mut cells: Vec<Cell> = Vec::new();
    for seed in 0..seeds {
        for row in tables.iter().flat_map(|&t| grid.rows(t)) {
            let cell = row.cell(seed);
            if !cells.contains(&cell) {
                cells.push(cell);
            }
        }
    }
    cells
}

pub struct ReproduceDir(pub PathBuf);

impl ReproduceDir {
    /// Opens `out` for `settings`: creates it (new or empty), or continues it if it was made with the same
    /// settings. Refuses a non-empty folder that `reproduce` did not make, and one made with other settings.
    pub fn open(out: &Path, settings: &Settings) -> Result<ReproduceDir> {
        let dir = ReproduceDir(out.to_path_buf());
        let path = dir.settings_path();
        if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            let have: Settings = serde_json::from_str(&text).map_err(|e| Error::format(&path, format!("not a reproduce record: {e}")))?;
            let same = Settings { version: settings.version.clone(), ..have.clone() } == *settings;
            if !same {
                return Err(Error::Other(format!(
                    "{} was made with other settings ({} scale, FID{}, data {}); this call asks for {} scale, FID{}, data {}: use another --out",
                    out.display(),
                    have.grid.scale.name(),
                    have.dims,
                    have.data.display(),
                    settings.grid.scale.name(),
                    settings.dims,
                    settings.data.display()
                )));
            }
            for sub in [out.to_path_buf(), dir.cells(), dir.grids(), dir.real_features()] {
                remove_stale_temps(&sub);
            }
            return Ok(dir);
        }
        if out.exists() {
            let empty = std::fs::read_dir(out).map_err(|e| Error::io(out, e))?.next().is_none();
            if !empty {
                return Err(Error::Other(format!(
                    "--out {} exists and is not a reproduce folder (it has no {SETTINGS}); nothing there is touched: choose a new or empty folder",
                    out.display()
                )));
            }
        }
        for sub in [dir.runs(), dir.cells(), dir.grids(), dir.real_features()] {
            std::fs::create_dir_all(&sub).map_err(|e| Error::io(&sub, e))?;
        }
        let json = serde_json::to_string_pretty(settings).map_err(|e| Error::Other(e.to_string()))?;
        write_atomic(&path, json.as_bytes())?;
        Ok(dir)
    }

    fn settings_path(&self) -> PathBuf {
        self.0.join(SETTINGS)
    }
    pub fn runs(&self) -> PathBuf {
        self.0.join("runs")
    }
    pub fn cells(&self) -> PathBuf {
        self.0.join("cells")
    }
    pub fn grids(&self) -> PathBuf {
        self.0.join("grids")
    }
    pub fn real_features(&self) -> PathBuf {
        self.0.join("real_features")
    }
    pub fn grid_image(&self, cell: &Cell) -> PathBuf {
        self.grids().join(format!("{cell}.png"))
    }
    fn cell_path(&self, cell: &Cell) -> PathBuf {
        self.cells().join(format!("{cell}.json"))
    }

    /// A finished cell's result, or `None` if it has not been scored.
    pub fn cell_result(&self, cell: &Cell) -> Result<Option<CellResult>> {
        let path = self.cell_path(cell);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let r: CellResult = serde_json::from_str(&text).map_err(|e| Error::format(&path, format!("not a cell result: {e}")))?;
        if r.cell != *cell {
            return Err(Error::format(&path, format!("holds the result of {} instead of {cell}", r.cell)));
        }
        Ok(Some(r))
    }

    pub fn save_cell_result(&self, r: &CellResult) -> Result<()> {
        let json = serde_json::to_string_pretty(r).map_err(|e| Error::Other(e.to_string()))?;
        write_atomic(&self.cell_path(&r.cell), json.as_bytes())
    }
}
