//! The run directory: where a run's files live, and the rules that keep a user's other files safe.
//!
//! `--force` replaces only a folder that is recognisably a cxr-gan run (its config.json parses as one) and
//! that neither holds nor lies inside the training data. A fresh run that fails before its first checkpoint
//! removes the folder it created, so the same `--out` can be used again; after a checkpoint, the folder
//! stays and `--resume` continues it.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::train::config::load_config;

pub struct RunDir(pub PathBuf);

impl RunDir {
    pub fn config(&self) -> PathBuf {
        self.0.join("config.json")
    }
    pub fn metrics(&self) -> PathBuf {
        self.0.join("metrics.csv")
    }
    pub fn dataset_cache(&self) -> PathBuf {
        self.0.join("dataset.safetensors")
    }
    pub fn samples(&self) -> PathBuf {
        self.0.join("samples")
    }
    pub fn checkpoints(&self) -> PathBuf {
        self.0.join("checkpoints")
    }
    pub fn last(&self) -> PathBuf {
        self.checkpoints().join("last.safetensors")
    }
    pub fn epoch_checkpoint(&self, epoch: usize) -> PathBuf {
        self.checkpoints().join(format!("epoch_{epoch:04}.safetensors"))
    }
    pub fn sample_grid(&self, epoch: usize) -> PathBuf {
        self.samples().join(format!("epoch_{epoch:04}.png"))
    }
    pub fn loss_plot(&self) -> PathBuf {
        self.0.join("loss.png")
    }
    pub fn fid_metrics(&self) -> PathBuf {
        self.0.join("metrics_fid.csv")
    }
    pub fn summary(&self) -> PathBuf {
        self.0.join("summary.json")
    }
    pub fn demo_data(&self) -> PathBuf {
        self.0.join("demo_data")
    }

    /// Whether `dir` is a run directory: it holds a config.json that `train` wrote.
    pub fn is_run_dir(dir: &Path) -> bool {
        load_config(&RunDir(dir.to_path_buf()).config()).is_ok()
    }

    /// Makes the folder of a fresh run at `dir`. An existing empty folder is used as it is; an existing
    /// non-empty one is refused unless `force`, and then replaced only if it is a run directory that does not
    /// contain, and is not inside, `data` (the training images). The returned guard removes the folder again
    /// if the run fails before writing its first checkpoint.
    pub fn create(dir: &Path, force: bool, data: Option<&Path>) -> Result<CreatedRunDir> {
        Self::create_kind(dir, force, data, Self::is_run_dir, "cxr-gan run directory (one with the config.json `train` writes)")
    }

    /// [`RunDir::create`] for any kind of run: `--force` replaces only a folder `is_ours` recognises,
    /// described as `kind` in the refusal.
    pub fn create_kind(dir: &Path, force: bool, data: Option<&Path>, is_ours: fn(&Path) -> bool, kind: &str) -> Result<CreatedRunDir> {
        let shown = dir.display();
        if let Some(data) = data {
            if overlaps(dir, data) {
                return Err(Error::Other(format!(
                    "--out {shown} and --data {} overlap (one is inside the other); the run directory must be a separate folder",
                    data.display()
                )));
            }
        }
        if dir.exists() {
            if !dir.is_dir() {
                return Err(Error::Other(format!("--out {shown} exists and is not a folder")));
            }
            let empty = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?.next().is_none();
            if !empty {
                if !force {
                    return Err(Error::Other(format!(
                        "{shown} exists; pass --resume {shown} to continue it, or --force to replace it (a run directory only)"
                    )));
                }
                if !is_ours(dir) {
                    return Err(Error::Other(format!("--force replaces only a {kind}; {shown} is not one, so it is left untouched")));
                }
                std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
        }
        let run = RunDir(dir.to_path_buf());
        std::fs::create_dir_all(run.checkpoints()).map_err(|e| Error::io(dir, e))?;
        Ok(CreatedRunDir { run, keep: false })
    }
}

/// A run directory this process created: removed on drop unless the run wrote a checkpoint (then it can be
/// resumed) or [`CreatedRunDir::keep`] was called.
pub struct CreatedRunDir {
    pub run: RunDir,
    keep: bool,
}

impl CreatedRunDir {
    pub fn keep(mut self) -> RunDir {
        self.keep = true;
        RunDir(self.run.0.clone())
    }
}

impl Drop for CreatedRunDir {
    fn drop(&mut self) {
        if !self.keep && !self.run.last().exists() {
            let _ = std::fs::remove_dir_all(&self.run.0);
        }
    }
}

/// Whether one of two paths is, or lies inside, the other (compared after resolving what exists).
fn overlaps(a: &Path, b: &Path) -> bool {
    let (a, b) = (resolve(a), resolve(b));
    a.starts_with(&b) || b.starts_with(&a)
}

/// The absolute form of `p`, with its longest existing ancestor canonicalised (so `x/../y` and symlinks
/// compare as the folders they name, even before the leaf exists).
fn resolve(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            return rest.iter().rev().fold(c, |acc: PathBuf, part| acc.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return abs,
        }
    }
}
