//! `cxr-gan fid PATH1 PATH2 [--dims 64|192|768|2048] [--batch-size 50] [--backend auto|cpu] [--weights FILE]
//! [--save-stats]`: the FID between two image folders and/or `.npz` statistics, as pytorch-fid's
//! `python -m pytorch_fid PATH1 PATH2`; with `--save-stats`, the statistics of the folder PATH1 written to
//! PATH2 (`.npz` with `mu` and `sigma`, readable by pytorch-fid).

use std::path::{Path, PathBuf};

use clap::Args;

use crate::backend::{dispatch, Backend, BackendTask, BACKEND_NAMES};
use crate::data::list_images;
use crate::error::{Error, Result};
use crate::fid::features::{features_of_files, DEFAULT_BATCH};
use crate::fid::inception::{block_for_dims, find_weights, InceptionV3};
use crate::fid::{frechet_distance, load_stats_npz, save_stats_npz, Score, Statistics};

#[derive(Args, Clone, Debug)]
pub struct FidArgs {
    /// A folder of images or a .npz of statistics (with --save-stats: the image folder).
    pub path1: PathBuf,
    /// A folder of images or a .npz of statistics (with --save-stats: the .npz to write).
    pub path2: PathBuf,
    /// Feature size: the pooled output of Inception block 0, 1, 2 or 3 (64, 192, 768 or 2048).
    #[arg(long, default_value_t = 2048)]
    pub dims: usize,
    /// Images per Inception forward pass.
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    pub batch_size: usize,
    /// Where the Inception runs: auto (the fastest backend present), cpu, wgpu or cuda.
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// The FID Inception weights (pt_inception_fid.safetensors); else $CXR_GAN_FID_WEIGHTS, else the user cache.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Write the statistics of the image folder PATH1 to PATH2 (.npz) instead of computing a FID.
    #[arg(long)]
    pub save_stats: bool,
    /// With two image folders, also print what makes the FID readable: a 95 % bootstrap interval over
    /// PATH1's images, the real-vs-real floor (FID between random halves of PATH2) and KID.
    #[arg(long, conflicts_with = "save_stats")]
    pub readable: bool,
}

/// What one path holds.
enum Source {
    Folder(Vec<PathBuf>),
    Stats(Statistics),
}

/// A path as a folder of at least 2 images or as `.npz` statistics; errors name the path.
fn source(path: &Path) -> Result<Source> {
    if path.is_dir() {
        let files = list_images(path)?;
        if files.len() < 2 {
            return Err(Error::Other(format!(
                "{}: {} image; FID needs at least 2 images per side (a covariance)",
                path.display(),
                files.len()
            )));
        }
        return Ok(Source::Folder(files));
    }
    if path.is_file() {
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npz")) {
            return Ok(Source::Stats(load_stats_npz(path)?));
        }
        return Err(Error::format(path, "neither a folder of images nor a .npz file of statistics"));
    }
    Err(Error::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder")))
}

/// The result of [`compute`].
#[derive(Clone, Debug, PartialEq)]
pub enum FidOutcome {
    /// The FID, and per path the number of images (None for `.npz` statistics).
    /// `score`: with `--readable` and two folders, the interval, floor and KID beside the FID.
    Fid { value: f64, counts: [Option<usize>; 2], score: Option<Score> },
    /// `--save-stats`: how many images were summarised.
    Saved { count: usize },
}

/// The Inception statistics of image folders on one backend.
struct FolderStats<'a> {
    weights: PathBuf,
    folders: Vec<(&'a Path, &'a [PathBuf])>,
    dims: usize,
    batch: usize,
}

impl BackendTask for FolderStats<'_> {
    /// Each folder's feature rows.
    type Output = Vec<Vec<f64>>;
    fn run<B: Backend>(self, b: &B) -> Result<Vec<Vec<f64>>> {
        let model = InceptionV3::load(b, &self.weights)?;
        self.folders
            .iter()
            .map(|(dir, files)| {
                features_of_files(b, &model, files, self.dims, self.batch, true).map_err(|e| match e {
                    e @ (Error::Io { .. } | Error::Format { .. }) => e,
                    other => Error::Other(format!("{}: {other}", dir.display())),
                })
            })
            .collect()
    }
}

