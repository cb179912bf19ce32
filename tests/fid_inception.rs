//! FID's InceptionV3 end to end on the `cpu` backend: every golden `inception_fid*` file through the
//! conformance runner (features within 1e-4 absolute of pytorch-fid), batching and image-size invariance,
//! the weights lookup and its errors, and the `fid` command's error cases through the binary.
//!
//! Weights: `$CXR_GAN_FID_WEIGHTS`, else `../shared/weights/pt_inception_fid.safetensors`; without them the
//! tests that need them say so and pass.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use cxr_gan::backend::cpu::CpuBackend;
use cxr_gan::backend::Backend;
use cxr_gan::conformance::{run_file, Outcome};
use cxr_gan::fid::features::{load_rgb, statistics_of_files};
use cxr_gan::fid::inception::{conformance_weights, find_weights_from, images_to_unit, InceptionV3, WEIGHTS_ENV, WEIGHTS_FILE};
use cxr_gan::fid::{fid_of_images, save_stats_npz, statistics_of_images, Statistics};
use cxr_gan::golden::{self, GoldenFile};
use cxr_gan::Tensor;

fn model() -> Option<&'static InceptionV3<Tensor>> {
    static MODEL: OnceLock<Option<InceptionV3<Tensor>>> = OnceLock::new();
    MODEL
        .get_or_init(|| match conformance_weights() {
            Ok(p) => Some(InceptionV3::load(&CpuBackend::new(), &p).expect("the weights file loads")),
            Err(why) => {
                println!("skipped: {why}");
                None
            }
        })
        .as_ref()
}

fn tmp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cxr-gan-fid-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Deterministic pseudo-random bytes.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

// ------------------------------------------------------------------ golden files

#[test]
fn golden_inception_files_on_cpu() {
    let dir = golden::golden_dir();
    let names = ["inception_fid_64px", "inception_fid_80x100px", "inception_fid_299px", "inception_fid_layers"];
    let cpu = CpuBackend::new();
    for name in names {
        let path = dir.join(format!("{name}.safetensors"));
        if !path.exists() {
            println!("{name}: skipped (no golden file at {})", path.display());
            continue;
        }
        let file = GoldenFile::open(&path).unwrap();
        let t = std::time::Instant::now();
        match run_file(&cpu, &file).unwrap() {
            Outcome::Checked(checks) => {
                let secs = t.elapsed().as_secs_f64();
                for c in &checks {
                    if !name.ends_with("layers") || !c.passed {
                        println!("{name:24} {:24} {} {}", c.name, if c.passed { "pass" } else { "FAIL" }, c.detail);
                    }
                }
                let worst = checks.iter().map(|c| c.error).fold(0.0, f64::max);
                println!("{name:24} {} outputs, worst {worst:.2e}, {secs:.1} s", checks.len());
                let bad: Vec<_> = checks.iter().filter(|c| !c.passed).map(|c| format!("{}: {}", c.name, c.detail)).collect();
                assert!(bad.is_empty(), "{name}: {}", bad.join("; "));
            }
            Outcome::Skipped(why) => println!("{name}: skipped ({why})"),
            Outcome::NotCheckedYet(why) => panic!("{name}: not checked ({why})"),
        }
    }
}

// ------------------------------------------------------------------ library behaviour

