//! Open directories that no other user can steer, and the files dpmem keeps in them.
//!
//! dpmem's runtime directory holds the file through which every process of a file prefix maps
//! the primary's memory, so whoever can choose where it lies, or what is already in it, can
//! read and write that memory. The places it is made in may be shared (`/tmp` when
//! `XDG_RUNTIME_DIR` is unset), where another user can plant a symbolic link or a directory of
//! their own under the name dpmem is about to use. So here:
//!
//! - a path is resolved once, for the anchor the system provides ([`DirHandle::open_anchor`]:
//!   `/var/run`, `$XDG_RUNTIME_DIR`, `/tmp`), which must be owned by root or by this user and,
//!   when others may write to it, sticky (so they cannot rename or remove what we make there);
//! - every component below it is opened relative to its parent's descriptor with `O_NOFOLLOW`,
//!   so a symbolic link is refused instead of followed;
//! - a directory is used only when it is a real directory owned by this user with mode 0700,
//!   and a mode is only ever set (with `fchmod` on the descriptor) on a directory just created;
//! - a file is created with `O_EXCL`, or else opened with `O_NOFOLLOW` and used only when it is
//!   a regular file owned by this user.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::error::SysError;

/// The only mode a private directory may have: its owner alone may list, enter and change it.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// The mode of files created in a private directory.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Why a directory or file was not used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DirError {
    /// It exists but is not safe to use (a symbolic link, another user's, a loose mode).
    #[error("{}: {reason}", path.display())]
    Refused {
        /// The directory or file refused.
        path: PathBuf,
        /// What is wrong with it and what to do, for a person.
        reason: String,
    },
    /// The kernel refused an operation.
    #[error(transparent)]
    Sys(#[from] SysError),
}

impl DirError {
    /// The directory or file the error is about.
    pub fn path(&self) -> PathBuf {
        match self {
            DirError::Refused { path, .. } => path.clone(),
            DirError::Sys(e) => PathBuf::from(&e.target),
        }
    }

