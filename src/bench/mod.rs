//! `cxr-gan bench`: every kernel at the DCGAN, WGAN-GP and InceptionV3 shapes, on any backend, first
//! checked against the `cpu` backend from the same inputs, then timed; then whole DCGAN and WGAN-GP
//! iterations and FID's images/s, checked and timed the same way.
//!
//! [`cases`] lists the ops at their shapes, [`op`] runs one, [`check`] compares, [`time`] measures,
//! [`peak`] says what 100 % is, [`steps`] runs the whole workloads, [`report`] prints and writes JSON.

pub mod cases;
pub mod check;
pub mod op;
pub mod peak;
pub mod report;
pub mod steps;
pub mod time;

use std::path::PathBuf;
use std::time::Duration;

use cases::Case;
use check::{compare, download, Tolerances};
use op::execute;
use peak::Peak;
use report::{Report, Row};
use time::{time, Plan};

use crate::backend::cpu::CpuBackend;
use crate::backend::{dispatch, Backend, BackendTask};
use crate::error::{Error, Result};
use crate::tensor::fmt_shape;

/// What to run and how long.
#[derive(Clone, Debug)]
pub struct Options {
    /// DCGAN / WGAN-GP batch.
    pub batch: usize,
    /// InceptionV3 batch (its ops and the FID pass).
    pub fid_batch: usize,
    /// Fewer and shorter timings.
    pub quick: bool,
    /// Only the cases whose `group name` contains this (case-insensitive).
    pub only: Option<String>,
    /// Where to write the report as JSON (after every row, and once complete).
    pub json: Option<PathBuf>,
}

impl Options {
    /// The defaults: the paper's batch of 128 and pytorch-fid's 50; `--quick`: 16 and 2.
    pub fn new(quick: bool) -> Self {
        if quick {
            Options { batch: 16, fid_batch: 2, quick, only: None, json: None }
        } else {
            Options { batch: 128, fid_batch: 50, quick, only: None, json: None }
        }
    }

    /// Timing of one op. The check has just run each op on the backend once (compiling its kernels), so
    /// a quick run needs no further warm-up.
    fn op_plan(&self) -> Plan {
        if self.quick {
            Plan { warmup: 0, repeats: 5, budget: Duration::from_millis(300) }
        } else {
            Plan { warmup: 2, repeats: 20, budget: Duration::from_secs(2) }
        }
    }

    /// Timing of a whole iteration or FID pass.
    fn step_plan(&self) -> Plan {
        if self.quick {
            Plan { warmup: 0, repeats: 3, budget: Duration::from_millis(500) }
        } else {
            Plan { warmup: 1, repeats: 10, budget: Duration::from_secs(10) }
        }
    }
}

/// One thing to measure: an op case or a whole workload.
enum Item {
    Op(Box<Case>),
    Dcgan,
    WganGp { critic: bool, generator: bool },
    Fid,
}

impl Item {
    /// What the progress bar shows while it runs.
    fn message(&self) -> String {
        match self {
            Item::Op(c) => c.label(),
            Item::Dcgan => steps::DCGAN.into(),
            Item::WganGp { .. } => "wgan-gp steps".into(),
            Item::Fid => steps::FID.into(),
        }
    }
}

/// Everything, in table order, filtered by `--only`; with each kept item's labels.
fn items(o: &Options) -> Result<(Vec<Item>, Vec<String>)> {
    let keep = |label: &str| o.only.as_ref().is_none_or(|s| label.to_lowercase().contains(&s.to_lowercase()));
    let mut items = Vec::new();
    let mut labels = Vec::new();
    for c in cases::op_cases(o.batch, o.fid_batch)? {
        if keep(&c.label()) {
            labels.push(c.label());
            items.push(Item::Op(Box::new(c)));
        }
    }
    let label = |group: &str, name: &str| format!("{group} {name}");
    let step = label(steps::ITERATION, steps::DCGAN);
    if keep(&step) {
        labels.push(step);
        items.push(Item::Dcgan);
    }
    let (critic, generator) = (label(steps::ITERATION, steps::WGAN_CRITIC), label(steps::ITERATION, steps::WGAN_GENERATOR));
    let (c, g) = (keep(&critic), keep(&generator));
    if c || g {
        labels.extend([c.then_some(critic), g.then_some(generator)].into_iter().flatten());
        items.push(Item::WganGp { critic: c, generator: g });
    }
    let fid = label(steps::FID_GROUP, steps::FID);
    if keep(&fid) {
        labels.push(fid);
        items.push(Item::Fid);
    }
    if items.is_empty() {
        let only = o.only.as_deref().unwrap_or_default();
        return Err(Error::invalid("bench", format!("--only {only:?} matches no case (`cxr-gan bench --list` lists them)")));
    }
    Ok((items, labels))
}

