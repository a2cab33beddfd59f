//! The time-stamp counter: reads, its frequency, and the spin-wait hint (DPDK's
//! `rte_rdtsc`, `rte_rdtsc_precise`, `rte_get_tsc_hz`, `rte_pause`).
//!
//! The frequency is found once, on first use, not during EAL start-up: from CPUID when the
//! CPU or the hypervisor states it, otherwise by counting ticks against `CLOCK_MONOTONIC`
//! over a few milliseconds. DPDK sleeps 100 ms at every start for this; nothing here sleeps.
//!
//! On x86-64 the counter is `rdtsc`; on AArch64 the generic timer's virtual count; elsewhere
//! nanoseconds of `CLOCK_MONOTONIC`, so code that measures in ticks still runs.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The counter now. Not ordered with surrounding instructions: the CPU may read it early or
/// late by a few instructions (see [`rdtsc_precise`]).
#[inline]
pub fn rdtsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `rdtsc` exists on every x86-64 CPU and only reads the counter.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(target_arch = "aarch64")]
    {
        let count: u64;
        // SAFETY: reading CNTVCT_EL0 is allowed at EL0 on Linux and has no side effects.
        unsafe { core::arch::asm!("mrs {}, cntvct_el0", out(reg) count, options(nomem, nostack)) };
        count
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        monotonic_ns()
    }
}

/// The counter, read after every earlier load and store has completed, so a measured region
/// cannot leak out of the measurement.
#[inline]
pub fn rdtsc_precise() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // `mfence` orders memory; `lfence` then keeps `rdtsc` from starting before it.
        // SAFETY: fences have no preconditions on x86-64 (SSE2 is baseline).
        unsafe { core::arch::x86_64::_mm_mfence() };
        // SAFETY: as above.
        unsafe { core::arch::x86_64::_mm_lfence() };
        rdtsc()
    }
    #[cfg(target_arch = "aarch64")]
    {
        // SAFETY: `isb` only synchronises the instruction stream.
        unsafe { core::arch::asm!("isb", options(nomem, nostack)) };
        rdtsc()
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        rdtsc()
    }
}

/// A hint that the thread is spinning (`pause` on x86, `yield`/`isb` on Arm), which saves
/// power and frees the core's shared resources for its sibling hyperthread.
#[inline]
pub fn pause() {
    std::hint::spin_loop();
}

/// Where the frequency came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum TscFrequencySource {
    /// CPUID leaf 0x15: crystal frequency × TSC/crystal ratio, as the CPU states it.
    Cpuid,
    /// The hypervisor's timing leaf (0x40000010), which states the guest's TSC in kHz.
    Hypervisor,
    /// The AArch64 generic timer's frequency register.
    TimerRegister,
    /// Counted against `CLOCK_MONOTONIC`.
    Calibrated,
}

/// The counter's frequency and how it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TscFrequency {
    pub hz: u64,
    pub source: TscFrequencySource,
}

/// Ticks per second of [`rdtsc`] (DPDK's `rte_get_tsc_hz`), found on first call.
pub fn tsc_hz() -> u64 {
    tsc_frequency().hz
}

/// The frequency with its source, found on first call and remembered.
pub fn tsc_frequency() -> TscFrequency {
    static FREQUENCY: OnceLock<TscFrequency> = OnceLock::new();
    *FREQUENCY.get_or_init(|| {
        stated_frequency().unwrap_or_else(|| TscFrequency {
            hz: calibrate(Duration::from_millis(2), 3),
            source: TscFrequencySource::Calibrated,
        })
    })
}

/// Ticks per second measured against `CLOCK_MONOTONIC`: `rounds` windows of `window` each,
/// the median kept so one preempted window does not skew the answer.
pub fn calibrate(window: Duration, rounds: usize) -> u64 {
    let mut estimates: Vec<u64> = (0..rounds.max(1))
        .map(|_| {
            let (t0, c0) = (Instant::now(), rdtsc_precise());
            // Spinning, not sleeping: a sleep adds a wake-up delay the kernel decides, and
            // the window is too short for that to be small beside it.
            while t0.elapsed() < window {
                pause();
            }
            let (c1, t1) = (rdtsc_precise(), Instant::now());
            let ns = t1.duration_since(t0).as_nanos().max(1);
            (u128::from(c1.wrapping_sub(c0)) * 1_000_000_000 / ns) as u64
        })
        .collect();
    estimates.sort_unstable();
    estimates[estimates.len() / 2]
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn monotonic_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn stated_frequency() -> Option<TscFrequency> {
    Some(TscFrequency {
        hz: 1_000_000_000,
        source: TscFrequencySource::TimerRegister,
    })
}

#[cfg(target_arch = "aarch64")]
fn stated_frequency() -> Option<TscFrequency> {
    let hz: u64;
    // SAFETY: CNTFRQ_EL0 is readable at EL0 on Linux and reading it has no side effects.
    unsafe { core::arch::asm!("mrs {}, cntfrq_el0", out(reg) hz, options(nomem, nostack)) };
    (hz != 0).then_some(TscFrequency {
        hz,
        source: TscFrequencySource::TimerRegister,
    })
}

#[cfg(target_arch = "x86_64")]
fn stated_frequency() -> Option<TscFrequency> {
    use core::arch::x86_64::__cpuid;
    // `__cpuid` became a safe function in newer Rust; it is unsafe in the oldest supported.
    #[allow(unused_unsafe)]
    let cpuid = |leaf: u32| {
        // SAFETY: `cpuid` exists on every x86-64 CPU; leaves above the maximum return
        // harmless data, and callers check the maximum first anyway.
        unsafe { __cpuid(leaf) }
    };
    let max_leaf = cpuid(0).eax;
    if max_leaf >= 0x15 {
        let leaf = cpuid(0x15);
        // eax/ebx is the TSC/crystal ratio, ecx the crystal in Hz (0 when not stated).
        if leaf.eax != 0 && leaf.ebx != 0 && leaf.ecx != 0 {
            return Some(TscFrequency {
                hz: u64::from(leaf.ecx) * u64::from(leaf.ebx) / u64::from(leaf.eax),
                source: TscFrequencySource::Cpuid,
            });
        }
    }
    let under_hypervisor = cpuid(1).ecx & (1 << 31) != 0;
    if under_hypervisor && cpuid(0x4000_0000).eax >= 0x4000_0010 {
        let khz = cpuid(0x4000_0010).eax;
        if khz != 0 {
            return Some(TscFrequency {
                hz: u64::from(khz) * 1000,
                source: TscFrequencySource::Hypervisor,
            });
        }
    }
    None
}
