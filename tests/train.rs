//! Training end to end: bit-exact resume, the bad-input errors of `cxr-gan train` / `generate`, NaN stops,
//! and short runs on real X-rays (when `CXR_GAN_DATA_DIR` or ../shared/data is present).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use cxr_gan::backend::cpu::CpuBackend;
use cxr_gan::backend::cuda_native::{CudaNativeBackend, Precision};
use cxr_gan::data::{write_demo_set, Dataset, PreprocessConfig};
use cxr_gan::nn::dcgan::Widths;
use cxr_gan::train::checkpoint::Checkpoint;
use cxr_gan::train::quality::{Quality, MIN_DIVERSITY_RATIO, MIN_MEAN_IMAGE_CORRELATION};
use cxr_gan::train::{save_config, train, ModelKind, RunDir, RunOptions, TrainConfig};

mod common;
use common::shared::{data_dir, fid_weights};

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cxr-gan-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tiny_config(model: ModelKind, data: &Path, files: Vec<PathBuf>, epochs: usize) -> TrainConfig {
    TrainConfig {
        model,
        data: data.to_path_buf(),
        synthetic_data: true,
        images: None,
        epochs,
        batch_size: 4,
        seed: 7,
        widths: Widths { nz: 8, ngf: 4, ndf: 4 },
        n_critic: 2,
        lambda: 10.0,
        clahe: Some((2.0, 8)),
        resize: "linear".into(),
        checkpoint_every: 1,
        backend: "cpu".into(),
        fid_every: 0,
        fid_count: 1000,
        fid_dims: 768,
        fid_weights: None,
        version: "test".into(),
        files,
    }
}

fn opts(max_iterations: Option<u64>) -> RunOptions {
    RunOptions { progress: false, stop: Arc::new(AtomicBool::new(false)), max_iterations, graphs: true }
}

fn new_run(dir: &Path, cfg: &TrainConfig) -> RunDir {
    std::fs::create_dir_all(dir.join("checkpoints")).unwrap();
    let run = RunDir(dir.to_path_buf());
    save_config(&run.config(), cfg).unwrap();
    run
}

/// A killed run resumed from its checkpoint ends with the uninterrupted run's weights, bit for bit.
fn resume_is_bit_exact(model: ModelKind) {
    let root = temp_dir(&format!("resume-{}", model.name()));
    let files = write_demo_set(&root.join("data"), 10, 64, 1).unwrap();
    let dataset = Dataset::load(&files, &PreprocessConfig::default()).unwrap();
    let cfg = tiny_config(model, &root.join("data"), files, 2); // 3 batches per epoch (4, 4, 2)
    let cpu = CpuBackend::new();

    let whole = new_run(&root.join("whole"), &cfg);
    let s = train(&cpu, &cfg, &whole, &dataset, false, &opts(None)).unwrap();
    assert_eq!((s.epochs_done, s.iterations, s.interrupted), (2, 6, false));

    // Stop mid-epoch (after 2 of 3 batches), then twice more, resuming each time.
    let split = new_run(&root.join("split"), &cfg);
    let s = train(&cpu, &cfg, &split, &dataset, false, &opts(Some(2))).unwrap();
    assert!(s.interrupted);
    let s = train(&cpu, &cfg, &split, &dataset, true, &opts(Some(2))).unwrap();
    assert_eq!(s.iterations, 4);
    let s = train(&cpu, &cfg, &split, &dataset, true, &opts(None)).unwrap();
    assert_eq!((s.epochs_done, s.iterations), (2, 6));

    let a = Checkpoint::load(&whole.last()).unwrap();
    let b = Checkpoint::load(&split.last()).unwrap();
    assert_eq!(a.tensors.len(), b.tensors.len());
    for ((na, ta), (nb, tb)) in a.tensors.iter().zip(&b.tensors) {
        assert_eq!(na, nb);
        let same = ta.data().iter().zip(tb.data()).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "{na} differs between the uninterrupted and the resumed run");
    }
    // metrics.csv has one row per iteration, none duplicated by the resumes.
    let rows = std::fs::read_to_string(split.metrics()).unwrap().lines().count() - 1;
    assert_eq!(rows, 6);
    let _ = std::fs::remove_dir_all(root);
}