#[test]
fn features_do_not_depend_on_batching_or_on_mixed_sizes() {
    let Some(m) = model() else { return };
    let cpu = CpuBackend::new();
    let dir = tmp_dir("mixed");
    // Four images, two sizes, interleaved; written as PNG (lossless) so the disk path sees the same bytes.
    let sizes = [(40, 48), (64, 64), (40, 48), (64, 64)];
    let mut files = Vec::new();
    let mut per_image = Vec::new();
    for (i, &(h, w)) in sizes.iter().enumerate() {
        let data = bytes(3 * h * w, i as u64 + 1);
        let hwc: Vec<u8> = (0..h * w).flat_map(|p| [data[p], data[h * w + p], data[2 * h * w + p]]).collect();
        let path = dir.join(format!("img{i}.png"));
        image::RgbImage::from_raw(w as u32, h as u32, hwc).unwrap().save(&path).unwrap();
        assert_eq!(load_rgb(&path).unwrap().chw, data, "PNG round trip");
        files.push(path);
        let x = cpu.upload(&images_to_unit(&data, [1, 3, h, w]).unwrap()).unwrap();
        per_image.push(m.features(&cpu, &x, 64).unwrap());
    }
    let expected = Statistics::from_features(&per_image.concat(), 64).unwrap();
    for batch in [1, 3, 4] {
        let s = statistics_of_files(&cpu, m, &files, 64, batch, false).unwrap();
        let err = s.mu.iter().zip(&expected.mu).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        println!("batch {batch}: max |Δmu| {err:.2e}");
        assert!(err < 1e-5, "batch {batch}: mu differs by {err}");
        assert_eq!(s.count, 4);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn fid_of_images_against_its_own_statistics_is_zero() {
    let Some(m) = model() else { return };
    let cpu = CpuBackend::new();
    let shape = [3, 3, 32, 32];
    let images = bytes(shape.iter().product(), 7);
    let reference = statistics_of_images(&cpu, m, &images, shape, 192, 2).unwrap();
    let fid = fid_of_images(&cpu, m, &images, shape, &reference, 50).unwrap();
    println!("fid against itself: {fid:e}");
    assert!(fid.abs() < 1e-3, "{fid}");
    // Darker images: another distribution, a clearly positive distance.
    let other: Vec<u8> = bytes(shape.iter().product(), 8).iter().map(|v| v / 4).collect();
    let fid_other = fid_of_images(&cpu, m, &other, shape, &reference, 50).unwrap();
    println!("fid against darker noise: {fid_other}");
    assert!(fid_other > 1.0, "{fid_other}");
    // Wrong input: not RGB, one image, a bad dims.
    assert!(statistics_of_images(&cpu, m, &images[..32 * 32 * 3], [3, 1, 32, 32], 192, 2).is_err());
    let one = statistics_of_images(&cpu, m, &images[..3 * 32 * 32], [1, 3, 32, 32], 192, 2).unwrap_err();
    assert!(one.to_string().contains("at least 2"), "{one}");
    assert!(statistics_of_images(&cpu, m, &images, shape, 100, 2).unwrap_err().to_string().contains("64, 192, 768, 2048"));
}

#[test]
fn weights_lookup_order_and_errors() {
    let dir = tmp_dir("weights");
    let present = dir.join("w.safetensors");
    std::fs::write(&present, b"x").unwrap();
    let missing = dir.join("nope.safetensors");
    let cache = dir.join("cache").join(WEIGHTS_FILE);
    // --weights wins; then the environment; then the cache.
    assert_eq!(find_weights_from(Some(&present), Some(missing.as_os_str()), None).unwrap(), present);
    assert_eq!(find_weights_from(None, Some(present.as_os_str()), Some(cache.clone())).unwrap(), present);
    std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
    std::fs::write(&cache, b"x").unwrap();
    assert_eq!(find_weights_from(None, None, Some(cache.clone())).unwrap(), cache);
    // A named file that is absent is an error naming it (no silent fallback).
    let e = find_weights_from(Some(&missing), None, Some(cache.clone())).unwrap_err().to_string();
    assert!(e.contains("--weights") && e.contains("nope.safetensors"), "{e}");
    let e = find_weights_from(None, Some(missing.as_os_str()), Some(cache.clone())).unwrap_err().to_string();
    assert!(e.contains(WEIGHTS_ENV) && e.contains("nope.safetensors"), "{e}");
    // Nothing anywhere: every place is listed, with the file needed and how to get it.
    std::fs::remove_file(&cache).unwrap();
    let e = find_weights_from(None, None, Some(cache.clone())).unwrap_err().to_string();
    println!("{e}");
    for needle in [
        "--weights FILE: not given",
        &format!("${WEIGHTS_ENV}: not set"),
        &cache.display().to_string(),
        WEIGHTS_FILE,
        "pt_inception-2015-12-05",
    ] {
        assert!(e.contains(needle), "missing {needle:?} in: {e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_wrong_weights_file_lists_its_problems() {
    let dir = tmp_dir("badweights");
    let cpu = CpuBackend::new();
    // Not safetensors at all.
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"definitely not").unwrap();
    let e = InceptionV3::load(&cpu, &junk).err().unwrap().to_string();
    assert!(e.contains("junk.safetensors") && e.contains("not a safetensors"), "{e}");
    // Safetensors with one right tensor, one mis-shaped, the rest missing.
    let t = |shape: &[usize]| Tensor::zeros(shape);
    let mut named = vec![("Conv2d_1a_3x3.conv.weight".to_string(), t(&[32, 3, 3, 3])), ("Conv2d_1a_3x3.bn.bias".to_string(), t(&[31]))];
    named.push(("Conv2d_1a_3x3.bn.weight".to_string(), t(&[32])));
    let views: Vec<_> = named
        .iter()
        .map(|(n, t)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, t.shape().to_vec(), bytemuck::cast_slice(t.data())).unwrap(),
            )
        })
        .collect();
    let path = dir.join("partial.safetensors");
    std::fs::write(&path, safetensors::serialize(views, &None).unwrap()).unwrap();
    let e = InceptionV3::load(&cpu, &path).err().unwrap().to_string();
    println!("{}", &e[..e.len().min(400)]);
    assert!(e.contains("partial.safetensors"), "{e}");
    assert!(e.contains("`Conv2d_1a_3x3.bn.bias` has shape [31], expected [32]"), "{e}");
    assert!(e.contains("`Conv2d_1a_3x3.bn.running_mean` is missing"), "{e}");
    assert!(e.contains("more"), "a long list is cut: {e}");
    let _ = std::fs::remove_dir_all(&dir);
}

