//! What a run logs: metrics.csv (one row per iteration), loss.png drawn from it, metrics_fid.csv.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::fsio::write_atomic;
use crate::train::config::ModelKind;
use crate::train::plots::{plot_charts, Chart, Series};
use crate::train::run_dir::RunDir;

pub const METRICS_HEADER: &str = "epoch,iteration,loss_d,loss_g,d_real,d_fake,gp,seconds";
pub const FID_METRICS_HEADER: &str = "epoch,iteration,fid,dims,count,fid_ci_lo,fid_ci_hi,floor_mean,floor_sd,kid_mean,kid_std";

/// One row of metrics.csv.
pub struct Row {
    pub epoch: usize,
    pub iteration: u64,
    pub loss_d: f64,
    pub loss_g: Option<f64>,
    pub d_real: f64,
    pub d_fake: f64,
    pub gp: Option<f64>,
    pub seconds: f64,
}

pub fn optional(v: Option<f64>) -> String {
    v.map(|v| format!("{v}")).unwrap_or_default()
}

impl Row {
    pub fn csv(&self) -> String {
        let Row { epoch, iteration, loss_d, loss_g, d_real, d_fake, gp, seconds } = self;
        format!("{epoch},{iteration},{loss_d},{},{d_real},{d_fake},{},{seconds:.4}", optional(*loss_g), optional(*gp))
    }
}

/// An append-only CSV of a run, one line per write (a kill leaves at most one partial last line, which
/// [`keep_rows_before`] drops on resume).
pub struct CsvLog {
    file: fs::File,
    path: std::path::PathBuf,
}

impl CsvLog {
    /// Opens `path` for appending, writing `header` first if the file does not exist.
    pub fn open(path: &Path, header: &str) -> Result<Self> {
        if !path.exists() {
            write_atomic(path, format!("{header}\n").as_bytes())?;
        }
        let file = fs::OpenOptions::new().append(true).open(path).map_err(|e| Error::io(path, e))?;
        Ok(CsvLog { file, path: path.to_path_buf() })
    }

    pub fn append(&mut self, line: &str) -> Result<()> {
        // One write call per line, so that rows never interleave or split except at a kill.
        self.file.write_all(format!("{line}\n").as_bytes()).map_err(|e| Error::io(&self.path, e))
    }
}

/// Rewrites a run's CSV keeping only the complete rows whose `key_column` is below `limit`: what a
/// resumed run redoes after its checkpoint (and a partial line a kill left) goes, so that the file ends up
/// row for row as an uninterrupted run's.
pub fn keep_rows_before(path: &Path, header: &str, key_column: usize, limit: u64) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let text = fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let columns = header.split(',').count();
    let mut out = format!("{header}\n");
    // Only newline-terminated lines are complete.
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    for line in complete.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let key = fields.get(key_column).and_then(|v| v.parse::<u64>().ok());
        if fields.len() == columns && key.is_some_and(|k| k < limit) {
            out.push_str(line);
            out.push('\n');
        }
    }
    write_atomic(path, out.as_bytes())
}

/// The discriminator's (critic's) and the generator's loss per iteration, from a metrics.csv; with
/// `epochs`, only the rows of the first that many epochs.
pub fn read_losses(path: &Path, epochs: Option<usize>) -> Result<LossCurves> {
    let text = fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut curves = LossCurves::default();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
        if epochs.is_some_and(|e| num(0).is_none_or(|epoch| epoch >= e as f64)) {
            continue;
        }
        if let (Some(it), Some(ld)) = (num(1), num(2)) {
            curves.d.push((it, ld));
            if let Some(lg) = num(3) {
                curves.g.push((it, lg));
            }
        }
    }
    Ok(curves)
}

/// (iteration, loss) points of D (or the critic) and G.
#[derive(Default)]
pub struct LossCurves {
    pub d: Vec<(f64, f64)>,
    pub g: Vec<(f64, f64)>,
}

impl LossCurves {
    /// A chart of both curves, named for `model`.
    pub fn chart(self, model: ModelKind) -> Chart<'static> {
        let (d_name, title) = match model {
            ModelKind::Dcgan => ("discriminator", "DCGAN: generator and discriminator loss"),
            ModelKind::WganGp => ("critic", "WGAN-GP: generator and critic loss"),
        };
        Chart {
            title,
            x_label: "iteration",
            y_label: "loss",
            series: vec![Series::line("generator", self.g), Series::line(d_name, self.d)],
            bands: Vec::new(),
        }
    }
}

/// Draws loss.png from metrics.csv: the discriminator's (critic's) and the generator's loss per iteration.
pub fn plot_metrics(run: &RunDir, model: ModelKind) -> Result<()> {
    plot_charts(&[read_losses(&run.metrics(), None)?.chart(model)], &run.loss_plot())
}
