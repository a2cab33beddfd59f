//! Virtual-address reservations and the mappings placed inside them.
//!
//! dpmem reserves each memseg list's window up front with an inaccessible, unreserved anonymous
//! mapping, then maps hugepages over parts of it with `MAP_FIXED` and gives parts back by mapping
//! the reservation over them again. Because the window stays owned by dpmem the whole time, no
//! other mapping of the process can land inside it, so `MAP_FIXED` never clobbers foreign memory.

use std::ffi::c_void;
use std::os::fd::AsFd;

use rustix::io::Errno;
use rustix::mm::{MapFlags, ProtFlags};

use crate::error::{SysError, SysResult};

/// `MAP_HUGE_SHIFT`/`MFD_HUGE_SHIFT`: the kernel encodes log2(page size) at this bit.
const HUGE_SIZE_SHIFT: u32 = 26;

/// The small-page size of this machine.
pub fn system_page_size() -> usize {
    rustix::param::page_size()
}

fn describe(addr: usize, len: usize) -> String {
    format!("{addr:#x}+{len:#x}")
}

/// The `MAP_HUGE_*` bits selecting `page_size` for an anonymous hugetlb mapping.
pub fn huge_size_bits(page_size: u64) -> u32 {
    debug_assert!(page_size.is_power_of_two());
    page_size.trailing_zeros() << HUGE_SIZE_SHIFT
}

/// Reserves `len` bytes of address space aligned to `align` (a power of two), inaccessible and
/// without committing memory. With `at`, the window must start exactly there, and an occupied
/// range is an error (`EEXIST`) rather than a silent move: secondary processes rely on it.
pub fn reserve(len: usize, align: usize, at: Option<usize>) -> SysResult<usize> {
    assert!(align.is_power_of_two() && len > 0);
    let flags = MapFlags::PRIVATE | MapFlags::NORESERVE;
    match at {
        Some(addr) => {
            if addr % align != 0 {
                return Err(SysError::new(
                    "reserve address space at",
                    describe(addr, len),
                    Errno::INVAL,
                ));
            }
            // SAFETY: FIXED_NOREPLACE never replaces an existing mapping, so no memory of this
            // process is affected; the new mapping is inaccessible.
            let got = unsafe {
                rustix::mm::mmap_anonymous(
                    addr as *mut c_void,
                    len,
                    ProtFlags::empty(),
                    flags | MapFlags::FIXED_NOREPLACE,
                )
            }
            .map_err(|e| SysError::new("reserve address space at", describe(addr, len), e))?;
            if got as usize != addr {
                // Kernels before 4.17 treat FIXED_NOREPLACE as a hint: undo and report.
                // SAFETY: `got` is the mapping created just above, of length `len`.
                let _ = unsafe { rustix::mm::munmap(got, len) };
                return Err(SysError::new(
                    "reserve address space at",
                    describe(addr, len),
                    Errno::EXIST,
                ));
            }
            Ok(addr)
        }
        None => {
            // Over-reserve by the alignment and trim both ends, so that 1 GiB pages get a
            // 1 GiB-aligned window whatever the kernel picks.
            let padded = len.checked_add(align).ok_or_else(|| {
                SysError::new(
                    "reserve address space",
                    format!("{len:#x} bytes"),
                    Errno::NOMEM,
                )
            })?;
            // SAFETY: a new inaccessible anonymous mapping at a kernel-chosen address touches no
            // existing memory.
            let raw = unsafe {
                rustix::mm::mmap_anonymous(std::ptr::null_mut(), padded, ProtFlags::empty(), flags)
            }
            .map_err(|e| SysError::new("reserve address space", format!("{padded:#x} bytes"), e))?;
            let raw = raw as usize;
            let base = (raw + align - 1) & !(align - 1);
            let head = base - raw;
            let tail = padded - head - len;
            if head > 0 {
                // SAFETY: [raw, base) is the unaligned head of the mapping created above.
                let _ = unsafe { rustix::mm::munmap(raw as *mut c_void, head) };
            }
            if tail > 0 {
                // SAFETY: [base+len, raw+padded) is the tail of the mapping created above.
                let _ = unsafe { rustix::mm::munmap((base + len) as *mut c_void, tail) };
            }
            Ok(base)
        }
    }
}

