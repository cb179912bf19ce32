//! Binary classification metrics with COVID-19 (label 1) as the positive class, as scikit-learn defines
//! them, each with a 95 % percentile bootstrap interval over the test examples.

use std::fmt;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::split::{NEGATIVE, POSITIVE};
use crate::error::{Error, Result};

/// Counts of a binary confusion matrix (positive = COVID, label 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    pub tp: usize,
    pub fp: usize,
    pub tn: usize,
    pub fn_: usize,
}

/// `num / den`, or `None` when `den` is 0.
fn ratio(num: usize, den: usize) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

impl Confusion {
    /// Counts `labels` (true classes) against `predictions`, both 0 or 1 and of one length.
    pub fn of(labels: &[usize], predictions: &[usize]) -> Result<Confusion> {
        check(labels, predictions)?;
        let mut c = Confusion::default();
        for (&y, &p) in labels.iter().zip(predictions) {
            c.add(y, p);
        }
        Ok(c)
    }

    fn add(&mut self, label: usize, prediction: usize) {
        match (label == POSITIVE, prediction == POSITIVE) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (false, false) => self.tn += 1,
            (true, false) => self.fn_ += 1,
        }
    }

    /// The number of examples counted.
    pub fn total(&self) -> usize {
        self.tp + self.fp + self.tn + self.fn_
    }

    /// (tp + tn) / all; 0 for no examples.
    pub fn accuracy(&self) -> f64 {
        ratio(self.tp + self.tn, self.total()).unwrap_or(0.0)
    }

    /// tp / (tp + fp); 0 when nothing is predicted positive (scikit-learn's `zero_division=0`).
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp).unwrap_or(0.0)
    }

    /// tp / (tp + fn); 0 when there are no positives (scikit-learn's `zero_division=0`).
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_).unwrap_or(0.0)
    }

    /// The harmonic mean of precision and recall, 2tp / (2tp + fp + fn); 0 when there are neither
    /// positives nor positive predictions (scikit-learn's `zero_division=0`).
    pub fn f1(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_).unwrap_or(0.0)
    }

    /// Each metric, or `None` where its denominator is 0 (for the bootstrap, which leaves those out).
    fn defined(&self) -> [Option<f64>; 4] {
        [
            ratio(self.tp + self.tn, self.total()),
            ratio(self.tp, self.tp + self.fp),
            ratio(self.tp, self.tp + self.fn_),
            ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_),
        ]
    }
}

fn check(labels: &[usize], predictions: &[usize]) -> Result<()> {
    if labels.len() != predictions.len() {
        return Err(Error::invalid("metrics", format!("{} labels but {} predictions", labels.len(), predictions.len())));
    }
    let binary = |v: &usize| *v == NEGATIVE || *v == POSITIVE;
    if let Some(i) = labels.iter().position(|v| !binary(v)) {
        return Err(Error::invalid("metrics", format!("label {} at index {i} is not 0 (negative) or 1 (COVID)", labels[i])));
    }
    if let Some(i) = predictions.iter().position(|v| !binary(v)) {
        return Err(Error::invalid("metrics", format!("prediction {} at index {i} is not 0 or 1", predictions[i])));
    }
    Ok(())
}

/// A metric on the test set and its 95 % percentile bootstrap interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub estimate: f64,
    pub lo: f64,
    pub hi: f64,
}

/// Accuracy, precision, recall and F1 of one classifier on one test set, with their intervals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub confusion: Confusion,
    pub accuracy: Interval,
    pub precision: Interval,
    pub recall: Interval,
    pub f1: Interval,
    /// Bootstrap resamples drawn.
    pub resamples: usize,
}

impl Metrics {
    /// The table of [`Metrics`]' `Display`, for a `results.md`.
    pub fn to_markdown(&self) -> String {
        self.to_string()
    }
}

