//! The per-kernel table: resources from ptxas, theoretical occupancy on an H100, and the pass/fail rules
//! (no compile error, no spill, at most 48 KiB of shared memory: what every CUDA GPU since Kepler gives a
//! block without opting in).

use std::fmt::Write;

use super::compile::{arch_name, Compiled};
use super::runtime::LaunchedKernel;

/// Shared memory a block may use without opting in on any CUDA GPU.
pub const MAX_SHARED: usize = 48 * 1024;

/// The per-SM limits the occupancy calculation uses.
#[derive(Clone, Copy, Debug)]
pub struct SmLimits {
    pub registers: u32,
    pub shared: u32,
    /// Shared memory the system reserves per resident block.
    pub shared_reserved_per_block: u32,
    pub threads: u32,
    pub blocks: u32,
    /// Registers are allocated per warp in units of this many.
    pub register_unit: u32,
}

/// H100 (compute capability 9.0): 64K registers, 228 KiB shared memory (1 KiB reserved per block), 2048
/// threads and 32 blocks per SM (CUDA C++ Programming Guide, "Technical Specifications per Compute
/// Capability"; the register allocation unit 256 as in NVIDIA's occupancy calculator).
pub const H100: SmLimits =
    SmLimits { registers: 65536, shared: 228 * 1024, shared_reserved_per_block: 1024, threads: 2048, blocks: 32, register_unit: 256 };

/// Resident blocks per SM and the fraction of the SM's warps they fill, with what limits them.
#[derive(Clone, Debug, PartialEq)]
pub struct Occupancy {
    pub blocks: u32,
    pub fraction: f64,
    pub limiter: &'static str,
}

pub fn occupancy(sm: &SmLimits, threads_per_block: u32, registers: u32, shared: u32) -> Occupancy {
    let warps = threads_per_block.div_ceil(32).max(1);
    let max_warps = sm.threads / 32;
    let by_threads = max_warps / warps;
    let by_registers = if registers == 0 {
        sm.blocks
    } else {
        let per_warp = (registers * 32).div_ceil(sm.register_unit) * sm.register_unit;
        (sm.registers / per_warp) / warps
    };
    let by_shared = if shared == 0 { sm.blocks } else { sm.shared / (shared + sm.shared_reserved_per_block) };
    let (blocks, limiter) = [(sm.blocks, "blocks"), (by_threads, "threads"), (by_registers, "registers"), (by_shared, "shared memory")]
        .into_iter()
        .min_by_key(|(b, _)| *b)
        .unwrap();
    Occupancy { blocks, fraction: (blocks * warps) as f64 / max_warps as f64, limiter }
}

/// Why a compiled kernel fails the check, if it does.
pub fn failure(c: &Compiled) -> Option<String> {
    match &c.result {
        Err(e) => Some(e.clone()),
        Ok(r) if r.spill_stores + r.spill_loads > 0 => Some(format!("spills ({} B stored, {} B loaded)", r.spill_stores, r.spill_loads)),
        Ok(r) if c.dynamic_smem + r.static_smem as usize > MAX_SHARED => {
            Some(format!("{} B of shared memory (more than {MAX_SHARED})", c.dynamic_smem + r.static_smem as usize))
        }
        Ok(_) => None,
    }
}

/// The kernel's function as the launcher names it: the macro makes a module per kernel, so
/// `cxr_gan_kernels::cube::conv::conv2d::Conv2d<…>` → `conv::conv2d`.
pub fn short_name(type_name: &str) -> String {
    let base = type_name.split('<').next().unwrap_or(type_name);
    let parts: Vec<&str> = base.split("::").collect();
    parts[parts.len().saturating_sub(3)..parts.len().saturating_sub(1).max(1)].join("::")
}

