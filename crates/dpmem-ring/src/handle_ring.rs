//! Rings of owning handles: values that own something — a pool object, a packet buffer — and
//! travel through a ring by moving, so exactly one place owns each of them at any time.
//!
//! [`Ring<T>`](crate::Ring) copies `T: Copy` values in and out; a handle whose drop gives
//! something back (a pool object going home to its pool) must not be copied. A
//! [`HandleRing`] carries such handles in their raw form ([`Handle::Raw`], plain data) in a
//! `Ring` underneath: an enqueue turns each handle into its raw form and hands it to the
//! ring, a dequeue turns raw forms back into handles, and whatever is still in the ring when
//! it is dropped is turned back and dropped with it, so nothing leaks. The borrow checker
//! keeps the ring from outliving what its handles borrow (a pool object borrows its pool).
//!
//! The raw forms may point at process-local things (a handle's pool, by reference), so a
//! handle ring is for the threads of one process: it has no `attach` or `lookup`.

use core::marker::PhantomData;
use core::mem::MaybeUninit;

use crate::config::{Behavior, RingFlags};
use crate::error::RingError;
use crate::memory::{HeapRegion, RingMemory};
use crate::raw::RawRing;
use crate::typed::{Consumer, Producer, Ring};

/// A value that owns something and can travel through a ring as plain data.
///
/// Implemented by the handles of the crates above: the mempool's pool objects, later packet
/// buffers.
pub trait Handle: Sized {
    /// The handle as plain data: what a ring slot holds while the handle is in the ring. A
    /// non-zero multiple of 4 bytes, aligned to at most 128 (checked at compile time).
    type Raw: Copy;

    /// Turns the handle into its raw form, which now carries what the handle owned.
    fn into_raw(self) -> Self::Raw;

    /// The handle again.
    ///
    /// # Safety
    /// `raw` came from [`Handle::into_raw`] and is turned back at most once.
    unsafe fn from_raw(raw: Self::Raw) -> Self;
}

/// Handles moved per internal step of the `Vec` forms (their raw forms sit on the stack).
const STEP: usize = 64;

/// A ring of owning handles `T` in a block of memory `M` (see the module docs).
pub struct HandleRing<T: Handle, M: RingMemory = HeapRegion> {
    ring: Ring<T::Raw, M>,
    /// The ring owns the handles it holds.
    _owns: PhantomData<T>,
}

// SAFETY: a handle ring hands each T from the thread that enqueues it to the thread that
// dequeues it, whole and once (the raw forms in its slots are only made by `into_raw` and only
// turned back by `from_raw`, once each), so it may be shared and sent when T may be sent; the
// memory block must be Send/Sync itself.
unsafe impl<T: Handle + Send, M: RingMemory + Send> Send for HandleRing<T, M> {}
// SAFETY: as above.
unsafe impl<T: Handle + Send, M: RingMemory + Sync> Sync for HandleRing<T, M> {}

impl<T: Handle> HandleRing<T> {
    /// A ring in a heap block of this process, sized as DPDK sizes rings: `count` slots, a
    /// power of two, holding `count - 1` handles; with [`RingFlags::EXACT_SZ`] any `count`,
    /// holding exactly `count` (in the next power of two of slots).
    pub fn new(name: &str, count: u32, flags: RingFlags) -> Result<Self, RingError> {
        Ok(HandleRing {
            ring: Ring::new(name, count, flags)?,
            _owns: PhantomData,
        })
    }
}

impl<T: Handle, M: RingMemory> HandleRing<T, M> {
    /// A ring built in `memory` (a memzone's, say), used by this process's threads.
    pub fn create_in(
        memory: M,
        name: &str,
        count: u32,
        flags: RingFlags,
    ) -> Result<Self, RingError> {
        Ok(HandleRing {
            ring: Ring::create_in(memory, name, count, flags)?,
            _owns: PhantomData,
        })
    }

    /// The ring underneath (counts, modes, dump). Its raw forms are not handed out.
    pub fn raw(&self) -> &RawRing<M> {
        self.ring.raw()
    }

    /// Handles in the ring now.
    pub fn len(&self) -> u32 {
        self.ring.raw().count()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.raw().is_empty()
    }

    /// A producer handle: the only one while the producer side is SP ([`RingError::Busy`]
    /// otherwise), one of many on multi-thread sides.
    pub fn producer(&self) -> Result<HandleProducer<'_, T, M>, RingError> {
        Ok(HandleProducer {
            inner: self.ring.producer()?,
            _owns: PhantomData,
        })
    }

    /// A consumer handle (see [`HandleRing::producer`]).
    pub fn consumer(&self) -> Result<HandleConsumer<'_, T, M>, RingError> {
        Ok(HandleConsumer {
            inner: self.ring.consumer()?,
            _owns: PhantomData,
        })
    }
}

