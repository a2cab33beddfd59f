//! The reference-count protocol of buffers and of external buffers' shared info, one set of
//! functions for both (each count is a 16-bit word in shared memory).
//!
//! A count of 1 means one owner: nobody else can read or change the word, so taking or
//! dropping a reference needs no atomic read-modify-write (DPDK's shortcut, which saves a
//! locked instruction on the common path). Above 1 every change is an atomic add or
//! subtract with acquire-release order, so the release that brings the count to zero sees
//! every write the other owners made before their own releases — the buffer goes back to its
//! pool, or the free callback runs, exactly once and last.
//!
//! The single-owner read is an acquire load: the previous owner's release (its atomic
//! decrement from 2 to 1) happened before, so what it wrote is visible to the new sole
//! owner. On x86 an acquire load is a plain load.

use crate::sync::{AtomicU16, Ordering};

/// Adds `delta` references (negative: drops them) and returns the new count.
///
/// Callers keep the count in range: adding only to a count they hold a reference in, never
/// dropping more references than they hold.
#[inline(always)]
pub(crate) fn update(count: &AtomicU16, delta: i16) -> u16 {
    if count.load(Ordering::Acquire) == 1 {
        let new = 1u16.wrapping_add_signed(delta);
        count.store(new, Ordering::Relaxed);
        return new;
    }
    if delta >= 0 {
        count
            .fetch_add(delta as u16, Ordering::AcqRel)
            .wrapping_add(delta as u16)
    } else {
        let sub = delta.unsigned_abs();
        count.fetch_sub(sub, Ordering::AcqRel).wrapping_sub(sub)
    }
}

/// Drops one reference; true when it was the last (the caller now owns the object alone and
/// frees it). The count is left at 0 then; the caller sets it back to 1 when it recycles
/// the object.
#[inline(always)]
pub(crate) fn release(count: &AtomicU16) -> bool {
    update(count, -1) == 0
}

/// Drops one reference for an object that is recycled when its last reference goes (a
/// buffer going back to its pool): true when it was the last. The count is then 1 again,
/// ready for the object's next owner; a sole owner's release writes nothing at all.
#[inline(always)]
pub(crate) fn release_for_reuse(count: &AtomicU16) -> bool {
    if count.load(Ordering::Acquire) == 1 {
        return true;
    }
    if count.fetch_sub(1, Ordering::AcqRel) != 1 {
        return false;
    }
    count.store(1, Ordering::Relaxed);
    true
}

/// Sets the count (an object not yet shared, or being recycled).
#[inline(always)]
pub(crate) fn set(count: &AtomicU16, value: u16) {
    count.store(value, Ordering::Relaxed);
}

/// Reads the count.
#[inline(always)]
pub(crate) fn read(count: &AtomicU16) -> u16 {
    count.load(Ordering::Acquire)
}

#[cfg(all(test, loom))]
mod loom_models {
    //! Two owners release their references at once: exactly one of them sees the last, and it
    //! sees the other's writes made before its release.
    use super::*;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;

    struct Shared {
        count: AtomicU16,
        data: UnsafeCell<u32>,
        freed: crate::sync::AtomicU16,
    }

    // SAFETY (test only): `data` is accessed under the protocol being checked; loom's cell
    // reports any access the protocol does not order.
    unsafe impl Sync for Shared {}

    fn last_release(shared: &Shared) {
        // The "free" reads the data (as a free callback or the pool would) and counts.
        shared.data.with(|d| {
            // SAFETY: loom checks this read is ordered after every owner's write.
            let _ = unsafe { *d };
        });
        shared.freed.fetch_add(1, Ordering::Relaxed);
    }

    /// The two ways a reference goes: dropping it (the count reaches 0 at the last) and
    /// dropping it for reuse (the count is 1 again at the last), with the count each leaves
    /// after the last release.
    type Release = fn(&AtomicU16) -> bool;
    const RELEASES: [(&str, Release, u16); 2] = [
        ("release", release, 0),
        ("release_for_reuse", release_for_reuse, 1),
    ];

    #[test]
    fn two_clones_released_at_once_free_once_after_both_writes() {
        for (name, release, after) in RELEASES {
            println!("{name}");
            two_owners_release_at_once(release, after);
        }
    }

    fn two_owners_release_at_once(release: Release, after: u16) {
        loom::model(move || {
            let shared = Arc::new(Shared {
                count: AtomicU16::new(2),
                data: UnsafeCell::new(0),
                freed: AtomicU16::new(0),
            });
            let other = shared.clone();
            let t = loom::thread::spawn(move || {
                // SAFETY: this owner writes while holding its reference.
                other.data.with_mut(|d| unsafe { *d = 1 });
                if release(&other.count) {
                    last_release(&other);
                }
            });
            if release(&shared.count) {
                last_release(&shared);
            }
            t.join().unwrap();
            assert_eq!(shared.freed.load(Ordering::Relaxed), 1);
            assert_eq!(shared.count.load(Ordering::Relaxed), after);
        });
    }

    /// The single-owner shortcut: once the other owner has released (seen through a relaxed
    /// flag, which orders nothing), this owner's release takes the count-of-1 path and must
    /// still see the other's writes; only the acquire load of that path gives that.
    #[test]
    fn the_single_owner_shortcut_sees_the_other_owners_writes() {
        for (name, release, after) in RELEASES {
            println!("{name}");
            sole_owner_after_a_release(release, after);
        }
    }

    fn sole_owner_after_a_release(release: Release, after: u16) {
        loom::model(move || {
            let shared = Arc::new(Shared {
                count: AtomicU16::new(2),
                data: UnsafeCell::new(0),
                freed: AtomicU16::new(0),
            });
            let released = Arc::new(AtomicU16::new(0));
            let (other, other_released) = (shared.clone(), released.clone());
            let t = loom::thread::spawn(move || {
                // SAFETY: the other owner writes, then releases.
                other.data.with_mut(|d| unsafe { *d = 7 });
                assert!(!release(&other.count));
                other_released.store(1, Ordering::Relaxed);
            });
            while released.load(Ordering::Relaxed) == 0 {
                loom::thread::yield_now();
            }
            assert!(release(&shared.count));
            last_release(&shared);
            t.join().unwrap();
            assert_eq!(shared.count.load(Ordering::Relaxed), after);
        });
    }
}
