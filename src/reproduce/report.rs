//! results.md and results.csv: the paper's tables beside ours, from the cells finished so far (a cell not
//! yet scored shows as "…"), rewritten after every cell.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::figures;
use super::grid::{Grid, Row, Table};
use super::store::{CellResult, ReproduceDir};
use crate::error::Result;
use crate::fid::uncertainty::MeanSd;
use crate::fsio::write_atomic;

const CSV_HEADER: &str = "table,model,images,epochs,seed,paper_fid,dims,generated,real,fid,fid_ci_lo,fid_ci_hi,floor_mean,floor_sd,kid_mean,kid_std,kid_subset_size,mean_image_correlation,diversity_ratio,seconds";

/// One row of a table over the seeds scored so far.
pub struct RowResults {
    pub row: Row,
    pub results: Vec<CellResult>,
}

impl RowResults {
    pub fn fid(&self) -> MeanSd {
        MeanSd::of(&self.results.iter().map(|r| r.score.fid).collect::<Vec<_>>())
    }
    /// The 95 % bootstrap interval (over several seeds: the envelope of the seeds' intervals).
    pub fn ci(&self) -> (f64, f64) {
        let lo = self.results.iter().map(|r| r.score.fid_ci.lo).fold(f64::INFINITY, f64::min);
        let hi = self.results.iter().map(|r| r.score.fid_ci.hi).fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    }
    /// The real-vs-real floor: mean over seeds of the splits' mean, and of their sd.
    pub fn floor(&self) -> (f64, f64) {
        let n = self.results.len() as f64;
        let mean = self.results.iter().map(|r| r.score.floor.mean).sum::<f64>() / n;
        let sd = self.results.iter().map(|r| r.score.floor.sd).sum::<f64>() / n;
        (mean, sd)
    }
}

/// Every row of `table`, with the results found for seeds 0..seeds.
pub fn collect(dir: &ReproduceDir, grid: &Grid, table: Table, seeds: u64) -> Result<Vec<RowResults>> {
    grid.rows(table)
        .into_iter()
        .map(|row| {
            let mut results = Vec::new();
            for seed in 0..seeds {
                if let Some(r) = dir.cell_result(&row.cell(seed))? {
                    results.push(r);
                }
            }
            Ok(RowResults { row, results })
        })
        .collect()
}

/// A number with 4 significant digits (FIDs here span 0.01 to 300).
pub fn sig4(v: f64) -> String {
    if !v.is_finite() {
        return "—".into();
    }
    if v == 0.0 {
        return "0".into();
    }
    if v.abs() < 1e-3 {
        return format!("{v:.3e}");
    }
    let decimals = (3 - v.abs().log10().floor() as i32).clamp(0, 8) as usize;
    format!("{v:.decimals$}")
}

fn row_label(r: &Row) -> String {
    match r.table {
        Table::T1 => format!("{} images", r.images),
        Table::T2 => format!("{} epochs", r.epochs),
        Table::T3 => r.model.name().to_uppercase(),
    }
}

fn markdown_row(dir: &ReproduceDir, rr: &RowResults, seeds: u64) -> String {
    let label = row_label(&rr.row);
    let paper = sig4(rr.row.paper);
    if rr.results.is_empty() {
        return format!("| {label} | {paper} | … | | | | | |\n");
    }
    let fid = rr.fid();
    let ours = if rr.results.len() > 1 { format!("{} ± {}", sig4(fid.mean), sig4(fid.sd)) } else { sig4(fid.mean) };
    let seeds_note = if (rr.results.len() as u64) < seeds { format!(" ({} of {seeds} seeds)", rr.results.len()) } else { String::new() };
    let (lo, hi) = rr.ci();
    let (floor, floor_sd) = rr.floor();
    let kid = if rr.results.len() > 1 {
        let k = MeanSd::of(&rr.results.iter().map(|r| r.score.kid.mean).collect::<Vec<_>>());
        (k.mean, k.sd)
    } else {
        (rr.results[0].score.kid.mean, rr.results[0].score.kid.std)
    };
    let diversity = rr.results.iter().map(|r| r.quality.diversity_ratio).sum::<f64>() / rr.results.len() as f64;
    let grid = dir.grid_image(&rr.results[0].cell);
    let grid_name = grid.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    format!(
        "| {label} | {paper} | **{ours}**{seeds_note} | [{}, {}] | {} ± {} | {} ± {} | {} | [grid](grids/{grid_name}) |\n",
        sig4(lo),
        sig4(hi),
        sig4(floor),
        sig4(floor_sd),
        sig4(kid.0),
        sig4(kid.1),
        sig4(diversity)
    )
}

