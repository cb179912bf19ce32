//! What makes an FID readable: KID against torch-fidelity's arithmetic (golden files made by
//! scripts/make_kid_golden.py), the real-vs-real floor and the bootstrap interval by their defining
//! properties, and the demo's sample-quality numbers on a collapsed generator.

mod common;

use std::path::Path;

use cxr_gan::fid::kid::{kid, mmd2_unbiased_polynomial};
use cxr_gan::fid::uncertainty::{bootstrap_interval, real_floor};
use cxr_gan::fid::{frechet_distance, Statistics};
use cxr_gan::golden::{list, GoldenFile};
use cxr_gan::train::quality::{Quality, MIN_DIVERSITY_RATIO, MIN_MEAN_IMAGE_CORRELATION};
use cxr_gan::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// `n` rows of `d` features: |N(0, 1)|·scale + shift (non-negative like Inception's pooled features).
fn features(seed: u64, n: usize, d: usize, shift: f64, scale: f64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n * d).map(|_| rng.sample::<f64, _>(StandardNormal).abs() * scale + shift).collect()
}

#[test]
fn kid_mmd2_matches_torch_fidelity() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let files: Vec<_> = list(&dir).unwrap().into_iter().filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("kid_")).collect();
    assert_eq!(files.len(), 3, "tests/golden/kid_*.safetensors (scripts/make_kid_golden.py)");
    for path in files {
        let g = GoldenFile::open(&path).unwrap();
        assert_eq!(g.op, "kid_mmd2");
        let (shape, x) = g.f64("in.features1").unwrap();
        let (_, y) = g.f64("in.features2").unwrap();
        let ours = mmd2_unbiased_polynomial(&x, &y, shape[1]).unwrap();
        let check = g.check("out.mmd2", &[ours]).unwrap();
        assert!(check.passed, "{}: {check:?}", g.name);
    }
}

#[test]
fn kid_is_about_zero_for_one_law_and_grows_with_a_shift() {
    let d = 32;
    let real = features(1, 200, d, 0.0, 1.0);
    let same = kid(&features(2, 200, d, 0.0, 1.0), &real, d, 100, 100, 7).unwrap();
    let shifted = kid(&features(3, 200, d, 0.3, 1.0), &real, d, 100, 100, 7).unwrap();
    assert!(same.mean.abs() < 3.0 * same.std, "same law: {same:?}");
    assert!(shifted.mean > 10.0 * same.std.max(same.mean.abs()), "shift: {shifted:?} vs {same:?}");
    assert_eq!((shifted.subsets, shifted.subset_size), (100, 100));
    // Subsets that would be both whole sets are halved, so the std is informative.
    let whole = kid(&features(2, 50, d, 0.0, 1.0), &features(4, 50, d, 0.0, 1.0), d, 10, 1000, 7).unwrap();
    assert_eq!(whole.subset_size, 25);
    assert!(whole.std > 0.0);
}

#[test]
fn kid_refuses_what_it_cannot_estimate() {
    assert!(kid(&[1.0, 2.0], &[1.0, 2.0, 3.0, 4.0], 2, 10, 10, 0).is_err(), "one row");
    assert!(kid(&[1.0, 2.0, 3.0], &[1.0, 2.0], 2, 10, 10, 0).is_err(), "partial row");
    assert!(kid(&[f64::NAN, 1.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0], 2, 10, 10, 0).is_err(), "NaN");
}

#[test]
fn the_floor_is_the_fid_between_halves_and_shrinks_with_n() {
    let d = 8;
    let small = real_floor(&features(5, 40, d, 0.0, 1.0), d, 10, 0).unwrap();
    let large = real_floor(&features(5, 400, d, 0.0, 1.0), d, 10, 0).unwrap();
    assert!(small.mean > 0.0 && large.mean > 0.0);
    assert!(large.mean < small.mean / 4.0, "FID's bias falls like 1/n: {small:?} vs {large:?}");
    assert_eq!(small.n, 10);
    // One split by hand: halves of 4 rows from a 4-row set are the two 2-row halves of some order.
    let rows = features(6, 4, 2, 0.0, 1.0);
    let f = real_floor(&rows, 2, 1, 3).unwrap();
    let candidates: Vec<f64> = [[0, 1, 2, 3], [0, 2, 1, 3], [0, 3, 1, 2]]
        .iter()
        .map(|p| {
            let half =
                |a: usize, b: usize| Statistics::from_features(&[&rows[a * 2..a * 2 + 2], &rows[b * 2..b * 2 + 2]].concat(), 2).unwrap();
            frechet_distance(&half(p[0], p[1]), &half(p[2], p[3])).unwrap()
        })
        .collect();
    assert!(candidates.iter().any(|c| (c - f.mean).abs() < 1e-9 * c.abs().max(1.0)), "{} not in {candidates:?}", f.mean);
}

