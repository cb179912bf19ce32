//! A stratified train / validation / test split by file, and its CSV form (`split,label,path`), so that
//! every model of the experiment is trained and judged on the same files.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::fsio::write_atomic;

/// The label of a COVID-19 image (the positive class).
pub const POSITIVE: usize = 1;
/// The label of an image without COVID-19.
pub const NEGATIVE: usize = 0;

/// The first line of a split's CSV file.
const HEADER: &str = "split,label,path";
const NAMES: [&str; 3] = ["train", "val", "test"];

/// One image and its class ([`POSITIVE`] or [`NEGATIVE`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Example {
    pub path: PathBuf,
    pub label: usize,
}

/// The three disjoint parts of a data set. Each lists the negatives, then the positives, each by path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<Example>,
    pub val: Vec<Example>,
    pub test: Vec<Example>,
}

/// Splits each class by `fractions` (train, val, test; positive, summing to 1) after shuffling it with
/// `seed`. Each class is sorted by path first and shuffled by its own seeded stream, so the split depends
/// only on the seed and the set of files (not their order, nor the other class). Counts are
/// `fractions · n` rounded by largest remainder, then any empty part takes one file from the largest, so
/// every part holds at least one file of each class; a class needs at least 3 files.
pub fn stratified_split(positive: &[PathBuf], negative: &[PathBuf], fractions: [f64; 3], seed: u64) -> Result<Split> {
    let fractions = check_fractions(fractions)?;
    check_disjoint(positive, negative)?;
    let mut split = Split::default();
    for (files, label) in [(negative, NEGATIVE), (positive, POSITIVE)] {
        let name = class_name(label);
        if files.len() < 3 {
            return Err(Error::invalid(
                "stratified_split",
                format!("the {name} class has {} file(s); a train/val/test split needs at least 3", files.len()),
            ));
        }
        let mut files = files.to_vec();
        files.sort();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(label as u64); // one stream per class: a class's split ignores the other's size
        files.shuffle(&mut rng);
        let [n_train, n_val, _] = counts(files.len(), fractions);
        let mut examples = files.into_iter().map(|path| Example { path, label });
        split.train.extend(examples.by_ref().take(n_train));
        split.val.extend(examples.by_ref().take(n_val));
        split.test.extend(examples);
    }
    for part in [&mut split.train, &mut split.val, &mut split.test] {
        part.sort_by(|a, b| (a.label, &a.path).cmp(&(b.label, &b.path)));
    }
    Ok(split)
}

fn class_name(label: usize) -> &'static str {
    if label == POSITIVE {
        "positive (COVID)"
    } else {
        "negative"
    }
}

/// The fractions scaled to sum to exactly 1, after checking they are positive and sum to 1 already.
fn check_fractions(fractions: [f64; 3]) -> Result<[f64; 3]> {
    let sum: f64 = fractions.iter().sum();
    if fractions.iter().any(|f| !f.is_finite() || *f <= 0.0) || (sum - 1.0).abs() > 1e-6 {
        return Err(Error::invalid(
            "stratified_split",
            format!("fractions (train, val, test) must be positive and sum to 1, got {fractions:?}"),
        ));
    }
    Ok(fractions.map(|f| f / sum))
}

/// A file listed twice (within a class or in both) would land in two parts or count twice.
fn check_disjoint(positive: &[PathBuf], negative: &[PathBuf]) -> Result<()> {
    let mut seen = HashSet::new();
    for (files, label) in [(negative, NEGATIVE), (positive, POSITIVE)] {
        for f in files {
            if !seen.insert(f) {
                return Err(Error::invalid(
                    "stratified_split",
                    format!("{} is listed twice (second time in the {} class)", f.display(), class_name(label)),
                ));
            }
        }
    }
    Ok(())
}

/// Files per part for a class of `n ≥ 3`: largest-remainder rounding of `fractions · n` (ties to the
/// earlier part), then each empty part takes one file from the largest (which holds at least 2).
fn counts(n: usize, fractions: [f64; 3]) -> [usize; 3] {
    let target = fractions.map(|f| f * n as f64);
    let mut c = target.map(|t| t.floor() as usize);
    let rest = n.saturating_sub(c.iter().sum());
    let mut by_remainder = [0, 1, 2];
    by_remainder.sort_by(|&a, &b| (target[b] - c[b] as f64).total_cmp(&(target[a] - c[a] as f64)));
    for &i in by_remainder.iter().cycle().take(rest) {
        c[i] += 1;
    }
    for i in 0..3 {
        if c[i] == 0 {
            let largest = (0..3).max_by_key(|&j| (c[j], std::cmp::Reverse(j))).unwrap_or(0);
            c[largest] -= 1;
            c[i] += 1;
        }
    }
    c
}

