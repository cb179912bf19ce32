//! Compiles kernels/cuda/*.cu for the host, against kernels/emu/emulate.h, into the CUDA emulator that runs
//! the cuda-native backend's kernels where there is no GPU (CI). All families and the emulator's runtime form
//! one translation unit: the kernels register themselves in static initializers, which a static library
//! would drop from object files nothing references.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let mut families: Vec<PathBuf> = std::fs::read_dir(dir.join("cuda"))
        .expect("kernels/cuda")
        .map(|e| e.expect("kernels/cuda entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cu"))
        .collect();
    families.sort();
    let mut unit = format!("#include \"{}\"\n", dir.join("emu/runtime.cpp").display());
    for f in &families {
        unit.push_str(&format!("#include \"{}\"\n", f.display()));
    }
    let unit_path = out.join("cuda_emulator.cpp");
    std::fs::write(&unit_path, unit).expect("writing the emulator's translation unit");
    cc::Build::new()
        .cpp(true)
        .std("c++20")
        .define("CXR_EMULATE", None)
        .opt_level(2)
        .flag_if_supported("-Wno-unused-parameter")
        // `#pragma unroll` is for NVRTC.
        .flag_if_supported("-Wno-unknown-pragmas")
        // emu/runtime.cpp longjmps between fiber stacks, which fortify's check would abort.
        .flag_if_supported("-U_FORTIFY_SOURCE")
        .file(&unit_path)
        .compile("cxr_cuda_emulator");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=cuda");
    println!("cargo:rerun-if-changed=emu");
    for f in families {
        println!("cargo:rerun-if-changed={}", f.display());
    }
}
