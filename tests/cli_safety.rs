//! What the binary guarantees, through the binary: it never deletes or overwrites a file it did not create,
//! never exits 0 on a run that did not do what it printed, and resumes after a kill with the same
//! metrics.csv an uninterrupted run writes. One test per case of issue 10 (device failures: device_errors.rs).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cxr_gan::data::write_demo_set;
use cxr_gan::train::checkpoint::Checkpoint;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cxr-gan"));
    c.env_remove("CXR_GAN_DATA_DIR").env_remove("CXR_GAN_FID_WEIGHTS");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout)
}

/// Runs `args`, expecting failure with exit status 1 and `needle` in the one-line message (no panic).
fn fails(args: &[&str], needle: &str) -> String {
    let o = run(args);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "cxr-gan {args:?} should fail with status 1: {t}");
    assert!(t.contains(needle), "cxr-gan {args:?}: expected {needle:?} in: {t}");
    assert!(!t.contains("panicked"), "cxr-gan {args:?} panicked: {t}");
    t
}

fn succeeds(args: &[&str]) -> String {
    let o = run(args);
    let t = text(&o);
    assert!(o.status.success(), "cxr-gan {args:?} failed: {t}");
    t
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cxr-gan-safety-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Every file under `dir` with its contents, to show that nothing changed.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Any temporary file of an atomic write under `dir`.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    if !dir.exists() {
        return Vec::new();
    }
    snapshot(dir).into_iter().map(|(p, _)| p).filter(|p| p.to_string_lossy().contains(".tmp-")).collect()
}

/// The smallest real run: 6 phantoms, 1 epoch, tiny networks.
const TINY: &[&str] = &["--epochs", "1", "--batch-size", "3", "--nz", "8", "--ngf", "4", "--ndf", "4"];

fn tiny_run(data: &Path, out: &Path) {
    let mut args = vec!["train", "--data", &s(data), "--out", &s(out)].into_iter().map(String::from).collect::<Vec<_>>();
    args.extend(TINY.iter().map(|a| a.to_string()));
    let o = bin().args(&args).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

fn with(base: &[&str], extra: &[&str]) -> Vec<String> {
    base.iter().chain(extra).map(|a| a.to_string()).collect()
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

// ------------------------------------------------------------------ 1. --force

#[test]
fn force_never_deletes_what_is_not_a_run_directory() {
    let root = temp_dir("force");
    // The training images themselves as --out.
    let victim = root.join("victim");
    write_demo_set(&victim, 6, 64, 0).unwrap();
    let before = snapshot(&victim);
    fails(&["train", "--data", &s(&victim), "--out", &s(&victim), "--force"], "overlap");
    assert_eq!(snapshot(&victim), before, "the training images were touched");
    // A parent of the data folder.
    let data = root.join("parent/datahere");
    write_demo_set(&data, 6, 64, 0).unwrap();
    let before = snapshot(&root.join("parent"));
    fails(&["train", "--data", &s(&data), "--out", &s(&root.join("parent")), "--force"], "overlap");
    assert_eq!(snapshot(&root.join("parent")), before);
    // A folder of the user's notes.
    let notes = root.join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("todo.txt"), "keep me").unwrap();
    fails(&["train", "--data", &s(&data), "--out", &s(&notes), "--force"], "run directory");
    assert_eq!(std::fs::read_to_string(notes.join("todo.txt")).unwrap(), "keep me");
    // An earlier run directory is what --force replaces.
    let out = root.join("run");
    tiny_run(&data, &out);
    std::fs::write(out.join("marker"), "old").unwrap();
    let args = with(&["train", "--data", &s(&data), "--out", &s(&out), "--force"], TINY);
    succeeds(&refs(&args));
    assert!(!out.join("marker").exists() && out.join("checkpoints/last.safetensors").is_file());
    let _ = std::fs::remove_dir_all(root);
}

// ------------------------------------------------------------------ 2. generate's --out

#[test]
fn generate_never_overwrites_or_mixes() {
    let root = temp_dir("generate");
    let data = root.join("data");
    write_demo_set(&data, 6, 64, 0).unwrap();
    tiny_run(&data, &root.join("run"));
    let ck = s(&root.join("run/checkpoints/last.safetensors"));
    // A user's file where generate would write 00000.png: refused with and without --force, untouched.
    let user = root.join("user");
    std::fs::create_dir_all(&user).unwrap();
    std::fs::write(user.join("00000.png"), b"a real x-ray").unwrap();
    fails(&["generate", "--checkpoint", &ck, "--count", "3", "--out", &s(&user)], "not empty");
    fails(&["generate", "--checkpoint", &ck, "--count", "3", "--out", &s(&user), "--force"], "not written by `generate`");
    assert_eq!(std::fs::read(user.join("00000.png")).unwrap(), b"a real x-ray");
    // A second run with fewer images replaces the first one's entirely (no stale 00004.png).
    let gen = root.join("gen");
    succeeds(&["generate", "--checkpoint", &ck, "--count", "5", "--out", &s(&gen)]);
    fails(&["generate", "--checkpoint", &ck, "--count", "2", "--out", &s(&gen)], "--force");
    succeeds(&["generate", "--checkpoint", &ck, "--count", "2", "--out", &s(&gen), "--force", "--seed", "1"]);
    let names: BTreeSet<String> = std::fs::read_dir(&gen).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["00000.png", "00001.png", "generate.json"].iter().map(|n| n.to_string()).collect());
    // A foreign file beside an earlier generate's output: refused, and nothing is removed.
    std::fs::write(gen.join("notes.txt"), "mine").unwrap();
    let before = snapshot(&gen);
    fails(&["generate", "--checkpoint", &ck, "--count", "2", "--out", &s(&gen), "--force"], "notes.txt");
    assert_eq!(snapshot(&gen), before);
    let _ = std::fs::remove_dir_all(root);
}