    fn refused(path: &Path, reason: impl Into<String>) -> Self {
        DirError::Refused {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// An open directory, and the path it was reached by (for messages and for callers that must
/// name it to other processes).
#[derive(Debug)]
pub struct DirHandle {
    fd: OwnedFd,
    path: PathBuf,
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn mode_bits(stat: &Stat) -> u32 {
    // `st_mode`'s width differs between targets; the permission bits fit any of them.
    #[allow(clippy::unnecessary_cast)]
    let mode = stat.st_mode as u32;
    mode & 0o7777
}

fn file_type(stat: &Stat) -> FileType {
    #[allow(clippy::unnecessary_cast)]
    FileType::from_raw_mode(stat.st_mode as _)
}

/// `name` must be one plain path component: `a/b`, `.` or `..` would reach outside the parent.
fn check_component(parent: &Path, name: &str) -> Result<(), DirError> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(DirError::refused(
            &parent.join(name),
            format!("{name:?} is not a single file name"),
        ));
    }
    Ok(())
}

impl DirHandle {
    /// Opens a directory the system provides, by its path (symbolic links in it followed:
    /// `/var/run` is one on most systems). It is accepted only when owned by root or by this
    /// user, and, when group or others may write to it, sticky.
    pub fn open_anchor(path: &Path) -> Result<DirHandle, DirError> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| SysError::with_path("open directory", path, e))?;
        let stat =
            rustix::fs::fstat(&fd).map_err(|e| SysError::with_path("stat directory", path, e))?;
        if stat.st_uid != 0 && stat.st_uid != euid() {
            return Err(DirError::refused(
                path,
                format!(
                    "owned by uid {}, neither root nor this user (uid {})",
                    stat.st_uid,
                    euid()
                ),
            ));
        }
        let mode = mode_bits(&stat);
        if mode & 0o022 != 0 && mode & 0o1000 == 0 {
            return Err(DirError::refused(
                path,
                format!(
                    "mode {mode:04o}: others may write to it without the sticky bit, so they could replace what dpmem makes there"
                ),
            ));
        }
        Ok(DirHandle {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The path this directory was reached by.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory's descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The private directory `name` in this one: created with mode 0700 when missing (the
    /// `bool` says so), else used only when it is a real directory (not a symbolic link) owned
    /// by this user with mode 0700. An existing directory's mode is never changed.
    pub fn create_private_subdir(&self, name: &str) -> Result<(DirHandle, bool), DirError> {
        check_component(&self.path, name)?;
        let path = self.path.join(name);
        let created = match rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o700)) {
            Ok(()) => true,
            Err(Errno::EXIST) => false,
            Err(e) => return Err(SysError::with_path("create directory", &path, e).into()),
        };
        let dir = self.open_subdir_at(name, &path)?;
        if created {
            // mkdirat's mode passes through the umask, which could leave the owner locked out;
            // the directory is ours and brand new, so set exactly 0700 on its descriptor.
            rustix::fs::fchmod(&dir.fd, Mode::from_raw_mode(PRIVATE_DIR_MODE))
                .map_err(|e| SysError::with_path("set mode of", &path, e))?;
        }
        dir.check_private()?;
        Ok((dir, created))
    }

    /// The existing private directory `name` in this one, checked as
    /// [`create_private_subdir`](Self::create_private_subdir) checks it; `None` when there is
    /// no entry of that name.
    pub fn open_private_subdir(&self, name: &str) -> Result<Option<DirHandle>, DirError> {
        check_component(&self.path, name)?;
        let path = self.path.join(name);
        match self.open_subdir_at(name, &path) {
            Ok(dir) => {
                dir.check_private()?;
                Ok(Some(dir))
            }
            Err(DirError::Sys(e)) if e.errno == Errno::NOENT => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn open_subdir_at(&self, name: &str, path: &Path) -> Result<DirHandle, DirError> {
        match rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => Ok(DirHandle {
                fd,
                path: path.to_path_buf(),
            }),
            Err(e @ (Errno::LOOP | Errno::NOTDIR)) => Err(self.refuse_entry(name, path, e)),
            Err(e) => Err(SysError::with_path("open directory", path, e).into()),
        }
    }

    /// The refusal for an entry that `O_NOFOLLOW`/`O_DIRECTORY` would not open, saying what it
    /// is instead.
    fn refuse_entry(&self, name: &str, path: &Path, errno: Errno) -> DirError {
        let what = match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) if file_type(&stat) == FileType::Symlink => {
                "a symbolic link, which dpmem does not follow here".to_owned()
            }
            Ok(stat) if file_type(&stat) == FileType::Directory => {
                "not a directory dpmem can open".to_owned()
            }
            Ok(stat) => format!(
                "a {:?}, not what dpmem expected (owner uid {})",
                file_type(&stat),
                stat.st_uid
            ),
            Err(_) => format!("cannot be opened ({errno})"),
        };
        DirError::refused(path, format!("{what}; remove it or choose another place"))
    }

    fn check_private(&self) -> Result<(), DirError> {
        let stat = rustix::fs::fstat(&self.fd)
            .map_err(|e| SysError::with_path("stat directory", &self.path, e))?;
        if stat.st_uid != euid() {
            return Err(DirError::refused(
                &self.path,
                format!(
                    "owned by uid {}, not by this user (uid {}); dpmem uses only a directory of its own here",
                    stat.st_uid,
                    euid()
                ),
            ));
        }
        let mode = mode_bits(&stat);
        if mode != PRIVATE_DIR_MODE {
            return Err(DirError::refused(
                &self.path,
                format!(
                    "mode {mode:04o}, not {PRIVATE_DIR_MODE:04o}; dpmem never loosens or tightens a directory it did not create, so fix or remove it"
                ),
            ));
        }
        Ok(())
    }

    /// Opens the file `name` in this directory read-write, creating it (mode 0600) when missing;
    /// the `bool` says whether it was created. See [`open_or_create_own_file`].
    pub fn open_or_create_file(&self, name: &str) -> Result<(OwnedFd, bool), DirError> {
        check_component(&self.path, name)?;
        open_or_create_own_file(self.fd(), name.as_ref(), &self.path.join(name))
            .map_err(DirError::from)
    }

