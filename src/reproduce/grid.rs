//! The paper's experiments as a grid of cells, at three scales.
//!
//! A **cell** is one FID of one table: a model trained on n images for E epochs with one seed. Cells that
//! differ only in E share one training **run** (training is deterministic in the seed, so the first 500
//! epochs of an 800-epoch run are a 500-epoch run): Table 1's 1000-image cell, Table 2's epochs and Table 3's
//! DCGAN are one DCGAN run on 1000 images, checkpointed at each epoch a table asks for. (The paper trained
//! them separately: its 1.494 at 1000 images / 500 epochs in Table 1 and 1.451 at 500 epochs in Table 2 are
//! two runs of one setting.)
//!
//! | scale | Table 1 (DCGAN) | Table 2 (DCGAN) | Table 3 | batch | width | generated per FID |
//! |---|---|---|---|---|---|---|
//! | paper | 500/1000/1500/2000 images × 500 epochs | 1000 images, epochs 500/600/700/800 | DCGAN vs WGAN-GP, 1000 images, 700 epochs | 128 | 64 | 1000 |
//! | small | 60/120/180/240 × 50 | 120, epochs 50/60/70/80 | 120 images, 70 epochs | 16 | 32 | 250 |
//! | tiny | 32/64 × 5 | 64, epochs 3/5 | 64 images, 5 epochs | 16 | 8 | 64 |
//!
//! `small` keeps the paper's shape: 0.12× the images with a batch of 16 (≈ 0.12 × 128), so an epoch is as many
//! iterations as the paper's, and 0.1× the epochs; networks of half the width. Every FID is of the generated
//! images against the run's own training images (the paper's protocol), at 768-d unless `--dims` says else.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::train::config::{paper, TrainConfig};
use crate::train::ModelKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Scale {
    /// The paper's grid (needs 2000 images and a GPU-sized budget).
    Paper,
    /// About 25 min on a 2-core CPU (measured: EXPERIMENTS.md); needs 240 images.
    Small,
    /// A few minutes on a 2-core CPU (CI); needs 64 images.
    Tiny,
}

impl Scale {
    pub fn name(self) -> &'static str {
        match self {
            Scale::Paper => "paper",
            Scale::Small => "small",
            Scale::Tiny => "tiny",
        }
    }
}

/// The paper's tables that `reproduce` fills (Table 4 is the classifier experiment, not here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Table {
    /// FID vs training-set size.
    T1,
    /// FID vs epochs.
    T2,
    /// DCGAN vs WGAN-GP.
    T3,
}

impl Table {
    pub const ALL: [Table; 3] = [Table::T1, Table::T2, Table::T3];

    pub fn number(self) -> usize {
        match self {
            Table::T1 => 1,
            Table::T2 => 2,
            Table::T3 => 3,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Table::T1 => "FID of DCGAN vs training-set size",
            Table::T2 => "FID of DCGAN vs training epochs",
            Table::T3 => "FID of DCGAN vs WGAN-GP",
        }
    }
}

/// The paper's values (its Tables 1–3), row by row.
pub const PAPER_TABLE1: [f64; 4] = [1.763, 1.494, 1.405, 1.249];
pub const PAPER_TABLE2: [f64; 4] = [1.451, 1.415, 1.399, 1.640];
pub const PAPER_TABLE3: [f64; 2] = [1.399, 1.583];

/// Every size of one scale's grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    pub scale: Scale,
    pub table1_images: Vec<usize>,
    pub table1_epochs: usize,
    pub table2_images: usize,
    pub table2_epochs: Vec<usize>,
    pub table3_images: usize,
    pub table3_epochs: usize,
    pub batch_size: usize,
    /// G's and D's feature maps (ngf = ndf).
    pub width: usize,
    /// Generated images per FID.
    pub generated: usize,
}

impl Grid {
    pub fn of(scale: Scale) -> Grid {
        match scale {
            Scale::Paper => Grid {
                scale,
                table1_images: vec![500, 1000, 1500, 2000],
                table1_epochs: paper::EPOCHS,
                table2_images: 1000,
                table2_epochs: vec![500, 600, 700, 800],
                table3_images: 1000,
                table3_epochs: 700,
                batch_size: paper::BATCH,
                width: paper::WIDTH,
                generated: paper::FID_COUNT,
            },
            Scale::Small => Grid {
                scale,
                table1_images: vec![60, 120, 180, 240],
                table1_epochs: 50,
                table2_images: 120,
                table2_epochs: vec![50, 60, 70, 80],
                table3_images: 120,
                table3_epochs: 70,
                batch_size: 16,
                width: 32,
                generated: 250,
            },
            Scale::Tiny => Grid {
                scale,
                table1_images: vec![32, 64],
                table1_epochs: 5,
                table2_images: 64,
                table2_epochs: vec![3, 5],
                table3_images: 64,
                table3_epochs: 5,
                batch_size: 16,
                width: 8,
                generated: 64,
            },
        }
    }

    /// The rows of a table, in the paper's order, each with the paper's value for its row.
    pub fn rows(&self, table: Table) -> Vec<Row> {
        let dcgan = ModelKind::Dcgan;
        match table {
            Table::T1 => self
                .table1_images
                .iter()
                .zip(PAPER_TABLE1.iter().chain([f64::NAN; 4].iter()))
                .map(|(&images, &paper)| Row { table, model: dcgan, images, epochs: self.table1_epochs, paper })
                .collect(),
            Table::T2 => self
                .table2_epochs
                .iter()
                .zip(PAPER_TABLE2.iter().chain([f64::NAN; 4].iter()))
                .map(|(&epochs, &paper)| Row { table, model: dcgan, images: self.table2_images, epochs, paper })
                .collect(),
            Table::T3 => [ModelKind::Dcgan, ModelKind::WganGp]
                .into_iter()
                .zip(PAPER_TABLE3)
                .map(|(model, paper)| Row { table, model, images: self.table3_images, epochs: self.table3_epochs, paper })
                .collect(),
        }
    }

