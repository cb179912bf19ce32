//! `cxr-gan reproduce --scale tiny` on real X-rays, through the binary: a call killed mid-grid continues
//! without redoing a finished cell, and the finished grid writes every table, figure and sample grid.
//! Skipped (with the reason) without the X-rays or the FID weights.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::shared::{data_dir, fid_weights};

fn bin(weights: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cxr-gan"));
    c.env("CXR_GAN_FID_WEIGHTS", weights).env_remove("CXR_GAN_DATA_DIR");
    c
}

fn args<'a>(data: &'a str, out: &'a str, table: &'a str) -> Vec<&'a str> {
    vec!["reproduce", "--data", data, "--scale", "tiny", "--table", table, "--out", out, "--backend", "cpu"]
}

fn cell_files(out: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(out.join("cells"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "json")).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn modified(p: &Path) -> SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

fn png_size(p: &Path) -> (u32, u32) {
    let img = image::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (img.width(), img.height())
}

#[test]
fn tiny_reproduce_resumes_after_a_kill_and_writes_every_table() {
    let (Some(data), Some(weights)) = (data_dir(), fid_weights()) else { return };
    let out = std::env::temp_dir().join(format!("cxr-gan-reproduce-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let (d, o) = (data.to_string_lossy().into_owned(), out.to_string_lossy().into_owned());

    // 1. Table 1 alone, killed (SIGKILL: no clean-up) as soon as its first cell is written.
    let mut child = bin(&weights).args(args(&d, &o, "1")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let t0 = Instant::now();
    while cell_files(&out).is_empty() {
        assert!(child.try_wait().unwrap().is_none(), "reproduce ended before its first cell");
        assert!(t0.elapsed() < Duration::from_secs(600), "no cell after 10 min");
        std::thread::sleep(Duration::from_millis(200));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let first = cell_files(&out)[0].clone();
    let (first_bytes, first_time) = (std::fs::read(&first).unwrap(), modified(&first));
    let first_name = first.file_stem().unwrap().to_string_lossy().into_owned();

    // 2. All tables into the same folder: the finished cell is kept as it was, the rest are done.
    let run = bin(&weights).args(args(&d, &o, "all")).output().unwrap();
    let text = String::from_utf8_lossy(&run.stdout).into_owned() + &String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{text}");
    assert!(text.contains(&format!("{first_name} was scored before; kept")), "{text}");
    assert_eq!(std::fs::read(&first).unwrap(), first_bytes, "a finished cell was rewritten");
    assert_eq!(modified(&first), first_time);
    let cells = cell_files(&out);
    assert_eq!(cells.len(), 4, "tiny: 32 and 64 images at 5 epochs, 64 at 3, WGAN-GP at 5: {cells:?}");

    // 3. What a reader gets: three filled tables, one CSV row per cell and table row, figures, grids.
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    for t in ["## Table 1", "## Table 2", "## Table 3", "| 32 images | 1.763 |", "| WGAN-GP | 1.583 |"] {
        assert!(md.contains(t), "results.md lacks {t:?}:\n{md}");
    }
    assert!(!md.contains('…'), "a row is still pending:\n{md}");
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 6, "2 + 2 + 2 table rows:\n{csv}");
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    for r in &rows {
        let v = |name: &str| r[col(name)].parse::<f64>().unwrap();
        assert!(v("fid").is_finite() && v("fid") > 0.0, "{r:?}");
        assert!(v("fid_ci_lo") < v("fid") && v("fid") < v("fid_ci_hi"), "{r:?}");
        assert!(v("floor_mean") > 0.0 && v("floor_mean") < v("fid"), "an untrained generator scores above the real floor: {r:?}");
        assert!(v("kid_mean").is_finite() && v("kid_std") > 0.0, "{r:?}");
        assert_eq!((v("generated"), v("dims")), (64.0, 768.0));
    }
    for (png, panels) in [("fid_vs_images.png", 1), ("fid_vs_epochs.png", 1), ("losses_dcgan_vs_wgan_gp.png", 2)] {
        assert_eq!(png_size(&out.join(png)), (900 * panels, 450), "{png}");
    }
    for cell in &cells {
        let grid = out.join("grids").join(cell.file_stem().unwrap()).with_extension("png");
        assert_eq!(png_size(&grid), (8 * 66 + 2, 8 * 66 + 2), "an 8×8 grid of 64×64 samples: {}", grid.display());
    }

    // 4. Nothing left to do: a third call scores nothing; another scale in the same folder is refused.
    let again = bin(&weights).args(args(&d, &o, "all")).output().unwrap();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("(0 scored now)"));
    let mut other = args(&d, &o, "all");
    other[4] = "small";
    let refused = bin(&weights).args(&other).output().unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("other settings"), "{}", String::from_utf8_lossy(&refused.stderr));
    let _ = std::fs::remove_dir_all(&out);
}

/// `reproduce --table 4 --scale tiny` on the two phantom classes: Table 3's generators, their images added
/// to the positive training set, three classify runs, and Table 4 in results.md beside the paper's values.
#[test]
fn tiny_table4_runs_on_phantoms() {
    use cxr_gan::data::phantom::{write_class_set, PhantomClass};
    let Some(weights) = fid_weights() else { return };
    let root = std::env::temp_dir().join(format!("cxr-gan-table4-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (pos, neg, out) = (root.join("opacities"), root.join("clear"), root.join("out"));
    write_class_set(&pos, 80, 64, 100, PhantomClass::Opacities).unwrap();
    write_class_set(&neg, 80, 64, 200, PhantomClass::Clear).unwrap();
    let (p, n, o) = (pos.to_string_lossy().into_owned(), neg.to_string_lossy().into_owned(), out.to_string_lossy().into_owned());
    let mut a = args(&p, &o, "4");
    a.extend(["--negative", n.as_str()]);
    let st = bin(&weights).args(&a).status().unwrap();
    assert!(st.success(), "reproduce --table 4 failed");
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    let t4 = &md[md.find("## Table 4").expect("results.md has Table 4")..];
    for row in ["real COVID-19 only", "+ DCGAN images", "+ WGAN-GP images"] {
        assert!(t4.contains(row), "Table 4 lacks {row}:\n{t4}");
    }
    assert!(t4.contains("(0.96)") && t4.contains("(0.98)"), "the paper's values are shown:\n{t4}");
    for row in ["real-s0", "dcgan-s0", "wgan-gp-s0"] {
        assert!(out.join("table4").join(row).join("results.json").is_file(), "{row} has no results");
    }
    // 32 generated images each (the tiny grid), written as PNGs beside the runs.
    for set in ["generated-dcgan-s0", "generated-wgan-gp-s0"] {
        let n = std::fs::read_dir(out.join("table4").join(set))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "png"))
            .count();
        assert_eq!(n, 32, "{set}");
    }
    // A second call finds everything done and changes nothing.
    let before = std::fs::read(out.join("table4/real-s0/results.json")).unwrap();
    assert!(bin(&weights).args(&a).status().unwrap().success());
    assert_eq!(before, std::fs::read(out.join("table4/real-s0/results.json")).unwrap());
    let _ = std::fs::remove_dir_all(&root);
}