// ------------------------------------------------------------------ the `fid` command

fn cxr_gan(args: &[&str], weights: Option<&Path>) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cxr-gan"));
    cmd.arg("fid").args(args);
    cmd.env_remove(WEIGHTS_ENV);
    // A private cache, so a user's real cache never leaks into the test.
    cmd.env("XDG_CACHE_HOME", std::env::temp_dir().join(format!("cxr-gan-fid-nocache-{}", std::process::id())));
    if let Some(w) = weights {
        cmd.env(WEIGHTS_ENV, w);
    }
    let out = cmd.output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn fid_prints_as_python_repr() {
    use cxr_gan::cli::fid::python_repr;
    for (v, s) in [
        (12.345, "12.345"),
        (0.0, "0.0"),
        (3.0, "3.0"),
        (-5.551115123125783e-17, "-5.551115123125783e-17"),
        (1e-5, "1e-05"),
        (2.5e16, "2.5e+16"),
        (0.0001, "0.0001"),
        (123456.789, "123456.789"),
    ] {
        assert_eq!(python_repr(v), s);
    }
}

fn write_pngs(dir: &Path, n: usize, size: usize, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let data = bytes(3 * size * size, seed * 100 + i as u64);
        image::RgbImage::from_raw(size as u32, size as u32, data).unwrap().save(dir.join(format!("{i:03}.png"))).unwrap();
    }
}

