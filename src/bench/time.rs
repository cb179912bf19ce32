//! Timing one call: warm-up calls (GPU kernels compile on first use), then repeated calls each followed
//! by [`Backend::sync`], so a time is the work's and not its launch's; the median is reported.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::backend::Backend;
use crate::error::Result;

/// How long to measure one case.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub warmup: usize,
    /// At most this many timed calls...
    pub repeats: usize,
    /// ...and no more once this much time has gone into them (at least one call is always timed).
    pub budget: Duration,
}

#[derive(Clone, Debug, Serialize)]
pub struct Timing {
    pub median_s: f64,
    pub min_s: f64,
    pub samples: usize,
}

/// Times `call` on inputs from `prepare` (untimed: fresh inputs for ops that update theirs in place).
/// What `call` returns is dropped outside the timed span too.
pub fn time<B: Backend, S, R>(
    b: &B,
    plan: &Plan,
    mut prepare: impl FnMut() -> Result<S>,
    mut call: impl FnMut(S) -> Result<R>,
) -> Result<Timing> {
    for _ in 0..plan.warmup {
        let s = prepare()?;
        drop(call(s)?);
        b.sync()?;
    }
    let mut times = Vec::with_capacity(plan.repeats);
    let mut spent = Duration::ZERO;
    while times.len() < plan.repeats.max(1) && (times.is_empty() || spent < plan.budget) {
        let s = prepare()?;
        b.sync()?;
        let start = Instant::now();
        let r = call(s)?;
        b.sync()?;
        let t = start.elapsed();
        drop(r);
        spent += t;
        times.push(t.as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let mid = times.len() / 2;
    let median_s = if times.len() % 2 == 1 { times[mid] } else { 0.5 * (times[mid - 1] + times[mid]) };
    Ok(Timing { median_s, min_s: times[0], samples: times.len() })
}
