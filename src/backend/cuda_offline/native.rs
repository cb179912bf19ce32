//! The offline compile check of the cuda-native backend's hand-written kernels (`kernels/cuda/<family>.cu`):
//! each family compiled by NVRTC with the backend's own options for every target, assembled by `ptxas -v`,
//! one row per kernel (entry function). Which kernels the real work launches, and with how many threads,
//! comes from running the standard workloads on [`CudaNativeBackend::recorder`] at each precision.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::process::Command;

use cxr_gan_kernels::cuda::Family;
use rayon::prelude::*;

use super::compile::{arch_name, parse_ptxas, Resources, Toolchain};
use super::report::{occupancy, H100, MAX_SHARED};
use super::workload;
use crate::backend::cuda_native::{nvrtc_options, CudaNativeBackend, Precision};

/// Per kernel name: the distinct threads-per-block it was launched with, and by which workloads at which
/// precisions.
#[derive(Default, Debug)]
pub struct Launched {
    pub threads: Vec<u32>,
    pub workloads: Vec<(&'static str, Vec<&'static str>)>,
}

impl Launched {
    /// `DCGAN, WGAN-GP (fp32, tf32); FID (fp32)`: workloads grouped by the precisions they launched it at.
    pub fn by(&self) -> String {
        let mut groups: Vec<(Vec<&str>, Vec<&str>)> = Vec::new();
        for (w, ps) in &self.workloads {
            match groups.iter_mut().find(|(p, _)| p == ps) {
                Some((_, ws)) => ws.push(w),
                None => groups.push((ps.clone(), vec![w])),
            }
        }
        groups.iter().map(|(ps, ws)| format!("{} ({})", ws.join(", "), ps.join(", "))).collect::<Vec<_>>().join("; ")
    }
}

/// Runs the standard workloads on the recorder at every precision: kernel name → how it was launched. Also
/// the workloads run and those skipped (Inception without weights), with why.
pub fn record(inception_weights: Result<&Path, String>) -> crate::Result<(BTreeMap<String, Launched>, Vec<String>)> {
    let mut seen: BTreeMap<String, Launched> = BTreeMap::new();
    let mut skipped = Vec::new();
    // TF32 twice: on sm_80 (v4) and on sm_90a (v5, wgmma).
    let configs = [(Precision::Fp32, false), (Precision::Tf32, false), (Precision::Tf32, true), (Precision::Bf16, false)];
    for (precision, wgmma) in configs {
        let b = CudaNativeBackend::recorder(wgmma).with_precision(precision);
        for w in workload::standard() {
            let weights = match (&w.kind, &inception_weights) {
                (workload::Kind::Inception { .. }, Err(why)) => {
                    if precision == Precision::Fp32 {
                        skipped.push(format!("{}: no weights file ({why})", w.name));
                    }
                    continue;
                }
                (_, w) => w.as_ref().ok().copied(),
            };
            workload::run(&b, &w, weights).map_err(|e| crate::Error::Other(format!("{} on the cuda-native recorder: {e}", w.name)))?;
            for (k, dims) in b.take_launches() {
                let e = seen.entry(k.name.to_string()).or_default();
                let threads = dims.block.iter().product();
                if !e.threads.contains(&threads) {
                    e.threads.push(threads);
                }
                match e.workloads.iter_mut().find(|(name, _)| *name == w.short) {
                    Some((_, ps)) if !ps.contains(&precision.name()) => ps.push(precision.name()),
                    Some(_) => {}
                    None => e.workloads.push((w.short, vec![precision.name()])),
                }
            }
        }
    }
    Ok((seen, skipped))
}

/// One family compiled by one toolchain for one target: per entry function, its resources, or the error.
pub struct FamilyCompile {
    pub family: Family,
    pub toolchain: String,
    pub arch: u32,
    pub result: Result<BTreeMap<String, Resources>, String>,
}

