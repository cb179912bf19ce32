//! FID statistics, the Fréchet distance and `.npz` files: against the golden pytorch-fid outputs and against
//! independent closed forms.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use cxr_gan::fid::{
    fid_from_features, frechet_distance, frechet_distance_eigen, load_stats_npz, save_stats_npz, Statistics, StreamingStats,
};
use cxr_gan::golden::{self, GoldenFile};
use cxr_gan::Error;

/// A small deterministic generator (SplitMix64) for test data.
struct Rng(u64);
impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-0.5, 0.5).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }
    /// n rows of d correlated features with an offset, as f64.
    fn features(&mut self, n: usize, d: usize, offset: f64) -> Vec<f64> {
        let mix: Vec<f64> = (0..d * d).map(|_| self.uniform()).collect();
        let mut out = Vec::with_capacity(n * d);
        for _ in 0..n {
            let z: Vec<f64> = (0..d).map(|_| self.uniform()).collect();
            for j in 0..d {
                let v: f64 = (0..d).map(|k| z[k] * mix[k * d + j]).sum();
                out.push(v.abs() + offset + 0.1 * j as f64);
            }
        }
        out
    }
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cxr_gan_fid_stats_{}_{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn max_rel_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    a.iter().zip(b).fold(0.0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// A covariance straight from the definition, for checking: Σ_ij = Σ_k (x_ki − μ_i)(x_kj − μ_j) / (n − 1).
fn naive_stats(rows: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let n = rows.len() / d;
    let mut mu = vec![0.0; d];
    for r in rows.chunks(d) {
        for j in 0..d {
            mu[j] += r[j];
        }
    }
    mu.iter_mut().for_each(|m| *m /= n as f64);
    let mut sigma = vec![0.0; d * d];
    for r in rows.chunks(d) {
        for i in 0..d {
            for j in 0..d {
                sigma[i * d + j] += (r[i] - mu[i]) * (r[j] - mu[j]);
            }
        }
    }
    sigma.iter_mut().for_each(|s| *s /= (n - 1) as f64);
    (mu, sigma)
}

// ---------------------------------------------------------------------------------------------- golden files

#[test]
fn golden_frechet_files() {
    let dir = golden::golden_dir();
    if !dir.is_dir() {
        println!("SKIP golden_frechet_files: golden dir {} is absent", dir.display());
        return;
    }
    let files: Vec<PathBuf> = golden::list(&dir)
        .unwrap()
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("frechet_")))
        .collect();
    assert!(!files.is_empty(), "no frechet_*.safetensors in {}", dir.display());
    let mut failures = Vec::new();
    for path in &files {
        let g = GoldenFile::open(path).unwrap();
        assert_eq!(g.op, "frechet", "{}", path.display());
        let (shape1, f1) = g.f64("in.features1").unwrap();
        let (shape2, f2) = g.f64("in.features2").unwrap();
        let d = shape1[1];
        assert_eq!(shape2[1], d);
        let s1 = Statistics::from_features(&f1, d).unwrap();
        let s2 = Statistics::from_features(&f2, d).unwrap();
        assert_eq!((s1.count, s2.count), (shape1[0], shape2[0]));
        let mut checks = Vec::new();
        for (name, ours) in [("out.mu1", &s1.mu), ("out.sigma1", &s1.sigma), ("out.mu2", &s2.mu), ("out.sigma2", &s2.sigma)] {
            if g.names().any(|n| n == name) {
                checks.push(g.check(name, ours).unwrap());
            }
        }
        let fid = frechet_distance(&s1, &s2).unwrap();
        checks.push(g.check("out.fid", &[fid]).unwrap());
        let (_, expected) = g.f64("out.fid").unwrap();
        println!("{}: fid {fid:.15e} (pytorch-fid {:.15e})", g.name, expected[0]);
        for c in checks {
            println!("  {:<11} error {:.3e}  {}  {}", c.name, c.error, if c.passed { "ok" } else { "FAIL" }, c.detail);
            if !c.passed {
                failures.push(format!("{} {}: {}", g.name, c.name, c.detail));
            }
        }
    }
    assert!(failures.is_empty(), "golden mismatches:\n{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------- statistics

#[test]
fn stats_match_the_definition() {
    let mut rng = Rng(1);
    let (n, d) = (37, 9);
    let rows = rng.features(n, d, 1e3); // a large offset: a one-pass Σx² − n·x̄² would lose digits here
    let s = Statistics::from_features(&rows, d).unwrap();
    let (mu, sigma) = naive_stats(&rows, d);
    assert_eq!((s.dims, s.count), (d, n));
    assert!(max_rel_diff(&s.mu, &mu) < 1e-14, "mu {}", max_rel_diff(&s.mu, &mu));
    assert!(max_rel_diff(&s.sigma, &sigma) < 1e-11, "sigma {}", max_rel_diff(&s.sigma, &sigma));
    for i in 0..d {
        for j in 0..d {
            assert_eq!(s.sigma[i * d + j], s.sigma[j * d + i], "sigma not symmetric at ({i}, {j})");
        }
    }
}

#[test]
fn stats_of_a_tiny_exact_case() {
    // x = (1, 2, 3, 4), y = 2x: var x = 5/3, cov = 10/3, var y = 20/3.
    let rows = [1.0f32, 2.0, 2.0, 4.0, 3.0, 6.0, 4.0, 8.0];
    let s = Statistics::from_features(&rows, 2).unwrap();
    assert_eq!(s.mu, vec![2.5, 5.0]);
    let want = [5.0 / 3.0, 10.0 / 3.0, 10.0 / 3.0, 20.0 / 3.0];
    assert!(max_rel_diff(&s.sigma, &want) < 1e-15, "{:?}", s.sigma);
}

#[test]
fn streaming_equals_one_shot_for_any_batching() {
    let mut rng = Rng(2);
    // d > 128 so that the covariance runs over several parallel panels.
    let (n, d) = (61, 150);
    let rows = rng.features(n, d, 3.0);
    let one_shot = Statistics::from_features(&rows, d).unwrap();
    let (mu, sigma) = naive_stats(&rows, d);
    assert!(max_rel_diff(&one_shot.sigma, &sigma) < 1e-11);
    assert!(max_rel_diff(&one_shot.mu, &mu) < 1e-14);
    for splits in [vec![n], vec![1; n], vec![2, 59], vec![30, 1, 30], vec![7, 13, 0, 41]] {
        let mut s = StreamingStats::new(d);
        let mut at = 0;
        for k in &splits {
            s.push(&rows[at * d..(at + k) * d]).unwrap();
            at += k;
        }
        assert_eq!(s.count(), n);
        let st = s.finish().unwrap();
        assert_eq!(st, one_shot, "batches {splits:?}");
    }
    // f32 rows give the statistics of their f64 values.
    let rows32: Vec<f32> = rows.iter().map(|&v| v as f32).collect();
    let widened: Vec<f64> = rows32.iter().map(|&v| v as f64).collect();
    let mut s = StreamingStats::new(d);
    s.push(&rows32[..10 * d]).unwrap();
    s.push(&rows32[10 * d..]).unwrap();
    assert_eq!(s.finish().unwrap(), Statistics::from_features(&widened, d).unwrap());
}

#[test]
fn stats_need_two_samples() {
    let mut s = StreamingStats::new(3);
    s.push(&[1.0f64, 2.0, 3.0]).unwrap();
    let err = s.finish().unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert!(msg.contains("at least 2") && msg.contains("got 1"), "{msg}");
    let msg = StreamingStats::new(3).finish().unwrap_err().to_string();
    assert!(msg.contains("got 0"), "{msg}");
}

#[test]
fn push_rejects_partial_rows_and_non_finite_values() {
    let mut s = StreamingStats::new(3);
    let err = s.push(&[1.0f32, 2.0, 3.0, 4.0]).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }) && err.to_string().contains("rows of 3"), "{err}");
    let err = s.push(&[1.0f32, f32::NAN, 3.0]).unwrap_err();
    assert!(matches!(err, Error::NonFinite(_)), "{err:?}");
    assert_eq!(s.count(), 0, "a rejected batch must not be kept");
    s.push(&[1.0f32, 2.0, 3.0, 2.0, 2.0, 2.0]).unwrap();
    assert_eq!(s.count(), 2);
    assert!(StreamingStats::new(0).push(&[1.0f32]).is_err());
}

