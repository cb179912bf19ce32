//! The bench's results: a table printed row by row as cases finish, and the same rows as JSON.

use std::path::Path;

use serde::Serialize;

use super::check::Check;
use super::peak::Peak;
use super::time::Timing;
use crate::error::{Error, Result};

/// One measured case: an op, a whole training iteration or the FID pass.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub group: String,
    pub name: String,
    /// The inputs' shapes, e.g. `x [128,512,4,4], w [512,256,4,4]`.
    pub shapes: String,
    /// None where the op failed before it could be compared (see `error`).
    pub check: Option<Check>,
    pub time: Option<Timing>,
    /// Nominal FLOPs and minimal bytes moved (inputs read once, outputs written once) per call.
    pub flops: Option<f64>,
    pub bytes: Option<f64>,
    pub gflops: Option<f64>,
    pub gbps: Option<f64>,
    /// Roofline percentage of the device's peak ([`Peak::percent`]).
    pub pct_of_peak: Option<f64>,
    pub bound: Option<&'static str>,
    /// Images per second (iterations and the FID pass: the batch over the time).
    pub images_per_s: Option<f64>,
    pub error: Option<String>,
}

impl Row {
    /// A row not yet checked or timed.
    pub fn new(group: &str, name: &str, shapes: String) -> Self {
        Row {
            group: group.into(),
            name: name.into(),
            shapes,
            check: None,
            time: None,
            flops: None,
            bytes: None,
            gflops: None,
            gbps: None,
            pct_of_peak: None,
            bound: None,
            images_per_s: None,
            error: None,
        }
    }

    /// Checked, compared and timed to completion, within tolerance.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.check.as_ref().is_some_and(|c| c.pass)
    }

    /// Fills the rates from the time: GFLOP/s, GB/s and the % of `peak`.
    pub fn rates(mut self, peak: &Peak) -> Self {
        if let Some(t) = &self.time {
            self.gflops = self.flops.filter(|&f| f > 0.0).map(|f| f / t.median_s / 1e9);
            self.gbps = self.bytes.map(|b| b / t.median_s / 1e9);
            if self.flops.is_some() || self.bytes.is_some() {
                self.pct_of_peak = peak.percent(self.gflops, self.gbps);
                self.bound = self.flops.zip(self.bytes).and_then(|(f, b)| peak.bound(f, b));
            }
        }
        self
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub backend: String,
    pub peak: Peak,
    pub batch: usize,
    pub fid_batch: usize,
    pub quick: bool,
    /// False while the run is still going (the JSON is rewritten after every row, so a run cut short
    /// still leaves its rows).
    pub complete: bool,
    pub rows: Vec<Row>,
}

impl Report {
    pub fn failures(&self) -> Vec<&Row> {
        self.rows.iter().filter(|r| !r.passed()).collect()
    }

    /// Writes the report as pretty JSON, atomically.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Other(format!("bench report as JSON: {e}")))?;
        crate::fsio::write_atomic(path, text.as_bytes())
    }
}

const NAME_W: usize = 48;

/// The table's header lines.
pub fn header(backend: &str, peak: &Peak) -> String {
    let gf = peak.gflops.map_or("-".into(), |g| format!("{g:.1} GFLOP/s"));
    let bw = peak.gbps.map_or("-".into(), |g| format!("{g:.1} GB/s"));
    format!(
        "backend {backend} on {}\npeak: {gf}, {bw} ({})\n\
         error: max relative L2 vs `cpu` over the outputs; time: median; %peak: the better of FLOP/s and GB/s\n\
         against the peak (bandwidth is memory's: an op whose data fits in cache can pass 100 %)\n\
         {:<NAME_W$} {:>9} {:>5} {:>10} {:>9} {:>8} {:>6} {:>8}  {}",
        peak.device, peak.source, "case", "error", "check", "time", "GFLOP/s", "GB/s", "%peak", "img/s", "shapes"
    )
}

/// Seconds with three or four significant digits in a fitting unit.
fn duration(s: f64) -> String {
    let (v, unit) = match s {
        s if s >= 1.0 => (s, "s"),
        s if s >= 1e-3 => (s * 1e3, "ms"),
        s if s >= 1e-6 => (s * 1e6, "µs"),
        s => (s * 1e9, "ns"),
    };
    let prec = if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    format!("{v:.prec$} {unit}")
}

/// A rate or percentage right-aligned in `width`, with fewer decimals the larger it is.
fn opt(v: Option<f64>, width: usize) -> String {
    match v {
        Some(x) => {
            let prec = if x >= 100.0 {
                0
            } else if x >= 10.0 {
                1
            } else if x >= 1.0 {
                2
            } else {
                3
            };
            format!("{x:>width$.prec$}")
        }
        None => format!("{:>width$}", "-"),
    }
}

/// One line of the table.
pub fn line(r: &Row) -> String {
    let mut name = format!("{} {}", r.group, r.name);
    if name.chars().count() > NAME_W {
        name = name.chars().take(NAME_W - 1).collect::<String>() + "…";
    }
    let (err, verdict) = match &r.check {
        Some(c) => (format!("{:>9.1e}", c.max_rel_err), if c.pass && r.error.is_none() { "ok" } else { "FAIL" }),
        None => (format!("{:>9}", "-"), "FAIL"),
    };
    let mut s = format!(
        "{name:<NAME_W$} {err} {verdict:>5} {:>10} {} {} {} {}  {}",
        r.time.as_ref().map_or("-".into(), |t| duration(t.median_s)),
        opt(r.gflops, 9),
        opt(r.gbps, 8),
        opt(r.pct_of_peak, 6),
        opt(r.images_per_s, 8),
        r.shapes
    );
    if let Some(c) = r.check.as_ref().filter(|c| !c.pass) {
        s.push_str(&format!("\n    worst output: {} (error {:.3e}, tolerance {:.0e})", c.worst, c.max_rel_err, c.tolerance));
    }
    if let Some(e) = &r.error {
        s.push_str(&format!("\n    error: {e}"));
    }
    s
}
