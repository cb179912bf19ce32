//! What the tests find beside the project (`../shared`, or the environment): real X-rays and the FID
//! Inception weights. Each lookup prints why a test skips when the thing is absent.

use std::path::{Path, PathBuf};

fn find(env: &str, default: &str, is_there: fn(&Path) -> bool, what: &str) -> Option<PathBuf> {
    let p = std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(default));
    if is_there(&p) {
        Some(p)
    } else {
        println!("skipped: no {what} at {} (set {env})", p.display());
        None
    }
}

/// The folder of real X-rays (`CXR_GAN_DATA_DIR`, default ../shared/data/mhh-covid19-299).
pub fn data_dir() -> Option<PathBuf> {
    find("CXR_GAN_DATA_DIR", "../shared/data/mhh-covid19-299", Path::is_dir, "X-rays")
}

/// The FID Inception weights (`CXR_GAN_FID_WEIGHTS`, default ../shared/weights/pt_inception_fid.safetensors).
pub fn fid_weights() -> Option<PathBuf> {
    find("CXR_GAN_FID_WEIGHTS", "../shared/weights/pt_inception_fid.safetensors", Path::is_file, "FID Inception weights")
}