// ---------------------------------------------------------------------------------------- Fréchet distance

#[test]
fn identical_statistics_give_zero() {
    let mut rng = Rng(3);
    for (n, d) in [(200, 20), (15, 40)] {
        // full rank (Cholesky route) and rank-deficient (eigen route)
        let s = Statistics::from_features(&rng.features(n, d, 0.5), d).unwrap();
        let tr = s.trace();
        for fid in [frechet_distance(&s, &s).unwrap(), frechet_distance_eigen(&s, &s).unwrap()] {
            assert!(fid.abs() < 1e-9 * tr, "n {n} d {d}: fid {fid} vs trace {tr}");
        }
    }
}

#[test]
fn diagonal_covariances_match_the_closed_form() {
    // Commuting (diagonal) covariances: FID = ‖Δμ‖² + Σ (√a − √b)².
    let d = 12;
    let a: Vec<f64> = (0..d).map(|i| 0.5 + i as f64).collect();
    let mut b: Vec<f64> = (0..d).map(|i| 2.0 / (1.0 + i as f64)).collect();
    b[3] = 0.0; // a singular one too
    let mu1: Vec<f64> = (0..d).map(|i| (i as f64).sin()).collect();
    let mu2: Vec<f64> = (0..d).map(|i| (i as f64).cos()).collect();
    let diag = |v: &[f64]| {
        let mut m = vec![0.0; d * d];
        for i in 0..d {
            m[i * d + i] = v[i];
        }
        m
    };
    let s1 = Statistics::new(mu1.clone(), diag(&a), 0).unwrap();
    let s2 = Statistics::new(mu2.clone(), diag(&b), 0).unwrap();
    let want: f64 = mu1.iter().zip(&mu2).map(|(x, y)| (x - y).powi(2)).sum::<f64>()
        + a.iter().zip(&b).map(|(x, y)| (x.sqrt() - y.sqrt()).powi(2)).sum::<f64>();
    for (what, got) in [
        ("auto", frechet_distance(&s1, &s2).unwrap()),
        ("auto, swapped", frechet_distance(&s2, &s1).unwrap()),
        ("eigen", frechet_distance_eigen(&s1, &s2).unwrap()),
        ("eigen, swapped", frechet_distance_eigen(&s2, &s1).unwrap()),
    ] {
        assert!(((got - want) / want).abs() < 1e-12, "{what}: {got} vs closed form {want}");
    }
}