/// Splits `ptxas -v` output into entry functions: name → resources.
pub fn parse_ptxas_entries(out: &str) -> BTreeMap<String, Resources> {
    const START: &str = "Compiling entry function '";
    let mut entries = BTreeMap::new();
    let mut rest = out;
    while let Some(i) = rest.find(START) {
        let after = &rest[i + START.len()..];
        let name = after.split('\'').next().unwrap_or("").to_string();
        let end = after.find(START).unwrap_or(after.len());
        if let Some(r) = parse_ptxas(&after[..end]) {
            entries.insert(name, r);
        }
        rest = &after[end..];
    }
    entries
}

fn compile_family(f: Family, tc: &Toolchain, arch: u32, scratch: &Path) -> FamilyCompile {
    let result = (|| {
        let ptx = tc
            .nvrtc
            .compile_ptx(&f.source(), &nvrtc_options(&arch_name(arch)))
            .map_err(|log| format!("NVRTC: {}", log.lines().take(8).collect::<Vec<_>>().join(" | ")))?;
        let file = scratch.join(format!("native_{}_{}_{arch}.ptx", f.name(), tc.label().replace([' ', '.'], "_")));
        std::fs::write(&file, ptx).map_err(|e| format!("writing {}: {e}", file.display()))?;
        let out = Command::new(&tc.ptxas)
            .args([format!("-arch={}", arch_name(arch)), "-v".into(), "-o".into(), "/dev/null".into()])
            .arg(&file)
            .output()
            .map_err(|e| format!("running {}: {e}", tc.ptxas.display()))?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let _ = std::fs::remove_file(&file);
        if !out.status.success() {
            return Err(format!("ptxas: {}", text.lines().take(4).collect::<Vec<_>>().join(" | ")));
        }
        Ok(parse_ptxas_entries(&text))
    })();
    FamilyCompile { family: f, toolchain: tc.label(), arch, result }
}

/// The check's result: the markdown section, one line per failure, kernels and compiles counted.
pub struct NativeOutcome {
    pub markdown: String,
    pub failures: Vec<String>,
    pub kernels: usize,
    pub compiles: usize,
}

