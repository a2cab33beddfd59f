//! A file whose pages back dpmem memory: a file on a hugetlbfs mount, a hugetlb memfd, or the
//! shared configuration file on tmpfs.
//!
//! Allocation goes through `fallocate` rather than first touch: the kernel then reports a
//! shortage as `ENOSPC` instead of killing the process with `SIGBUS` at the faulting access,
//! and the pages are placed by the calling thread's memory policy (see [`crate::numa`]).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{FallocateFlags, FlockOperation, MemfdFlags, Mode, OFlags, CWD};
use rustix::io::Errno;

use crate::dir_handle::{self, DirError, DirHandle};
use crate::error::{SysError, SysResult};
use crate::mapping::huge_size_bits;

/// An open hugepage-backed file. Closing it drops this process's reference; the pages go back to
/// the kernel once no file name, descriptor or mapping holds them.
#[derive(Debug)]
pub struct BackingFile {
    fd: OwnedFd,
    /// `None` for a memfd: it has no name in any directory.
    path: Option<PathBuf>,
}

impl BackingFile {
    /// Opens `path` on a hugetlbfs mount, creating it (mode 0600) when missing.
    ///
    /// The name may lie in a directory other users can write to, so it is created with
    /// `O_EXCL`, and an existing entry is opened without following a symbolic link and used
    /// only when it is a regular file of this user: a planted link cannot make dpmem size or
    /// map a file of its choosing, and another user's file cannot come to share this process's
    /// memory. A refusal is `ELOOP` (a link) or `EPERM`, with the reason in the error's target.
    pub fn open_or_create(path: &Path) -> SysResult<Self> {
        Self::open_or_create_reporting(path).map(|(file, _created)| file)
    }

    /// [`open_or_create`](Self::open_or_create), and the `bool` says whether it was created
    /// (a fresh file is empty: no need to ask its size).
    pub fn open_or_create_reporting(path: &Path) -> SysResult<(Self, bool)> {
        let (fd, created) = dir_handle::open_or_create_own_file(CWD, path, path)?;
        Ok((
            Self {
                fd,
                path: Some(path.to_path_buf()),
            },
            created,
        ))
    }

    /// Opens the file `name` in `dir`, creating it (mode 0600) when missing, with the care of
    /// [`open_or_create`](Self::open_or_create); the `bool` says whether it was created.
    pub fn open_or_create_in(dir: &DirHandle, name: &str) -> Result<(Self, bool), DirError> {
        let (fd, created) = dir.open_or_create_file(name)?;
        Ok((
            Self {
                fd,
                path: Some(dir.path().join(name)),
            },
            created,
        ))
    }

    /// Opens the existing file `name` in `dir` without following a symbolic link, and only when
    /// it is a regular file of this user; `None` when there is no such entry.
    pub fn open_existing_in(dir: &DirHandle, name: &str) -> Result<Option<Self>, DirError> {
        Ok(dir.open_file(name)?.map(|fd| Self {
            fd,
            path: Some(dir.path().join(name)),
        }))
    }