#[test]
fn pivoted_cholesky_and_eigen_routes_agree() {
    let mut rng = Rng(4);
    let d = 48;
    let s1 = Statistics::from_features(&rng.features(300, d, 0.2), d).unwrap();
    let s2 = Statistics::from_features(&rng.features(250, d, 0.5), d).unwrap();
    let thin = Statistics::from_features(&rng.features(20, d, 0.4), d).unwrap(); // rank 19
    let thinner = Statistics::from_features(&rng.features(12, d, 0.1), d).unwrap(); // rank 11
    for (x, y) in [(&s1, &s2), (&s2, &s1), (&thin, &s1), (&s1, &thin), (&thin, &thinner), (&thinner, &thin)] {
        let (a, b) = (frechet_distance(x, y).unwrap(), frechet_distance_eigen(x, y).unwrap());
        assert!(((a - b) / b).abs() < 1e-10, "{a} vs {b}");
        assert!(a > 0.0);
    }
    // Symmetric in its arguments.
    let (a, b) = (frechet_distance(&s1, &thin).unwrap(), frechet_distance(&thin, &s1).unwrap());
    assert!(((a - b) / b).abs() < 1e-10, "{a} vs {b}");
}

#[test]
fn fid_from_features_matches_the_two_steps() {
    let mut rng = Rng(5);
    let d = 10;
    let (f1, f2) = (rng.features(40, d, 0.0), rng.features(50, d, 0.3));
    let want = frechet_distance(&Statistics::from_features(&f1, d).unwrap(), &Statistics::from_features(&f2, d).unwrap()).unwrap();
    assert_eq!(fid_from_features(&f1, &f2, d).unwrap(), want);
    assert!(want > 0.0);
}

#[test]
fn dimension_mismatch_is_an_error_naming_both() {
    let mut rng = Rng(6);
    let s1 = Statistics::from_features(&rng.features(10, 4, 0.0), 4).unwrap();
    let s2 = Statistics::from_features(&rng.features(10, 6, 0.0), 6).unwrap();
    let err = frechet_distance(&s1, &s2).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Shape { .. }), "{err:?}");
    assert!(msg.contains('4') && msg.contains('6'), "{msg}");
    // Malformed statistics are refused too.
    let bad = Statistics { mu: vec![0.0; 4], sigma: vec![0.0; 15], dims: 4, count: 0 };
    assert!(frechet_distance(&s1, &bad).is_err());
    let nan = Statistics { mu: vec![f64::NAN, 0.0, 0.0, 0.0], sigma: s1.sigma.clone(), dims: 4, count: 0 };
    assert!(matches!(frechet_distance(&s1, &nan), Err(Error::NonFinite(_))));
}