#[test]
fn cli_rejects_bad_input_with_one_clear_line() {
    let dir = tmp_dir("cli-bad");
    let (a, one, empty) = (dir.join("a"), dir.join("one"), dir.join("empty"));
    write_pngs(&a, 3, 16, 1);
    write_pngs(&one, 1, 16, 2);
    std::fs::create_dir_all(&empty).unwrap();
    let corrupt = dir.join("corrupt");
    write_pngs(&corrupt, 2, 16, 3);
    std::fs::write(corrupt.join("bad.png"), b"\x89PNG\r\n\x1a\nbroken").unwrap();
    let stats64 = Statistics::new(vec![0.0; 64], (0..64 * 64).map(|i| if i % 65 == 0 { 1.0 } else { 0.0 }).collect(), 0).unwrap();
    let npz64 = dir.join("s64.npz");
    save_stats_npz(&npz64, &stats64).unwrap();
    let npz2048 = dir.join("s2048.npz");
    save_stats_npz(&npz2048, &Statistics::new(vec![0.0; 2048], vec![0.0; 2048 * 2048], 0).unwrap()).unwrap();
    let not_npz = dir.join("x.npz");
    std::fs::write(&not_npz, b"nope").unwrap();
    let s = |p: &Path| p.display().to_string();
    let w = conformance_weights().ok();
    let cases: Vec<(Vec<String>, &str, bool)> = vec![
        (vec![s(&a), s(&a), "--dims".into(), "100".into()], "--dims 100", false),
        (vec![s(&a), s(&a), "--batch-size".into(), "0".into()], "--batch-size", false),
        (vec![s(&a), s(&dir.join("missing"))], "missing", false),
        (vec![s(&npz64), s(&npz2048), "--dims".into(), "64".into()], "2048", false),
        (vec![s(&npz64), s(&not_npz), "--dims".into(), "64".into()], "x.npz", false),
        (vec![s(&a), s(&empty)], "no images", false),
        (vec![s(&a), s(&one)], "at least 2", false),
        (vec![s(&a), s(&npz64)], "64", false), // default dims 2048 vs a 64-d npz
        (vec![s(&a), s(&a), "--backend".into(), "tpu".into()], "unknown backend", false),
        (vec![s(&a), s(&corrupt), "--backend".into(), "cpu".into()], "bad.png", true),
    ];
    for (args, needle, needs_weights) in cases {
        if needs_weights && w.is_none() {
            continue;
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out, err) = cxr_gan(&argv, w.as_deref());
        println!("fid {}: {}", argv.join(" "), err.trim());
        assert!(!ok, "fid {argv:?} succeeded: {out}");
        assert!(err.contains(needle), "fid {argv:?}: {err:?} lacks {needle:?}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err:?}");
    }
    // No weights anywhere: the error says where it looked.
    let (ok, _, err) = cxr_gan(&[&s(&a), &s(&a), "--dims", "64"], None);
    assert!(!ok);
    assert!(err.contains("--weights FILE: not given") && err.contains(WEIGHTS_ENV) && err.contains("cxr-gan-fid-nocache"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_fid_and_save_stats_agree() {
    let Some(w) = conformance_weights().ok() else { return };
    let dir = tmp_dir("cli-ok");
    let (a, b) = (dir.join("a"), dir.join("b"));
    write_pngs(&a, 4, 24, 10);
    write_pngs(&b, 3, 24, 20);
    let s = |p: &Path| p.display().to_string();
    let npz = dir.join("a.npz");
    // `--backend cpu` throughout: `auto` would probe for GPUs, and the features are compared across runs.
    let (ok, out, err) = cxr_gan(&["--save-stats", &s(&a), &s(&npz), "--dims", "64", "--backend", "cpu"], Some(&w));
    assert!(ok, "{err}");
    println!("{out}");
    assert!(npz.exists());
    let (ok, _, err) = cxr_gan(&["--save-stats", &s(&a), &s(&npz), "--dims", "64"], Some(&w));
    assert!(!ok && err.contains("exists"), "refuses to overwrite: {err}");
    let fid = |args: &[&str]| {
        let (ok, out, err) = cxr_gan(args, Some(&w));
        assert!(ok, "{err}");
        println!("{out}");
        let line = out.lines().find(|l| l.starts_with("FID: ")).unwrap_or_else(|| panic!("no FID line in {out}"));
        line["FID: ".len()..].trim().parse::<f64>().unwrap()
    };
    let folders = fid(&[&s(&a), &s(&b), "--dims", "64", "--batch-size", "3", "--backend", "cpu"]);
    let with_npz = fid(&[&s(&npz), &s(&b), "--dims", "64", "--backend", "cpu"]);
    assert!(folders > 0.0 && (folders - with_npz).abs() < 1e-6 * folders.max(1.0), "{folders} vs {with_npz}");
    let same = fid(&[&s(&a), &s(&npz), "--dims", "64", "--backend", "cpu"]);
    assert!(same.abs() < 1e-6, "{same}");
    let _ = std::fs::remove_dir_all(&dir);
}