/// The labels of the cases `o` selects, in table order (`--list`).
pub fn list(o: &Options) -> Result<Vec<String>> {
    Ok(items(o)?.1)
}

/// Runs the bench on the backend named `backend` (as `--backend`), printing the table as rows finish
/// and keeping the JSON file (if asked for) up to date.
pub fn run(backend: &str, o: Options) -> Result<Report> {
    dispatch(backend, Bench(o))
}

struct Bench(Options);

impl BackendTask for Bench {
    type Output = Report;
    fn run<B: Backend>(self, b: &B) -> Result<Report> {
        let o = self.0;
        let (items, labels) = items(&o)?;
        let peak = peak::peak_for(&b.name());
        println!("{}", report::header(&b.name(), &peak));
        let mut report = Report {
            backend: b.name(),
            peak: peak.clone(),
            batch: o.batch,
            fid_batch: o.fid_batch,
            quick: o.quick,
            complete: false,
            rows: Vec::with_capacity(labels.len()),
        };
        let bar = indicatif::ProgressBar::new(labels.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let mut emit = |r: Row| {
            bar.suspend(|| println!("{}", report::line(&r)));
            bar.inc(1);
            report.rows.push(r);
            if let Some(path) = &o.json {
                // Best effort mid-run (a run cut short keeps its rows); the final write reports failures.
                let _ = report.write_json(path);
            }
        };
        let (op_plan, step_plan) = (o.op_plan(), o.step_plan());
        for item in &items {
            bar.set_message(item.message());
            match item {
                Item::Op(c) => emit(op_row(b, c, &op_plan, &peak)),
                Item::Dcgan => {
                    emit(steps::dcgan_row(b, o.batch, &step_plan));
                    if let Some(r) = steps::dcgan_graph_row(b, o.batch, &step_plan) {
                        emit(r);
                    }
                }
                Item::WganGp { critic, generator } => {
                    steps::wgan_gp_rows(b, o.batch, &step_plan, *critic, *generator, &mut emit);
                    steps::wgan_gp_graph_rows(b, o.batch, &step_plan, *critic, *generator, &mut emit);
                }
                Item::Fid => emit(steps::fid_row(b, o.fid_batch, &step_plan)),
            }
        }
        bar.finish_and_clear();
        report.complete = true;
        if let Some(path) = &o.json {
            report.write_json(path)?;
        }
        Ok(report)
    }
}

/// One op: run on `b` and on cpu from the same inputs and compared, then (even if the comparison failed)
/// timed on `b` with fresh inputs for every call.
fn op_row<B: Backend>(b: &B, c: &Case, plan: &Plan, peak: &Peak) -> Row {
    let shapes = c.inputs.iter().map(|i| format!("{} {}", i.name, fmt_shape(&i.shape))).collect::<Vec<_>>().join(", ");
    let mut r = Row::new(c.group, &c.name, shapes);
    r.flops = Some(c.flops);
    let cpu = CpuBackend::new();
    let checked = c.host_inputs().and_then(|host| {
        let mine = host.iter().map(|t| b.upload(t)).collect::<Result<Vec<_>>>()?;
        let got = download(b, &execute(b, &c.op, &mut mine.clone())?)?;
        let want = download(&cpu, &execute(&cpu, &c.op, &mut host.clone())?)?;
        // Minimal traffic: every input read once, every output written once (in-place ops count both).
        let elems: usize = host.iter().map(|t| t.len()).sum::<usize>() + want.iter().map(|o| o.data.len()).sum::<usize>();
        let tol = Tolerances::of(b);
        Ok((compare(&got, &want, if c.op.is_convolution() { tol.conv } else { tol.op }), 4.0 * elems as f64, mine))
    });
    match checked {
        Ok((check, bytes, mine)) => {
            r.check = Some(check);
            r.bytes = Some(bytes);
            match time(b, plan, || Ok(mine.clone()), |mut ins| execute(b, &c.op, &mut ins)) {
                Ok(t) => r.time = Some(t),
                Err(e) => r.error = Some(e.to_string()),
            }
        }
        Err(e) => r.error = Some(e.to_string()),
    }
    r.rates(peak)
}