/// Validates the arguments, reads both paths, runs the Inception where a path is a folder, and returns the
/// FID (or writes the statistics with `--save-stats`). Every error is one line naming what is wrong, except
/// the missing-weights error, which lists where it looked.
pub fn compute(a: &FidArgs) -> Result<FidOutcome> {
    block_for_dims(a.dims)?;
    if a.batch_size == 0 {
        return Err(Error::invalid("fid", "--batch-size must be positive"));
    }
    if !BACKEND_NAMES.contains(&a.backend.as_str()) {
        return Err(Error::Backend {
            backend: a.backend.clone(),
            detail: format!("unknown backend; this build has: {}", BACKEND_NAMES.join(", ")),
        });
    }
    if a.save_stats {
        let Source::Folder(files) = source(&a.path1)? else {
            return Err(Error::format(&a.path1, "--save-stats needs a folder of images as PATH1"));
        };
        if a.path2.exists() {
            return Err(Error::format(&a.path2, "already exists; --save-stats does not overwrite"));
        }
        if !a.path2.extension().is_some_and(|e| e.eq_ignore_ascii_case("npz")) {
            return Err(Error::format(&a.path2, "--save-stats writes .npz statistics: the file name must end in .npz"));
        }
        let weights = find_weights(a.weights.as_deref())?;
        let task = FolderStats { weights, folders: vec![(&a.path1, &files)], dims: a.dims, batch: a.batch_size };
        let rows = dispatch(&a.backend, task)?.remove(0);
        save_stats_npz(&a.path2, &Statistics::from_features(&rows, a.dims)?)?;
        return Ok(FidOutcome::Saved { count: files.len() });
    }
    let sources = [source(&a.path1)?, source(&a.path2)?];
    let paths = [&a.path1, &a.path2];
    // Statistics files must fit each other, and --dims wherever a folder is involved.
    let any_folder = sources.iter().any(|s| matches!(s, Source::Folder(_)));
    let npz_dims: Vec<(usize, &PathBuf)> =
        sources.iter().zip(paths).filter_map(|(s, p)| if let Source::Stats(st) = s { Some((st.dims, p)) } else { None }).collect();
    if let [(d1, p1), (d2, p2)] = npz_dims[..] {
        if d1 != d2 {
            return Err(Error::Other(format!(
                "{} holds {d1}-dimensional statistics but {} holds {d2}-dimensional ones",
                p1.display(),
                p2.display()
            )));
        }
    }
    if any_folder {
        if let Some(&(d, p)) = npz_dims.iter().find(|(d, _)| *d != a.dims) {
            return Err(Error::Other(format!(
                "{} holds {d}-dimensional statistics but --dims is {}; pass --dims {d}",
                p.display(),
                a.dims
            )));
        }
    }
    let folders: Vec<(&Path, &[PathBuf])> = sources
        .iter()
        .zip(paths)
        .filter_map(|(s, p)| if let Source::Folder(f) = s { Some((p.as_path(), f.as_slice())) } else { None })
        .collect();
    let mut computed = if folders.is_empty() {
        Vec::new()
    } else {
        let weights = find_weights(a.weights.as_deref())?;
        dispatch(&a.backend, FolderStats { weights, folders, dims: a.dims, batch: a.batch_size })?
    }
    .into_iter();
    let mut counts = [None, None];
    let mut stats = Vec::with_capacity(2);
    let mut rows = Vec::with_capacity(2);
    for (i, s) in sources.into_iter().enumerate() {
        match s {
            Source::Folder(files) => {
                counts[i] = Some(files.len());
                let r = computed.next().expect("features for every folder");
                stats.push(Statistics::from_features(&r, a.dims)?);
                rows.push(r);
            }
            Source::Stats(st) => stats.push(st),
        }
    }
    let value = frechet_distance(&stats[0], &stats[1])?;
    let score = match &rows[..] {
        [generated, real] if a.readable => Some(Score::of_features(generated, real, a.dims, 0)?),
        _ => None,
    };
    Ok(FidOutcome::Fid { value, counts, score })
}

pub fn run(a: FidArgs) -> Result<()> {
    match compute(&a)? {
        FidOutcome::Saved { count } => {
            println!("wrote the statistics of {count} images ({} features) to {}", a.dims, a.path2.display());
        }
        FidOutcome::Fid { value, counts, score } => {
            for (path, count) in [&a.path1, &a.path2].iter().zip(counts) {
                match count {
                    Some(n) => println!("{}: {n} images", path.display()),
                    None => println!("{}: statistics", path.display()),
                }
            }
            println!("FID: {}", python_repr(value));
            match score {
                Some(s) => println!("{s}\n  (interval: bootstrap over PATH1's images; floor: FID between random halves of PATH2)"),
                None if a.readable => println!("(--readable needs image folders on both sides: an .npz holds no features)"),
                None => {}
            }
        }
    }
    Ok(())
}

/// A float as Python's `repr` writes it (pytorch-fid prints the FID that way): shortest round-trip digits,
/// scientific below 1e-4 and from 1e16 on.
pub fn python_repr(v: f64) -> String {
    if v != 0.0 && v.is_finite() && (v.abs() < 1e-4 || v.abs() >= 1e16) {
        let s = format!("{v:e}");
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e:0>2}"),
            Some((m, e)) => format!("{m}e-{:0>2}", &e[1..]),
            None => s,
        }
    } else if v.is_finite() && v == v.trunc() && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}