/// The metrics rows without their timing column (the last).
fn metrics_without_time(run: &RunDir) -> Vec<String> {
    let text = std::fs::read_to_string(run.metrics()).unwrap();
    text.lines().map(|l| l.rsplit_once(',').map_or(l, |(rest, _)| rest).to_string()).collect()
}

fn assert_same_checkpoints(a: &RunDir, b: &RunDir, what: &str) {
    let (a, b) = (Checkpoint::load(&a.last()).unwrap(), Checkpoint::load(&b.last()).unwrap());
    assert_eq!(a.tensors.len(), b.tensors.len());
    for ((na, ta), (nb, tb)) in a.tensors.iter().zip(&b.tensors) {
        assert_eq!(na, nb);
        let same = ta.data().iter().zip(tb.data()).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "{na} differs: {what}");
    }
}

/// Trains `model` on cuda-native's CPU emulator (the same kernels and host code as on a GPU) eagerly and with
/// graphs (each kind of iteration captured once and replayed) and checks that weights, Adam's moments and
/// steps, running statistics and every logged loss agree bit for bit. Batches per epoch: 4, 4, 2, two
/// epochs (with 10 images); an iteration kind's first run warms up, the next one at least as large is
/// captured (and replayed), short batches run eagerly between replays. With `split`, a graphed run killed after 2 iterations and resumed (capturing
/// afresh) must agree too.
fn graph_replays_equal_eager_iterations(model: ModelKind, images: usize, replayed: u64, split: Option<(u64, u64)>, precision: Precision) {
    let root = temp_dir(&format!("graph-replay-{}-{images}-{}", model.name(), precision.name()));
    let files = write_demo_set(&root.join("data"), images, 64, 1).unwrap();
    let iterations = 2 * images.div_ceil(4) as u64;
    let dataset = Dataset::load(&files, &PreprocessConfig::default()).unwrap();
    let cfg = TrainConfig { backend: "cuda-native-emu".into(), ..tiny_config(model, &root.join("data"), files, 2) };
    let emu = CudaNativeBackend::emulator().with_precision(precision);

    let eager = new_run(&root.join("eager"), &cfg);
    let s = train(&emu, &cfg, &eager, &dataset, false, &RunOptions { graphs: false, ..opts(None) }).unwrap();
    assert_eq!((s.iterations, s.replayed), (iterations, 0));

    let graphed = new_run(&root.join("graphed"), &cfg);
    let s = train(&emu, &cfg, &graphed, &dataset, false, &opts(None)).unwrap();
    assert_eq!((s.iterations, s.replayed), (iterations, replayed));
    assert_same_checkpoints(&eager, &graphed, "eager vs graph replays");
    assert_eq!(metrics_without_time(&eager), metrics_without_time(&graphed));

    if let Some((first, second)) = split {
        let split = new_run(&root.join("split"), &cfg);
        let s = train(&emu, &cfg, &split, &dataset, false, &opts(Some(2))).unwrap();
        assert_eq!((s.iterations, s.replayed), (2, first));
        let s = train(&emu, &cfg, &split, &dataset, true, &opts(None)).unwrap();
        assert_eq!((s.iterations, s.replayed), (iterations, second));
        assert_same_checkpoints(&eager, &split, "eager vs graph replays killed and resumed");
        assert_eq!(metrics_without_time(&eager), metrics_without_time(&split));
    }
    let _ = std::fs::remove_dir_all(root);
}

/// DCGAN: iteration 0 warms up, 1 is captured, 2 (short) runs eagerly, 3 and 4 replay, 5 (short) eagerly.
/// Killed after 2 and resumed: 2 (short) warms up, 3 is captured, 4 replays.
#[test]
fn dcgan_graph_replays_equal_eager_iterations() {
    graph_replays_equal_eager_iterations(ModelKind::Dcgan, 10, 3, Some((1, 2)), Precision::Fp32);
}

/// Batches 4, 2 per epoch: the short batch after the warm-up is not captured (the graph would then fit only
/// short batches); iteration 2 (full) is, and the short iteration 3 runs eagerly.
#[test]
fn dcgan_graph_is_captured_on_a_full_batch() {
    graph_replays_equal_eager_iterations(ModelKind::Dcgan, 6, 1, None, Precision::Fp32);
}