#[test]
fn the_bootstrap_interval_holds_the_estimate_and_narrows_with_n() {
    let d = 8;
    let reference = Statistics::from_features(&features(7, 500, d, 0.0, 1.0), d).unwrap();
    let width = |n: usize| {
        let generated = features(8, n, d, 0.2, 1.0);
        let fid = frechet_distance(&Statistics::from_features(&generated, d).unwrap(), &reference).unwrap();
        let ci = bootstrap_interval(&generated, &reference, 50, 1).unwrap();
        assert!(ci.lo < fid && fid < ci.hi, "n {n}: {fid} outside {ci:?}");
        ci.hi - ci.lo
    };
    let (narrow, wide) = (width(800), width(50));
    assert!(narrow < wide / 2.0, "{narrow} vs {wide}");
}

/// `n` images [n, 3, 8, 8]: noise around a common anatomy, or (collapsed) one image n times.
fn images(seed: u64, n: usize, collapsed: bool) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let base: Vec<f32> = (0..3 * 64).map(|i| ((i % 64) as f32 / 32.0) - 1.0).collect();
    let one =
        |rng: &mut ChaCha8Rng| base.iter().map(|b| (b + 0.4 * rng.sample::<f32, _>(StandardNormal)).clamp(-1.0, 1.0)).collect::<Vec<_>>();
    let first = one(&mut rng);
    let data = (0..n).flat_map(|_| if collapsed { first.clone() } else { one(&mut rng) }).collect();
    Tensor::new(&[n, 3, 8, 8], data).unwrap()
}

#[test]
fn a_collapsed_generator_fails_the_diversity_check_and_a_varied_one_passes() {
    let training = images(1, 64, false);
    let varied = Quality::measure(&images(2, 64, false), &training).unwrap();
    assert!(varied.passes(), "{varied:?}");
    // The constant generator: its mean image is a training-like image, so correlation alone passes it.
    let constant = Quality::measure(&images(3, 64, true), &training).unwrap();
    assert!(constant.mean_image_correlation >= MIN_MEAN_IMAGE_CORRELATION, "{constant:?}");
    assert!(constant.diversity_ratio < MIN_DIVERSITY_RATIO && constant.diversity_ratio.abs() < 1e-9, "{constant:?}");
    assert!(!constant.passes());
    assert!(constant.report().contains("mode collapse"));
}

#[test]
fn fid_readable_prints_interval_floor_and_kid_beside_the_same_fid() {
    let Some(weights) = common::shared::fid_weights() else { return };
    let root = std::env::temp_dir().join(format!("cxr-gan-readable-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    cxr_gan::data::write_demo_set(&root.join("a"), 8, 64, 1).unwrap();
    cxr_gan::data::write_demo_set(&root.join("b"), 10, 64, 2).unwrap();
    let fid = |extra: &[&str]| {
        let (a, b) = (root.join("a"), root.join("b"));
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_cxr-gan"))
            .args(["fid", &a.to_string_lossy(), &b.to_string_lossy(), "--dims", "64", "--backend", "cpu"])
            .args(extra)
            .env("CXR_GAN_FID_WEIGHTS", &weights)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let (plain, readable) = (fid(&[]), fid(&["--readable"]));
    let fid_line = |t: &str| t.lines().find(|l| l.starts_with("FID: ")).map(str::to_owned);
    assert_eq!(fid_line(&plain), fid_line(&readable), "{plain}\n{readable}");
    for needle in ["95% CI", "real-vs-real floor", "KID", "8 generated vs 10 real"] {
        assert!(readable.contains(needle), "{needle:?} missing:\n{readable}");
    }
    assert!(!plain.contains("KID"));
    let _ = std::fs::remove_dir_all(root);
}
