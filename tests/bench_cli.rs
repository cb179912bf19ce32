//! `cxr-gan bench` through the binary on the `cpu` backend: the printed table and the JSON it writes
//! (every row checked within tolerance, positive times, rates that follow from FLOPs, bytes and time, the
//! roofline percentage from the same run's peak), the whole-workload rows, and a filter matching nothing.
//! No timing is asserted beyond being positive.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn tmp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cxr-gan-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `cxr-gan bench --backend cpu --quick ARGS`: success, stdout, stderr.
fn bench(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cxr-gan")).args(["bench", "--backend", "cpu", "--quick"]).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn f(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("`{key}` is not a number in {v}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs()
}

/// What every row must satisfy: compared with cpu within its tolerance, timed, named in the table.
fn assert_checked_and_timed(row: &Value, stdout: &str) {
    let name = format!("{} {}", row["group"].as_str().unwrap(), row["name"].as_str().unwrap());
    assert!(row["error"].is_null(), "{name}: {}", row["error"]);
    let check = &row["check"];
    assert_eq!(check["pass"], Value::Bool(true), "{name}: {check}");
    let (err, tol) = (f(check, "max_rel_err"), f(check, "tolerance"));
    assert!((0.0..=tol).contains(&err) && tol > 0.0 && tol <= 1e-4, "{name}: error {err}, tolerance {tol}");
    let t = &row["time"];
    let (median, min) = (f(t, "median_s"), f(t, "min_s"));
    assert!(min > 0.0 && min <= median && t["samples"].as_u64().unwrap() >= 1, "{name}: {t}");
    let line = stdout.lines().find(|l| l.starts_with(&name)).unwrap_or_else(|| panic!("no table row for {name} in:\n{stdout}"));
    assert!(line.split_whitespace().any(|w| w == "ok"), "{line}");
}

#[test]
fn relu_ops_are_checked_then_timed_with_consistent_rates() {
    let dir = tmp_dir("relu");
    let json = dir.join("out.json");
    let (ok, stdout, stderr) = bench(&["--only", "g.main.11 relu", "--json", json.to_str().unwrap()]);
    assert!(ok, "stdout:\n{stdout}\nstderr:\n{stderr}");
    // Written atomically: the file and nothing else (no temporary left behind).
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    let report = read_json(&json);
    assert_eq!(report["backend"], "cpu");
    assert_eq!(report["quick"], true);
    assert_eq!(report["complete"], true);
    let peak = &report["peak"];
    let (peak_gflops, peak_gbps) = (f(peak, "gflops"), f(peak, "gbps"));
    assert!(peak_gflops > 0.0 && peak_gbps > 0.0, "{peak}");

    let rows = report["rows"].as_array().unwrap();
    let mut names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    names.sort();
    // The filter is a case-insensitive substring of `group name`.
    assert_eq!(names, ["G.main.11 relu", "G.main.11 relu_bwd"]);
    let n = report["batch"].as_u64().unwrap() as f64;
    let elems = n * 64.0 * 32.0 * 32.0;
    for row in rows {
        assert_checked_and_timed(row, &stdout);
        let name = row["name"].as_str().unwrap();
        let median = f(&row["time"], "median_s");
        // f32 tensors of [N, 64, 32, 32]: forward reads x and writes y; backward reads x, y, dy, writes dx.
        let tensors = if name.ends_with("_bwd") { 4.0 } else { 2.0 };
        assert_eq!(f(row, "bytes"), 4.0 * tensors * elems, "{name}");
        let (flops, bytes) = (f(row, "flops"), f(row, "bytes"));
        assert!(flops >= elems, "{name}: at least one FLOP per element, got {flops}");
        assert!(close(f(row, "gflops"), flops / median / 1e9), "{name}: {row}");
        assert!(close(f(row, "gbps"), bytes / median / 1e9), "{name}: {row}");
        let pct = 100.0 * (f(row, "gflops") / peak_gflops).max(f(row, "gbps") / peak_gbps);
        assert!(close(f(row, "pct_of_peak"), pct), "{name}: {row}");
        assert_eq!(row["bound"], "memory", "{name}: one FLOP per element is far below a GEMM's intensity");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn whole_iterations_and_fid_report_images_per_second() {
    let dir = tmp_dir("steps");
    for (only, extra, expected) in [
        ("iteration", "--batch", vec!["dcgan step", "wgan-gp critic step", "wgan-gp generator step"]),
        ("fid ", "--fid-batch", vec!["inception_v3 features 2048"]),
    ] {
        let json = dir.join("out.json");
        let (ok, stdout, stderr) = bench(&["--only", only, extra, "2", "--json", json.to_str().unwrap()]);
        assert!(ok, "stdout:\n{stdout}\nstderr:\n{stderr}");
        let report = read_json(&json);
        let rows = report["rows"].as_array().unwrap();
        assert_eq!(rows.iter().map(|r| r["name"].as_str().unwrap()).collect::<Vec<_>>(), expected);
        let images = if only == "iteration" { report["batch"].as_u64() } else { report["fid_batch"].as_u64() }.unwrap();
        assert_eq!(images, 2);
        for row in rows {
            assert_checked_and_timed(row, &stdout);
            assert!(close(f(row, "images_per_s"), images as f64 / f(&row["time"], "median_s")), "{row}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_filter_that_matches_nothing_is_one_clear_error() {
    let (ok, stdout, stderr) = bench(&["--only", "no such op"]);
    assert!(!ok, "{stdout}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--only \"no such op\" matches no case"), "{stderr}");
}

/// cuda-native at `--precision bf16` (on the CPU emulator: the same kernels a GPU runs): its convolutions
/// are checked against cpu at bf16's stated tolerance, and really round (an error above f32's 1e-5).
#[test]
fn reduced_precision_convolutions_are_checked_at_their_own_tolerance() {
    let dir = tmp_dir("bf16");
    let json = dir.join("out.json");
    let out = Command::new(env!("CARGO_BIN_EXE_cxr-gan"))
        .args(["bench", "--backend", "cuda-native-emu", "--precision", "bf16", "--quick", "--only", "D.main.11 conv2d"])
        .args(["--json", json.to_str().unwrap()])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let rows = read_json(&json)["rows"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 3, "conv2d and its two backward passes: {rows:?}");
    for row in &rows {
        let check = &row["check"];
        let (err, tol) = (f(check, "max_rel_err"), f(check, "tolerance"));
        assert_eq!(tol, cxr_gan::backend::cuda_native::Precision::Bf16.tolerance(), "{row}");
        assert!(err > 1e-5 && err <= tol && check["pass"] == Value::Bool(true), "{row}");
    }
}