impl<T: Handle, M: RingMemory> Drop for HandleRing<T, M> {
    fn drop(&mut self) {
        // `&mut self`: no producer or consumer of this ring is alive, so the consumer side is
        // free; each handle left is turned back and dropped (a pool object goes home).
        let Ok(mut consumer) = self.consumer() else {
            return;
        };
        let mut left = Vec::new();
        while consumer.dequeue_burst(&mut left, STEP) > 0 {
            left.clear();
        }
    }
}

impl<T: Handle, M: RingMemory> core::fmt::Debug for HandleRing<T, M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HandleRing")
            .field("ring", &self.ring.raw().name())
            .field("len", &self.len())
            .finish()
    }
}

/// The right to enqueue handles into a [`HandleRing`].
pub struct HandleProducer<'r, T: Handle, M: RingMemory = HeapRegion> {
    inner: Producer<'r, T::Raw, M>,
    _owns: PhantomData<T>,
}

impl<T: Handle, M: RingMemory> HandleProducer<'_, T, M> {
    /// Enqueues one handle, or hands it back when the ring is full.
    #[inline]
    pub fn enqueue(&mut self, value: T) -> Result<(), T> {
        self.inner.enqueue(value.into_raw()).map_err(|raw| {
            // SAFETY: made by into_raw just above, and the ring refused it.
            unsafe { T::from_raw(raw) }
        })
    }

    /// Enqueues all of `items` or none; hands them back when they do not all fit.
    #[inline]
    pub fn enqueue_bulk<const N: usize>(&mut self, items: [T; N]) -> Result<(), [T; N]> {
        let raws = items.map(T::into_raw);
        if self.inner.enqueue_bulk(&raws).count as usize == N {
            return Ok(());
        }
        Err(raws.map(|raw| {
            // SAFETY: made by into_raw just above, none taken by the ring.
            unsafe { T::from_raw(raw) }
        }))
    }

    /// Enqueues as many handles from the front of `items` as fit, removing them from it;
    /// returns how many. What did not fit stays in `items`, in order.
    pub fn enqueue_burst(&mut self, items: &mut Vec<T>) -> u32 {
        let mut moved = 0;
        while !items.is_empty() {
            // Handles are turned into raw forms only for the room there is, so a producer
            // that finds the ring full (and tries again) moves nothing in `items`.
            let n = items.len().min(STEP).min(self.inner.room() as usize);
            if n == 0 {
                break;
            }
            let mut raws = [const { MaybeUninit::<T::Raw>::uninit() }; STEP];
            for (slot, item) in raws.iter_mut().zip(items.drain(..n)) {
                slot.write(item.into_raw());
            }
            // SAFETY: the first n slots were written just above.
            let raws = unsafe { core::slice::from_raw_parts(raws.as_ptr().cast::<T::Raw>(), n) };
            let got = self.inner.enqueue_burst(raws).count as usize;
            moved += got as u32;
            if got < n {
                // The ring is full: what it did not take goes back to the front of `items`
                // (into the room the drain left, so nothing is allocated).
                let back = raws[got..].iter().map(|&raw| {
                    // SAFETY: made by into_raw above and not taken by the ring, each once.
                    unsafe { T::from_raw(raw) }
                });
                items.splice(0..0, back);
                break;
            }
        }
        moved
    }
}

impl<T: Handle, M: RingMemory> core::fmt::Debug for HandleProducer<'_, T, M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.inner.fmt(f)
    }
}

/// The right to dequeue handles from a [`HandleRing`].
pub struct HandleConsumer<'r, T: Handle, M: RingMemory = HeapRegion> {
    inner: Consumer<'r, T::Raw, M>,
    _owns: PhantomData<T>,
}

impl<T: Handle, M: RingMemory> HandleConsumer<'_, T, M> {
    /// Dequeues one handle, or `None` when the ring is empty.
    #[inline]
    pub fn dequeue(&mut self) -> Option<T> {
        self.inner.dequeue().map(|raw| {
            // SAFETY: every raw form in the ring was made by into_raw and is taken out once.
            unsafe { T::from_raw(raw) }
        })
    }

    /// Dequeues exactly `N` handles, or none.
    #[inline]
    pub fn dequeue_bulk<const N: usize>(&mut self) -> Option<[T; N]> {
        let mut raws = [const { MaybeUninit::<T::Raw>::uninit() }; N];
        if self.inner.dequeue_uninit(&mut raws, Behavior::Fixed).count as usize != N {
            return None;
        }
        Some(raws.map(|raw| {
            // SAFETY: all N slots were written by the dequeue.
            let raw = unsafe { raw.assume_init() };
            // SAFETY: a raw form made by into_raw, now out of the ring, turned back once.
            unsafe { T::from_raw(raw) }
        }))
    }

    /// Dequeues up to `max` handles onto the end of `out`; returns how many.
    pub fn dequeue_burst(&mut self, out: &mut Vec<T>, max: usize) -> u32 {
        let mut moved = 0;
        let mut left = max;
        while left > 0 {
            let n = left.min(STEP);
            let mut raws = [const { MaybeUninit::<T::Raw>::uninit() }; STEP];
            let got = self
                .inner
                .dequeue_uninit(&mut raws[..n], Behavior::Variable)
                .count as usize;
            out.reserve(got);
            out.extend(raws[..got].iter().map(|raw| {
                // SAFETY: the first `got` slots were written by the dequeue.
                let raw = unsafe { raw.assume_init() };
                // SAFETY: a raw form made by into_raw, now out of the ring, turned back once.
                unsafe { T::from_raw(raw) }
            }));
            moved += got as u32;
            left -= got;
            if got < n {
                break;
            }
        }
        moved
    }
}