    /// Opens an existing file (a secondary attaching to the primary's pages), and only when it
    /// is a regular file of this user. A symbolic link in `path` is followed (a memfd shared
    /// through `/proc/<pid>/fd/<n>` is reached that way); the file it leads to is checked.
    pub fn open_existing(path: &Path) -> SysResult<Self> {
        let fd = rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| SysError::with_path("open", path, e))?;
        dir_handle::check_own_regular_file(&fd, path)?;
        Ok(Self {
            fd,
            path: Some(path.to_path_buf()),
        })
    }

    /// Creates an anonymous hugetlb memfd of `page_size` pages (`--in-memory`). Fails with
    /// `EINVAL` on kernels without hugetlb memfd support.
    pub fn memfd(name: &str, page_size: u64) -> SysResult<Self> {
        let flags = MemfdFlags::CLOEXEC
            | MemfdFlags::HUGETLB
            | MemfdFlags::from_bits_retain(huge_size_bits(page_size));
        let fd = rustix::fs::memfd_create(name, flags).map_err(|e| {
            SysError::new("memfd_create", format!("{name} ({page_size} B pages)"), e)
        })?;
        Ok(Self { fd, path: None })
    }

    /// Creates an ordinary (small-page) memfd, used for `--no-huge --in-memory`-style backing.
    pub fn memfd_small_pages(name: &str) -> SysResult<Self> {
        let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC)
            .map_err(|e| SysError::new("memfd_create", name.to_string(), e))?;
        Ok(Self { fd, path: None })
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn target(&self) -> String {
        self.path
            .as_ref()
            .map_or_else(|| "memfd".to_string(), |p| p.display().to_string())
    }

    /// Sets the file size (hugetlbfs needs page-multiple sizes).
    pub fn set_len(&self, len: u64) -> SysResult<()> {
        rustix::fs::ftruncate(&self.fd, len)
            .map_err(|e| SysError::new("ftruncate", self.target(), e))
    }

    /// Allocates (and the kernel zeroes) the pages backing `[offset, offset+len)`.
    /// `ENOSPC` means the pool (or the node the thread's policy binds to) has no free pages.
    pub fn allocate(&self, offset: u64, len: u64) -> SysResult<()> {
        rustix::fs::fallocate(&self.fd, FallocateFlags::empty(), offset, len).map_err(|e| {
            SysError::new(
                "fallocate",
                format!("{} {offset:#x}+{len:#x}", self.target()),
                e,
            )
        })
    }

    /// Gives the pages backing `[offset, offset+len)` back to the kernel, keeping the file size.
    pub fn punch_hole(&self, offset: u64, len: u64) -> SysResult<()> {
        rustix::fs::fallocate(
            &self.fd,
            FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
            offset,
            len,
        )
        .map_err(|e| {
            SysError::new(
                "punch hole",
                format!("{} {offset:#x}+{len:#x}", self.target()),
                e,
            )
        })
    }

    /// Takes a shared lock: "this page is in use by a live process". A stale file from a crashed
    /// run has no lock holder, which is how clean-up tells the two apart.
    pub fn lock_shared(&self) -> SysResult<()> {
        rustix::fs::flock(&self.fd, FlockOperation::NonBlockingLockShared)
            .map_err(|e| SysError::new("flock shared", self.target(), e))
    }

    /// Tries an exclusive lock; `Ok(false)` when another process holds any lock on the file.
    pub fn try_lock_exclusive(&self) -> SysResult<bool> {
        match rustix::fs::flock(&self.fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(true),
            Err(Errno::WOULDBLOCK) => Ok(false),
            Err(e) => Err(SysError::new("flock exclusive", self.target(), e)),
        }
    }

    /// Gives the file a new name in place of its old one. The descriptor, and the lock taken
    /// through it, stay as they are. A memfd has no name to change: `EINVAL`.
    pub fn rename(&mut self, to: &Path) -> SysResult<()> {
        let Some(from) = &self.path else {
            return Err(SysError::with_path("rename", to, Errno::INVAL));
        };
        rustix::fs::rename(from, to).map_err(|e| SysError::with_path("rename", to, e))?;
        self.path = Some(to.to_path_buf());
        Ok(())
    }

    /// Removes the file's name; the pages stay while this descriptor or a mapping holds them.
    pub fn unlink(&mut self) -> SysResult<()> {
        if let Some(path) = self.path.take() {
            rustix::fs::unlink(&path).map_err(|e| SysError::with_path("unlink", &path, e))?;
        }
        Ok(())
    }
}

