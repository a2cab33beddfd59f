//! The filesystem root that sysfs and procfs are read from.
//!
//! Every discovery function takes a [`SysRoot`] instead of hard-coding `/sys` and `/proc`,
//! so a test can build a directory tree describing an imaginary machine (two NUMA nodes,
//! 1 GiB pages only, no hugetlbfs mount, ...) and run the real parsing code against it.
//! Writes that reserve hugepages go through the same root so tests can check what would have
//! been written to the kernel.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Errno, SysError, SysResult};

/// Where `/sys` and `/proc` live: `/` on the real host, a directory tree in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysRoot {
    base: PathBuf,
}

impl SysRoot {
    /// The running machine.
    pub fn host() -> Self {
        Self {
            base: PathBuf::from("/"),
        }
    }

    /// A tree whose `sys/` and `proc/` subdirectories stand in for the real ones.
    pub fn at(base: impl Into<PathBuf>) -> Self {
        Self { base: base.into() }
    }

    /// The directory this root maps `/` to.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// True when this root is the real filesystem root, so paths read from the kernel
    /// (mount points, for instance) can be resolved on disk.
    pub fn is_host(&self) -> bool {
        self.base == Path::new("/")
    }

    /// Maps an absolute kernel path such as `/sys/kernel/mm/hugepages` into this root.
    pub fn path(&self, absolute: &str) -> PathBuf {
        self.base.join(absolute.trim_start_matches('/'))
    }

    /// Reads a whole file as UTF-8.
    pub fn read_string(&self, absolute: &str) -> SysResult<String> {
        let path = self.path(absolute);
        fs::read_to_string(&path).map_err(|e| SysError::from_io("read", &path, &e))
    }

    /// Reads a file holding one unsigned decimal number, as most sysfs attributes do.
    pub fn read_u64(&self, absolute: &str) -> SysResult<u64> {
        let text = self.read_string(absolute)?;
        text.trim()
            .parse::<u64>()
            .map_err(|_| SysError::with_path("parse number in", &self.path(absolute), Errno::INVAL))
    }

    /// Like [`read_u64`](Self::read_u64), but a missing file is `None` rather than an error.
    pub fn read_u64_if_exists(&self, absolute: &str) -> SysResult<Option<u64>> {
        match self.read_u64(absolute) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.errno == Errno::NOENT => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The names of a directory's entries, sorted so results do not depend on the order
    /// the filesystem happens to return them in.
    pub fn read_dir_names(&self, absolute: &str) -> SysResult<Vec<String>> {
        let path = self.path(absolute);
        let entries =
            fs::read_dir(&path).map_err(|e| SysError::from_io("read directory", &path, &e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| SysError::from_io("read directory", &path, &e))?;
            // Kernel-created names are ASCII; anything else is not something we look for.
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Whether the path exists (following symlinks, as sysfs node links need).
    pub fn exists(&self, absolute: &str) -> bool {
        self.path(absolute).exists()
    }

    /// Writes `value` to an existing file, as one `write(2)`.
    ///
    /// The file is never created: a sysfs attribute that does not exist means the kernel
    /// does not support the setting, and a fake tree should report that the same way.
    pub fn write_string(&self, absolute: &str, value: &str) -> SysResult<()> {
        let path = self.path(absolute);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| SysError::from_io("open for writing", &path, &e))?;
        // sysfs parses the value from a single write, so the buffer goes out in one call.
        file.write_all(value.as_bytes())
            .map_err(|e| SysError::from_io("write", &path, &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_joins_under_base() {
        let root = SysRoot::at("/tmp/fake");
        assert_eq!(
            root.path("/sys/kernel/mm"),
            PathBuf::from("/tmp/fake/sys/kernel/mm")
        );
        assert_eq!(
            SysRoot::host().path("/proc/mounts"),
            PathBuf::from("/proc/mounts")
        );
        assert!(SysRoot::host().is_host());
        assert!(!root.is_host());
    }
}
