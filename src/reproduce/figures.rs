//! The figures of results.md: FID against the training-set size (Table 1) and against the epochs
//! (Table 2), each with the 95 % interval as error bars over the real-vs-real floor as a band; and the
//! DCGAN and WGAN-GP loss curves of Table 3's runs side by side.

use super::cells::run_dir;
use super::grid::{Grid, Scale, Table};
use super::report::RowResults;
use super::store::ReproduceDir;
use crate::error::Result;
use crate::train::metrics::read_losses;
use crate::train::plots::{plot_charts, Band, Chart, Series};

/// Draws the figure of `table` from its rows (seed means), if any row has results; returns its file name.
pub fn draw(dir: &ReproduceDir, grid: &Grid, table: Table, rows: &[RowResults]) -> Result<Option<String>> {
    let done: Vec<&RowResults> = rows.iter().filter(|r| !r.results.is_empty()).collect();
    if done.is_empty() {
        return Ok(None);
    }
    let seeds = done.iter().map(|r| r.results.len()).max().unwrap_or(1);
    let ours = if seeds > 1 { format!("ours (mean of {seeds} seeds; bars: their 95 % CIs)") } else { "ours (95 % CI)".to_string() };
    let (name, chart) = match table {
        Table::T1 => {
            ("fid_vs_images.png", fid_chart("DCGAN: FID vs training images", "training images", &ours, &done, |r| r.row.images, grid))
        }
        Table::T2 => ("fid_vs_epochs.png", fid_chart("DCGAN: FID vs epochs", "epochs", &ours, &done, |r| r.row.epochs, grid)),
        Table::T3 => {
            let mut charts = Vec::new();
            for r in &done {
                let cell = r.results[0].cell;
                let metrics = run_dir(dir, &cell.run()).metrics();
                charts.push(read_losses(&metrics, Some(cell.epochs))?.chart(cell.model));
            }
            let name = "losses_dcgan_vs_wgan_gp.png";
            plot_charts(&charts, &dir.0.join(name))?;
            return Ok(Some(name.into()));
        }
    };
    plot_charts(&[chart], &dir.0.join(name))?;
    Ok(Some(name.into()))
}

/// Ours (seed mean, with the interval), the floor as a band, and at the paper's scale the paper's values.
fn fid_chart<'a>(
    title: &'a str,
    x_label: &'a str,
    ours: &'a str,
    rows: &[&RowResults],
    x: impl Fn(&RowResults) -> usize,
    grid: &Grid,
) -> Chart<'a> {
    let xs: Vec<f64> = rows.iter().map(|r| x(r) as f64).collect();
    let ours = Series {
        name: ours,
        points: xs.iter().zip(rows).map(|(&x, r)| (x, r.fid().mean)).collect(),
        errors: Some(rows.iter().map(|r| r.ci()).collect()),
        markers: true,
    };
    let floor = Band {
        name: "real vs real floor (± sd)",
        points: xs.iter().zip(rows).map(|(&x, r)| (x, r.floor().0 - r.floor().1, r.floor().0 + r.floor().1)).collect(),
    };
    let mut series = vec![ours];
    if grid.scale == Scale::Paper {
        series.push(Series {
            name: "paper",
            points: xs.iter().zip(rows).map(|(&x, r)| (x, r.row.paper)).collect(),
            errors: None,
            markers: true,
        });
    }
    Chart { title, x_label, y_label: "FID", series, bands: vec![floor] }
}