impl BackingFile {
    /// Reads exactly `buf.len()` bytes at `offset`.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> SysResult<()> {
        let mut done = 0;
        while done < buf.len() {
            let n = rustix::io::pread(&self.fd, &mut buf[done..], offset + done as u64)
                .map_err(|e| SysError::new("pread", self.target(), e))?;
            if n == 0 {
                return Err(SysError::new(
                    "pread (short file)",
                    self.target(),
                    Errno::INVAL,
                ));
            }
            done += n;
        }
        Ok(())
    }

    /// The file's current size.
    pub fn size(&self) -> SysResult<u64> {
        file_len(&self.fd)
    }

    /// Releases a lock taken with [`lock_shared`](Self::lock_shared) or
    /// [`try_lock_exclusive`](Self::try_lock_exclusive).
    pub fn unlock(&self) -> SysResult<()> {
        rustix::fs::flock(&self.fd, FlockOperation::Unlock)
            .map_err(|e| SysError::new("flock unlock", self.target(), e))
    }

    /// A second descriptor for the same file, for callers that need their own (`fd` APIs).
    pub fn duplicate_fd(&self) -> SysResult<OwnedFd> {
        rustix::io::fcntl_dupfd_cloexec(&self.fd, 0)
            .map_err(|e| SysError::new("dup", self.target(), e))
    }

    /// Tries a shared lock; `Ok(false)` when another process holds an exclusive one.
    pub fn try_lock_shared(&self) -> SysResult<bool> {
        match rustix::fs::flock(&self.fd, FlockOperation::NonBlockingLockShared) {
            Ok(()) => Ok(true),
            Err(Errno::WOULDBLOCK) => Ok(false),
            Err(e) => Err(SysError::new("flock shared", self.target(), e)),
        }
    }
}

/// Size of the file at `path` (0 when it has no pages yet).
pub fn file_len(fd: impl AsFd) -> SysResult<u64> {
    rustix::fs::fstat(fd)
        .map(|st| st.st_size as u64)
        .map_err(|e| SysError::new("fstat", String::new(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_page_memfd_allocates_and_punches() {
        let file = BackingFile::memfd_small_pages("dpmem-test").unwrap();
        file.set_len(1 << 16).unwrap();
        file.allocate(0, 1 << 16).unwrap();
        file.punch_hole(4096, 4096).unwrap();
        assert_eq!(file_len(file.fd()).unwrap(), 1 << 16);
        assert!(file.path().is_none());
    }

    #[test]
    fn exclusive_lock_fails_while_shared_lock_held_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("page");
        let holder = BackingFile::open_or_create(&path).unwrap();
        holder.lock_shared().unwrap();
        let other = BackingFile::open_existing(&path).unwrap();
        assert!(!other.try_lock_exclusive().unwrap());
        drop(holder);
        assert!(other.try_lock_exclusive().unwrap());
    }

    #[test]
    fn a_renamed_file_keeps_its_descriptor_and_lock() {
        let dir = tempfile::tempdir().unwrap();
        let (tmp, last) = (dir.path().join("tmp"), dir.path().join("final"));
        let mut file = BackingFile::open_or_create(&tmp).unwrap();
        file.lock_shared().unwrap();
        file.rename(&last).unwrap();
        assert_eq!(file.path(), Some(last.as_path()));
        assert!(!tmp.exists());
        let other = BackingFile::open_existing(&last).unwrap();
        assert!(
            !other.try_lock_exclusive().unwrap(),
            "the lock moved with the name"
        );
        let mut memfd = BackingFile::memfd_small_pages("dpmem-test").unwrap();
        assert_eq!(memfd.rename(&tmp).unwrap_err().errno, Errno::INVAL);
        assert!(!tmp.exists());
    }

    #[test]
    fn a_planted_symlink_is_refused_and_its_target_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let page = dir.path().join("dpmemmap_0_0");
        std::os::unix::fs::symlink(&victim, &page).unwrap();
        let err = BackingFile::open_or_create(&page).unwrap_err();
        assert_eq!(err.errno, Errno::LOOP, "{err}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn another_users_file_is_refused() {
        if !crate::process::is_root() {
            eprintln!("skipped another_users_file_is_refused: needs root to give a file away");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join("dpmemmap_0_0");
        std::fs::write(&page, b"").unwrap();
        std::os::unix::fs::chown(&page, Some(65534), Some(65534)).unwrap();
        for err in [
            BackingFile::open_or_create(&page).unwrap_err(),
            BackingFile::open_existing(&page).unwrap_err(),
        ] {
            assert_eq!(err.errno, Errno::PERM, "{err}");
            assert!(err.to_string().contains("uid 65534"), "{err}");
        }
    }
}