#[test]
fn overflow_is_an_error_not_a_hang() {
    // Σ1·Σ2 overflows f64: the result is reported as non-finite (after pytorch-fid's retry), never returned.
    let s = Statistics::new(vec![0.0, 1.0], vec![1e200, 0.0, 0.0, 1e200], 0).unwrap();
    for r in [frechet_distance(&s, &s), frechet_distance_eigen(&s, &s)] {
        assert!(matches!(r, Err(Error::NonFinite(_))), "{r:?}");
    }
}

// ---------------------------------------------------------------------------------------- npz

#[test]
fn npz_round_trip_is_exact() {
    let dir = scratch_dir("round_trip");
    let mut rng = Rng(7);
    for d in [1, 5, 64, 130] {
        let s = Statistics::from_features(&rng.features(d + 3, d, 0.1), d).unwrap();
        let path = dir.join(format!("stats_{d}.npz"));
        save_stats_npz(&path, &s).unwrap();
        let back = load_stats_npz(&path).unwrap();
        assert_eq!(back.dims, d);
        assert_eq!(back.count, 0, "the sample count is not stored");
        assert_eq!(back.mu, s.mu);
        assert_eq!(back.sigma, s.sigma);
        // Overwriting works and leaves no temporary file behind.
        save_stats_npz(&path, &s).unwrap();
    }
    let leftovers: Vec<_> =
        std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().ends_with(".tmp")).collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn npz_headers_are_numpy_v1_and_aligned() {
    let dir = scratch_dir("headers");
    let path = dir.join("s.npz");
    let s = Statistics::new(vec![1.0, 2.0, 3.0], vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], 0).unwrap();
    save_stats_npz(&path, &s).unwrap();
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
    let names: Vec<String> = zip.file_names().map(String::from).collect();
    assert!(names.contains(&"mu.npy".to_string()) && names.contains(&"sigma.npy".to_string()), "{names:?}");
    for (name, shape, n) in [("mu.npy", "(3,)", 3), ("sigma.npy", "(3, 3)", 9)] {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut zip.by_name(name).unwrap(), &mut bytes).unwrap();
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0, "{name}: header not padded to 64");
        let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
        let want = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
        assert!(header.starts_with(&want), "{name}: {header:?}");
        assert!(header.ends_with('\n') && header[want.len()..hlen - 1].bytes().all(|b| b == b' '));
        assert_eq!(bytes.len(), 10 + hlen + 8 * n);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Writes an `.npz` with the given members (name, bytes), deflated, as numpy's savez_compressed would.