    /// Opens the existing file `name` in this directory read-write, refusing a symbolic link or
    /// a file that is not a regular file of this user; `None` when there is no such entry.
    pub fn open_file(&self, name: &str) -> Result<Option<OwnedFd>, DirError> {
        check_component(&self.path, name)?;
        match open_own_file(self.fd(), name.as_ref(), &self.path.join(name)) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) if e.errno == Errno::NOENT => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Locks the directory against every other holder of such a lock on it, in this process
    /// or another (`flock`), until the guard drops: for a few steps that must not interleave,
    /// such as replacing a stale socket while another process may be binding the same name.
    pub fn lock_exclusive(&self) -> Result<DirLock<'_>, DirError> {
        loop {
            match rustix::fs::flock(&self.fd, rustix::fs::FlockOperation::LockExclusive) {
                Ok(()) => return Ok(DirLock { dir: self }),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(SysError::with_path("lock directory", &self.path, e).into()),
            }
        }
    }

    /// Removes the file `name` from this directory (never what a symbolic link points at).
    pub fn remove_file(&self, name: &str) -> Result<(), DirError> {
        check_component(&self.path, name)?;
        rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())
            .map_err(|e| SysError::with_path("remove", &self.path.join(name), e).into())
    }

    /// Removes the directory `name` from this one if it is empty (`ENOTEMPTY` otherwise).
    pub fn remove_empty_subdir(&self, name: &str) -> Result<(), DirError> {
        check_component(&self.path, name)?;
        rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)
            .map_err(|e| SysError::with_path("remove directory", &self.path.join(name), e).into())
    }
}

/// A held [`DirHandle::lock_exclusive`]; unlocked when dropped.
#[derive(Debug)]
pub struct DirLock<'a> {
    dir: &'a DirHandle,
}

impl Drop for DirLock<'_> {
    fn drop(&mut self) {
        let _ = rustix::fs::flock(&self.dir.fd, rustix::fs::FlockOperation::Unlock);
    }
}

/// Opens `path` (relative to `dir`) read-write: created with `O_EXCL` (mode 0600) when missing,
/// else opened without following a symbolic link and used only when it is a regular file owned
/// by this user that nobody else may open (mode 0600 or less). The `bool` says whether it was
/// created.
///
/// A refusal is a [`SysError`] whose target names the path and why: `ELOOP` for a symbolic
/// link, `EPERM` for another user's file or one that is not a regular file.
pub fn open_or_create_own_file(
    dir: BorrowedFd<'_>,
    path: &Path,
    shown: &Path,
) -> Result<(OwnedFd, bool), SysError> {
    let base = OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rustix::fs::openat(
        dir,
        path,
        base | OFlags::CREATE | OFlags::EXCL,
        Mode::from_raw_mode(PRIVATE_FILE_MODE),
    ) {
        Ok(fd) => Ok((fd, true)),
        // Under O_EXCL a symbolic link counts as existing, dangling or not, so it lands here
        // and is refused by the O_NOFOLLOW open below.
        Err(Errno::EXIST) => open_own_file(dir, path, shown).map(|fd| (fd, false)),
        Err(e) => Err(refusal_or_error("create", shown, e)),
    }
}

/// Opens the existing `path` (relative to `dir`) read-write without following a symbolic link,
/// and only when it is a regular file owned by this user.
pub fn open_own_file(dir: BorrowedFd<'_>, path: &Path, shown: &Path) -> Result<OwnedFd, SysError> {
    let fd = rustix::fs::openat(
        dir,
        path,
        OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| refusal_or_error("open", shown, e))?;
    check_own_regular_file(&fd, shown)?;
    check_private_mode(&fd, shown)?;
    Ok(fd)
}

/// Refuses a file of ours that group or others may open: dpmem creates its files 0600, and one
/// whose mode was opened up may already be open in another user's process, which would then
/// share the memory this process puts in it.
fn check_private_mode(fd: impl AsFd, shown: &Path) -> Result<(), SysError> {
    let stat = rustix::fs::fstat(fd).map_err(|e| SysError::with_path("stat", shown, e))?;
    let mode = mode_bits(&stat);
    if mode & 0o077 != 0 {
        return Err(SysError::new(
            "open",
            format!(
                "{} (mode {mode:04o}: others may open it and so reach this process's memory; \
                 refused: remove it, or chmod 600 it to use it)",
                shown.display()
            ),
            Errno::PERM,
        ));
    }
    Ok(())
}