/// The metrics of `predictions` against `labels`, each with the 2.5 % and 97.5 % percentiles (numpy's
/// linear interpolation) of its value over `resamples` resamples of the test examples with replacement,
/// drawn from `seed`. A resample in which a metric is undefined (no positive predicted, for precision; no
/// positive drawn, for recall) is left out of that metric's interval rather than counted as 0, which would
/// drag a perfect classifier's interval down to 0 on a small test set; a metric undefined on the whole test
/// set is 0 (as in [`Confusion`]) with the interval [0, 0].
pub fn bootstrap(labels: &[usize], predictions: &[usize], resamples: usize, seed: u64) -> Result<Metrics> {
    let confusion = Confusion::of(labels, predictions)?;
    let n = labels.len();
    if n == 0 || resamples == 0 {
        return Err(Error::invalid("metrics", format!("a bootstrap needs test examples and resamples (got {n}, {resamples})")));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut values: [Vec<f64>; 4] = Default::default();
    for _ in 0..resamples {
        let mut c = Confusion::default();
        for _ in 0..n {
            let i = rng.gen_range(0..n);
            c.add(labels[i], predictions[i]);
        }
        for (v, m) in values.iter_mut().zip(c.defined()) {
            v.extend(m);
        }
    }
    let estimates = [confusion.accuracy(), confusion.precision(), confusion.recall(), confusion.f1()];
    let [accuracy, precision, recall, f1] = std::array::from_fn(|k| {
        let v = &mut values[k];
        v.sort_by(f64::total_cmp);
        let estimate = estimates[k];
        if v.is_empty() {
            Interval { estimate, lo: estimate, hi: estimate }
        } else {
            Interval { estimate, lo: percentile(v, 0.025), hi: percentile(v, 0.975) }
        }
    });
    Ok(Metrics { confusion, accuracy, precision, recall, f1, resamples })
}

/// numpy's default (linear) percentile of sorted, non-empty values, `q` in [0, 1].
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos - pos.floor());
    match sorted.get(i + 1) {
        Some(next) => sorted[i] + frac * (next - sorted[i]),
        None => sorted[i],
    }
}

/// The confusion matrix as a Markdown table: rows the true class, columns the predicted one.
impl fmt::Display for Confusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| true \\ predicted | negative | COVID |")?;
        writeln!(f, "|---|---:|---:|")?;
        writeln!(f, "| negative | {} | {} |", self.tn, self.fp)?;
        writeln!(f, "| COVID | {} | {} |", self.fn_, self.tp)
    }
}

