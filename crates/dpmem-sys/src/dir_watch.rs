//! Whether a directory's entries changed since last asked (`inotify`), so that a process that
//! keeps a listing of it re-reads it only then: one non-blocking `read` instead of a listing.
//!
//! The watch is set through the directory's descriptor (`/proc/self/fd/<dir>`, the magic link
//! to the very directory that was opened and checked), so it watches that directory whatever
//! happens to its path. An event is queued by the kernel within the call that created, removed
//! or renamed the entry, so a process that asks after another one's `bind` returned is told.

use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd};

use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
use rustix::io::Errno;

use crate::dir_handle::DirHandle;
use crate::error::{SysError, SysResult};

/// Room for a burst of events (each is 16 bytes and its name); a read that does not drain
/// them all is followed by another.
const EVENT_BUFFER: usize = 4096;

/// A watch on a directory's entries.
#[derive(Debug)]
pub struct DirWatch {
    fd: OwnedFd,
}

impl DirWatch {
    /// Watches `dir` for entries created, removed or renamed in or out. Fails when the user's
    /// inotify instances or watches are used up (`EMFILE`, `ENOSPC`): a caller then lists the
    /// directory every time instead.
    pub fn new(dir: &DirHandle) -> SysResult<DirWatch> {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
            .map_err(|e| SysError::with_path("inotify_init", dir.path(), e))?;
        let via_fd = format!("/proc/self/fd/{}", dir.fd().as_raw_fd());
        let events = WatchFlags::CREATE
            | WatchFlags::DELETE
            | WatchFlags::MOVED_FROM
            | WatchFlags::MOVED_TO
            | WatchFlags::ONLYDIR;
        inotify::add_watch(&fd, via_fd.as_str(), events)
            .map_err(|e| SysError::with_path("inotify_add_watch", dir.path(), e))?;
        Ok(DirWatch { fd })
    }

    /// Whether anything happened to the directory's entries since the last call (or since the
    /// watch was made, for the first): every waiting event is taken. An error reading counts
    /// as a change, so a caller re-lists rather than trust a listing it cannot vouch for (an
    /// overflow of the kernel's queue is itself an event, hence a change).
    pub fn changed(&self) -> bool {
        let mut buf = [MaybeUninit::<u8>::uninit(); EVENT_BUFFER];
        let mut changed = false;
        loop {
            match rustix::io::read(&self.fd, &mut buf) {
                Ok(([], _)) => return true,
                Ok(_) => changed = true,
                Err(Errno::AGAIN) => return changed,
                Err(Errno::INTR) => continue,
                Err(_) => return true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::datagram::DatagramSocket;

    #[test]
    fn tells_of_entries_made_and_removed_and_of_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let dir = DirHandle::open_anchor(tmp.path()).unwrap();
        let watch = DirWatch::new(&dir).unwrap();
        assert!(!watch.changed());
        let socket = DatagramSocket::bind_in(&dir, "mp_a").unwrap();
        assert!(watch.changed(), "a bound socket is a new entry");
        assert!(!watch.changed(), "each change is told once");
        // Writing an existing file changes no entry.
        std::fs::write(tmp.path().join("f"), b"x").unwrap();
        assert!(watch.changed());
        std::fs::write(tmp.path().join("f"), b"y").unwrap();
        assert!(!watch.changed());
        drop(socket);
        dir.remove_file("mp_a").unwrap();
        assert!(watch.changed());
        std::fs::rename(tmp.path().join("f"), tmp.path().join("g")).unwrap();
        assert!(watch.changed());
        assert!(!watch.changed());
    }
}