/// Refuses a descriptor that is not a regular file owned by this user.
pub fn check_own_regular_file(fd: impl AsFd, shown: &Path) -> Result<(), SysError> {
    let stat = rustix::fs::fstat(fd).map_err(|e| SysError::with_path("stat", shown, e))?;
    if file_type(&stat) != FileType::RegularFile {
        return Err(SysError::new(
            "open",
            format!(
                "{} (a {:?}, not a regular file; refused)",
                shown.display(),
                file_type(&stat)
            ),
            Errno::PERM,
        ));
    }
    if stat.st_uid != euid() {
        return Err(SysError::new(
            "open",
            format!(
                "{} (owned by uid {}, not by this user, uid {}; refused: another user's file would share this process's memory)",
                shown.display(),
                stat.st_uid,
                euid()
            ),
            Errno::PERM,
        ));
    }
    Ok(())
}

fn refusal_or_error(op: &'static str, shown: &Path, errno: Errno) -> SysError {
    if errno == Errno::LOOP {
        SysError::new(
            op,
            format!(
                "{} (a symbolic link, which dpmem does not follow; refused)",
                shown.display()
            ),
            errno,
        )
    } else {
        SysError::with_path(op, shown, errno)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::*;

    fn anchor() -> (tempfile::TempDir, DirHandle) {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let dir = DirHandle::open_anchor(tmp.path()).unwrap();
        (tmp, dir)
    }

    #[test]
    fn a_file_of_ours_that_others_may_open_is_refused_until_it_is_private_again() {
        let (tmp, dir) = anchor();
        let path = tmp.path().join("page");
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = dir.open_or_create_file("page").unwrap_err();
        assert!(err.to_string().contains("mode 0644"), "{err}");
        assert_eq!(mode_of(&path), 0o644, "the refusal changed nothing");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (_fd, created) = dir.open_or_create_file("page").unwrap();
        assert!(!created);
    }

    fn mode_of(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    #[test]
    fn creates_a_private_directory_once_and_reuses_it() {
        let (tmp, dir) = anchor();
        let (_, created) = dir.create_private_subdir("p").unwrap();
        assert!(created);
        assert_eq!(mode_of(&tmp.path().join("p")), 0o700);
        let (_, created) = dir.create_private_subdir("p").unwrap();
        assert!(!created);
    }

    #[test]
    fn refuses_a_symlink_and_leaves_its_target_alone() {
        let (tmp, dir) = anchor();
        let target = tmp.path().join("target");
        std::fs::create_dir(&target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
        symlink(&target, tmp.path().join("p")).unwrap();
        let err = dir.create_private_subdir("p").unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(mode_of(&target), 0o755, "the link's target keeps its mode");
        assert!(dir.open_private_subdir("p").is_err());
    }

    #[test]
    fn refuses_a_directory_with_another_mode_without_changing_it() {
        let (tmp, dir) = anchor();
        let loose = tmp.path().join("p");
        std::fs::create_dir(&loose).unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = dir.create_private_subdir("p").unwrap_err();
        assert!(err.to_string().contains("mode 0755"), "{err}");
        assert_eq!(mode_of(&loose), 0o755);
    }

    #[test]
    fn refuses_names_that_leave_the_directory() {
        let (_tmp, dir) = anchor();
        for bad in ["", ".", "..", "a/b"] {
            assert!(
                matches!(
                    dir.create_private_subdir(bad),
                    Err(DirError::Refused { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_world_writable_anchor_needs_the_sticky_bit() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = DirHandle::open_anchor(tmp.path()).unwrap_err();
        assert!(err.to_string().contains("sticky"), "{err}");
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        DirHandle::open_anchor(tmp.path()).unwrap();
    }

    #[test]
    fn files_are_created_exclusively_and_symlinks_refused() {
        let (tmp, dir) = anchor();
        let (_, created) = dir.open_or_create_file("config").unwrap();
        assert!(created);
        assert_eq!(mode_of(&tmp.path().join("config")), 0o600);
        let (_, created) = dir.open_or_create_file("config").unwrap();
        assert!(!created);

        let victim = tmp.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        symlink(&victim, tmp.path().join("link")).unwrap();
        let err = dir.open_or_create_file("link").unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(dir.open_file("link").is_err());
        // A dangling link is refused too, and nothing is created where it points.
        symlink(tmp.path().join("nowhere"), tmp.path().join("dangling")).unwrap();
        assert!(dir.open_or_create_file("dangling").is_err());
        assert!(!tmp.path().join("nowhere").exists());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(dir.open_file("missing").unwrap().is_none());
    }
}