/// The comptime arguments of a kernel id's info (`Conv2dCompilationInfo { tm: 4, x: ArrayCompilationArg
/// { inplace: None, }, c: (), … }` → `tm: 4`): runtime arguments (`()`) and plain arrays are left out.
pub fn comptime_args(info: &str) -> String {
    let compact: String = info.split_whitespace().collect::<Vec<_>>().join(" ");
    let inner = match (compact.find('{'), compact.rfind('}')) {
        (Some(a), Some(b)) if a < b => &compact[a + 1..b],
        _ => return String::new(),
    };
    // Split at top-level commas.
    let (mut fields, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, ch) in inner.char_indices() {
        match ch {
            '{' | '(' | '[' => depth += 1,
            '}' | ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                fields.push(inner[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    fields.push(inner[start..].trim());
    fields
        .into_iter()
        .filter(|f| !f.is_empty() && !f.ends_with(": ()") && !f.contains("ArrayCompilationArg { inplace: None") && !all_runtime(f))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a field is a launch-argument struct of runtime values only (`g: Conv2dGeom { n: (), c: (), }`):
/// nothing in it specializes the kernel.
fn all_runtime(field: &str) -> bool {
    field.split_once('{').is_some_and(|(_, inner)| {
        inner.trim_end_matches('}').split(',').map(str::trim).filter(|f| !f.is_empty()).all(|f| f.ends_with(": ()"))
    })
}

fn specialization(k: &LaunchedKernel) -> String {
    let args = comptime_args(&k.id.to_string());
    let unchecked = if matches!(k.mode, cubecl::ExecutionMode::Unchecked) { " (unchecked)" } else { "" };
    if args.is_empty() {
        format!("—{unchecked}")
    } else {
        format!("{args}{unchecked}")
    }
}

/// The markdown table, one row per kernel; `results[i]` are kernel i's compiles (toolchains × targets in
/// `columns` order). Returns the table and the failures (one line each).
pub fn table(kernels: &[LaunchedKernel], results: &[Vec<Compiled>]) -> (String, Vec<String>) {
    let columns: Vec<String> =
        results.first().map(|r| r.iter().map(|c| format!("{} {}", c.toolchain, arch_name(c.arch))).collect()).unwrap_or_default();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "| # | kernel | specialization | launched by | threads | registers ({}) | shared B | spills B | H100 occupancy |",
        columns.join(" / ")
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
    let mut failures = Vec::new();
    for (i, (k, rs)) in kernels.iter().zip(results).enumerate() {
        let name = short_name(k.type_name);
        let threads = k.id.cube_dim.x * k.id.cube_dim.y * k.id.cube_dim.z;
        let regs: Vec<String> = rs.iter().map(|c| c.result.as_ref().map_or("✗".into(), |r| r.registers.to_string())).collect();
        let shared = rs.iter().map(|c| c.dynamic_smem + c.result.as_ref().map_or(0, |r| r.static_smem as usize)).max().unwrap_or(0);
        let spills: u32 = rs.iter().filter_map(|c| c.result.as_ref().ok()).map(|r| r.spill_stores + r.spill_loads).sum();
        // Occupancy from the sm_90 compiles (H100), with the most registers any toolchain used.
        let h100_regs = rs.iter().filter(|c| c.arch == 90).filter_map(|c| c.result.as_ref().ok()).map(|r| r.registers).max();
        let occ = match h100_regs {
            Some(r) => {
                let o = occupancy(&H100, threads, r, shared as u32);
                format!("{:.0}% ({} blocks; {})", o.fraction * 100.0, o.blocks, o.limiter)
            }
            None => "—".into(),
        };
        let _ = writeln!(
            md,
            "| {} | `{name}` | {} | {} | {threads} | {} | {shared} | {spills} | {occ} |",
            i + 1,
            specialization(k),
            k.workloads.join(", "),
            regs.join(" / ")
        );
        for c in rs {
            if let Some(why) = failure(c) {
                failures.push(format!("{name} ({}) with {} for {}: {why}", specialization(k), c.toolchain, arch_name(c.arch)));
            }
        }
    }
    (md, failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h100_occupancy_matches_the_calculator() {
        // NVIDIA's occupancy calculator, compute capability 9.0:
        // 256 threads, 32 registers, no shared memory: 8 blocks, 64 warps, 100%.
        let o = occupancy(&H100, 256, 32, 0);
        assert_eq!((o.blocks, o.fraction), (8, 1.0));
        // 256 threads, 64 registers: 2048 registers a warp, 32 warps fit: 4 blocks, 50%, limited by registers.
        let o = occupancy(&H100, 256, 64, 0);
        assert_eq!((o.blocks, o.fraction, o.limiter), (4, 0.5, "registers"));
        // 128 threads, 62 registers (rounded up to 64 per thread): 8 blocks, 50%.
        let o = occupancy(&H100, 128, 62, 8192);
        assert_eq!((o.blocks, o.fraction), (8, 0.5));
        // 64 threads, 16 registers, 48 KiB shared: 4 blocks by shared memory (4 × 49 KiB ≤ 228 KiB < 5 ×).
        let o = occupancy(&H100, 64, 16, 48 * 1024);
        assert_eq!((o.blocks, o.limiter), (4, "shared memory"));
        // 32 threads, 8 registers: the 32-block limit, 32 warps: 50%.
        let o = occupancy(&H100, 32, 8, 0);
        assert_eq!((o.blocks, o.fraction, o.limiter), (32, 0.5, "blocks"));
    }

    #[test]
    fn kernel_names() {
        assert_eq!(short_name("cxr_gan_kernels::cube::conv::conv2d::Conv2d<cxr_gan::backend::X>"), "conv::conv2d");
        assert_eq!(short_name("cxr_gan_kernels::cube::sum_splits::SumSplits<R>"), "cube::sum_splits");
    }

    #[test]
    fn comptime_arguments_only() {
        let info = "Conv2dCompilationInfo { tm: 4, x: ArrayCompilationArg { inplace: None, }, c: (), kh: (), }";
        assert_eq!(comptime_args(info), "tm: 4");
        let info = "Pool2dCompilationInfo { is_max: false, count_include_pad: true, x: ArrayCompilationArg { inplace: None, }, h: () }";
        assert_eq!(comptime_args(info), "is_max: false, count_include_pad: true");
        assert_eq!(comptime_args("FillCompilationInfo { out: ArrayCompilationArg { inplace: None, }, value: (), }"), "");
        assert_eq!(comptime_args("No info"), "");
    }
}