fn csv_rows(rr: &RowResults) -> String {
    let mut out = String::new();
    for r in &rr.results {
        let (s, c) = (&r.score, &r.cell);
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.1}",
            rr.row.table.number(),
            c.model.name(),
            c.images,
            c.epochs,
            c.seed,
            rr.row.paper,
            s.dims,
            s.generated,
            s.real,
            s.fid,
            s.fid_ci.lo,
            s.fid_ci.hi,
            s.floor.mean,
            s.floor.sd,
            s.kid.mean,
            s.kid.std,
            s.kid.subset_size,
            r.quality.mean_image_correlation,
            r.quality.diversity_ratio,
            r.seconds
        );
    }
    out
}

/// Writes results.md, results.csv and the figures for `tables`; returns results.md's path.
pub fn write(dir: &ReproduceDir, grid: &Grid, tables: &[Table], seeds: u64) -> Result<PathBuf> {
    let mut md = String::new();
    let mut csv = format!("{CSV_HEADER}\n");
    let _ = writeln!(md, "# cxr-gan reproduce: the paper's Tables 1–3\n");
    let _ = writeln!(
        md,
        "Scale **{}**: batch {}, networks of width {}, {} generated images per FID against the run's training images, \
         seeds 0..{}. Written by `cxr-gan reproduce`; every number below is in `results.csv`.\n",
        grid.scale.name(),
        grid.batch_size,
        grid.width,
        grid.generated,
        seeds
    );
    let _ = writeln!(
        md,
        "How to read a row: **ours** is the FID (mean ± sd over seeds when there are several); the **95 % CI** is a \
         bootstrap over the generated images (over several seeds: from the lowest seed's bound to the highest's); the **floor** is the FID between two random halves of the same \
         training images (mean ± sd over 10 splits): a generator indistinguishable from the data would score \
         about there, so only the distance above it measures the generator. **KID** is torch-fidelity's unbiased \
         estimate (mean ± std over 100 subsets; over seeds when there are several); unlike FID it does not grow \
         as n shrinks. **Diversity** is the mean pairwise distance among 64 generated images over the same among \
         64 training images (≈ 1: as varied as the data; near 0: mode collapse). The paper's values are at its own \
         scale, image count and preprocessing; only at `--scale paper` on the full data set are they comparable.\n"
    );
    for &table in tables {
        let rows = collect(dir, grid, table, seeds)?;
        let _ = writeln!(md, "## Table {}: {}\n", table.number(), table.title());
        let what = match table {
            Table::T1 => format!("DCGAN, {} epochs", grid.table1_epochs),
            Table::T2 => format!("DCGAN, {} images", grid.table2_images),
            Table::T3 => format!("{} images, {} epochs", grid.table3_images, grid.table3_epochs),
        };
        let _ = writeln!(md, "{what}.\n");
        let _ = writeln!(md, "| row | paper | ours | 95 % CI | floor (real vs real) | KID | diversity | samples |");
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
        for rr in &rows {
            md.push_str(&markdown_row(dir, rr, seeds));
            csv.push_str(&csv_rows(rr));
        }
        md.push('\n');
        if let Some(name) = figures::draw(dir, grid, table, &rows)? {
            let _ = writeln!(md, "![Table {}](./{name})\n", table.number());
        }
    }
    let md_path = dir.0.join("results.md");
    write_atomic(&dir.0.join("results.csv"), csv.as_bytes())?;
    write_atomic(&md_path, md.as_bytes())?;
    Ok(md_path)
}

#[cfg(test)]
mod tests {
    use super::sig4;

    #[test]
    fn four_significant_digits() {
        assert_eq!(sig4(1.39912), "1.399");
        assert_eq!(sig4(123.456), "123.5");
        assert_eq!(sig4(0.0123456), "0.01235");
        assert_eq!(sig4(f64::NAN), "—");
        assert_eq!(sig4(0.000099441), "9.944e-5");
    }
}
