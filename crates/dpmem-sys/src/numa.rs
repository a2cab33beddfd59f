//! NUMA placement: binding the calling thread's allocations to a node, and asking where a page
//! really is. rustix has no wrappers for these, so they go through `libc::syscall`.

use std::ffi::c_long;

use rustix::io::Errno;

use crate::error::{SysError, SysResult};

const MPOL_DEFAULT: i32 = 0;
const MPOL_BIND: i32 = 2;
const MPOL_F_NODE: u64 = 1 << 0;
const MPOL_F_ADDR: u64 = 1 << 1;
/// Nodes a mask can name; the kernel supports up to 1024 on x86-64.
const MAX_NODES: usize = 1024;
const MASK_WORDS: usize = MAX_NODES / 64;

fn last_errno() -> Errno {
    Errno::from_raw_os_error(
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO),
    )
}

/// Binds the calling thread's future page allocations to `node` until the guard drops.
/// Hugepages allocated by `fallocate` on hugetlbfs follow this policy, so a shortage on the
/// node shows up as `ENOSPC` there instead of a silent placement elsewhere.
#[derive(Debug)]
pub struct ThreadNodeBinding {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl ThreadNodeBinding {
    pub fn bind(node: u32) -> SysResult<Self> {
        if node as usize >= MAX_NODES {
            return Err(SysError::new(
                "set_mempolicy",
                format!("node {node}"),
                Errno::INVAL,
            ));
        }
        let mut mask = [0u64; MASK_WORDS];
        mask[node as usize / 64] |= 1 << (node % 64);
        // SAFETY: `mask` is a valid node mask of MAX_NODES bits that lives across the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_set_mempolicy,
                MPOL_BIND as c_long,
                mask.as_ptr(),
                MAX_NODES as c_long,
            )
        };
        if rc != 0 {
            return Err(SysError::new(
                "set_mempolicy bind",
                format!("node {node}"),
                last_errno(),
            ));
        }
        Ok(Self {
            _not_send: std::marker::PhantomData,
        })
    }
}

impl Drop for ThreadNodeBinding {
    fn drop(&mut self) {
        // SAFETY: MPOL_DEFAULT takes no node mask; a null mask with maxnode 0 is the documented form.
        unsafe {
            libc::syscall(
                libc::SYS_set_mempolicy,
                MPOL_DEFAULT as c_long,
                std::ptr::null::<u64>(),
                0 as c_long,
            )
        };
    }
}

/// The node holding the page at `addr` (which must be mapped and present).
pub fn node_of_address(addr: usize) -> SysResult<u32> {
    let mut node: i32 = -1;
    // SAFETY: `node` is a valid out-pointer; a null mask with maxnode 0 asks for no mask; with
    // MPOL_F_NODE|MPOL_F_ADDR the kernel only reads the page tables at `addr`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            &mut node as *mut i32,
            std::ptr::null_mut::<u64>(),
            0 as c_long,
            addr as c_long,
            (MPOL_F_NODE | MPOL_F_ADDR) as c_long,
        )
    };
    if rc != 0 || node < 0 {
        return Err(SysError::new(
            "get_mempolicy",
            format!("{addr:#x}"),
            last_errno(),
        ));
    }
    Ok(node as u32)
}

/// The nodes holding the pages at `addrs` (each mapped and present), in one `move_pages` call
/// with no target nodes, which only reports. A page the kernel cannot locate gives `Err`.
pub fn nodes_of_addresses(addrs: &[usize]) -> SysResult<Vec<u32>> {
    node_of_each(addrs)?.into_iter().collect()
}

/// The node of each page at `addrs`, or why the kernel could not say for that page, in one
/// `move_pages` call; `Err` only when the call itself fails (a sandbox may forbid it).
pub fn node_of_each(addrs: &[usize]) -> SysResult<Vec<SysResult<u32>>> {
    let pages: Vec<*const std::ffi::c_void> = addrs
        .iter()
        .map(|&a| a as *const std::ffi::c_void)
        .collect();
    let mut status = vec![0i32; addrs.len()];
    // SAFETY: `pages` and `status` hold `addrs.len()` entries and outlive the call; a null
    // node array asks the kernel to report, not move; pid 0 is this process.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_pages,
            0 as c_long,
            addrs.len() as c_long,
            pages.as_ptr(),
            std::ptr::null::<i32>(),
            status.as_mut_ptr(),
            0 as c_long,
        )
    };
    if rc < 0 {
        return Err(SysError::new(
            "move_pages",
            format!("{} pages", addrs.len()),
            last_errno(),
        ));
    }
    Ok(status
        .iter()
        .zip(addrs)
        .map(|(&node, &addr)| {
            u32::try_from(node).map_err(|_| {
                SysError::new(
                    "locate page",
                    format!("{addr:#x}"),
                    Errno::from_raw_os_error(-node),
                )
            })
        })
        .collect())
}

/// Whether this kernel (and sandbox) lets us set memory policies at all.
pub fn policy_supported() -> bool {
    let mut mode: i32 = 0;
    // SAFETY: valid out-pointer for the mode; no mask requested; flags 0 queries the thread policy.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            &mut mode as *mut i32,
            std::ptr::null_mut::<u64>(),
            0 as c_long,
            0 as c_long,
            0 as c_long,
        )
    };
    rc == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touched_page_reports_a_node_the_machine_has() {
        if !policy_supported() {
            eprintln!("skipped: get_mempolicy is not available here");
            return;
        }
        let data = vec![1u8; 4096];
        let node = node_of_address(data.as_ptr() as usize).unwrap();
        assert!(
            std::path::Path::new(&format!("/sys/devices/system/node/node{node}")).exists()
                || node == 0
        );
    }

    #[test]
    fn binding_to_node_zero_then_allocating_lands_there() {
        if !policy_supported() {
            eprintln!("skipped: set_mempolicy is not available here");
            return;
        }
        let guard = ThreadNodeBinding::bind(0).unwrap();
        let data = vec![3u8; 1 << 16];
        assert_eq!(node_of_address(data.as_ptr() as usize).unwrap(), 0);
        let other = vec![4u8; 1 << 16];
        let nodes = nodes_of_addresses(&[data.as_ptr() as usize, other.as_ptr() as usize]).unwrap();
        assert_eq!(nodes, vec![0, 0]);
        // An address with no page behind it fails on its own; the pages around it are still
        // located.
        let each =
            node_of_each(&[data.as_ptr() as usize, 0x1000, other.as_ptr() as usize]).unwrap();
        assert_eq!(each[0].as_ref().ok(), Some(&0));
        assert!(each[1].is_err(), "{:?}", each[1]);
        assert_eq!(each[2].as_ref().ok(), Some(&0));
        assert!(nodes_of_addresses(&[0x1000]).is_err());
        drop(guard);
        assert!(ThreadNodeBinding::bind(MAX_NODES as u32).is_err());
    }
}