// ------------------------------------------------------------------ 3. no exit 0 without the work

#[test]
fn degenerate_arguments_are_refused_before_any_work() {
    let root = temp_dir("degenerate");
    let data = root.join("data");
    write_demo_set(&data, 6, 64, 0).unwrap();
    let d = s(&data);
    for (flag, value, needle) in [
        ("--epochs", "0", "--epochs must be at least 1"),
        ("--nz", "0", "--nz must be at least 1"),
        ("--ngf", "0", "--ngf must be at least 1"),
        ("--ndf", "0", "--ndf must be at least 1"),
        ("--batch-size", "0", "--batch-size must be at least 1"),
        ("--images", "0", "--images must be at least 1"),
        ("--checkpoint-every", "0", "--checkpoint-every must be at least 1"),
        ("--clahe-clip", "-1", "clip limit -1"),
        ("--clahe-tiles", "0", "tile grid"),
    ] {
        let out = root.join(format!("out{flag}"));
        fails(&["train", "--data", &d, "--out", &s(&out), flag, value], needle);
        assert!(!out.exists(), "{flag} {value}: {} was created", out.display());
    }
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_nan_checkpoint_is_an_error_not_black_pngs() {
    let root = temp_dir("nan-generate");
    let data = root.join("data");
    write_demo_set(&data, 6, 64, 0).unwrap();
    tiny_run(&data, &root.join("run"));
    let path = root.join("run/checkpoints/last.safetensors");
    let mut ck = Checkpoint::load(&path).unwrap();
    for (n, t) in ck.tensors.iter_mut() {
        if n == "G.main.0.weight" {
            t.data_mut().fill(f32::NAN);
        }
    }
    ck.save(&path).unwrap();
    let gen = root.join("gen");
    fails(&["generate", "--checkpoint", &s(&path), "--count", "3", "--out", &s(&gen)], "non-finite");
    let pngs = std::fs::read_dir(&gen).map_or(0, |d| d.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "png")).count());
    assert_eq!(pngs, 0, "PNGs were written from NaN output");
    let _ = std::fs::remove_dir_all(root);
}

