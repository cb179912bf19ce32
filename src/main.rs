fn main() {
    if let Err(e) = cxr_gan::cli::main() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
