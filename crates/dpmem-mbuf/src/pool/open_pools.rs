//! The packet buffer pools open in this process, by the address of their [`PoolInfo`]: how a
//! free finds the pool handle to put a buffer back through, from the buffer's header alone.
//!
//! A buffer's header can only name its pool by a shared address (the same in every process),
//! while putting an object back needs this process's handle on the mempool (its lcore caches
//! and handler store). The table maps one to the other: open addressing over a fixed array,
//! read without a lock (two loads on the free path), written under a mutex when a pool is
//! opened or closed in this process. Pools are opened rarely and there are few, so the
//! table is small and its probes short.

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::pool::PoolEntry;
use crate::pool_info::PoolInfo;

const SLOTS: usize = 1024;
/// A slot that never held a key: a lookup stops here.
const EMPTY: usize = 0;
/// A slot whose pool was closed: a lookup goes on past it; an insert may reuse it.
const CLOSED: usize = 1;

struct Slot {
    key: AtomicUsize,
    entry: AtomicPtr<PoolEntry<'static>>,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE_SLOT: Slot = Slot {
    key: AtomicUsize::new(EMPTY),
    entry: AtomicPtr::new(core::ptr::null_mut()),
};

static TABLE: [Slot; SLOTS] = [FREE_SLOT; SLOTS];
static WRITER: Mutex<()> = Mutex::new(());

#[inline(always)]
fn first_slot(key: usize) -> usize {
    // Pool infos are cache-line aligned, so the low bits say nothing; a multiplicative hash
    // spreads the rest.
    ((key as u64 >> 6).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as usize % SLOTS
}

/// This process's entry for the pool whose info is at `info`, if it is open here.
#[inline(always)]
pub(crate) fn lookup(info: *const PoolInfo) -> Option<*const PoolEntry<'static>> {
    let key = info as usize;
    let mut at = first_slot(key);
    for _ in 0..SLOTS {
        let slot = &TABLE[at];
        // Acquire: the entry written before the key was published is seen.
        let k = slot.key.load(Ordering::Acquire);
        if k == key {
            return Some(slot.entry.load(Ordering::Relaxed).cast_const());
        }
        if k == EMPTY {
            return None;
        }
        at = (at + 1) % SLOTS;
    }
    None
}

/// Opens the pool at `info` in this process: the recorded entry when there is one that
/// `reuse` accepts (its handle count goes up), else the entry `make` builds, recorded in
/// place of any other (one left by a handle forgotten rather than dropped). One step under
/// the writer lock, so two threads opening the same pool share one entry. `None` when the
/// table is full (and `make` is not called).
pub(crate) fn open<'eal, E>(
    info: *const PoolInfo,
    reuse: impl FnOnce(&PoolEntry<'eal>) -> bool,
    make: impl FnOnce() -> Result<Box<PoolEntry<'eal>>, E>,
) -> Option<Result<*const PoolEntry<'eal>, E>> {
    let _writer = WRITER.lock().unwrap_or_else(|e| e.into_inner());
    let key = info as usize;
    let mut at = first_slot(key);
    let mut reusable = None;
    for _ in 0..SLOTS {
        let slot = &TABLE[at];
        let k = slot.key.load(Ordering::Relaxed);
        if k == key {
            let recorded = slot.entry.load(Ordering::Relaxed).cast::<PoolEntry<'eal>>();
            // SAFETY: a recorded entry stays allocated while recorded (it is removed before
            // it is dropped), and entries are only changed under the writer lock we hold.
            if !recorded.is_null() && reuse(unsafe { &*recorded }) {
                // SAFETY: as above.
                unsafe { &*recorded }
                    .handles
                    .fetch_add(1, Ordering::Relaxed);
                return Some(Ok(recorded.cast_const()));
            }
            reusable = Some(at);
            break;
        }
        if k == CLOSED && reusable.is_none() {
            reusable = Some(at);
        }
        if k == EMPTY {
            reusable.get_or_insert(at);
            break;
        }
        at = (at + 1) % SLOTS;
    }
    let at = reusable?;
    let entry = match make() {
        Ok(entry) => Box::into_raw(entry),
        Err(e) => return Some(Err(e)),
    };
    TABLE[at].entry.store(entry.cast(), Ordering::Relaxed);
    // Release: a lookup that sees the key sees the entry.
    TABLE[at].key.store(key, Ordering::Release);
    Some(Ok(entry.cast_const()))
}

/// Drops one handle on the entry of the pool at `info`; when it was the last, forgets the
/// entry and gives it back (the caller drops or frees the mempool in it). An entry that is
/// no longer the recorded one (replaced) is given back as well when its count reaches zero.
pub(crate) fn close<'eal>(
    info: *const PoolInfo,
    entry: *const PoolEntry<'eal>,
) -> Option<Box<PoolEntry<'eal>>> {
    let _writer = WRITER.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: the caller holds one of the entry's handles, so it is allocated.
    if unsafe { &*entry }.handles.fetch_sub(1, Ordering::Relaxed) != 1 {
        return None;
    }
    let key = info as usize;
    let mut at = first_slot(key);
    for _ in 0..SLOTS {
        let slot = &TABLE[at];
        let k = slot.key.load(Ordering::Relaxed);
        if k == key {
            if slot.entry.load(Ordering::Relaxed).cast_const().cast() == entry {
                slot.key.store(CLOSED, Ordering::Release);
                slot.entry.store(core::ptr::null_mut(), Ordering::Relaxed);
            }
            break;
        }
        if k == EMPTY {
            break;
        }
        at = (at + 1) % SLOTS;
    }
    // SAFETY: the entry came from `Box::into_raw` in `open`, its last handle is gone and it
    // is no longer recorded, so nothing reaches it any more.
    Some(unsafe { Box::from_raw(entry.cast_mut()) })
}

/// How many handles this process has on the entry (under the writer lock, so exact).
pub(crate) fn handles(entry: *const PoolEntry<'_>) -> usize {
    let _writer = WRITER.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: the caller holds a handle, so the entry is allocated.
    unsafe { &*entry }.handles.load(Ordering::Relaxed)
}
