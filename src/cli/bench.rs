//! `cxr-gan bench [--backend B] [--quick] [--batch N] [--fid-batch N] [--only SUBSTRING] [--json FILE] [--list]`

use std::path::PathBuf;

use clap::Args;

use crate::bench::{self, Options};
use crate::error::{Error, Result};

#[derive(Args)]
pub struct BenchArgs {
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// A short run: batch 16, Inception batch 2, fewer timed calls.
    #[arg(long)]
    pub quick: bool,
    /// DCGAN / WGAN-GP batch (default 128; 16 with --quick).
    #[arg(long)]
    pub batch: Option<usize>,
    /// InceptionV3 batch, for its ops and the FID pass (default 50; 2 with --quick).
    #[arg(long)]
    pub fid_batch: Option<usize>,
    /// Only the cases whose group and name contain this (case-insensitive), e.g. `conv2d_bwd`, `inception`.
    #[arg(long)]
    pub only: Option<String>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// List the cases and exit.
    #[arg(long)]
    pub list: bool,
}

pub fn run(a: BenchArgs) -> Result<()> {
    let mut o = Options::new(a.quick);
    o.batch = a.batch.unwrap_or(o.batch);
    o.fid_batch = a.fid_batch.unwrap_or(o.fid_batch);
    o.only = a.only;
    o.json = a.json;
    if o.batch == 0 || o.fid_batch == 0 {
        return Err(Error::invalid("bench", "--batch and --fid-batch must be positive"));
    }
    if a.list {
        bench::list(&o)?.iter().for_each(|l| println!("{l}"));
        return Ok(());
    }
    let json = o.json.clone();
    let report = bench::run(&a.backend, o)?;
    if let Some(path) = json {
        println!("wrote {}", path.display());
    }
    let failed = report.failures();
    if !failed.is_empty() {
        let names = failed.iter().map(|r| format!("{} {}", r.group, r.name)).collect::<Vec<_>>().join(", ");
        return Err(Error::Other(format!("{} of {} cases failed their check: {names}", failed.len(), report.rows.len())));
    }
    println!("all {} cases within tolerance of cpu", report.rows.len());
    Ok(())
}
