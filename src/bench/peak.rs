//! What "% of peak" is measured against. CPU: this run's own square f32 GEMM through the `gemm` crate
//! (the one the cpu backend's convolutions call, as benches/ops.rs) and a parallel copy for bandwidth.
//! GPU: the card's published FP32 (non-tensor-core) rate and memory bandwidth, looked up by device name;
//! an unknown card gets no percentage.

use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::backend::cube::{wgpu_adapters, AdapterKind};
use crate::backend::cuda_native::Precision;

/// Published peaks: a device-name substring (first match wins, so the more specific comes first), FP32
/// TFLOP/s, memory TB/s.
pub const GPU_PEAKS: &[(&str, f64, f64)] =
    &[("H100 PCIe", 51.2, 2.0), ("H100", 67.0, 3.35), ("H200", 67.0, 4.8), ("A100", 19.5, 2.0), ("RTX 4090", 82.6, 1.0)];

/// Published dense tensor-core peaks (TFLOP/s, without sparsity, f32 accumulation): TF32 and bf16, for the
/// cuda-native backend's `--precision tf32` / `bf16` convolutions.
pub const GPU_TENSOR_PEAKS: &[(&str, f64, f64)] =
    &[("H100 PCIe", 378.0, 756.0), ("H100", 494.7, 989.4), ("H200", 494.7, 989.4), ("A100", 156.0, 312.0), ("RTX 4090", 82.6, 165.2)];

/// The reference rates of one device.
#[derive(Clone, Debug, Serialize)]
pub struct Peak {
    pub device: String,
    pub gflops: Option<f64>,
    pub gbps: Option<f64>,
    /// Where the figures come from.
    pub source: String,
}

impl Peak {
    /// The roofline fraction in percent: the better of FLOP rate / peak rate and bandwidth / peak
    /// bandwidth (equal to achieved / attainable at this arithmetic intensity). None without a peak.
    pub fn percent(&self, gflops: Option<f64>, gbps: Option<f64>) -> Option<f64> {
        let f = self.gflops.zip(gflops).map(|(p, r)| r / p);
        let m = self.gbps.zip(gbps).map(|(p, r)| r / p);
        match (f, m) {
            (None, None) => None,
            (a, b) => Some(100.0 * a.unwrap_or(0.0).max(b.unwrap_or(0.0))),
        }
    }

    /// `compute` or `memory`: which side of the ridge point (peak FLOP/s over peak bytes/s) the op is on.
    pub fn bound(&self, flops: f64, bytes: f64) -> Option<&'static str> {
        let ridge = self.gflops? / self.gbps?;
        Some(if flops >= ridge * bytes { "compute" } else { "memory" })
    }
}

/// The published peak of a GPU named `device`, if the table knows it.
pub fn gpu_peak(device: &str) -> Peak {
    let lower = device.to_lowercase();
    match GPU_PEAKS.iter().find(|(key, _, _)| lower.contains(&key.to_lowercase())) {
        Some((key, tf, tb)) => Peak {
            device: device.into(),
            gflops: Some(tf * 1e3),
            gbps: Some(tb * 1e3),
            source: format!("published for {key}: {tf} TFLOP/s FP32, {tb} TB/s"),
        },
        None => Peak { device: device.into(), gflops: None, gbps: None, source: "not in the table of published peaks: no %".into() },
    }
}

/// The published dense tensor-core peak at `precision` of a GPU named `device` (memory bandwidth as
/// [`gpu_peak`]; fp32 is [`gpu_peak`] itself).
pub fn gpu_tensor_peak(device: &str, precision: Precision) -> Peak {
    let lower = device.to_lowercase();
    let base = gpu_peak(device);
    let Some(&(key, tf32, bf16)) = GPU_TENSOR_PEAKS.iter().find(|(key, _, _)| lower.contains(&key.to_lowercase())) else {
        return base;
    };
    let tf = match precision {
        Precision::Fp32 => return base,
        Precision::Tf32 => tf32,
        Precision::Bf16 => bf16,
    };
    let source = format!("published for {key}: {tf} TFLOP/s {} tensor cores (dense)", precision.name().to_uppercase());
    Peak { gflops: Some(tf * 1e3), source, ..base }
}

