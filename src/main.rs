fn main() {
    eprintln!("cxr-gan: the command-line interface is not built yet");
    std::process::exit(2);
}