/// WGAN-GP (n_critic 2): the critic as the DCGAN above (3 replays); the generator steps after iterations
/// 1 (warm-up), 3 (captured) and 5 (short: eager).
#[test]
fn wgan_gp_graph_replays_equal_eager_iterations() {
    graph_replays_equal_eager_iterations(ModelKind::WganGp, 10, 4, None, Precision::Fp32);
}

/// The same at `--precision bf16` (bf16 activations, weights read through bf16 shadows): each graph recasts
/// the weights it reads, so the critic's graph sees the generator's step made by the other graph, and the
/// replays still equal eager iterations bit for bit.
#[test]
fn wgan_gp_graph_replays_equal_eager_iterations_with_bf16_storage() {
    graph_replays_equal_eager_iterations(ModelKind::WganGp, 10, 4, None, Precision::Bf16);
}

#[test]
fn dcgan_resume_is_bit_exact() {
    resume_is_bit_exact(ModelKind::Dcgan);
}

#[test]
fn wgan_gp_resume_is_bit_exact() {
    resume_is_bit_exact(ModelKind::WganGp);
}

#[test]
fn checkpoint_names_are_the_tutorials_state_dict() {
    let root = temp_dir("names");
    let files = write_demo_set(&root.join("data"), 4, 64, 3).unwrap();
    let dataset = Dataset::load(&files, &PreprocessConfig::default()).unwrap();
    let cfg = tiny_config(ModelKind::WganGp, &root.join("data"), files, 1);
    let run = new_run(&root.join("run"), &cfg);
    train(&CpuBackend::new(), &cfg, &run, &dataset, false, &opts(None)).unwrap();
    let ck = Checkpoint::load(&run.last()).unwrap();
    for name in [
        "G.main.0.weight",
        "G.main.1.running_mean",
        "G.main.12.weight",
        "C.main.0.weight",
        "C.main.3.weight",
        "C.main.3.bias",
        "C.main.11.weight",
        "adam.G.main.0.weight.exp_avg",
        "adam.C.main.9.bias.exp_avg_sq",
    ] {
        assert!(ck.get(name).is_some(), "checkpoint lacks {name}");
    }
    // The critic has no running statistics and no Sigmoid layer (main.12).
    assert!(ck.tensors.iter().all(|(n, _)| !(n.starts_with("C.") && n.contains("running"))));
    assert_eq!(ck.get("C.main.11.weight").unwrap().shape(), &[1, 32, 4, 4]);
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn nan_weights_stop_the_run_and_keep_the_last_checkpoint() {
    let root = temp_dir("nan");
    let files = write_demo_set(&root.join("data"), 4, 64, 5).unwrap();
    let dataset = Dataset::load(&files, &PreprocessConfig::default()).unwrap();
    let cfg = tiny_config(ModelKind::Dcgan, &root.join("data"), files, 2);
    let run = new_run(&root.join("run"), &cfg);
    let cpu = CpuBackend::new();
    train(&cpu, &cfg, &run, &dataset, false, &opts(Some(1))).unwrap();
    // Poison D's first weight in the checkpoint, as a diverged run would; resuming must stop with a message.
    let mut ck = Checkpoint::load(&run.last()).unwrap();
    for (n, t) in ck.tensors.iter_mut() {
        if n == "D.main.0.weight" {
            t.data_mut().fill(f32::NAN);
        }
    }
    ck.save(&run.last()).unwrap();
    let before = std::fs::read(run.last()).unwrap();
    let err = train(&cpu, &cfg, &run, &dataset, true, &opts(None)).unwrap_err().to_string();
    assert!(err.contains("loss became NaN") && err.contains("last.safetensors"), "{err}");
    assert_eq!(std::fs::read(run.last()).unwrap(), before, "the last checkpoint was overwritten");
    let _ = std::fs::remove_dir_all(root);
}

fn cxr_gan(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cxr-gan")).args(args).env_remove("CXR_GAN_DATA_DIR").output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (out.status.success(), text)
}

fn assert_fails(args: &[&str], needle: &str) {
    let (ok, text) = cxr_gan(args);
    assert!(!ok, "cxr-gan {args:?} succeeded: {text}");
    assert!(text.contains(needle), "cxr-gan {args:?}: expected {needle:?} in: {text}");
    assert!(!text.contains("panicked"), "cxr-gan {args:?} panicked: {text}");
}

#[test]
fn bad_input_gives_one_clear_error() {
    let root = temp_dir("cli");
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let missing = root.join("missing");
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let corrupt = root.join("corrupt");
    write_demo_set(&corrupt, 3, 64, 0).unwrap();
    std::fs::write(corrupt.join("broken.png"), b"not a png at all").unwrap();
    let good = root.join("good");
    write_demo_set(&good, 6, 64, 0).unwrap();
    let out = |t: &str| s(&root.join(t));

    assert_fails(&["train", "--data", &s(&missing), "--out", &out("r1")], "missing");
    assert_fails(&["train", "--data", &s(&empty), "--out", &out("r2")], "empty");
    assert_fails(&["train", "--data", &s(&corrupt), "--out", &out("r3")], "broken.png");
    assert_fails(&["train", "--data", &s(&good), "--images", "10", "--out", &out("r4")], "only 6");
    assert_fails(&["train", "--data", &s(&good), "--batch-size", "7", "--out", &out("r5")], "--batch-size 7");

    // A real (tiny) run, then the errors that need one.
    let (ok, text) = cxr_gan(&[
        "train",
        "--data",
        &s(&good),
        "--epochs",
        "1",
        "--batch-size",
        "3",
        "--nz",
        "8",
        "--ngf",
        "4",
        "--ndf",
        "4",
        "--out",
        &out("run"),
    ]);
    assert!(ok, "{text}");
    assert_fails(&["train", "--data", &s(&good), "--out", &out("run")], "--resume");
    let ck = root.join("run/checkpoints/last.safetensors");
    let (ok, text) = cxr_gan(&["generate", "--checkpoint", &s(&ck), "--count", "5", "--out", &out("gen")]);
    assert!(ok, "{text}");
    // The five images and generate.json, the record that lets `--force` replace them later.
    assert_eq!(std::fs::read_dir(root.join("gen")).unwrap().count(), 6);
    let img = image::open(root.join("gen/00004.png")).unwrap();
    assert_eq!((img.width(), img.height(), img.color()), (64, 64, image::ColorType::Rgb8));
    // A checkpoint from another model or width cannot be resumed into this run.
    let (ok, text) = cxr_gan(&[
        "train",
        "--model",
        "wgan-gp",
        "--data",
        &s(&good),
        "--epochs",
        "1",
        "--batch-size",
        "3",
        "--nz",
        "8",
        "--ngf",
        "8",
        "--ndf",
        "4",
        "--out",
        &out("other"),
    ]);
    assert!(ok, "{text}");
    std::fs::copy(root.join("other/checkpoints/last.safetensors"), &ck).unwrap();
    assert_fails(&["train", "--resume", &out("run")], "wgan-gp");
    // Same model, other width.
    let (ok, text) = cxr_gan(&[
        "train",
        "--data",
        &s(&good),
        "--epochs",
        "1",
        "--batch-size",
        "3",
        "--nz",
        "8",
        "--ngf",
        "8",
        "--ndf",
        "4",
        "--out",
        &out("wide"),
    ]);
    assert!(ok, "{text}");
    std::fs::copy(root.join("wide/checkpoints/last.safetensors"), &ck).unwrap();
    assert_fails(&["train", "--resume", &out("run")], "widths");
    assert_fails(&["generate", "--checkpoint", &s(&root.join("nope.safetensors")), "--out", &out("g2")], "nope.safetensors");
    assert_fails(&["train", "--data", &s(&good), "--fid-every", "1", "--fid-dims", "100", "--out", &out("r6")], "100");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn generate_maps_like_save_image() {
    use cxr_gan::train::samples::to_u8;
    // torchvision: (x + 1)/2 clamped to [0, 1], ·255 + 0.5, truncated.
    for (x, want) in [(-1.0f32, 0u8), (1.0, 255), (0.0, 128), (-2.0, 0), (2.0, 255), (0.5, 191), (-0.999, 0), (-0.995, 1)] {
        let expected = ((((x + 1.0) / 2.0).clamp(0.0, 1.0) as f64) * 255.0 + 0.5).floor() as u8;
        assert_eq!(expected, want, "independent formula at {x}");
        assert_eq!(to_u8(x), want, "to_u8({x})");
    }
}

/// Two epochs of DCGAN and WGAN-GP on 64 real X-rays at reduced width (skipped without the data).
#[test]
fn two_epochs_on_real_xrays() {
    let Some(dir) = data_dir() else { return };
    let root = temp_dir("real");
    let files = Dataset::select(&cxr_gan::data::list_images(&dir).unwrap(), Some(64), 0).unwrap();
    let dataset = Dataset::load(&files, &PreprocessConfig::default()).unwrap();
    for model in [ModelKind::Dcgan, ModelKind::WganGp] {
        let mut cfg = tiny_config(model, &dir, files.clone(), 2);
        cfg.batch_size = 16;
        cfg.widths = Widths { nz: 32, ngf: 8, ndf: 8 };
        let run = new_run(&root.join(model.name()), &cfg);
        let s = train(&CpuBackend::new(), &cfg, &run, &dataset, false, &opts(None)).unwrap();
        assert_eq!((s.epochs_done, s.iterations), (2, 8));
        assert!(run.samples().join("epoch_0001.png").is_file());
        assert!(run.checkpoints().join("epoch_0001.safetensors").is_file());
        let csv = std::fs::read_to_string(run.metrics()).unwrap();
        assert_eq!(csv.lines().count(), 9, "{csv}");
    }
    let _ = std::fs::remove_dir_all(root);
}

/// `--fid-every`: FID of generated images against the training images, per epoch, into metrics_fid.csv.
#[test]
fn fid_during_training() {
    let Some(weights) = fid_weights() else { return };
    let root = temp_dir("fid");
    let files = write_demo_set(&root.join("data"), 8, 64, 2).unwrap();
    let dataset = Dataset::load(&files, &PreprocessConfig::default()).unwrap();
    let mut cfg = tiny_config(ModelKind::Dcgan, &root.join("data"), files, 2);
    (cfg.fid_every, cfg.fid_count, cfg.fid_dims, cfg.fid_weights) = (1, 6, 64, Some(weights));
    let run = new_run(&root.join("run"), &cfg);
    let s = train(&CpuBackend::new(), &cfg, &run, &dataset, false, &opts(None)).unwrap();
    let csv = std::fs::read_to_string(run.fid_metrics()).unwrap();
    let values: Vec<f64> = csv.lines().skip(1).map(|l| l.split(',').nth(2).unwrap().parse().unwrap()).collect();
    assert_eq!(values.len(), 2, "{csv}");
    assert!(values.iter().all(|v| v.is_finite() && *v > 0.0), "{csv}");
    // Every FID line carries its interval, the real-vs-real floor and KID.
    for line in csv.lines().skip(1) {
        let f: Vec<f64> = line.split(',').map(|v| v.parse().unwrap()).collect();
        let [fid, lo, hi, floor, kid] = [f[2], f[5], f[6], f[7], f[9]];
        assert_eq!(f.len(), 11, "{csv}");
        assert!(lo <= fid && fid <= hi && floor > 0.0 && kid.is_finite(), "{line}");
    }
    assert_eq!(s.last_fid, Some(values[1]));
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.summary()).unwrap()).unwrap();
    // serde_json's default float parsing is not exactly round-trip: compare to 1e-12.
    assert!((summary["last_fid"].as_f64().unwrap() - values[1]).abs() <= 1e-12 * values[1]);
    let _ = std::fs::remove_dir_all(root);
}

/// The README's main command as a newcomer runs it: the demo's samples learn the phantoms' mean anatomy and
/// vary as the phantoms do (a collapsed generator fails the second check: tests/fid_readable.rs).
#[test]
fn the_demo_learns_the_anatomy_without_collapsing() {
    let out = temp_dir("demo");
    let o = Command::new(env!("CARGO_BIN_EXE_cxr-gan"))
        .args(["train", "--out", &out.join("run").to_string_lossy(), "--backend", "cpu"])
        .env_remove("CXR_GAN_DATA_DIR")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{text}");
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("run/summary.json")).unwrap()).unwrap();
    let q: Quality = serde_json::from_value(summary["quality"].clone()).unwrap();
    assert!(q.mean_image_correlation >= MIN_MEAN_IMAGE_CORRELATION, "{q:?}\n{text}");
    assert!(q.diversity_ratio >= MIN_DIVERSITY_RATIO, "{q:?}\n{text}");
    assert!(text.contains("diversity ratio") && text.contains("mean-image correlation"), "{text}");
    let _ = std::fs::remove_dir_all(out);
}
