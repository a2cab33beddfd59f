//! Facts about the calling process.

/// The effective user id (0 for root).
pub fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Whether the process runs as root (and so may read physical addresses and reserve hugepages).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The process id.
pub fn pid() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}
