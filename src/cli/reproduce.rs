//! `cxr-gan reproduce`: the paper's Tables 1–4, resumable cell by cell.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::backend::{dispatch, Backend, BackendTask};
use crate::error::Result;
use crate::reproduce::{reproduce, Options, Scale, Table};
use crate::train::config::paper;

#[derive(Clone, Copy, ValueEnum)]
pub enum TableArg {
    #[value(name = "1")]
    One,
    #[value(name = "2")]
    Two,
    #[value(name = "3")]
    Three,
    /// The classifier with and without GAN images (trains Table 3's generators too).
    #[value(name = "4")]
    Four,
    All,
}

#[derive(Args)]
pub struct ReproduceArgs {
    /// Folder of chest X-rays: the COVID-19 Radiography Database's COVID folder (with images/) or any
    /// folder of X-rays.
    #[arg(long)]
    pub data: PathBuf,
    /// Which of the paper's tables: 1 (FID vs training-set size), 2 (FID vs epochs), 3 (DCGAN vs
    /// WGAN-GP), 4 (a COVID-19 classifier with and without the GANs' images; needs --negative) or all
    /// (Table 4 included when --negative is given).
    #[arg(long, value_enum, default_value = "all")]
    pub table: TableArg,
    /// paper: the paper's grid (2000 images, 500–800 epochs, batch 128); small: 240 images, about 25 min
    /// on 2 CPU cores; tiny: 64 images, about 2 min. The exact grids: src/reproduce/grid.rs and the
    /// header of results.md.
    #[arg(long, value_enum, default_value = "paper")]
    pub scale: Scale,
    /// Output folder; run the same command again to continue a stopped call (finished cells are kept).
    #[arg(long)]
    pub out: PathBuf,
    /// Repeat every cell with seeds 0..K (tables show mean ± sd).
    #[arg(long, default_value_t = 1)]
    pub seeds: u64,
    /// Inception feature size of every FID: 64, 192, 768 (the paper's) or 2048.
    #[arg(long, default_value_t = paper::FID_DIMS)]
    pub dims: usize,
    /// The FID Inception weights (default: $CXR_GAN_FID_WEIGHTS, then the user cache).
    #[arg(long)]
    pub fid_weights: Option<PathBuf>,
    /// Table 4's negative class: a folder of normal chest X-rays (--data is the positive class).
    #[arg(long)]
    pub negative: Option<PathBuf>,
    #[arg(long, default_value = "auto")]
    pub backend: String,
}

struct Reproduce(Options);

impl BackendTask for Reproduce {
    type Output = ();
    fn run<B: Backend>(self, b: &B) -> Result<()> {
        let outcome = reproduce(b, &self.0)?;
        println!("{} cells ({} scored now); results in {}", outcome.cells, outcome.scored_now, outcome.results.display());
        Ok(())
    }
}

pub fn run(a: ReproduceArgs) -> Result<()> {
    let stop = super::stop_on_ctrl_c("after this iteration or cell");
    let tables = match a.table {
        TableArg::One => vec![Table::T1],
        TableArg::Two => vec![Table::T2],
        TableArg::Three | TableArg::Four => vec![Table::T3],
        TableArg::All => Table::ALL.to_vec(),
    };
    if matches!(a.table, TableArg::Four) && a.negative.is_none() {
        return Err(crate::Error::invalid(
            "reproduce",
            "--table 4 needs --negative DIR (normal chest X-rays; --data is the COVID-19 class)",
        ));
    }
    let table4_negative = if matches!(a.table, TableArg::Four | TableArg::All) { a.negative.clone() } else { None };
    let options = Options {
        data: a.data,
        tables,
        scale: a.scale,
        seeds: a.seeds,
        dims: a.dims,
        out: a.out,
        fid_weights: a.fid_weights,
        table4_negative,
        stop,
        progress: true,
    };
    dispatch(&a.backend, Reproduce(options))
}