/// A Markdown table of the four metrics with their intervals, then the confusion matrix.
impl fmt::Display for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| metric | value | 95 % CI |")?;
        writeln!(f, "|---|---:|---|")?;
        for (name, m) in [("accuracy", self.accuracy), ("precision", self.precision), ("recall", self.recall), ("F1", self.f1)] {
            writeln!(f, "| {name} | {:.3} | [{:.3}, {:.3}] |", m.estimate, m.lo, m.hi)?;
        }
        let c = &self.confusion;
        writeln!(f)?;
        writeln!(
            f,
            "{} test images ({} COVID, {} negative); percentile bootstrap over {} resamples.",
            c.total(),
            c.tp + c.fn_,
            c.tn + c.fp,
            self.resamples
        )?;
        writeln!(f)?;
        write!(f, "{c}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-12;

    #[test]
    fn a_hand_worked_confusion_matrix() {
        // labels      1 1 1 1 1 0 0 0
        // predictions 1 1 0 0 0 1 0 0
        // tp = 2 (first two), fn = 3 (positives 3-5), fp = 1 (6th), tn = 2 (last two).
        // accuracy = (2 + 2) / 8 = 0.5; precision = 2 / (2 + 1) = 2/3; recall = 2 / (2 + 3) = 0.4;
        // F1 = 2 · (2/3 · 0.4) / (2/3 + 0.4) = (8/15) / (16/15) = 0.5.
        let c = Confusion::of(&[1, 1, 1, 1, 1, 0, 0, 0], &[1, 1, 0, 0, 0, 1, 0, 0]).unwrap();
        assert_eq!(c, Confusion { tp: 2, fp: 1, tn: 2, fn_: 3 });
        assert!((c.accuracy() - 0.5).abs() < EPS);
        assert!((c.precision() - 2.0 / 3.0).abs() < EPS);
        assert!((c.recall() - 0.4).abs() < EPS);
        assert!((c.f1() - 0.5).abs() < EPS);
    }

    #[test]
    fn undefined_ratios_are_zero_as_in_sklearn() {
        // Nothing predicted positive: labels 1 0 0, predictions 0 0 0 → tp 0, fp 0, tn 2, fn 1.
        // accuracy 2/3; precision 0/0 → 0; recall 0/1 = 0; F1 0/(0 + 0 + 1) = 0.
        let c = Confusion::of(&[1, 0, 0], &[0, 0, 0]).unwrap();
        assert_eq!(c, Confusion { tp: 0, fp: 0, tn: 2, fn_: 1 });
        assert!((c.accuracy() - 2.0 / 3.0).abs() < EPS);
        assert_eq!((c.precision(), c.recall(), c.f1()), (0.0, 0.0, 0.0));
        // Only negatives, all right: accuracy 1, and precision, recall, F1 all 0/0 → 0.
        let c = Confusion::of(&[0, 0], &[0, 0]).unwrap();
        assert_eq!((c.accuracy(), c.precision(), c.recall(), c.f1()), (1.0, 0.0, 0.0, 0.0));
        assert_eq!(Confusion::default().accuracy(), 0.0);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(Confusion::of(&[0, 1], &[0]).unwrap_err().to_string().contains("2 labels but 1"));
        assert!(Confusion::of(&[0, 2], &[0, 1]).unwrap_err().to_string().contains("label 2 at index 1"));
        assert!(Confusion::of(&[0, 1], &[0, 3]).unwrap_err().to_string().contains("prediction 3"));
        assert!(bootstrap(&[], &[], 10, 0).is_err());
        assert!(bootstrap(&[1], &[1], 0, 0).is_err());
    }

    #[test]
    fn perfect_predictions_give_intervals_of_one() {
        // Six examples: a resample without any positive (1/64 of them) leaves precision and recall undefined
        // and must not pull the interval below 1.
        let labels = [1, 0, 1, 0, 0, 1];
        let m = bootstrap(&labels, &labels, 2000, 5).unwrap();
        for i in [m.accuracy, m.precision, m.recall, m.f1] {
            assert_eq!(i, Interval { estimate: 1.0, lo: 1.0, hi: 1.0 });
        }
    }

    /// `n` examples of alternating classes, about 10 % of each misclassified at random.
    fn noisy(seed: u64, n: usize) -> (Vec<usize>, Vec<usize>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let labels: Vec<usize> = (0..n).map(|i| i % 2).collect();
        let predictions = labels.iter().map(|&y| if rng.gen_bool(0.1) { 1 - y } else { y }).collect();
        (labels, predictions)
    }

    #[test]
    fn intervals_contain_the_estimate_and_narrow_with_more_examples() {
        for seed in 0..5 {
            let (labels, predictions) = noisy(seed, 200);
            let m = bootstrap(&labels, &predictions, 500, seed).unwrap();
            for (name, i) in [("accuracy", m.accuracy), ("precision", m.precision), ("recall", m.recall), ("f1", m.f1)] {
                assert!(i.lo < i.estimate && i.estimate < i.hi, "seed {seed} {name}: {i:?}");
                assert!((0.0..=1.0).contains(&i.lo) && (0.0..=1.0).contains(&i.hi), "seed {seed} {name}: {i:?}");
            }
        }
        // The bootstrap's spread shrinks like 1/√n: 16× the examples, about a quarter of the width.
        let width = |n: usize| {
            let (labels, predictions) = noisy(7, n);
            let m = bootstrap(&labels, &predictions, 500, 1).unwrap();
            m.accuracy.hi - m.accuracy.lo
        };
        let (small, large) = (width(100), width(1600));
        assert!(large < small / 2.5, "width {small:.3} at 100 examples, {large:.3} at 1600");
    }

    #[test]
    fn the_bootstrap_is_deterministic_per_seed() {
        let (labels, predictions) = noisy(3, 120);
        let a = bootstrap(&labels, &predictions, 300, 11).unwrap();
        assert_eq!(a, bootstrap(&labels, &predictions, 300, 11).unwrap());
        let b = bootstrap(&labels, &predictions, 300, 12).unwrap();
        assert_eq!(a.accuracy.estimate, b.accuracy.estimate);
        assert_ne!((a.accuracy.lo, a.accuracy.hi, a.f1.lo, a.f1.hi), (b.accuracy.lo, b.accuracy.hi, b.f1.lo, b.f1.hi));
    }

    #[test]
    fn the_table_puts_true_classes_in_rows() {
        let m = bootstrap(&[1, 1, 1, 1, 1, 0, 0, 0], &[1, 1, 0, 0, 0, 1, 0, 0], 100, 0).unwrap();
        let text = m.to_markdown();
        assert!(text.contains("| negative | 2 | 1 |"), "{text}"); // tn, fp
        assert!(text.contains("| COVID | 3 | 2 |"), "{text}"); // fn, tp
        assert!(text.contains("| precision | 0.667 |"), "{text}");
        assert!(text.contains("8 test images (5 COVID, 3 negative)"), "{text}");
    }
}