impl Split {
    /// The parts with their names in the CSV file.
    fn parts(&self) -> [(&'static str, &Vec<Example>); 3] {
        [(NAMES[0], &self.train), (NAMES[1], &self.val), (NAMES[2], &self.test)]
    }

    /// Writes `split,label,path` rows (a header, then train, val, test), atomically: a reader never sees
    /// half a split. Paths are written as given; one that is not UTF-8 or holds a line break is an error.
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        let mut out = format!("{HEADER}\n");
        for (name, examples) in self.parts() {
            for ex in examples {
                let p = ex.path.to_str().filter(|p| !p.contains(['\n', '\r'])).ok_or_else(|| {
                    Error::invalid(
                        "Split::write_csv",
                        format!("cannot write {}: the image path {:?} is not UTF-8 or holds a line break", path.display(), ex.path),
                    )
                })?;
                let _ = writeln!(out, "{name},{},{p}", ex.label);
            }
        }
        write_atomic(path, out.as_bytes())
    }

    /// Reads a file written by [`Split::write_csv`]. The path is everything after the second comma, so
    /// paths may hold commas. Errors name the file and line: a wrong header, an unknown split, a label
    /// other than 0 or 1, an empty path, a path listed twice.
    pub fn read_csv(path: &Path) -> Result<Split> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)));
        let bad = |line: usize, detail: String| Error::format(path, format!("line {line}: {detail}"));
        match lines.next() {
            Some((_, HEADER)) => {}
            Some((n, other)) => return Err(bad(n, format!("expected the header {HEADER:?}, found {other:?}"))),
            None => return Err(Error::format(path, format!("empty file (expected the header {HEADER:?})"))),
        }
        let mut split = Split::default();
        let mut seen: HashMap<PathBuf, usize> = HashMap::new();
        for (n, line) in lines.filter(|(_, l)| !l.is_empty()) {
            let mut fields = line.splitn(3, ',');
            let (Some(name), Some(label), Some(file)) = (fields.next(), fields.next(), fields.next()) else {
                return Err(bad(n, format!("expected split,label,path, found {line:?}")));
            };
            let part = match name {
                "train" => &mut split.train,
                "val" => &mut split.val,
                "test" => &mut split.test,
                other => return Err(bad(n, format!("unknown split {other:?} (expected train, val or test)"))),
            };
            let label = match label {
                "0" => NEGATIVE,
                "1" => POSITIVE,
                other => return Err(bad(n, format!("label {other:?} is not 0 (negative) or 1 (positive, COVID)"))),
            };
            if file.is_empty() {
                return Err(bad(n, "empty image path".into()));
            }
            let file = PathBuf::from(file);
            if let Some(first) = seen.insert(file.clone(), n) {
                return Err(bad(n, format!("{} is already listed on line {first}", file.display())));
            }
            part.push(Example { path: file, label });
        }
        Ok(split)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(prefix: &str, n: usize) -> Vec<PathBuf> {
        (0..n).map(|i| PathBuf::from(format!("{prefix}/img_{i:03}.png"))).collect()
    }

    fn count(part: &[Example], label: usize) -> usize {
        part.iter().filter(|e| e.label == label).count()
    }

    #[test]
    fn each_part_keeps_the_class_proportions() {
        let (pos, neg) = (files("covid", 30), files("normal", 70));
        let fractions = [0.7, 0.15, 0.15];
        let s = stratified_split(&pos, &neg, fractions, 1).unwrap();
        for (part, f) in [(&s.train, fractions[0]), (&s.val, fractions[1]), (&s.test, fractions[2])] {
            // Each class contributes its own share (to within the one file that rounding moves).
            for (label, n) in [(POSITIVE, 30.0), (NEGATIVE, 70.0)] {
                let got = count(part, label) as f64;
                assert!((got - f * n).abs() <= 1.0, "label {label}: {got} files for a share of {}", f * n);
            }
        }
    }

    #[test]
    fn every_part_gets_a_file_of_each_class_from_three() {
        // 3 · (0.8, 0.1, 0.1) = 2.4, 0.3, 0.3 rounds to 3, 0, 0: the empty parts take a file from the largest.
        let s = stratified_split(&files("p", 3), &files("n", 4), [0.8, 0.1, 0.1], 0).unwrap();
        for part in [&s.train, &s.val, &s.test] {
            assert_eq!(count(part, POSITIVE), 1);
            assert!(count(part, NEGATIVE) >= 1);
        }
        assert_eq!(counts(3, [0.8, 0.1, 0.1]), [1, 1, 1]);
        assert_eq!(counts(10, [0.7, 0.2, 0.1]), [7, 2, 1]);
        assert_eq!(counts(5, [0.6, 0.2, 0.2]).iter().sum::<usize>(), 5);
    }

    #[test]
    fn the_parts_are_disjoint_and_cover_every_file() {
        let (pos, neg) = (files("covid", 17), files("normal", 23));
        let s = stratified_split(&pos, &neg, [0.6, 0.2, 0.2], 9).unwrap();
        let all: Vec<&Example> = s.train.iter().chain(&s.val).chain(&s.test).collect();
        assert_eq!(all.len(), 40);
        assert_eq!(all.iter().map(|e| &e.path).collect::<HashSet<_>>().len(), 40, "a file is in two parts");
        for e in all {
            let want = if pos.contains(&e.path) { POSITIVE } else { NEGATIVE };
            assert!(pos.contains(&e.path) || neg.contains(&e.path), "{} was not given", e.path.display());
            assert_eq!(e.label, want, "{}", e.path.display());
        }
    }

    #[test]
    fn the_split_depends_only_on_the_seed_and_the_set_of_files() {
        let (pos, neg) = (files("covid", 20), files("normal", 20));
        let a = stratified_split(&pos, &neg, [0.5, 0.25, 0.25], 42).unwrap();
        assert_eq!(a, stratified_split(&pos, &neg, [0.5, 0.25, 0.25], 42).unwrap());
        // The same files in another order.
        let (rpos, rneg): (Vec<_>, Vec<_>) = (pos.iter().rev().cloned().collect(), neg.iter().rev().cloned().collect());
        assert_eq!(a, stratified_split(&rpos, &rneg, [0.5, 0.25, 0.25], 42).unwrap());
        // A class's split does not move when the other class grows.
        let b = stratified_split(&pos, &files("normal", 50), [0.5, 0.25, 0.25], 42).unwrap();
        let positives = |s: &Split| s.test.iter().filter(|e| e.label == POSITIVE).cloned().collect::<Vec<_>>();
        assert_eq!(positives(&a), positives(&b));
    }

    #[test]
    fn different_seeds_give_different_splits() {
        let (pos, neg) = (files("covid", 20), files("normal", 20));
        let a = stratified_split(&pos, &neg, [0.5, 0.25, 0.25], 1).unwrap();
        let b = stratified_split(&pos, &neg, [0.5, 0.25, 0.25], 2).unwrap();
        assert_ne!(a.test, b.test);
        assert_eq!((a.test.len(), a.val.len()), (b.test.len(), b.val.len()), "the sizes depend on the counts only");
    }

    #[test]
    fn a_class_of_two_files_is_an_error_naming_it() {
        let err = stratified_split(&files("p", 2), &files("n", 10), [0.8, 0.1, 0.1], 0).unwrap_err().to_string();
        assert!(err.contains("positive") && err.contains("2 file"), "{err}");
        let err = stratified_split(&files("p", 10), &files("n", 2), [0.8, 0.1, 0.1], 0).unwrap_err().to_string();
        assert!(err.contains("negative") && err.contains("2 file"), "{err}");
    }

    #[test]
    fn bad_fractions_and_shared_files_are_errors() {
        let (pos, neg) = (files("p", 5), files("n", 5));
        for f in [[0.8, 0.2, 0.0], [0.5, 0.5, 0.5], [f64::NAN, 0.5, 0.5]] {
            assert!(stratified_split(&pos, &neg, f, 0).is_err(), "{f:?}");
        }
        let mut shared = neg.clone();
        shared.push(pos[3].clone());
        let err = stratified_split(&pos, &shared, [0.6, 0.2, 0.2], 0).unwrap_err().to_string();
        assert!(err.contains("p/img_003.png") && err.contains("twice"), "{err}");
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cxr-gan-split-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_split_round_trips_through_csv() {
        let mut pos = files("covid", 12);
        pos.push(PathBuf::from("odd dir/with, comma.png")); // a comma in the path survives
        let s = stratified_split(&pos, &files("/data/normal", 15), [0.6, 0.2, 0.2], 3).unwrap();
        let dir = temp_dir("roundtrip");
        let file = dir.join("split.csv");
        s.write_csv(&file).unwrap();
        assert_eq!(Split::read_csv(&file).unwrap(), s);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with("split,label,path\ntrain,0,"), "{text}");
        assert_eq!(text.lines().count(), 1 + 28);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "a temporary file was left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bad_csv_is_an_error_naming_file_and_line() {
        let dir = temp_dir("bad");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("split.csv");
        for (body, line, what) in [
            ("split,label,path\ntrain,0,a.png\nval,2,b.png\n", "line 3", "label"),
            ("split,label,path\ntrain,0,a.png\ntest,1,a.png\n", "line 3", "line 2"),
            ("split,label,path\nholdout,1,a.png\n", "line 2", "holdout"),
            ("split,label,path\ntrain,1\n", "line 2", "split,label,path"),
            ("path,label\n", "line 1", "header"),
        ] {
            std::fs::write(&file, body).unwrap();
            let err = Split::read_csv(&file).unwrap_err().to_string();
            assert!(err.contains("split.csv") && err.contains(line) && err.contains(what), "{body:?}: {err}");
        }
        let err = Split::read_csv(&dir.join("missing.csv")).unwrap_err().to_string();
        assert!(err.contains("missing.csv"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
