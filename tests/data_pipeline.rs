//! The data pipeline against OpenCV's outputs (golden files) and its own contracts: errors that name the
//! file or folder, the COVID-19 Radiography Database layout, phantom determinism and anatomy, seeded
//! selection, and the preprocessing cache.

use std::path::PathBuf;

use cxr_gan::data::{self, Dataset, GrayImage, PreprocessConfig, ResizeMode};
use cxr_gan::golden::{self, GoldenFile};
use cxr_gan::Tensor;

/// A fresh, empty folder under the system temp dir, unique per test and process.
fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cxr_gan_data_{tag}_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The golden files whose name starts with `prefix`, or `None` (with the reason printed) when absent.
fn golden_files(prefix: &str) -> Option<Vec<PathBuf>> {
    let dir = golden::golden_dir();
    let files: Vec<PathBuf> = match golden::list(&dir) {
        Ok(all) => all.into_iter().filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix))).collect(),
        Err(e) => {
            println!("SKIP {prefix}*: golden files not available ({e})");
            return None;
        }
    };
    if files.is_empty() {
        println!("SKIP {prefix}*: no such golden file in {}", dir.display());
        return None;
    }
    Some(files)
}

/// Runs every golden file matching `prefix` through `data::run_golden`, printing each result, and fails
/// on any check that misses its file's bar.
fn check_golden(prefix: &str, op: &str) {
    let Some(files) = golden_files(prefix) else { return };
    let mut failures = Vec::new();
    for path in files {
        let file = GoldenFile::open(&path).unwrap();
        assert_eq!(file.op, op, "{}: unexpected op", path.display());
        let checks = data::run_golden(&file).unwrap().unwrap_or_else(|| panic!("{}: op {op} not handled", file.name));
        assert!(!checks.is_empty(), "{}: nothing checked", file.name);
        for c in checks {
            println!("{:<28} {:<20} {} {}", file.name, c.name, if c.passed { "PASS" } else { "FAIL" }, c.detail);
            if !c.passed {
                failures.push(format!("{} {}: {}", file.name, c.name, c.detail));
            }
        }
    }
    assert!(failures.is_empty(), "golden failures:\n{}", failures.join("\n"));
}

#[test]
fn golden_clahe() {
    check_golden("clahe_", "clahe");
}

#[test]
fn golden_resize() {
    check_golden("resize_", "resize");
}

#[test]
fn golden_rgb_to_gray() {
    check_golden("rgb_to_gray", "rgb_to_gray");
}

#[test]
fn golden_preprocess() {
    check_golden("preprocess_cxr0", "preprocess");
}

#[test]
fn run_golden_ignores_other_ops() {
    let Some(files) = golden_files("conv2d_") else { return };
    let file = GoldenFile::open(&files[0]).unwrap();
    assert!(data::run_golden(&file).unwrap().is_none());
}