impl<T: Handle, M: RingMemory> core::fmt::Debug for HandleConsumer<'_, T, M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.inner.fmt(f)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    /// A handle that counts the live copies of what it owns: an `Arc`, passed as its pointer.
    struct Counted(Arc<AtomicUsize>, u64);

    impl Handle for Counted {
        type Raw = (*const AtomicUsize, u64);
        fn into_raw(self) -> Self::Raw {
            (Arc::into_raw(self.0), self.1)
        }
        unsafe fn from_raw(raw: Self::Raw) -> Self {
            // SAFETY: the pointer came from Arc::into_raw in into_raw (the caller's promise).
            Counted(unsafe { Arc::from_raw(raw.0) }, raw.1)
        }
    }

    fn counted(owner: &Arc<AtomicUsize>, n: u64) -> Vec<Counted> {
        (0..n).map(|i| Counted(owner.clone(), i)).collect()
    }

    #[test]
    fn handles_move_through_in_order_and_leftovers_are_dropped_with_the_ring() {
        let owner = Arc::new(AtomicUsize::new(0));
        {
            let ring =
                HandleRing::<Counted>::new("h", 8, RingFlags::SP_ENQ | RingFlags::SC_DEQ).unwrap();
            let mut tx = ring.producer().unwrap();
            let mut rx = ring.consumer().unwrap();
            let mut batch = counted(&owner, 10);
            // 7 fit; the other 3 stay in the batch, in order.
            assert_eq!(tx.enqueue_burst(&mut batch), 7);
            assert_eq!(batch.iter().map(|c| c.1).collect::<Vec<_>>(), [7, 8, 9]);
            let refused = tx.enqueue(batch.remove(0)).unwrap_err();
            assert_eq!(refused.1, 7);
            let [a, b] = rx.dequeue_bulk::<2>().unwrap();
            assert_eq!((a.1, b.1), (0, 1));
            assert!(rx.dequeue_bulk::<6>().is_none(), "bulk takes all or none");
            let mut out = Vec::new();
            assert_eq!(rx.dequeue_burst(&mut out, 3), 3);
            assert_eq!(out.iter().map(|c| c.1).collect::<Vec<_>>(), [2, 3, 4]);
            assert!(tx.enqueue_bulk([refused]).is_ok());
            drop((tx, rx, a, b, out, batch));
            // 1 owner + the 3 handles still in the ring (5, 6, 7).
            assert_eq!(Arc::strong_count(&owner), 4);
        }
        assert_eq!(
            Arc::strong_count(&owner),
            1,
            "the ring dropped what it held"
        );
    }

    #[test]
    fn a_full_bulk_enqueue_hands_every_handle_back() {
        let owner = Arc::new(AtomicUsize::new(0));
        let ring = HandleRing::<Counted>::new("b", 4, RingFlags::empty()).unwrap();
        let mut tx = ring.producer().unwrap();
        let items: [Counted; 4] = core::array::from_fn(|i| Counted(owner.clone(), i as u64));
        let back = tx.enqueue_bulk(items).unwrap_err();
        assert_eq!(back.map(|c| c.1), [0, 1, 2, 3]);
        assert_eq!(Arc::strong_count(&owner), 1);
        assert!(ring.is_empty());
    }

    #[test]
    fn handles_cross_threads() {
        let owner = Arc::new(AtomicUsize::new(0));
        let ring =
            HandleRing::<Counted>::new("x", 64, RingFlags::SP_ENQ | RingFlags::SC_DEQ).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut tx = ring.producer().unwrap();
                let mut batch = Vec::new();
                for i in 0..10_000u64 {
                    batch.push(Counted(owner.clone(), i));
                    while !batch.is_empty() {
                        tx.enqueue_burst(&mut batch);
                    }
                }
            });
            let mut rx = ring.consumer().unwrap();
            let mut next = 0;
            let mut out = Vec::new();
            while next < 10_000 {
                rx.dequeue_burst(&mut out, 32);
                for c in out.drain(..) {
                    assert_eq!(c.1, next);
                    c.0.fetch_add(1, Ordering::Relaxed);
                    next += 1;
                }
            }
        });
        assert_eq!(owner.load(Ordering::Relaxed), 10_000);
        assert_eq!(Arc::strong_count(&owner), 1);
    }
}
