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

/// Kills process `pid` with `SIGKILL` (it cannot catch or block it). Errors when there is no
/// such process or it belongs to another user.
pub fn kill(pid: u32) -> crate::SysResult<()> {
    let target = || format!("process {pid}");
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| crate::SysError::new("kill", target(), crate::error::Errno::INVAL))?;
    rustix::process::kill_process(pid, rustix::process::Signal::KILL)
        .map_err(|errno| crate::SysError::new("kill", target(), errno))
}