/// Returns a reservation (or any part of it) to the system.
///
/// # Safety
/// `[addr, addr+len)` must be address space the caller owns (a reservation from [`reserve`] and
/// whatever was mapped into it), with no live references into it.
pub unsafe fn release(addr: usize, len: usize) -> SysResult<()> {
    // SAFETY: the caller owns the range and nothing refers to it.
    unsafe { rustix::mm::munmap(addr as *mut c_void, len) }
        .map_err(|e| SysError::new("munmap", describe(addr, len), e))
}

/// Puts `[addr, addr+len)` back into the reserved, inaccessible state, dropping whatever was
/// mapped there (the kernel frees hugepages whose last mapping and file reference are gone).
///
/// # Safety
/// The range must lie inside a reservation the caller owns, and nothing may still use the memory.
pub unsafe fn unmap_to_reserved(addr: usize, len: usize) -> SysResult<()> {
    // SAFETY: the range is inside the caller's reservation (so MAP_FIXED replaces only dpmem's
    // own mapping) and the caller guarantees nothing uses it any more.
    unsafe {
        rustix::mm::mmap_anonymous(
            addr as *mut c_void,
            len,
            ProtFlags::empty(),
            MapFlags::PRIVATE | MapFlags::NORESERVE | MapFlags::FIXED,
        )
    }
    .map(|_| ())
    .map_err(|e| SysError::new("unmap to reservation", describe(addr, len), e))
}

/// Maps `len` bytes of `fd` from `offset` read-write and shared at exactly `addr`.
/// `populate` pre-faults the page tables so the first access costs nothing.
///
/// # Safety
/// The range must lie inside a reservation the caller owns and hold nothing still in use.
pub unsafe fn map_file_fixed(
    fd: impl AsFd,
    offset: u64,
    addr: usize,
    len: usize,
    populate: bool,
) -> SysResult<()> {
    let mut flags = MapFlags::SHARED | MapFlags::FIXED;
    if populate {
        flags |= MapFlags::POPULATE;
    }
    // SAFETY: the range is inside the caller's own reservation, so MAP_FIXED replaces only it.
    let got = unsafe {
        rustix::mm::mmap(
            addr as *mut c_void,
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            flags,
            fd,
            offset,
        )
    }
    .map_err(|e| SysError::new("mmap file", describe(addr, len), e))?;
    debug_assert_eq!(got as usize, addr);
    Ok(())
}

/// Tells the kernel that `[addr, addr+len)` (a file mapping) is touched here and there, not
/// read front to back: a fault then brings in its own page only. Without it, the first fault
/// in a sparse file on a disk filesystem reads ahead (zero-filling) far past the page it
/// needs, which cost 4-7 ms on ext4 for the shared configuration's first write.
///
/// # Safety
/// The range must be a mapping the caller owns; the advice changes no contents.
pub unsafe fn expect_random_access(addr: usize, len: usize) -> SysResult<()> {
    // SAFETY: MADV_RANDOM only changes how faults in the caller's own mapping read ahead.
    unsafe { rustix::mm::madvise(addr as *mut c_void, len, rustix::mm::Advice::Random) }
        .map_err(|e| SysError::new("madvise random", describe(addr, len), e))
}

/// Moves the mapping at `[from, from+len)`, page tables and all, to exactly `to`, replacing
/// what was there; `from..from+len` is left unmapped (a hole anyone may map into next). For a
/// hugetlb mapping both addresses must be aligned to its page size. Kernels before 5.16 cannot
/// move hugetlb mappings: `EINVAL`, and nothing moved.
///
/// # Safety
/// Both ranges must lie inside reservations the caller owns (`to` holding nothing in use), and
/// nothing may refer to the memory at `from` by its old address afterwards.
pub unsafe fn move_fixed(from: usize, to: usize, len: usize) -> SysResult<()> {
    // SAFETY: both ranges are the caller's own; MREMAP_FIXED replaces only the caller's
    // reservation at `to`.
    let got = unsafe {
        rustix::mm::mremap_fixed(
            from as *mut c_void,
            len,
            len,
            rustix::mm::MremapFlags::MAYMOVE,
            to as *mut c_void,
        )
    }
    .map_err(|e| SysError::new("mremap", format!("{} to {to:#x}", describe(from, len)), e))?;
    debug_assert_eq!(got as usize, to);
    Ok(())
}

