//! Whether a directory's entries changed since last asked (`inotify`), so that a process that
//! keeps a listing of it re-reads it only then: one non-blocking `read` instead of a listing.
//!
//! The watch is set through the directory's descriptor (`/proc/self/fd/<dir>`, the magic link
//! to the very directory that was opened and checked), so it watches that directory whatever
//! happens to its path. An event is queued by the kernel within the call that created, removed
//! or renamed the entry, so a process that asks after another one's `bind` returned is told.
//!
//! Closing an inotify instance makes the kernel wait for a grace period of its notification
//! marks (measured here: 8-16 ms, most of a primary's teardown). A watch that ends is removed
//! instead, which the kernel finishes in the background, and its instance kept for the next
//! watch of the process: at most as many instances stay open as watches ever lived at once.

use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Mutex;

use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
use rustix::io::Errno;

use crate::dir_handle::DirHandle;
use crate::error::{SysError, SysResult};

/// Room for a burst of events (each is 16 bytes and its name); a read that does not drain
/// them all is followed by another.
const EVENT_BUFFER: usize = 4096;

/// Inotify instances whose watch ended, for the next watch (see the module notes), each with
/// the process that kept it: a child forked without `exec` shares its parent's instances (one
/// queue read by both) and must not reuse them.
static SPARE_INSTANCES: Mutex<Vec<(u32, OwnedFd)>> = Mutex::new(Vec::new());

/// A watch on a directory's entries.
#[derive(Debug)]
pub struct DirWatch {
    /// `None` only while dropping.
    fd: Option<OwnedFd>,
    wd: i32,
}

impl DirWatch {
    /// Watches `dir` for entries created, removed or renamed in or out. Fails when the user's
    /// inotify instances or watches are used up (`EMFILE`, `ENOSPC`): a caller then lists the
    /// directory every time instead.
    pub fn new(dir: &DirHandle) -> SysResult<DirWatch> {
        let fd = match take_spare_instance() {
            Some(fd) => {
                // What the last watch left queued (its removal, changes before it) is not
                // this one's: drained before this watch exists, so none of its own is lost.
                drain(&fd);
                fd
            }
            None => inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
                .map_err(|e| SysError::with_path("inotify_init", dir.path(), e))?,
        };
        let via_fd = format!("/proc/self/fd/{}", dir.fd().as_raw_fd());
        let events = WatchFlags::CREATE
            | WatchFlags::DELETE
            | WatchFlags::MOVED_FROM
            | WatchFlags::MOVED_TO
            | WatchFlags::ONLYDIR;
        match inotify::add_watch(&fd, via_fd.as_str(), events) {
            Ok(wd) => Ok(DirWatch { fd: Some(fd), wd }),
            Err(e) => {
                keep_spare_instance(fd);
                Err(SysError::with_path("inotify_add_watch", dir.path(), e))
            }
        }
    }

    /// Whether anything happened to the directory's entries since the last call (or since the
    /// watch was made, for the first): every waiting event is taken. An error reading counts
    /// as a change, so a caller re-lists rather than trust a listing it cannot vouch for (an
    /// overflow of the kernel's queue is itself an event, hence a change).
    pub fn changed(&self) -> bool {
        match &self.fd {
            Some(fd) => drain(fd),
            None => true,
        }
    }
}

impl Drop for DirWatch {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            // Fails when the kernel already removed the watch (the directory went): the
            // instance is kept all the same.
            let _ = inotify::remove_watch(&fd, self.wd);
            keep_spare_instance(fd);
        }
    }
}

fn spare_instances() -> std::sync::MutexGuard<'static, Vec<(u32, OwnedFd)>> {
    SPARE_INSTANCES.lock().unwrap_or_else(|p| p.into_inner())
}

fn keep_spare_instance(fd: OwnedFd) {
    spare_instances().push((std::process::id(), fd));
}

/// A spare instance this process kept; those a parent kept before forking are closed here
/// (the parent keeps its own descriptors to them).
fn take_spare_instance() -> Option<OwnedFd> {
    let me = std::process::id();
    let mut spare = spare_instances();
    spare.retain(|(owner, _)| *owner == me);
    spare.pop().map(|(_, fd)| fd)
}

/// Takes every event waiting on `fd`: whether there was one (an error reading counts as
/// one).
fn drain(fd: &OwnedFd) -> bool {
    let mut buf = [MaybeUninit::<u8>::uninit(); EVENT_BUFFER];
    let mut changed = false;
    loop {
        match rustix::io::read(fd, &mut buf) {
            Ok(([], _)) => return true,
            Ok(_) => changed = true,
            Err(Errno::AGAIN) => return changed,
            Err(Errno::INTR) => continue,
            Err(_) => return true,
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

    /// A watch made on an instance another watch left (with its events still queued) tells
    /// of its own directory's changes only, and the old directory's no longer.
    #[test]
    fn a_reused_instance_tells_only_of_its_new_directory() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for t in [&a, &b] {
            std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let dir_a = DirHandle::open_anchor(a.path()).unwrap();
        let dir_b = DirHandle::open_anchor(b.path()).unwrap();
        let first = DirWatch::new(&dir_a).unwrap();
        std::fs::write(a.path().join("left-queued"), b"x").unwrap();
        let first_fd = first.fd.as_ref().unwrap().as_raw_fd();
        drop(first);
        let second = DirWatch::new(&dir_b).unwrap();
        // Another test's watch may have taken the spare instance first; either way the
        // second watch starts with nothing queued.
        let reused = second.fd.as_ref().unwrap().as_raw_fd() == first_fd;
        assert!(!second.changed(), "reused: {reused}");
        std::fs::write(a.path().join("after"), b"x").unwrap();
        assert!(
            !second.changed(),
            "the first directory is no longer watched"
        );
        std::fs::write(b.path().join("new"), b"x").unwrap();
        assert!(second.changed());
        assert!(!second.changed());
    }
}