    /// The most images any row of `tables` trains on.
    pub fn images_needed(&self, tables: &[Table]) -> usize {
        tables.iter().flat_map(|&t| self.rows(t)).map(|r| r.images).max().unwrap_or(0)
    }

    /// Every training run the tables need, each with the epochs at which a cell scores it. A run's
    /// checkpoint interval comes from every table (not only those asked for), so a later call that adds a
    /// table extends the run instead of retraining it.
    pub fn runs(&self, tables: &[Table], seeds: u64) -> Vec<RunPlan> {
        let mut plans: Vec<RunPlan> = Vec::new();
        for seed in 0..seeds {
            for row in tables.iter().flat_map(|&t| self.rows(t)) {
                let key = RunKey { model: row.model, images: row.images, seed };
                match plans.iter_mut().find(|p| p.key == key) {
                    Some(p) => p.epochs.push(row.epochs),
                    None => plans.push(RunPlan { key, epochs: vec![row.epochs], checkpoint_every: 0 }),
                }
            }
        }
        for p in &mut plans {
            p.epochs.sort_unstable();
            p.epochs.dedup();
            let every_epoch = Table::ALL.iter().flat_map(|&t| self.rows(t)).filter(|r| r.model == p.key.model && r.images == p.key.images);
            p.checkpoint_every = every_epoch.map(|r| r.epochs).fold(0, gcd);
        }
        plans
    }

    /// The training configuration of a run, to `epochs` epochs, on `files` from `data`.
    pub fn train_config(
        &self,
        plan: &RunPlan,
        epochs: usize,
        data: std::path::PathBuf,
        files: Vec<std::path::PathBuf>,
        backend: String,
    ) -> TrainConfig {
        let mut cfg = TrainConfig::paper(plan.key.model, data, files, backend);
        cfg.epochs = epochs;
        cfg.batch_size = self.batch_size;
        cfg.seed = plan.key.seed;
        cfg.widths.ngf = self.width;
        cfg.widths.ndf = self.width;
        cfg.checkpoint_every = plan.checkpoint_every;
        cfg
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// One row of a table: what is trained and scored, and the paper's number for it (NaN where the paper has
/// no row in that position).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Row {
    pub table: Table,
    pub model: ModelKind,
    pub images: usize,
    pub epochs: usize,
    pub paper: f64,
}

impl Row {
    pub fn cell(&self, seed: u64) -> Cell {
        Cell { model: self.model, images: self.images, epochs: self.epochs, seed }
    }
}

/// One FID: `model` trained on `images` images for `epochs` epochs from `seed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    pub model: ModelKind,
    pub images: usize,
    pub epochs: usize,
    pub seed: u64,
}

impl Cell {
    pub fn run(&self) -> RunKey {
        RunKey { model: self.model, images: self.images, seed: self.seed }
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-e{:04}", self.run(), self.epochs)
    }
}

/// One training run: `model` on the first `images` of the seed's shuffled image list, from `seed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunKey {
    pub model: ModelKind,
    pub images: usize,
    pub seed: u64,
}

impl fmt::Display for RunKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-n{}-s{}", self.model.name(), self.images, self.seed)
    }
}

/// A run and the epochs its cells score (sorted), checkpointed every `checkpoint_every` epochs.
#[derive(Clone, Debug, PartialEq)]
pub struct RunPlan {
    pub key: RunKey,
    pub epochs: Vec<usize>,
    pub checkpoint_every: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paper_grid_is_five_runs_and_the_tables_share_the_1000_image_dcgan() {
        let g = Grid::of(Scale::Paper);
        let runs = g.runs(&Table::ALL, 1);
        let names: Vec<String> = runs.iter().map(|r| r.key.to_string()).collect();
        assert_eq!(names, ["dcgan-n500-s0", "dcgan-n1000-s0", "dcgan-n1500-s0", "dcgan-n2000-s0", "wgan-gp-n1000-s0"]);
        let shared = &runs[1];
        assert_eq!(shared.epochs, [500, 600, 700, 800]);
        assert_eq!(shared.checkpoint_every, 100);
        assert_eq!(runs[0].checkpoint_every, 500);
        assert_eq!(runs[4].epochs, [700]);
        assert_eq!(g.rows(Table::T2).iter().map(|r| r.paper).collect::<Vec<_>>(), PAPER_TABLE2);
    }

    #[test]
    fn a_run_keeps_the_checkpoints_of_tables_not_asked_for() {
        let g = Grid::of(Scale::Small);
        let only_t1 = g.runs(&[Table::T1], 2);
        assert_eq!(only_t1.len(), 8);
        let r120 = only_t1.iter().find(|r| r.key.images == 120 && r.key.seed == 1).unwrap();
        assert_eq!((r120.epochs.as_slice(), r120.checkpoint_every), ([50].as_slice(), 10));
    }

    #[test]
    fn small_keeps_the_papers_iterations_per_epoch() {
        let (p, s) = (Grid::of(Scale::Paper), Grid::of(Scale::Small));
        assert_eq!(p.table2_images.div_ceil(p.batch_size), s.table2_images.div_ceil(s.batch_size));
    }
}
