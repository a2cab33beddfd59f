//! The CPU's time-stamp counter, which DPDK's loops read with `rte_rdtsc`: the ring and mbuf
//! workloads read it the same way on dpmem's side.

/// The time-stamp counter (what DPDK's `rte_rdtsc` reads).
#[inline(always)]
pub(crate) fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc has no preconditions on x86-64.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // No TSC: nanoseconds stand in (the report's unit then is ns, not cycles).
        use std::sync::OnceLock;
        static START: OnceLock<std::time::Instant> = OnceLock::new();
        START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_nanos() as u64
    }
}
