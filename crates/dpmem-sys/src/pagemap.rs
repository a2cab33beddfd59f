//! Virtual to physical address translation through `/proc/self/pagemap`.
//!
//! Each 8-byte entry describes one small page: bit 63 says the page is present, bits 0–54 hold
//! its frame number. Since Linux 4.0 the frame number reads as zero without `CAP_SYS_ADMIN`, so
//! a zero frame means "unknown", never physical address 0.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::error::{SysError, SysResult};

const PRESENT: u64 = 1 << 63;
const FRAME_MASK: u64 = (1 << 55) - 1;
const ENTRY_SIZE: u64 = 8;

/// An open `/proc/self/pagemap`.
#[derive(Debug)]
pub struct Pagemap {
    file: File,
    small_page: u64,
}

impl Pagemap {
    pub fn open() -> SysResult<Self> {
        let file = File::open("/proc/self/pagemap")
            .map_err(|e| SysError::from_io("open", "/proc/self/pagemap", &e))?;
        Ok(Self {
            file,
            small_page: crate::mapping::system_page_size() as u64,
        })
    }

    /// The physical address behind `va`, or `None` when the page is not present or the kernel
    /// hides frame numbers from this process.
    pub fn physical_address(&self, va: usize) -> SysResult<Option<u64>> {
        let va = va as u64;
        let mut entry = [0u8; 8];
        self.file
            .read_exact_at(&mut entry, (va / self.small_page) * ENTRY_SIZE)
            .map_err(|e| SysError::from_io("read", "/proc/self/pagemap", &e))?;
        let entry = u64::from_ne_bytes(entry);
        if entry & PRESENT == 0 {
            return Ok(None);
        }
        let frame = entry & FRAME_MASK;
        if frame == 0 {
            return Ok(None);
        }
        Ok(Some(frame * self.small_page + va % self.small_page))
    }
}

/// Whether this process can read physical addresses: touches a page of its own and asks.
pub fn physical_addresses_available() -> bool {
    let probe = Box::new([1u8; 64]);
    let va = std::hint::black_box(probe.as_ptr()) as usize;
    Pagemap::open().is_ok_and(|map| matches!(map.physical_address(va), Ok(Some(_))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_frames_are_none_not_zero() {
        let map = Pagemap::open().unwrap();
        let probe = vec![7u8; 4096];
        let pa = map.physical_address(probe.as_ptr() as usize).unwrap();
        if rustix::process::geteuid().is_root() && physical_addresses_available() {
            let pa = pa.expect("root reads frames of a touched page");
            assert_eq!(pa % 4096, probe.as_ptr() as u64 % 4096);
        } else {
            assert_eq!(pa, None, "non-root must see unknown, not a zero address");
        }
    }
}
