//! Putting a buffer back in its pool from its header alone: finding this process's handle on
//! the pool the header names ([`open_pools`](crate::pool::open_pools)), and the raw put with
//! no reference-count step (`rte_mbuf_raw_free`). Everything that sends a buffer home ends
//! here.

use core::ptr::NonNull;

use dpmem_mempool::Mempool;

use crate::header::MbufHeader;
use crate::pool::open_pools;
use crate::pool_info::PoolInfo;

/// The process's handle on the pool whose info is at `info`.
///
/// # Safety
/// `info` is the pool of a live buffer, open in this process while the result is used.
#[inline(always)]
pub(crate) unsafe fn mempool_at<'a>(info: *const PoolInfo) -> &'a Mempool<'static> {
    match open_pools::lookup(info) {
        // SAFETY: a recorded entry stays allocated while the pool is open, which the caller
        // guarantees for as long as it uses the result.
        Some(entry) => unsafe { &(*entry).mempool },
        None => pool_not_open(info),
    }
}

#[cold]
#[inline(never)]
fn pool_not_open(info: *const PoolInfo) -> ! {
    panic!(
        "a packet buffer names the pool at {info:p}, which is not open in this process (a \
         buffer of a closed pool, or not a packet buffer)"
    )
}

/// Puts a buffer back with no reference-count step (`rte_mbuf_raw_free`).
///
/// # Safety
/// The buffer is ready for its pool (one reference, alone, direct or of a pinned pool), the
/// caller owns it and nothing uses it afterwards; its pool is open in this process.
#[inline(always)]
pub unsafe fn raw_free(m: NonNull<MbufHeader>) {
    #[cfg(feature = "debug")]
    // SAFETY: the caller's contract: the buffer is live.
    if let Err(reason) = unsafe { crate::check::check_header(m.as_ptr(), false) } {
        panic!("freeing a bad packet buffer {:p}: {reason}", m.as_ptr());
    }
    // SAFETY: the caller's contract: the buffer is live.
    let info = unsafe { m.as_ref() }.pool.get();
    // SAFETY: the caller's contract: the pool is open and the buffer is its object, owned.
    let pool = unsafe { mempool_at(info) };
    // SAFETY: as above.
    unsafe { pool.put(m.cast()) }
}
