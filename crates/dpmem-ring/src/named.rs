//! Rings that live in a memzone and are found by name, from this process or a secondary one
//! (DPDK's `rte_ring_create` / `rte_ring_lookup` / `rte_ring_free`).
//!
//! The memzone is called `RG_<ring name>`, as in DPDK: that prefix plus the ring's 28-byte name
//! limit is exactly the memzone's 31-byte limit. The ring header and slots are the memzone's
//! bytes, which every process maps at the same address, so a handle made by [`lookup`] in a
//! secondary works on the same ring.

use dpmem_eal::{Eal, EalError, ErrorKind, MemzoneFlags, Socket};

use crate::cache_padded::CACHE_PAD;
use crate::memzone_memory::memzone_name;
pub use crate::memzone_memory::{MemzoneMemory, MEMZONE_PREFIX};
use crate::{memory_size, Ring, RingError, RingFlags};

/// Why a named-ring operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NamedRingError {
    #[error(transparent)]
    Ring(#[from] RingError),
    /// The memzone could not be reserved, found or freed (name taken: `EEXIST`; no memory:
    /// `ENOMEM`; table full: `ENOSPC`).
    #[error("ring {name:?}: {source}")]
    Memzone { name: String, source: EalError },
    #[error("no ring called {0:?} (ENOENT)")]
    NotFound(String),
}

impl NamedRingError {
    /// The errno-like kind, when the memzone layer decided it.
    pub fn memzone_kind(&self) -> Option<ErrorKind> {
        match self {
            NamedRingError::Memzone { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

/// Registers `/ring/list` (the named rings' names) and `/ring/info,<name>` (one ring's sizes,
/// modes, count and memzone) with the EAL's telemetry, once per process; the first [`create`],
/// [`lookup`] or [`lookup_raw`] does it too. A command of either name registered before (by
/// the application) is left in place.
pub fn register_telemetry() {
    crate::telemetry::register_commands();
}

/// Creates a ring of `count` `T`s called `name` in a new memzone on `socket` (DPDK's
/// `rte_ring_create`).
pub fn create<'eal, T: Copy>(
    eal: &'eal Eal,
    name: &str,
    count: u32,
    socket: Socket,
    flags: RingFlags,
) -> Result<Ring<T, MemzoneMemory<'eal>>, NamedRingError> {
    register_telemetry();
    let zone_name = memzone_name(name)?;
    let bytes = memory_size(count, core::mem::size_of::<T>() as u32, flags)?;
    let zone = eal
        .memzones()
        .reserve_aligned(&zone_name, bytes, socket, MemzoneFlags::empty(), CACHE_PAD)
        .map_err(|source| NamedRingError::Memzone {
            name: name.to_owned(),
            source,
        })?;
    Ring::create_in(MemzoneMemory::new(eal, zone.clone()), name, count, flags).map_err(|e| {
        // SAFETY: nothing else can know the memzone yet (no ring was built in it): give it
        // back.
        let _ = unsafe { eal.memzones().free(&zone) };
        NamedRingError::from(e)
    })
}

/// A handle on the ring called `name`, created by this process or by the primary.
///
/// # Safety
/// - The ring holds valid `T`s: it was created for `T` (or a type of the same layout). Its
///   element size is checked; its type cannot be.
/// - Its creation has finished ([`create`] returned in the process that made it): the
///   memzone is found by name before the ring in it is built.
/// - The handle is not used after the ring is freed ([`free`], in any process).
/// - Its single-thread sides are used by one thread at a time across processes: the handles
///   enforce that within each process's ring handle, and the shared header across processes,
///   but a side reset by `RawRing::reset` is the caller's to coordinate (as in DPDK).
pub unsafe fn lookup<'eal, T: Copy>(
    eal: &'eal Eal,
    name: &str,
) -> Result<Ring<T, MemzoneMemory<'eal>>, NamedRingError> {
    register_telemetry();
    let memory =
        MemzoneMemory::find(eal, name)?.ok_or_else(|| NamedRingError::NotFound(name.to_owned()))?;
    // SAFETY: the caller vouches that the ring's elements are `T`s.
    Ok(unsafe { Ring::attach(memory) }?)
}

/// A handle on the ring called `name` whatever its element type, for looking at it: its size,
/// count and modes. Safe, for moving elements through a [`RawRing`](crate::RawRing) is
/// `unsafe` (the caller then vouches for the element size); attaching reads the header and
/// writes nothing.
pub fn lookup_raw<'eal>(
    eal: &'eal Eal,
    name: &str,
) -> Result<crate::RawRing<MemzoneMemory<'eal>>, NamedRingError> {
    register_telemetry();
    let memory =
        MemzoneMemory::find(eal, name)?.ok_or_else(|| NamedRingError::NotFound(name.to_owned()))?;
    Ok(crate::RawRing::attach(memory)?)
}

/// Frees a named ring's memzone. Handles on it in other processes must be gone (as with DPDK's
/// `rte_ring_free`); this process's handle is consumed.
pub fn free<T: Copy>(eal: &Eal, ring: Ring<T, MemzoneMemory<'_>>) -> Result<(), NamedRingError> {
    let zone = ring.raw().memory().memzone().clone();
    let name = zone.name.clone();
    drop(ring);
    // SAFETY: this process's handle is consumed above; other handles exist only through
    // `lookup`, whose contract forbids using them once the ring is freed.
    unsafe { eal.memzones().free(&zone) }.map_err(|source| NamedRingError::Memzone { name, source })
}
