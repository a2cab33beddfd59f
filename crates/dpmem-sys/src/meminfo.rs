//! What `/proc/meminfo` tells about hugepages: the kernel's default page size, which hugetlbfs
//! mounts without a `pagesize=` option use.

use crate::error::{Errno, SysError, SysResult};
use crate::root::SysRoot;

/// The kernel's default hugepage size in bytes, from `Hugepagesize:` in `/proc/meminfo`.
/// `None` when the line (or the file) is absent, as on kernels without hugetlbfs.
pub fn default_page_size(root: &SysRoot) -> SysResult<Option<u64>> {
    let text = match root.read_string("/proc/meminfo") {
        Ok(text) => text,
        Err(e) if e.errno == Errno::NOENT => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(line) = text.lines().find(|l| l.starts_with("Hugepagesize:")) else {
        return Ok(None);
    };
    let bad = || {
        SysError::with_path(
            "parse Hugepagesize in",
            &root.path("/proc/meminfo"),
            Errno::INVAL,
        )
    };
    let mut fields = line["Hugepagesize:".len()..].split_ascii_whitespace();
    let value: u64 = fields.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    // meminfo writes "kB" but means KiB.
    let multiplier = match fields.next() {
        Some("kB") => 1024,
        None => 1,
        Some(_) => return Err(bad()),
    };
    value.checked_mul(multiplier).map(Some).ok_or_else(bad)
}
