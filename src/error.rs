//! The typed errors every public function returns. Messages name the thing at fault (op, tensor, shape,
//! file) so that a one-line report is enough to act on.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Tensors whose shapes do not fit together, e.g. `conv2d: x [2, 3, 8, 8] has 3 channels but w [4, 5, 3, 3] expects 5`.
    #[error("{op}: {detail}")]
    Shape { op: &'static str, detail: String },
    /// A parameter out of its domain (a zero stride, a negative learning rate, ...).
    #[error("{op}: invalid argument: {detail}")]
    InvalidArgument { op: &'static str, detail: String },
    /// A file that could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file that was read but whose contents are wrong (corrupt image, missing tensor, bad metadata).
    #[error("{}: {detail}", path.display())]
    Format { path: PathBuf, detail: String },
    /// A backend that cannot run here (no device, no driver).
    #[error("backend {backend}: {detail}")]
    Backend { backend: String, detail: String },
    /// A computation that produced NaN or infinity where a finite value is required.
    #[error("non-finite value: {0}")]
    NonFinite(String),
    /// The user stopped the work (Ctrl-C); the message says what was kept and how to continue.
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// Anything else, with a message meant for the user.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// The process exit status this error ends `cxr-gan` with: 130 for an interruption (as shells report
    /// SIGINT), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Interrupted(_) => 130,
            _ => 1,
        }
    }
    pub fn shape(op: &'static str, detail: impl Into<String>) -> Self {
        Error::Shape { op, detail: detail.into() }
    }
    pub fn invalid(op: &'static str, detail: impl Into<String>) -> Self {
        Error::InvalidArgument { op, detail: detail.into() }
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
    pub fn format(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Error::Format { path: path.into(), detail: detail.into() }
    }
}