fn write_zip(path: &Path, members: &[(&str, Vec<u8>)]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in members {
        zip.start_file(*name, opts).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

/// An NPY 1.0 array with an arbitrary header dict body.
fn npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}", if fortran { "True" } else { "False" });
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn npz_reads_float32_fortran_order_and_deflate() {
    let dir = scratch_dir("variants");
    let path = dir.join("v.npz");
    // sigma stored column-major: (0,1) = 1 and (1,0) = 2 (not symmetric, to see the order; still within
    // what a covariance allows, |σij| ≤ √(σii·σjj)).
    let mu: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|x| x.to_le_bytes()).collect();
    let sigma_f = f64_bytes(&[4.0, 2.0, 1.0, 5.0]);
    write_zip(&path, &[("mu.npy", npy("<f4", false, "(2,)", &mu)), ("sigma.npy", npy("<f8", true, "(2, 2)", &sigma_f))]);
    let s = load_stats_npz(&path).unwrap();
    assert_eq!(s.mu, vec![1.5, -2.0]);
    assert_eq!(s.sigma, vec![4.0, 1.0, 2.0, 5.0]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn npz_errors_name_the_file_and_the_fault() {
    let dir = scratch_dir("errors");
    let expect = |path: &Path, needle: &str| {
        let err = load_stats_npz(path).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "error does not name the file: {msg}");
        assert!(msg.contains(needle), "expected {needle:?} in: {msg}");
    };
    let mu = npy("<f8", false, "(2,)", &f64_bytes(&[0.0, 1.0]));
    let sigma = npy("<f8", false, "(2, 2)", &f64_bytes(&[1.0, 0.0, 0.0, 1.0]));

    let p = dir.join("no_sigma.npz");
    write_zip(&p, &[("mu.npy", mu.clone())]);
    expect(&p, "sigma");

    let p = dir.join("no_mu.npz");
    write_zip(&p, &[("sigma.npy", sigma.clone())]);
    expect(&p, "no `mu`");

    let p = dir.join("corrupt.npz");
    std::fs::write(&p, b"PK\x03\x04 this is not really a zip archive at all").unwrap();
    expect(&p, "not an .npz");

    let p = dir.join("text.npz");
    std::fs::write(&p, "mu,sigma\n1,2\n").unwrap();
    expect(&p, "not an .npz");

    let p = dir.join("mismatch.npz");
    write_zip(&p, &[("mu.npy", npy("<f8", false, "(3,)", &f64_bytes(&[0.0; 3]))), ("sigma.npy", sigma.clone())]);
    expect(&p, "(3, 3)");

    let p = dir.join("int.npz");
    write_zip(&p, &[("mu.npy", npy("<i8", false, "(2,)", &[0u8; 16])), ("sigma.npy", sigma.clone())]);
    expect(&p, "unsupported dtype");

    let p = dir.join("short.npz");
    write_zip(&p, &[("mu.npy", mu.clone()), ("sigma.npy", npy("<f8", false, "(2, 2)", &f64_bytes(&[1.0, 0.0])))]);
    expect(&p, "bytes");

    let p = dir.join("bad_npy.npz");
    write_zip(&p, &[("mu.npy", b"not npy".to_vec()), ("sigma.npy", sigma)]);
    expect(&p, "magic");

    let missing = dir.join("does_not_exist.npz");
    assert!(matches!(load_stats_npz(&missing), Err(Error::Io { .. })));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn npz_is_read_by_numpy_when_available() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let has_numpy = Command::new(&python).args(["-c", "import numpy"]).output().is_ok_and(|o| o.status.success());
    if !has_numpy {
        println!("SKIP npz_is_read_by_numpy_when_available: `{python} -c 'import numpy'` fails (numpy not installed)");
        return;
    }
    let dir = scratch_dir("numpy");
    let path = dir.join("stats.npz");
    let mut rng = Rng(8);
    let d = 7;
    let s = Statistics::from_features(&rng.features(20, d, 0.2), d).unwrap();
    save_stats_npz(&path, &s).unwrap();
    // numpy prints the arrays' dtype, shape and exact values (repr of float round-trips).
    let script = "import sys, numpy as np\n\
        f = np.load(sys.argv[1])\n\
        mu, sigma = f['mu'], f['sigma']\n\
        print(mu.dtype, mu.shape, sigma.dtype, sigma.shape)\n\
        print(' '.join(repr(float(v)) for v in mu))\n\
        print(' '.join(repr(float(v)) for v in sigma.ravel()))\n\
        np.savez(sys.argv[2], mu=mu * 2, sigma=sigma)\n\
        np.save(sys.argv[3], mu)\n\
        np.save(sys.argv[4], sigma)\n";
    let back = dir.join("from_numpy.npz");
    let (mu_npy, sigma_npy) = (dir.join("mu.npy"), dir.join("sigma.npy"));
    let out = Command::new(&python).args(["-c", script]).arg(&path).arg(&back).arg(&mu_npy).arg(&sigma_npy).output().unwrap();
    assert!(out.status.success(), "numpy failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("float64 ({d},) float64 ({d}, {d})"));
    let parse = |l: &str| l.split_whitespace().map(|v| v.parse::<f64>().unwrap()).collect::<Vec<_>>();
    assert_eq!(parse(lines[1]), s.mu);
    assert_eq!(parse(lines[2]), s.sigma);
    // Our members are byte for byte what np.save writes, unless numpy predates its 1.23 header growth room.
    let version = Command::new(&python).args(["-c", "import numpy; print(numpy.__version__)"]).output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    if (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (1, 23) {
        let mut zip = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
        for (member, file) in [("mu.npy", &mu_npy), ("sigma.npy", &sigma_npy)] {
            let mut ours = Vec::new();
            std::io::Read::read_to_end(&mut zip.by_name(member).unwrap(), &mut ours).unwrap();
            assert!(ours == std::fs::read(file).unwrap(), "{member} differs from numpy {version}'s np.save");
        }
    } else {
        println!("numpy {version} < 1.23: not comparing .npy bytes");
    }
    // And what numpy writes, we read.
    let from_numpy = load_stats_npz(&back).unwrap();
    assert_eq!(from_numpy.mu, s.mu.iter().map(|v| v * 2.0).collect::<Vec<_>>());
    assert_eq!(from_numpy.sigma, s.sigma);
    std::fs::remove_dir_all(&dir).ok();
}