#[test]
fn corrupt_image_error_names_the_file() {
    let dir = temp_dir("corrupt");
    let path = dir.join("broken_scan.png");
    std::fs::write(&path, b"\x89PNG\r\n\x1a\nthis is not really a png at all").unwrap();
    let err = data::load_gray(&path).unwrap_err().to_string();
    assert!(err.contains("broken_scan.png"), "error does not name the file: {err}");
    let garbage = dir.join("noise.jpg");
    std::fs::write(&garbage, [0x13u8, 0x37, 0, 1, 2, 3, 4, 5, 6, 7]).unwrap();
    let err = data::load_gray(&garbage).unwrap_err().to_string();
    assert!(err.contains("noise.jpg"), "error does not name the file: {err}");
    let missing = dir.join("absent.png");
    let err = data::load_gray(&missing).unwrap_err().to_string();
    assert!(err.contains("absent.png"), "error does not name the file: {err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn load_gray_reads_gray_rgb_and_16_bit() {
    let dir = temp_dir("formats");
    // 8-bit gray PNG round trip.
    let g = GrayImage::new(3, 2, vec![0, 10, 20, 30, 40, 255]).unwrap();
    let p = dir.join("g.png");
    g.save_png(&p).unwrap();
    assert_eq!(data::load_gray(&p).unwrap(), g);
    // RGB → BT.601 luma, 255-white and pure primaries as OpenCV gives them.
    let rgb = image::RgbImage::from_raw(2, 2, vec![255, 255, 255, 255, 0, 0, 0, 255, 0, 0, 0, 255]).unwrap();
    let p = dir.join("c.bmp");
    rgb.save(&p).unwrap();
    assert_eq!(data::load_gray(&p).unwrap().pixels, vec![255, 76, 150, 29]);
    // 16-bit gray: scaled by the image maximum.
    let deep = image::ImageBuffer::<image::Luma<u16>, _>::from_raw(3, 1, vec![0u16, 1000, 2000]).unwrap();
    let p = dir.join("d.png");
    deep.save(&p).unwrap();
    assert_eq!(data::load_gray(&p).unwrap().pixels, vec![0, 128, 255]); // 127.5 → 128 (ties to even)
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn list_images_errors_name_the_folder() {
    let dir = temp_dir("empty");
    std::fs::write(dir.join("notes.txt"), "not an image").unwrap();
    let err = data::list_images(&dir).unwrap_err().to_string();
    assert!(err.contains(&*dir.to_string_lossy()), "error does not name the folder: {err}");
    let missing = dir.join("no_such_folder");
    let err = data::list_images(&missing).unwrap_err().to_string();
    assert!(err.contains("no_such_folder"), "error does not name the folder: {err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn list_images_flat_and_covid_layout() {
    let dir = temp_dir("layout");
    let img = GrayImage::filled(4, 4, 100);
    // Flat: images of any listed extension (case-insensitive), sorted, other files ignored.
    for name in ["b.png", "a.PNG", "c.jpeg.txt"] {
        img.save_png(&dir.join(name)).unwrap();
    }
    let flat = data::list_images(&dir).unwrap();
    let names: Vec<_> = flat.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, vec!["a.PNG", "b.png"]);

    // COVID-19 Radiography Database: class/images + class/masks; only images/ is read.
    let class = dir.join("COVID");
    std::fs::create_dir_all(class.join("images")).unwrap();
    std::fs::create_dir_all(class.join("masks")).unwrap();
    for i in 0..3 {
        img.save_png(&class.join("images").join(format!("COVID-{i}.png"))).unwrap();
        img.save_png(&class.join("masks").join(format!("COVID-{i}.png"))).unwrap();
    }
    img.save_png(&class.join("stray.png")).unwrap();
    let files = data::list_images(&class).unwrap();
    assert_eq!(files.len(), 3);
    assert!(files.iter().all(|f| f.parent().unwrap().ends_with("COVID/images")), "{files:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn phantom_is_deterministic_per_seed() {
    let a = data::phantom(7, 96);
    assert_eq!((a.width, a.height, a.pixels.len()), (96, 96, 96 * 96));
    assert_eq!(a, data::phantom(7, 96));
    let b = data::phantom(8, 96);
    let differing = a.pixels.iter().zip(&b.pixels).filter(|(x, y)| x != y).count();
    assert!(differing > a.pixels.len() / 4, "seeds 7 and 8 differ in only {differing} pixels");
}

#[test]
fn phantom_anatomy_is_plausible() {
    let s = 128;
    for seed in 0..12 {
        let img = data::phantom(seed, s);
        let f = |a: f64| (a * s as f64) as usize;
        // Centres of the lung fields (upper-mid chest, a quarter of the width in from each side) against
        // the mediastinum column, and the background in the top corners against the body.
        let right_lung = img.mean_in(f(0.22), f(0.3), f(0.34), f(0.5));
        let left_lung = img.mean_in(f(0.66), f(0.3), f(0.78), f(0.5));
        let mediastinum = img.mean_in(f(0.47), f(0.3), f(0.53), f(0.7));
        let corner = img.mean_in(0, 0, f(0.04), f(0.04));
        let body = img.mean_in(f(0.4), f(0.85), f(0.6), f(0.95));
        assert!(right_lung + 30.0 < mediastinum, "seed {seed}: right lung {right_lung:.0} vs mediastinum {mediastinum:.0}");
        assert!(left_lung + 30.0 < mediastinum, "seed {seed}: left lung {left_lung:.0} vs mediastinum {mediastinum:.0}");
        assert!(corner + 30.0 < body, "seed {seed}: background {corner:.0} vs body {body:.0}");
    }
}

#[test]
fn demo_set_writes_readable_pngs() {
    let dir = temp_dir("demo");
    let files = data::write_demo_set(&dir, 3, 80, 42).unwrap();
    assert_eq!(files.len(), 3);
    for (i, f) in files.iter().enumerate() {
        let img = data::load_gray(f).unwrap();
        assert_eq!(img, data::phantom(42 + i as u64, 80), "{}", f.display());
    }
    // No temporary files left behind, and list_images finds exactly these.
    assert_eq!(data::list_images(&dir).unwrap(), files);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 3);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn select_is_seeded_and_checks_the_count() {
    let files: Vec<PathBuf> = (0..10).map(|i| PathBuf::from(format!("/data/xrays/img{i}.png"))).collect();
    let a = Dataset::select(&files, Some(4), 3).unwrap();
    assert_eq!(a, Dataset::select(&files, Some(4), 3).unwrap());
    assert_eq!(a.len(), 4);
    let mut unique = a.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 4);
    assert_ne!(Dataset::select(&files, None, 3).unwrap(), Dataset::select(&files, None, 4).unwrap());
    assert_eq!(&Dataset::select(&files, Some(6), 3).unwrap()[..4], &a[..]); // prefixes
    let err = Dataset::select(&files, Some(11), 3).unwrap_err().to_string();
    assert!(err.contains("/data/xrays") && err.contains("11") && err.contains("10"), "{err}");
}

#[test]
fn dataset_load_and_cache_round_trip() {
    let dir = temp_dir("cache");
    let files = data::write_demo_set(&dir.join("imgs"), 4, 100, 5).unwrap();
    let cfg = PreprocessConfig::default();
    let ds = Dataset::load(&files, &cfg).unwrap();
    assert_eq!(ds.files, files);
    assert_eq!(ds.len(), 4);
    for (f, t) in files.iter().zip(&ds.images) {
        // Order preserved: each tensor is its own file's preprocessing.
        assert_eq!(t, &data::preprocess(&data::load_gray(f).unwrap(), &cfg));
        assert_eq!(t.shape(), &[3, 64, 64]);
        assert!(t.data().iter().all(|v| (-1.0..=1.0).contains(v)));
    }
    let batch = ds.to_batch_tensor().unwrap();
    assert_eq!(batch.shape(), &[4, 3, 64, 64]);
    assert_eq!(&batch.data()[2 * 3 * 64 * 64..3 * 3 * 64 * 64], ds.images[2].data());

    let cache = dir.join("cache.safetensors");
    ds.save_cache(&cache).unwrap();
    let back = Dataset::load_cache(&cache).unwrap();
    assert_eq!(back, ds);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2, "temporary file left behind");

    // A file that is not a cache is rejected with its name.
    let err = Dataset::load_cache(&files[0]).unwrap_err().to_string();
    assert!(err.contains("phantom_00000.png"), "{err}");
    // A corrupt image aborts the load, naming the file.
    std::fs::write(&files[1], b"garbage").unwrap();
    let err = Dataset::load(&files, &cfg).unwrap_err().to_string();
    assert!(err.contains("phantom_00001.png"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn preprocess_shape_range_and_channels() {
    let img = data::phantom(1, 150);
    for mode in [ResizeMode::Linear, ResizeMode::Area] {
        let cfg = PreprocessConfig { clahe: None, size: 32, resize: mode };
        let t: Tensor = data::preprocess(&img, &cfg);
        assert_eq!(t.shape(), &[3, 32, 32]);
        let plane = 32 * 32;
        assert_eq!(&t.data()[..plane], &t.data()[plane..2 * plane]);
        assert_eq!(&t.data()[..plane], &t.data()[2 * plane..]);
        let small = data::resize(&img, 32, 32, mode);
        for (v, p) in t.data().iter().zip(&small.pixels) {
            assert!((v - (*p as f32 / 127.5 - 1.0)).abs() < 1e-6);
        }
    }
    assert!(PreprocessConfig { clahe: Some((2.0, 0)), size: 64, resize: ResizeMode::Linear }.validate().is_err());
    assert!(PreprocessConfig { clahe: None, size: 0, resize: ResizeMode::Linear }.validate().is_err());
}

#[test]
fn clahe_without_clipping_and_on_tiny_images() {
    // clip_limit <= 0: no clipping — a two-level image becomes fully stretched (plain equalisation).
    let mut img = GrayImage::filled(16, 16, 100);
    for y in 0..16 {
        for x in 8..16 {
            img.pixels[y * 16 + x] = 110;
        }
    }
    let out = data::clahe(&img, 0.0, [1, 1]);
    assert_eq!(out.get(0, 0), 128); // half the pixels at or below 100: 128 · 255/256 → 127.5 → 128
    assert_eq!(out.get(15, 0), 255);
    // Images smaller than the grid are padded by reflection and still come out the same size.
    let tiny = GrayImage::new(3, 2, vec![1, 2, 3, 4, 5, 6]).unwrap();
    let out = data::clahe(&tiny, 2.0, [8, 8]);
    assert_eq!((out.width, out.height), (3, 2));
    let one = GrayImage::new(1, 1, vec![77]).unwrap();
    assert_eq!(data::clahe(&one, 2.0, [8, 8]).pixels.len(), 1);
}

#[test]
fn resize_identity_and_sizes() {
    let img = data::phantom(3, 50);
    assert_eq!(data::resize_linear(&img, 50, 50), img);
    assert_eq!(data::resize_area(&img, 50, 50), img);
    for (w, h) in [(25, 25), (64, 64), (17, 90), (100, 10)] {
        for mode in [ResizeMode::Linear, ResizeMode::Area] {
            let out = data::resize(&img, w, h, mode);
            assert_eq!((out.width, out.height, out.pixels.len()), (w, h, w * h), "{mode} {w}×{h}");
        }
    }
}
