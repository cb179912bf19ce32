fn main() {
    quiet_headless_vulkan_probe();
    if let Err(e) = cxr_gan::cli::main() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Probing for a Vulkan adapter loads libwayland, which prints an error to stderr on headless machines
/// without XDG_RUNTIME_DIR. Give it a private runtime dir (before any thread starts) so that our own
/// error messages stay one line.
fn quiet_headless_vulkan_probe() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
        return;
    }
    let dir = std::env::temp_dir().join("cxr-gan-xdg-runtime");
    if std::fs::create_dir_all(&dir).is_ok() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        }
        std::env::set_var("XDG_RUNTIME_DIR", &dir);
    }
}