/// Maps `len` bytes of `fd` from `offset` read-write and shared wherever the kernel likes.
pub fn map_file(fd: impl AsFd, offset: u64, len: usize, populate: bool) -> SysResult<usize> {
    let mut flags = MapFlags::SHARED;
    if populate {
        flags |= MapFlags::POPULATE;
    }
    // SAFETY: a mapping at a kernel-chosen address cannot overlap existing memory.
    let got = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            flags,
            fd,
            offset,
        )
    }
    .map_err(|e| {
        SysError::new(
            "mmap file",
            format!("{len:#x} bytes at offset {offset:#x}"),
            e,
        )
    })?;
    Ok(got as usize)
}

/// Maps anonymous read-write memory at exactly `addr`: small pages when `huge_page_size` is
/// `None`, else `MAP_HUGETLB` pages of that size. `shared` makes it survive `fork` as shared.
///
/// # Safety
/// The range must lie inside a reservation the caller owns and hold nothing still in use.
pub unsafe fn map_anonymous_fixed(
    addr: usize,
    len: usize,
    huge_page_size: Option<u64>,
    populate: bool,
) -> SysResult<()> {
    let mut flags = MapFlags::SHARED | MapFlags::FIXED;
    if let Some(size) = huge_page_size {
        flags |= MapFlags::HUGETLB | MapFlags::from_bits_retain(huge_size_bits(size));
    }
    if populate {
        flags |= MapFlags::POPULATE;
    }
    // SAFETY: the range is inside the caller's own reservation, so MAP_FIXED replaces only it.
    unsafe {
        rustix::mm::mmap_anonymous(
            addr as *mut c_void,
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            flags,
        )
    }
    .map(|_| ())
    .map_err(|e| SysError::new("mmap anonymous", describe(addr, len), e))
}

/// Raises the soft open-file limit to the hard limit: file-per-page mode keeps one descriptor
/// per mapped page (it holds the page's lock), which passes 1024 at 2 GiB of 2 MiB pages.
pub fn raise_open_file_limit() -> u64 {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    if let (Some(cur), Some(max)) = (limit.current, limit.maximum) {
        if cur < max {
            let raised = rustix::process::Rlimit {
                current: Some(max),
                maximum: Some(max),
            };
            if rustix::process::setrlimit(rustix::process::Resource::Nofile, raised).is_ok() {
                return max;
            }
        }
        return cur;
    }
    u64::MAX
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_aligns_and_noreplace_refuses_taken_range() {
        let align = 1 << 30;
        let base = reserve(4 << 30, align, None).unwrap();
        assert_eq!(base % align, 0);
        let err = reserve(1 << 21, 1 << 21, Some(base)).unwrap_err();
        assert_eq!(err.errno, Errno::EXIST, "{err}");
        // SAFETY: the window was reserved above and nothing uses it.
        unsafe { release(base, 4 << 30).unwrap() };
        let again = reserve(1 << 21, 1 << 21, Some(base)).unwrap();
        assert_eq!(again, base);
        // SAFETY: reserved just above.
        unsafe { release(base, 1 << 21).unwrap() };
    }

    #[test]
    fn anonymous_memory_inside_reservation_round_trips() {
        let len = 1 << 20;
        let base = reserve(len, 4096, None).unwrap();
        // SAFETY: inside our own reservation, unused.
        unsafe { map_anonymous_fixed(base, len, None, true).unwrap() };
        // SAFETY: the range is mapped read-write just above.
        unsafe { std::ptr::write_bytes(base as *mut u8, 0xAB, len) };
        // SAFETY: mapped and written above.
        assert_eq!(unsafe { *((base + len - 1) as *const u8) }, 0xAB);
        // SAFETY: nothing refers to the memory any more.
        unsafe { unmap_to_reserved(base, len).unwrap() };
        // SAFETY: the whole window is ours.
        unsafe { release(base, len).unwrap() };
    }
}
