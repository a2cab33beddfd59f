//! Hugepages when this machine can give them, ordinary memory otherwise: the one place that
//! decides it for the `dpmem` program's embedded defaults and for the examples, so that they
//! cannot drift apart (an example that added `--no-huge` by a rule of its own once kept an
//! option `--no-huge` refuses, and panicked for every ordinary user).
//!
//! ```
//! let memory = dpmem_eal::DefaultMemory::detect(16);
//! if let Some(note) = memory.note() {
//!     eprintln!("{note}");
//! }
//! let mut args = vec!["app".to_owned()];
//! args.extend(memory.eal_args());
//! args.extend(["--file-prefix".to_owned(), format!("doc-{}", std::process::id())]);
//! let eal = dpmem_eal::Eal::init(args)?;
//! assert!(eal.heaps().stats(dpmem_eal::Socket::Node(0)).is_ok());
//! # Ok::<(), dpmem_eal::EalError>(())
//! ```

use std::path::Path;

use std::sync::atomic::{AtomicU32, Ordering};

use dpmem_sys::hugepage_info;
use dpmem_sys::root::SysRoot;

use crate::byte_count::Bytes;

/// What memory an embedded default runs on, and why not hugepages when it does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultMemory {
    memory_mb: u64,
    /// `None` when hugepages back it; otherwise why they cannot.
    fallback_reason: Option<String>,
}

impl DefaultMemory {
    /// Looks at this machine: hugepages when some page size has a hugetlbfs mount this user
    /// can create files in and enough free pages nobody has claimed for `memory_mb` MiB;
    /// ordinary memory (`--no-huge`) otherwise.
    pub fn detect(memory_mb: u64) -> DefaultMemory {
        DefaultMemory::detect_in(&SysRoot::host(), memory_mb)
    }

    /// [`DefaultMemory::detect`] on the machine `root` describes.
    pub fn detect_in(root: &SysRoot, memory_mb: u64) -> DefaultMemory {
        let fallback_reason = match memory_mb.checked_mul(1 << 20) {
            Some(bytes) => hugepages_unusable(root, bytes),
            None => Some(format!("{memory_mb} MiB is more than 64-bit memory holds")),
        };
        DefaultMemory {
            memory_mb,
            fallback_reason,
        }
    }

    /// Whether hugepages back this choice.
    pub fn hugepages(&self) -> bool {
        self.fallback_reason.is_none()
    }

    /// Why hugepages cannot be used, when they cannot.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }

    /// The EAL options for it: `-m <MiB>` on hugepages, `--no-huge -m <MiB>` otherwise.
    /// Add a `--file-prefix` of your own so that runs side by side do not meet.
    pub fn eal_args(&self) -> Vec<String> {
        let mut args = Vec::with_capacity(3);
        if !self.hugepages() {
            args.push("--no-huge".to_owned());
        }
        args.extend(["-m".to_owned(), self.memory_mb.to_string()]);
        args
    }

    /// [`DefaultMemory::eal_args`] for a program that wants nothing on the file system:
    /// `--in-memory` on hugepages (no page files, no runtime directory); `--no-huge` memory
    /// has no page files, and its runtime directory goes when the EAL does.
    pub fn eal_args_in_memory(&self) -> Vec<String> {
        let mut args = self.eal_args();
        if self.hugepages() {
            args.push("--in-memory".to_owned());
        }
        args
    }

    /// The one line to tell the user when hugepages are not used.
    pub fn note(&self) -> Option<String> {
        self.fallback_reason.as_ref().map(|reason| {
            format!("no hugepages to use ({reason}): running on ordinary memory (--no-huge)")
        })
    }
}

/// Why hugepages cannot give `bytes`, or `None` when they can.
fn hugepages_unusable(root: &SysRoot, bytes: u64) -> Option<String> {
    let info = match hugepage_info::discover(root) {
        Ok(info) => info,
        Err(e) => return Some(format!("cannot read the hugepage pools: {e}")),
    };
    if info.sizes.is_empty() {
        return Some("the kernel has no hugepage support".to_owned());
    }
    let mut reasons = Vec::new();
    for s in &info.sizes {
        let size = Bytes(s.page_size);
        // Reserved pages are promised to mappings already; only the rest can be had.
        let available = s.free.saturating_sub(s.reserved);
        let needed = bytes.div_ceil(s.page_size).max(1);
        let Some(mount) = s.mounts.first() else {
            reasons.push(format!("{size} pages: no hugetlbfs mount"));
            continue;
        };
        if available < needed {
            reasons.push(format!("{size} pages: {available} free, {needed} needed"));
            continue;
        }
        // The rule Eal::init applies to page directories.
        if let Err(e) = dpmem_sys::dir_handle::DirHandle::open_anchor(mount) {
            reasons.push(format!("{size} pages: {e}"));
            continue;
        }
        match can_create_files(mount) {
            Ok(()) => return None,
            Err(e) => reasons.push(format!(
                "{size} pages: cannot create files in {}: {e}",
                mount.display()
            )),
        }
    }
    Some(reasons.join("; "))
}

/// Whether files can be created in `dir`, found by creating one: permission bits, ACLs,
/// read-only mounts and group membership all count, and an empty hugetlbfs file holds no
/// page.
fn can_create_files(dir: &Path) -> std::io::Result<()> {
    // Unique per call: threads of one process may ask at the same time.
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let probe = dir.join(format!(
        ".dpmem-probe-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}