/// Records, compiles every family with every toolchain for every target, and tabulates.
pub fn check(
    toolchains: &[Toolchain],
    archs: &[u32],
    inception_weights: Result<&Path, String>,
    scratch: &Path,
) -> crate::Result<NativeOutcome> {
    let (launched, skipped) = record(inception_weights)?;
    let jobs: Vec<(Family, &Toolchain, u32)> =
        Family::ALL.iter().flat_map(|&f| toolchains.iter().flat_map(move |tc| archs.iter().map(move |&a| (f, tc, a)))).collect();
    let compiles: Vec<FamilyCompile> = jobs.par_iter().map(|&(f, tc, a)| compile_family(f, tc, a, scratch)).collect();
    let columns: Vec<String> =
        toolchains.iter().flat_map(|tc| archs.iter().map(move |&a| format!("{} {}", tc.label(), arch_name(a)))).collect();

    let mut failures = Vec::new();
    // kernel → (family, per column: resources or error)
    let mut rows: BTreeMap<(String, String), Vec<Option<Resources>>> = BTreeMap::new();
    for (col, c) in compiles.iter().enumerate().map(|(i, c)| (i % columns.len(), c)) {
        match &c.result {
            Err(e) => failures.push(format!("kernels/cuda/{}.cu with {} for {}: {e}", c.family.name(), c.toolchain, arch_name(c.arch))),
            Ok(entries) => {
                for (name, r) in entries {
                    let row = rows.entry((c.family.name().to_string(), name.clone())).or_insert_with(|| vec![None; columns.len()]);
                    row[col] = Some(r.clone());
                    if r.spill_stores + r.spill_loads > 0 {
                        failures.push(format!(
                            "{name} with {} for {}: spills ({} B stored, {} B loaded)",
                            c.toolchain,
                            arch_name(c.arch),
                            r.spill_stores,
                            r.spill_loads
                        ));
                    }
                    if r.static_smem as usize > MAX_SHARED {
                        failures.push(format!("{name}: {} B of shared memory (more than {MAX_SHARED})", r.static_smem));
                    }
                }
            }
        }
    }
    for name in launched.keys() {
        if !rows.keys().any(|(_, k)| k == name) {
            failures.push(format!("{name} is launched by the backend but no kernels/cuda family defines it"));
        }
    }

    let mut md = String::new();
    let _ = writeln!(
        md,
        "{} kernels in {} families (kernels/cuda/*.cu), each family compiled for {} with {} (the backend's NVRTC options: {}; `ptxas -v`): {} compiles, {}.\n",
        rows.len(),
        Family::ALL.len(),
        archs.iter().map(|&a| arch_name(a)).collect::<Vec<_>>().join(" and "),
        toolchains.iter().map(|t| t.label()).collect::<Vec<_>>().join(" and "),
        nvrtc_options("sm_XX").join(" "),
        compiles.len(),
        if failures.is_empty() { "all pass (no error, no spill, ≤ 48 KiB shared memory)".to_string() } else { format!("{} FAIL", failures.len()) },
    );
    for s in &skipped {
        let _ = writeln!(md, "Skipped: {s}\n");
    }
    let _ = writeln!(
        md,
        "| family | kernel | launched by | threads | registers ({}) | static shared B | spills B | H100 occupancy |",
        columns.join(" / ")
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    for ((family, name), rs) in &rows {
        let l = launched.get(name);
        let threads = l.map(|l| l.threads.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")).unwrap_or_else(|| "—".into());
        let by = l.map(Launched::by).unwrap_or_else(|| "not by these workloads".into());
        let regs: Vec<String> = rs.iter().map(|r| r.as_ref().map_or("✗".into(), |r| r.registers.to_string())).collect();
        let shared = rs.iter().flatten().map(|r| r.static_smem).max().unwrap_or(0);
        let spills: u32 = rs.iter().flatten().map(|r| r.spill_stores + r.spill_loads).sum();
        let h100_regs =
            rs.iter().zip(&columns).filter(|(_, c)| c.ends_with("sm_90a")).filter_map(|(r, _)| r.as_ref()).map(|r| r.registers).max();
        let occ = match (h100_regs, l.and_then(|l| l.threads.iter().max())) {
            (Some(r), Some(&t)) => {
                let o = occupancy(&H100, t, r, shared);
                format!("{:.0}% ({} blocks; {})", o.fraction * 100.0, o.blocks, o.limiter)
            }
            _ => "—".into(),
        };
        let _ = writeln!(md, "| {family} | `{name}` | {by} | {threads} | {} | {shared} | {spills} | {occ} |", regs.join(" / "));
    }
    for f in &failures {
        let _ = write!(md, "\nFAIL: {f}");
    }
    Ok(NativeOutcome { markdown: md, failures, kernels: rows.len(), compiles: compiles.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launches_are_grouped_by_precision() {
        let l = Launched {
            threads: vec![256],
            workloads: vec![("DCGAN", vec!["fp32", "tf32"]), ("FID", vec!["fp32"]), ("WGAN-GP", vec!["fp32", "tf32"])],
        };
        assert_eq!(l.by(), "DCGAN, WGAN-GP (fp32, tf32); FID (fp32)");
    }

    #[test]
    fn ptxas_output_splits_by_entry_function() {
        let out = "ptxas info    : 0 bytes gmem\n\
                   ptxas info    : Compiling entry function 'add' for 'sm_90a'\n\
                   ptxas info    : Function properties for add\n\
                   \x20   0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n\
                   ptxas info    : Used 10 registers, 372 bytes cmem[0]\n\
                   ptxas info    : Compiling entry function 'sum_partials' for 'sm_90a'\n\
                   ptxas info    : Function properties for sum_partials\n\
                   \x20   0 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads\n\
                   ptxas info    : Used 16 registers, used 1 barriers, 32 bytes smem, 372 bytes cmem[0]\n";
        let e = parse_ptxas_entries(out);
        assert_eq!(e.len(), 2);
        assert_eq!(e["add"].registers, 10);
        assert_eq!((e["sum_partials"].registers, e["sum_partials"].static_smem, e["sum_partials"].spill_stores), (16, 32, 4));
    }
}