/// Square f32 GEMM of side `m` through the `gemm` crate on every rayon thread: GFLOP/s, the median of
/// `repeats` calls after one warm-up.
pub fn cpu_gemm_gflops(m: usize, repeats: usize) -> f64 {
    let a: Vec<f32> = (0..m * m).map(|i| ((i % 17) as f32 - 8.0) / 8.0).collect();
    let b: Vec<f32> = (0..m * m).map(|i| ((i % 13) as f32 - 6.0) / 6.0).collect();
    let mut c = vec![0f32; m * m];
    let mut times: Vec<f64> = (0..repeats.max(1) + 1)
        .map(|_| {
            let start = Instant::now();
            // SAFETY: a, b and c are m×m row-major (column stride 1, row stride m), distinct, and live.
            unsafe {
                gemm::gemm(
                    m,
                    m,
                    m,
                    c.as_mut_ptr(),
                    1,
                    m as isize,
                    false,
                    a.as_ptr(),
                    1,
                    m as isize,
                    b.as_ptr(),
                    1,
                    m as isize,
                    0.0f32,
                    1.0f32,
                    false,
                    false,
                    false,
                    gemm::Parallelism::Rayon(rayon::current_num_threads()),
                )
            };
            start.elapsed().as_secs_f64()
        })
        .skip(1)
        .collect();
    times.sort_by(f64::total_cmp);
    2.0 * (m * m * m) as f64 / times[times.len() / 2] / 1e9
}

/// A parallel copy of `len` f32 (read + write counted, as STREAM's copy): GB/s, the median of `repeats`.
pub fn cpu_copy_gbps(len: usize, repeats: usize) -> f64 {
    let src: Vec<f32> = (0..len).map(|i| i as f32).collect();
    let mut dst = vec![0f32; len];
    let mut times: Vec<f64> = (0..repeats.max(1) + 1)
        .map(|_| {
            let start = Instant::now();
            dst.par_chunks_mut(1 << 16).zip(src.par_chunks(1 << 16)).for_each(|(d, s)| d.copy_from_slice(s));
            start.elapsed().as_secs_f64()
        })
        .skip(1)
        .collect();
    std::hint::black_box(&dst);
    times.sort_by(f64::total_cmp);
    2.0 * 4.0 * len as f64 / times[times.len() / 2] / 1e9
}

/// This machine's CPU measured now.
pub fn cpu_peak(device: String) -> Peak {
    const M: usize = 1024;
    const COPY: usize = 1 << 24;
    let gflops = cpu_gemm_gflops(M, 5);
    let gbps = cpu_copy_gbps(COPY, 5);
    Peak {
        device,
        gflops: Some(gflops),
        gbps: Some(gbps),
        source: format!("this run: square f32 GEMM m={M} through `gemm`; parallel copy of {} MiB", (COPY * 4) >> 20),
    }
}

/// The device a backend named `backend` (as `Backend::name`) runs on, in words.
pub fn device_name(backend: &str) -> String {
    match backend {
        "cpu" => {
            let model = std::fs::read_to_string("/proc/cpuinfo")
                .ok()
                .and_then(|s| {
                    s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|m| m.trim().to_string())
                })
                .unwrap_or_else(|| "CPU".into());
            format!("{model}, {} threads", rayon::current_num_threads())
        }
        "cuda" | "cuda-native" => cuda_device_name().unwrap_or_else(|| "CUDA device 0".into()),
        "wgpu" => {
            // The adapter `CubeBackend::wgpu` takes: a hardware one first.
            let adapters = wgpu_adapters();
            adapters
                .iter()
                .find(|a| a.kind.is_hardware())
                .or_else(|| adapters.iter().find(|a| a.kind == AdapterKind::Cpu))
                .map_or_else(|| "wgpu adapter".into(), |a| a.to_string())
        }
        other => other.into(),
    }
}

/// Device 0's name from the CUDA driver (the device the cuda backend uses); None if the driver cannot say.
fn cuda_device_name() -> Option<String> {
    std::panic::catch_unwind(|| {
        cudarc::driver::result::init().ok()?;
        let dev = cudarc::driver::result::device::get(0).ok()?;
        cudarc::driver::result::device::get_name(dev).ok()
    })
    .ok()
    .flatten()
}

/// The reference for `backend`: measured for the CPU, published for a known GPU.
pub fn peak_for(backend: &str) -> Peak {
    let device = device_name(backend);
    if backend == "cpu" {
        cpu_peak(device)
    } else if backend == "cuda-native" {
        gpu_tensor_peak(&device, crate::backend::precision())
    } else {
        gpu_peak(&device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_peaks_follow_the_precision_and_the_card() {
        // Published figures (NVIDIA's H200 and H100 PCIe datasheets, dense): the lookup must pick the card's
        // row (H100 PCIe before H100) and the precision's column; fp32 is the non-tensor rate.
        let at = |dev: &str, p| gpu_tensor_peak(dev, p).gflops;
        assert_eq!(at("NVIDIA H200", Precision::Bf16), Some(989.4e3));
        assert_eq!(at("NVIDIA H200", Precision::Tf32), Some(494.7e3));
        assert_eq!(at("NVIDIA H200", Precision::Fp32), Some(67.0e3));
        assert_eq!(at("NVIDIA H100 PCIe", Precision::Bf16), Some(756.0e3));
        assert_eq!(at("Some Card", Precision::Bf16), None);
        assert_eq!(gpu_tensor_peak("NVIDIA H200", Precision::Bf16).gbps, Some(4.8e3));
    }
}
