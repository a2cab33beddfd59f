//! [`prefetch`]: asks the CPU to start loading a cache line the receive path will read soon —
//! the header and first bytes of the next packets of a burst, which arrive cold (a NIC, or a
//! port on another lcore, wrote them) — so that the miss overlaps the work on the packet
//! before, as DPDK's receive loops do.

/// Starts loading the cache line holding `p` into every cache level; no effect elsewhere
/// than on x86-64.
#[inline(always)]
pub(crate) fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` is part of SSE, which every x86-64 CPU has; it is a hint that
    // never faults and reads nothing the program can observe, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
