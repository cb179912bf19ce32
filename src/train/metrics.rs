//! What a run measures: metrics.csv (one row per iteration), loss.png drawn from it, metrics_fid.csv, and
//! the mean-image correlation of the summary.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::fsio::write_atomic;
use crate::tensor::Tensor;
use crate::train::config::ModelKind;
use crate::train::plots::{plot_losses, Series};
use crate::train::run_dir::RunDir;

pub const METRICS_HEADER: &str = "epoch,iteration,loss_d,loss_g,d_real,d_fake,gp,seconds";
pub const FID_METRICS_HEADER: &str = "epoch,iteration,fid,dims,count";

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

/// Draws loss.png from metrics.csv: the discriminator's (critic's) and the generator's loss per iteration.
pub fn plot_metrics(run: &RunDir, model: ModelKind) -> Result<()> {
    let text = fs::read_to_string(run.metrics()).map_err(|e| Error::io(run.metrics(), e))?;
    let (mut d, mut g) = (Vec::new(), Vec::new());
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
        if let (Some(it), Some(ld)) = (num(1), num(2)) {
            d.push((it, ld));
            if let Some(lg) = num(3) {
                g.push((it, lg));
            }
        }
    }
    let (d_name, title) = match model {
        ModelKind::Dcgan => ("discriminator", "DCGAN: generator and discriminator loss"),
        ModelKind::WganGp => ("critic", "WGAN-GP: generator and critic loss"),
    };
    plot_losses(&[Series { name: "generator", points: g }, Series { name: d_name, points: d }], title, &run.loss_plot())
}

/// Pearson correlation of two equally long vectors.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// The per-pixel mean over a batch [N, C, H, W], averaged over channels: [H·W].
pub fn mean_image(batch: &Tensor) -> Result<Vec<f64>> {
    let [n, c, h, w] = batch.dims4("mean_image", "images")?;
    let mut m = vec![0.0; h * w];
    for (i, v) in batch.data().iter().enumerate() {
        m[i % (h * w)] += *v as f64 / (n * c) as f64;
    }
    Ok(m)
}
