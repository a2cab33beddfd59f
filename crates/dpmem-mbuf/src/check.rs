//! The sanity check of a buffer (`rte_mbuf_check`): the first thing found wrong, in DPDK's
//! order and words, so a report reads the same as DPDK's. With the `debug` feature every free
//! runs it and refuses a bad buffer before the pool is touched.

use crate::header::{MbufHeader, MAX_SEGS};
use crate::pool_info::POOL_INFO_MAGIC;

/// Checks buffer `m`; with `is_header`, the packet it heads too (lengths and segment counts
/// adding up). The reason names the first problem.
///
/// # Safety
/// `m` is null or a readable header, and every segment its `next` pointers lead to (up to
/// 65,536 of them) is readable.
pub unsafe fn check_header(m: *const MbufHeader, is_header: bool) -> Result<(), &'static str> {
    if m.is_null() {
        return Err("mbuf is NULL");
    }
    // SAFETY: the caller's contract.
    let h = unsafe { &*m };
    let pool = h.pool.get();
    // SAFETY: a non-null pool pointer of a readable header is a pool info or garbage; the
    // magic tells, and reading it is the caller's contract (pool infos are readable memory).
    if pool.is_null() || unsafe { (*pool).magic } != POOL_INFO_MAGIC {
        return Err("bad mbuf pool");
    }
    if h.buf_iova.get() == 0 {
        return Err("bad IO addr");
    }
    if h.buf_addr.get().is_null() {
        return Err("bad virt addr");
    }
    let refs = h.refcnt();
    if refs == 0 || refs == u16::MAX {
        return Err("bad ref cnt");
    }
    if !is_header {
        return Ok(());
    }
    if h.data_len.get() as u32 > h.pkt_len.get() {
        return Err("bad data_len");
    }
    let mut segs = h.nb_segs.get() as u32;
    let mut len = h.pkt_len.get() as u64;
    let mut seg = m;
    let mut walked = 0u32;
    while !seg.is_null() {
        // SAFETY: the caller's contract covers every segment.
        let s = unsafe { &*seg };
        if s.data_off.get() > s.buf_len.get() {
            return Err("data offset too big in mbuf segment");
        }
        if s.data_off.get() as u32 + s.data_len.get() as u32 > s.buf_len.get() as u32 {
            return Err("data length too big in mbuf segment");
        }
        walked += 1;
        if walked > MAX_SEGS {
            return Err("bad nb_segs");
        }
        segs = segs.wrapping_sub(1);
        len = len.wrapping_sub(s.data_len.get() as u64);
        seg = s.next.get();
    }
    if segs != 0 {
        return Err("bad nb_segs");
    }
    if len != 0 {
        return Err("bad pkt_len");
    }
    Ok(())
}