/// Starts a training run long enough to be interrupted: 12 phantoms, batch 2, 12 epochs (72 iterations).
fn start_long_run(data: &Path, out: &Path, stdout: Stdio) -> Child {
    bin()
        .args(["train", "--data", &s(data), "--out", &s(out), "--epochs", "12", "--batch-size", "2"])
        .args(["--nz", "8", "--ngf", "8", "--ndf", "8", "--backend", "cpu", "--checkpoint-every", "100"])
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `metrics` holds at least `rows` data rows (or the deadline passes).
fn wait_for_rows(metrics: &Path, rows: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let n = std::fs::read_to_string(metrics).map_or(0, |t| t.lines().count().saturating_sub(1));
        if n >= rows {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("{} never reached {rows} rows", metrics.display());
}

fn signal(child: &Child, sig: i32) {
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

#[test]
fn ctrl_c_writes_a_checkpoint_and_exits_130() {
    let root = temp_dir("sigint");
    let data = root.join("data");
    write_demo_set(&data, 12, 64, 0).unwrap();
    let out = root.join("run");
    let child = start_long_run(&data, &out, Stdio::null());
    wait_for_rows(&out.join("metrics.csv"), 3);
    signal(&child, libc::SIGINT);
    let o = child.wait_with_output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(130), "{t}");
    assert!(t.contains("--resume"), "{t}");
    assert!(out.join("checkpoints/last.safetensors").is_file());
    assert!(temp_files(&out).is_empty());
    let _ = std::fs::remove_dir_all(root);
}

// ------------------------------------------------------------------ 4. kill -9 and --resume

/// metrics.csv without the wall-clock column: what must match row for row.
fn metric_rows(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| l.rsplit_once(',').unwrap().0.to_string()).collect()
}

#[test]
fn metrics_after_kill_and_resume_equal_an_uninterrupted_run() {
    let root = temp_dir("kill");
    let data = root.join("data");
    write_demo_set(&data, 12, 64, 0).unwrap();
    let whole = root.join("whole");
    assert!(start_long_run(&data, &whole, Stdio::null()).wait().unwrap().success());
    let expected = metric_rows(&whole.join("metrics.csv"));
    assert_eq!(expected.len(), 1 + 72);
    let last = Checkpoint::load(&whole.join("checkpoints/last.safetensors")).unwrap();
    for (i, kill_after) in [2usize, 7, 20, 45].into_iter().enumerate() {
        let out = root.join(format!("killed{i}"));
        let child = start_long_run(&data, &out, Stdio::null());
        wait_for_rows(&out.join("metrics.csv"), kill_after);
        signal(&child, libc::SIGKILL);
        child.wait_with_output().unwrap();
        if !out.join("checkpoints/last.safetensors").exists() {
            // Killed before the first checkpoint: nothing to resume; start it again.
            let _ = std::fs::remove_dir_all(&out);
            assert!(start_long_run(&data, &out, Stdio::null()).wait().unwrap().success());
        } else {
            succeeds(&["train", "--resume", &s(&out)]);
        }
        assert_eq!(metric_rows(&out.join("metrics.csv")), expected, "kill after {kill_after} rows");
        let resumed = Checkpoint::load(&out.join("checkpoints/last.safetensors")).unwrap();
        assert_eq!(resumed.tensors, last.tensors, "kill after {kill_after} rows: weights differ");
        assert!(temp_files(&out).is_empty(), "kill after {kill_after}: {:?}", temp_files(&out));
    }
    let _ = std::fs::remove_dir_all(root);
}

// ------------------------------------------------------------------ 5. broken pipe

#[test]
fn a_closed_pipe_ends_quietly() {
    let root = temp_dir("pipe");
    let data = root.join("data");
    write_demo_set(&data, 12, 64, 0).unwrap();
    let mut child = start_long_run(&data, &root.join("run"), Stdio::piped());
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap(); // `| head -1`, then the pipe closes
    assert!(first.starts_with("training"), "{first}");
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked") && o.status.code() != Some(101), "status {:?}: {err}", o.status);
    let _ = std::fs::remove_dir_all(root);
}

// ------------------------------------------------------------------ 6. failed runs leave nothing behind

#[test]
fn a_failed_run_removes_its_directory_and_stale_temps_are_cleaned() {
    let root = temp_dir("failed");
    let data = root.join("data");
    write_demo_set(&data, 6, 64, 0).unwrap();
    std::fs::write(data.join("broken.png"), b"not a png").unwrap();
    let out = root.join("run");
    fails(&["train", "--data", &s(&data), "--out", &s(&out)], "broken.png");
    assert!(!out.exists(), "the failed run left {}", out.display());
    // The same --out works once the data is fixed.
    std::fs::remove_file(data.join("broken.png")).unwrap();
    tiny_run(&data, &out);
    // A temp file a killed process left is removed by the next run in that directory.
    let stale = out.join(".dataset.safetensors.tmp-999999999-0");
    std::fs::write(&stale, b"half").unwrap();
    fails(&["train", "--resume", &s(&out)], "already finished");
    assert!(!stale.exists(), "the stale temp file is still there");
    succeeds(&["train", "--resume", &s(&out), "--epochs", "2"]);
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn ctrl_c_while_loading_keeps_nothing_half_written() {
    let root = temp_dir("sigint-load");
    let data = root.join("data");
    write_demo_set(&data, 40, 1024, 0).unwrap(); // slow enough to load that the signal can land there
    let out = root.join("run");
    let child = bin()
        .args([
            "train",
            "--data",
            &s(&data),
            "--out",
            &s(&out),
            "--epochs",
            "1",
            "--nz",
            "8",
            "--ngf",
            "4",
            "--ndf",
            "4",
            "--batch-size",
            "4",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !out.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    signal(&child, libc::SIGINT);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    // Either stopped while preparing (nothing kept) or in training (resumable); never a temp file.
    assert!(
        !out.exists() || out.join("checkpoints/last.safetensors").is_file(),
        "{:?}",
        snapshot(&out).iter().map(|p| &p.0).collect::<Vec<_>>()
    );
    assert!(temp_files(&out).is_empty());
    let _ = std::fs::remove_dir_all(root);
}

// ------------------------------------------------------------------ 7. --resume keeps the run's settings

#[test]
fn resume_refuses_settings_that_contradict_the_run() {
    let root = temp_dir("resume-args");
    let data = root.join("data");
    write_demo_set(&data, 6, 64, 0).unwrap();
    let out = root.join("run");
    tiny_run(&data, &out);
    let o = s(&out);
    fails(&["train", "--resume", &o, "--epochs", "2", "--model", "wgan-gp"], "--model wgan-gp (the run has dcgan)");
    fails(&["train", "--resume", &o, "--epochs", "2", "--batch-size", "2"], "--batch-size 2 (the run has 3)");
    fails(&["train", "--resume", &o, "--epochs", "2", "--ngf", "8"], "--ngf 8 (the run has 4)");
    // Giving the run's own values is fine.
    succeeds(&["train", "--resume", &o, "--epochs", "2", "--ngf", "4", "--model", "dcgan"]);
    let _ = std::fs::remove_dir_all(root);
}

// ------------------------------------------------------------------ 8. the smaller cases

#[test]
fn odd_inputs_get_clear_messages() {
    let root = temp_dir("odd");
    let data = root.join("data");
    write_demo_set(&data, 6, 64, 0).unwrap();
    let d = s(&data);
    // A 1×1 image.
    let tiny = root.join("tiny");
    write_demo_set(&tiny, 3, 64, 0).unwrap();
    image::GrayImage::new(1, 1).save(tiny.join("dot.png")).unwrap();
    fails(&["train", "--data", &s(&tiny), "--out", &s(&root.join("r1"))], "dot.png");
    // A nested folder is reported, not silently ignored.
    let nested = root.join("nested");
    write_demo_set(&nested, 6, 64, 0).unwrap();
    write_demo_set(&nested.join("more"), 2, 64, 0).unwrap();
    let mut args = vec!["train".to_string(), "--data".into(), s(&nested), "--out".into(), s(&root.join("r2"))];
    args.extend(TINY.iter().map(|a| a.to_string()));
    let t = succeeds(&refs(&args));
    assert!(t.contains("more") && t.contains("not searched"), "{t}");
    // A file name that is not UTF-8 is named.
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let odd = root.join("odd");
        write_demo_set(&odd, 3, 64, 0).unwrap();
        let name = std::ffi::OsStr::from_bytes(b"x\xffray.png");
        std::fs::copy(odd.join("phantom_00000.png"), odd.join(name)).unwrap();
        fails(&["train", "--data", &s(&odd), "--out", &s(&root.join("r3"))], "ray.png");
    }
    // FID: --weights naming a folder, a --save-stats path without .npz, the wrong weights in short, NaN
    // weights blamed on the weights, a sigma that is no covariance.
    fails(&["fid", &d, &d, "--weights", &s(&root)], "folder");
    let stats = root.join("stats.txt");
    fails(&["fid", &d, &s(&stats), "--save-stats", "--weights", &s(&root.join("w.safetensors"))], ".npz");
    assert!(!stats.exists());
    let wrong = root.join("wrong.safetensors");
    let nan = [f32::NAN; 4];
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![4], bytemuck::cast_slice(&nan)).unwrap();
    std::fs::write(&wrong, safetensors::serialize([("Conv2d_1a_3x3.conv.weight", view)], &None).unwrap()).unwrap();
    let t = fails(&["fid", &d, &d, "--weights", &s(&wrong)], "wrong.safetensors");
    assert!(t.len() < 600, "{} bytes: {t}", t.len());
    assert!(!t.contains(&d), "blamed on the image folder: {t}");
    let bad_sigma = root.join("bad.npz");
    write_npz(&bad_sigma, &[0.0, 0.0], &[1.0, 3.0, 3.0, 1.0]); // |σ01| > √(σ00·σ11)
    fails(&["fid", &s(&bad_sigma), &s(&bad_sigma)], "not a covariance");
    // Correlations that pass that test but fit no covariance (an eigenvalue is negative): the distance
    // would come out negative, and is refused.
    let not_psd = root.join("not_psd.npz");
    write_npz(&not_psd, &[0.0; 3], &[1.0, 0.9, -0.9, 0.9, 1.0, 0.9, -0.9, 0.9, 1.0]);
    fails(&["fid", &s(&not_psd), &s(&not_psd)], "not positive semi-definite");
    let _ = std::fs::remove_dir_all(root);
}

/// An .npz with `mu` [d] and `sigma` [d, d] as numpy writes them, with no validation on our side.
fn write_npz(path: &Path, mu: &[f64], sigma: &[f64]) {
    use std::io::Write;
    fn npy(data: &[f64], shape: &str) -> Vec<u8> {
        let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(data.iter().flat_map(|v| v.to_le_bytes()));
        out
    }
    let d = mu.len();
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    zip.start_file("mu.npy", opts).unwrap();
    zip.write_all(&npy(mu, &format!("({d},)"))).unwrap();
    zip.start_file("sigma.npy", opts).unwrap();
    zip.write_all(&npy(sigma, &format!("({d}, {d})"))).unwrap();
    zip.finish().unwrap();
}
