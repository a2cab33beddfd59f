//! The ring's view of the one place dpmem takes its atomics from, `dpmem_sys::sync` (the
//! hardware's, or loom's under `RUSTFLAGS="--cfg loom"`), plus the ring's own CPU hints.
//!
//! Every head, tail and counter of the ring, and its header's magic, is one of these types,
//! so that the same algorithm runs on the hardware and inside loom's model checker, which
//! explores the interleavings and weak-memory outcomes the orderings allow. Nothing else in
//! the crate names `core::sync::atomic` or `loom` directly (the loom-only slot cells come
//! from the same place). Public but hidden: `dpmem-mempool`'s caches and stacks run under
//! the same switch.

pub use dpmem_sys::sync::{spin_wait, AtomicU32, AtomicU64, Ordering};

/// Under loom only: a cell whose reads and writes loom checks for ordering, without holding
/// the data (the ring's slot copies are plain memory; see `slots::track`).
#[cfg(loom)]
pub(crate) use dpmem_sys::sync::ModelCell;

/// Whether this CPU has `prefetchw` (CPUID says so for every AMD64 CPU and Intel's since
/// Broadwell). It is only used once CPUID said so ([`detect_prefetch_for_write`], when a
/// ring is built or attached): an instruction the CPU does not report is not relied on.
#[cfg(all(target_arch = "x86_64", not(loom)))]
static PREFETCH_FOR_WRITE: core::sync::atomic::AtomicBool =
    core::sync::atomic::AtomicBool::new(false);

/// Ask CPUID whether [`prefetch_for_write`] may use `prefetchw` (leaf `0x8000_0001`, ECX bit
/// 8), once per process: every ring creation and attach calls this, which is how every
/// thread that can reach a ring's data path has had it run first, and CPUID is slow under a
/// hypervisor (it leaves the guest).
pub(crate) fn detect_prefetch_for_write() {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    {
        static DETECTED: std::sync::Once = std::sync::Once::new();
        DETECTED.call_once(|| {
            use core::arch::x86_64::__cpuid;
            let has_leaf = __cpuid(0x8000_0000).eax >= 0x8000_0001;
            let has = has_leaf && (__cpuid(0x8000_0001).ecx >> 8) & 1 == 1;
            PREFETCH_FOR_WRITE.store(has, core::sync::atomic::Ordering::Relaxed);
        });
    }
}

/// Ask for the cache line holding `word` in exclusive state, ahead of a compare-and-swap
/// on it: `prefetchw` where the CPU has it, else (and under loom) nothing.
#[inline(always)]
pub(crate) fn prefetch_for_write<T>(word: &T) {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    if PREFETCH_FOR_WRITE.load(core::sync::atomic::Ordering::Relaxed) {
        // SAFETY: CPUID reported `prefetchw` (the flag is only set so). It is a hint: it
        // moves a cache line and touches no register but its address operand, no flag and
        // no memory, and cannot fault on any address.
        unsafe {
            core::arch::asm!(
                "prefetchw [{addr}]",
                addr = in(reg) core::ptr::from_ref(word),
                options(nostack, readonly, preserves_flags)
            );
        }
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom))))]
    let _ = word;
}

/// A barrier for the compiler only: it emits no instruction, but memory accesses are not
/// moved across it at compile time. The slot copies put one in their block loop, which
/// the compiler would otherwise recognise as a copy idiom and replace with a call to
/// `memcpy` (see `slots::copy_bytes`). Not a synchronisation point, so the same under loom.
#[inline(always)]
pub(crate) fn compiler_barrier() {
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::Release);
}
