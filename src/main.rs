fn main() {
    end_quietly_on_broken_pipe();
    quiet_headless_vulkan_probe();
    if let Err(e) = cxr_gan::cli::main() {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}

/// `cxr-gan ... | head -1`: when the reader goes away, end as other command-line tools do (killed by
/// SIGPIPE, which shells do not report) instead of panicking in `println!`. Files are written atomically,
/// so nothing half-written is left but a temp file, which the next run removes.
fn end_quietly_on_broken_pipe() {
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
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
