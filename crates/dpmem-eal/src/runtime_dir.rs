//! The runtime directory: where the shared configuration of one file prefix lives.
//!
//! `/var/run/dpmem/<prefix>` for root, `$XDG_RUNTIME_DIR/dpmem/<prefix>` for other users (or
//! `/tmp/dpmem-<uid>/<prefix>` without that variable), created mode 0700 because whoever can
//! open the files there can map all of the primary's memory.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::EalError;

/// The directory for `prefix`, created (with its parents) 0700 when missing.
pub fn create(prefix: &str) -> Result<PathBuf, EalError> {
    let dir = location(prefix);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| EalError::RuntimeDir {
            path: dir.clone(),
            reason: e.to_string(),
        })?;
    // `recursive` leaves existing directories alone; tighten the prefix's own one regardless.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
        EalError::RuntimeDir {
            path: dir.clone(),
            reason: e.to_string(),
        }
    })?;
    Ok(dir)
}

/// Where the directory for `prefix` is, without creating it.
pub fn location(prefix: &str) -> PathBuf {
    base().join(prefix)
}

fn base() -> PathBuf {
    if dpmem_sys::process::is_root() {
        return PathBuf::from("/var/run/dpmem");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => Path::new(&dir).join("dpmem"),
        _ => PathBuf::from(format!(
            "/tmp/dpmem-{}",
            dpmem_sys::process::effective_uid()
        )),
    }
}

/// Removes the directory if nothing is left in it.
pub fn remove_if_empty(dir: &Path) {
    let _ = std::fs::remove_dir(dir);
}
