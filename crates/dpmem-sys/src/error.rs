//! The error every `dpmem-sys` call returns: which operation failed, on what, and the errno.

use std::fmt;
use std::path::PathBuf;

pub use rustix::io::Errno;

/// A failed system interaction: the operation, the object it was applied to (a path, an
/// address range, a node), and the kernel's errno.
#[derive(Debug, Clone, thiserror::Error)]
pub struct SysError {
    /// What dpmem was doing, e.g. `"mmap"`, `"fallocate"`, `"read /proc/mounts"`.
    pub op: &'static str,
    /// The object of the operation, as a person reads it (a path, `0x7f..+len`, `node 1`).
    pub target: String,
    /// The kernel's answer.
    pub errno: Errno,
}

impl SysError {
    pub fn new(op: &'static str, target: impl Into<String>, errno: Errno) -> Self {
        Self {
            op,
            target: target.into(),
            errno,
        }
    }

    pub fn with_path(op: &'static str, path: &std::path::Path, errno: Errno) -> Self {
        Self::new(op, path.display().to_string(), errno)
    }

    /// Converts a `std::io::Error` (from `std::fs`) keeping its errno when it has one.
    pub fn from_io(op: &'static str, path: impl Into<PathBuf>, err: &std::io::Error) -> Self {
        let errno = err
            .raw_os_error()
            .map(Errno::from_raw_os_error)
            .unwrap_or(Errno::IO);
        Self::new(op, path.into().display().to_string(), errno)
    }
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.target.is_empty() {
            write!(f, "{} failed: {}", self.op, self.errno)
        } else {
            write!(f, "{} {} failed: {}", self.op, self.target, self.errno)
        }
    }
}

pub type SysResult<T> = Result<T, SysError>;
