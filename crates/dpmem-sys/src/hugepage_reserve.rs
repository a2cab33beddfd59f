//! Reserving and releasing hugepages, and mounting hugetlbfs: what `dpmem hugepages
//! reserve` and `dpmem hugepages clear` do.
//!
//! The pool size is set by writing `nr_hugepages`, globally (the kernel spreads the pages
//! over the nodes allowed by the writer's memory policy) or on one node. Both need root;
//! a non-root caller gets the kernel's `EACCES`/`EPERM` back unchanged so the CLI can say
//! "run as root" instead of guessing.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::mount::{MountFlags, UnmountFlags};

use crate::dir_handle::{DirError, DirHandle};
use crate::error::{Errno, SysError, SysResult};
use crate::hugepage_info::{self, size_dir_name};
use crate::root::SysRoot;

/// The `nr_hugepages` file controlling `page_size` pages, globally or on one node.
fn nr_hugepages_path(page_size: u64, node: Option<u32>) -> String {
    let dir = size_dir_name(page_size);
    match node {
        None => format!("/sys/kernel/mm/hugepages/{dir}/nr_hugepages"),
        Some(node) => format!("/sys/devices/system/node/node{node}/hugepages/{dir}/nr_hugepages"),
    }
}

fn check_page_size(page_size: u64) -> SysResult<()> {
    // sysfs names sizes in KiB, so anything else cannot name a real pool.
    if page_size == 0 || page_size & 1023 != 0 {
        return Err(SysError::new(
            "check hugepage size",
            format!("{page_size} bytes"),
            Errno::INVAL,
        ));
    }
    Ok(())
}

/// Sets the pool of `page_size` pages to `count`, on `node` or (with `None`) globally.
///
/// The kernel may grant fewer pages than asked when memory is fragmented, without an error;
/// read [`hugepages_count`] afterwards to learn how many it actually has. A page size the
/// kernel does not support gives `ENOENT`; a non-root caller `EACCES` or `EPERM`.
pub fn set_hugepages(
    root: &SysRoot,
    page_size: u64,
    node: Option<u32>,
    count: u64,
) -> SysResult<()> {
    check_page_size(page_size)?;
    root.write_string(&nr_hugepages_path(page_size, node), &count.to_string())
}

/// The current pool size of `page_size` pages, on `node` or (with `None`) globally.
pub fn hugepages_count(root: &SysRoot, page_size: u64, node: Option<u32>) -> SysResult<u64> {
    check_page_size(page_size)?;
    root.read_u64(&nr_hugepages_path(page_size, node))
}

/// Empties every hugepage pool: every size, on every node, then globally.
///
/// Pages that a running process has mapped stay allocated (the kernel turns them into
/// surplus pages and frees them when unmapped), so this is safe to run at any time.
pub fn clear_hugepages(root: &SysRoot) -> SysResult<()> {
    let nodes = hugepage_info::numa_nodes(root)?;
    for page_size in hugepage_info::page_sizes(root)? {
        for &node in &nodes {
            let path = nr_hugepages_path(page_size, Some(node));
            if root.exists(&path) {
                root.write_string(&path, "0")?;
            }
        }
        set_hugepages(root, page_size, None, 0)?;
    }
    Ok(())
}

/// Mounts a hugetlbfs serving `page_size` pages at `mount_point`, creating that directory
/// (mode 0755) when missing. This is the real `mount(2)`, not a path under a [`SysRoot`].
///
/// Nobody else can steer where the mount lands: the parent directory must exist and be owned
/// by root or by this user (and sticky when others may write to it, as `/tmp`); the mount point
/// is created and opened relative to it without following a symbolic link (a link there is
/// refused, `ELOOP`; anything else that is not a directory, `ENOTDIR`), and the mount goes onto that opened directory (through its
/// `/proc/self/fd` entry), so a directory swapped for a link after the checks is not followed.
///
/// Needs `CAP_SYS_ADMIN` (`EPERM` otherwise); a page size the kernel does not support gives
/// `EINVAL`.
pub fn mount_hugetlbfs(mount_point: &Path, page_size: u64) -> SysResult<()> {
    check_page_size(page_size)?;
    let (Some(parent), Some(name)) = (mount_point.parent(), mount_point.file_name()) else {
        return Err(SysError::with_path(
            "mount hugetlbfs on",
            mount_point,
            Errno::INVAL,
        ));
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let parent_dir = DirHandle::open_anchor(parent).map_err(|e| match e {
        DirError::Sys(e) => e,
        DirError::Refused { reason, .. } => SysError::new(
            "mount hugetlbfs on",
            format!("{} ({}: {reason})", mount_point.display(), parent.display()),
            Errno::PERM,
        ),
    })?;
    match rustix::fs::mkdirat(parent_dir.fd(), name, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(SysError::with_path("create mount point", mount_point, e)),
    }
    let target = rustix::fs::openat(
        parent_dir.fd(),
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        let link = rustix::fs::statat(parent_dir.fd(), name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| {
                rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink
            });
        if link {
            SysError::new(
                "mount hugetlbfs on",
                format!(
                    "{} (a symbolic link: refused, name the directory itself)",
                    mount_point.display()
                ),
                Errno::LOOP,
            )
        } else {
            SysError::with_path("open mount point", mount_point, e)
        }
    })?;
    // Digits and a unit letter: never an interior NUL, so this cannot fail.
    let options = CString::new(format!("pagesize={}", format_page_size(page_size)))
        .map_err(|_| SysError::with_path("mount hugetlbfs on", mount_point, Errno::INVAL))?;
    let pinned = format!("/proc/self/fd/{}", target.as_raw_fd());
    rustix::mount::mount(
        "nodev",
        pinned.as_str(),
        "hugetlbfs",
        MountFlags::empty(),
        options.as_c_str(),
    )
    .map_err(|errno| SysError::with_path("mount hugetlbfs on", mount_point, errno))
}

/// Unmounts the filesystem at `mount_point` (`umount2` with no flags, so a busy mount
/// fails with `EBUSY` rather than being detached lazily).
pub fn unmount(mount_point: &Path) -> SysResult<()> {
    rustix::mount::unmount(mount_point, UnmountFlags::empty())
        .map_err(|errno| SysError::with_path("unmount", mount_point, errno))
}

/// The largest whole binary unit the kernel's option parser accepts: `1G`, `2M`, `64K`.
fn format_page_size(page_size: u64) -> String {
    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;
    if page_size & (GIB - 1) == 0 {
        format!("{}G", page_size / GIB)
    } else if page_size & (MIB - 1) == 0 {
        format!("{}M", page_size / MIB)
    } else {
        format!("{}K", page_size / 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_option_uses_largest_unit() {
        assert_eq!(format_page_size(1 << 30), "1G");
        assert_eq!(format_page_size(2 << 20), "2M");
        assert_eq!(format_page_size(64 << 10), "64K");
        assert_eq!(format_page_size(16 << 30), "16G");
    }

    #[test]
    fn paths_name_the_right_pool() {
        assert_eq!(
            nr_hugepages_path(2 << 20, None),
            "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
        );
        assert_eq!(
            nr_hugepages_path(1 << 30, Some(1)),
            "/sys/devices/system/node/node1/hugepages/hugepages-1048576kB/nr_hugepages"
        );
    }
}
