//! Records the git commit the binary was built from, for config.json's versions (`CXR_GAN_GIT_COMMIT`).
//!
//! Reruns only when the commit can have changed: the files git keeps HEAD and its branch in (found through
//! `git rev-parse`, so a worktree, whose `.git` is a file, works too). A path cargo is told to watch must
//! exist, or cargo reruns the script, and rebuilds the crate, on every build.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok().filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CXR_GAN_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-changed=build.rs");
    let mut watched: Vec<PathBuf> = Vec::new();
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        watched.push(head.into());
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(r) = git(&["rev-parse", "--git-path", &branch]) {
            watched.push(r.into());
        }
        // A packed branch ref lives in packed-refs.
        if let Some(p) = git(&["rev-parse", "--git-path", "packed-refs"]) {
            watched.push(p.into());
        }
    }
    for p in watched.into_iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}
