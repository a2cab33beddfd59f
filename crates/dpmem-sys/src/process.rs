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

/// Has the C library run `hook` when the process exits normally (returning from `main` or
/// calling `exit`), as `atexit` does: hooks run in the reverse order of registration, and not
/// at all when the process is killed or calls `_exit`. A child made by `fork` inherits the
/// hook; one that `exec`s does not.
pub fn run_at_exit(hook: extern "C" fn()) -> crate::SysResult<()> {
    // SAFETY: atexit only records the function pointer, which is a plain `extern "C" fn` and so
    // valid for the whole life of the program.
    let rc = unsafe { libc::atexit(hook) };
    if rc == 0 {
        Ok(())
    } else {
        Err(crate::SysError::new(
            "atexit",
            "",
            crate::error::Errno::NOMEM,
        ))
    }
}

/// A handle on one process (a pidfd): unlike a pid, it can never come to name another process
/// once this one has exited and been reaped, so killing through it cannot hit a stranger.
#[derive(Debug)]
pub struct ProcessHandle {
    pidfd: std::os::fd::OwnedFd,
}

impl ProcessHandle {
    /// A handle on process `pid`, which must exist (and not yet be reaped).
    pub fn open(pid: u32) -> crate::SysResult<ProcessHandle> {
        let target = || format!("process {pid}");
        let raw = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .ok_or_else(|| {
                crate::SysError::new("pidfd_open", target(), crate::error::Errno::INVAL)
            })?;
        let pidfd = rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty())
            .map_err(|errno| crate::SysError::new("pidfd_open", target(), errno))?;
        Ok(ProcessHandle { pidfd })
    }

    /// Sends the process `SIGKILL` (it cannot catch or block it). An error when it has
    /// already exited and been reaped.
    pub fn kill(&self) -> crate::SysResult<()> {
        rustix::process::pidfd_send_signal(&self.pidfd, rustix::process::Signal::KILL)
            .map_err(|errno| crate::SysError::new("pidfd_send_signal", "", errno))
    }
}
