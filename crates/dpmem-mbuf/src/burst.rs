//! [`Burst`]: up to `N` packets held in place, wherever the caller declares it (usually its
//! stack frame): the Rust form of DPDK's `struct rte_mbuf *pkts[32]` and its count. A pool
//! fills it in one bulk allocation ([`PktmbufPool::alloc_burst`]); clearing or dropping it
//! frees every packet in one bulk free; [`Burst::drain`] hands them out first to last and
//! leaves it empty for the next fill.
//!
//! Why not an array returned by value ([`PktmbufPool::alloc_array`]): a `Result<[Mbuf; 32],
//! _>` is 256 bytes that the compiler copies each time it is moved out of the `Result`,
//! through `?` or `map_err`, and into the free; in the packet buffer bench's bulk row that
//! was two or three `memcpy` calls per burst, about 2 of its 14.5 cycles per buffer. A burst
//! is filled and emptied where it lies.

use core::mem::MaybeUninit;

use crate::error::MbufError;
use crate::free;
use crate::handle::Mbuf;
use crate::header::MbufHeader;
use crate::pool::PktmbufPool;

/// Up to `N` owned packets, kept in place; the first [`len`](Self::len) slots hold packets.
/// Reads as a slice of [`Mbuf`]s; frees what it holds in one bulk call when cleared or
/// dropped.
///
/// ```no_run
/// # use dpmem_mbuf::{Burst, PktmbufPool};
/// # fn tx(pool: &PktmbufPool<'_>) -> Result<(), dpmem_mbuf::MbufError> {
/// let mut burst = Burst::<32>::new();
/// pool.alloc_burst(&mut burst, 32)?;
/// for packet in &mut burst {
///     packet.extend_from_slice(b"header")?;
/// }
/// burst.clear(); // all 32 back in one bulk free
/// # Ok(()) }
/// ```
pub struct Burst<'p, const N: usize> {
    len: usize,
    slots: [MaybeUninit<Mbuf<'p>>; N],
}

impl<'p, const N: usize> Burst<'p, N> {
    /// An empty burst.
    #[inline(always)]
    pub const fn new() -> Self {
        Burst {
            len: 0,
            slots: [const { MaybeUninit::uninit() }; N],
        }
    }

    /// Packets held.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no packet.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Packets it can hold: `N`.
    #[inline(always)]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Packets it can take before it is full.
    #[inline(always)]
    pub fn spare(&self) -> usize {
        N - self.len
    }

    /// Adds a packet at the end; gives it back when the burst is full.
    #[inline]
    pub fn push(&mut self, packet: Mbuf<'p>) -> Result<(), Mbuf<'p>> {
        if self.len == N {
            return Err(packet);
        }
        self.slots[self.len].write(packet);
        self.len += 1;
        Ok(())
    }

    /// Takes the last packet out.
    #[inline]
    pub fn pop(&mut self) -> Option<Mbuf<'p>> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: the slot was below `len`, so it holds a packet, and lowering `len` first
        // gives that packet to the caller alone.
        Some(unsafe { self.slots[self.len].assume_init_read() })
    }

    /// Frees every packet past the first `len`, in one bulk free (`rte_pktmbuf_free_bulk`);
    /// nothing when it holds no more than `len`.
    #[inline]
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        let tail = self.len - len;
        // Lowered first: if the free panicked (a check of the debug build), the packets would
        // be leaked, never freed twice.
        self.len = len;
        let tail_slots = &self.slots[len..len + tail];
        // SAFETY: the slots held packets (they were below the old `len`); a handle is a
        // `repr(transparent)` address, so they read as initialised addresses.
        let packets = unsafe {
            core::slice::from_raw_parts(tail_slots.as_ptr().cast::<*mut MbufHeader>(), tail)
        };
        // SAFETY: the burst no longer counts these packets, so each reference is handed to
        // the bulk free once; their borrow (`'p`) keeps their pools open during the call.
        unsafe { free::free_bulk(packets) };
    }

    /// Frees every packet, in one bulk free (`rte_pktmbuf_free_bulk`).
    #[inline(always)]
    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// Takes every packet out, first to last, leaving the burst empty for the next fill;
    /// what the iterator has not given when it is dropped is freed in one bulk free.
    #[inline]
    pub fn drain(&mut self) -> BurstDrain<'_, 'p, N> {
        let end = self.len;
        // Lowered first: a leaked iterator leaks the packets it did not give, never frees
        // them twice.
        self.len = 0;
        BurstDrain {
            slots: &mut self.slots,
            next: 0,
            end,
        }
    }

    /// The packets, as a slice.
    #[inline(always)]
    pub fn as_slice(&self) -> &[Mbuf<'p>] {
        // SAFETY: the first `len` slots hold packets.
        unsafe { core::slice::from_raw_parts(self.slots.as_ptr().cast::<Mbuf<'p>>(), self.len) }
    }

    /// The packets, as a mutable slice (a packet replaced in it is dropped as usual).
    #[inline(always)]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf<'p>] {
        // SAFETY: the first `len` slots hold packets, borrowed mutably with the burst.
        unsafe {
            core::slice::from_raw_parts_mut(self.slots.as_mut_ptr().cast::<Mbuf<'p>>(), self.len)
        }
    }
}

/// The packets of a [`Burst`], first to last ([`Burst::drain`]).
pub struct BurstDrain<'b, 'p, const N: usize> {
    slots: &'b mut [MaybeUninit<Mbuf<'p>>; N],
    /// The slots `next..end` hold packets not yet given.
    next: usize,
    end: usize,
}

impl<'p, const N: usize> Iterator for BurstDrain<'_, 'p, N> {
    type Item = Mbuf<'p>;

    #[inline]
    fn next(&mut self) -> Option<Mbuf<'p>> {
        if self.next == self.end {
            return None;
        }
        let at = self.next;
        self.next += 1;
        // SAFETY: the slot is below `end`, so it holds a packet, and moving `next` past it
        // first gives that packet to the caller alone.
        Some(unsafe { self.slots[at].assume_init_read() })
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.end - self.next;
        (left, Some(left))
    }
}

impl<'p, const N: usize> DoubleEndedIterator for BurstDrain<'_, 'p, N> {
    #[inline]
    fn next_back(&mut self) -> Option<Mbuf<'p>> {
        if self.next == self.end {
            return None;
        }
        self.end -= 1;
        // SAFETY: as in `next`, from the other end.
        Some(unsafe { self.slots[self.end].assume_init_read() })
    }
}

impl<const N: usize> ExactSizeIterator for BurstDrain<'_, '_, N> {}

impl<const N: usize> core::iter::FusedIterator for BurstDrain<'_, '_, N> {}

impl<const N: usize> Drop for BurstDrain<'_, '_, N> {
    fn drop(&mut self) {
        let (next, end) = (self.next, self.end);
        // Emptied first, as in `Burst::truncate`: a panic in the free leaks, never frees twice.
        self.next = end;
        let rest = &self.slots[next..end];
        // SAFETY: the slots held packets not given out; a handle is a `repr(transparent)`
        // address, so they read as initialised addresses.
        let packets = unsafe {
            core::slice::from_raw_parts(rest.as_ptr().cast::<*mut MbufHeader>(), end - next)
        };
        // SAFETY: nothing else counts these packets any more (the burst's length is 0 and
        // the iterator is past them), so each reference goes to the bulk free once; their
        // borrow (`'p`) keeps their pools open.
        unsafe { free::free_bulk(packets) };
    }
}

impl<const N: usize> std::fmt::Debug for BurstDrain<'_, '_, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BurstDrain")
            .field("left", &(self.end - self.next))
            .finish()
    }
}

impl<const N: usize> Default for Burst<'_, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Drop for Burst<'_, N> {
    fn drop(&mut self) {
        self.clear();
    }
}

impl<'p, const N: usize> core::ops::Deref for Burst<'p, N> {
    type Target = [Mbuf<'p>];

    #[inline(always)]
    fn deref(&self) -> &[Mbuf<'p>] {
        self.as_slice()
    }
}

impl<const N: usize> core::ops::DerefMut for Burst<'_, N> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.as_mut_slice()
    }
}

impl<'b, 'p, const N: usize> IntoIterator for &'b Burst<'p, N> {
    type Item = &'b Mbuf<'p>;
    type IntoIter = core::slice::Iter<'b, Mbuf<'p>>;

    #[inline(always)]
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl<'b, 'p, const N: usize> IntoIterator for &'b mut Burst<'p, N> {
    type Item = &'b mut Mbuf<'p>;
    type IntoIter = core::slice::IterMut<'b, Mbuf<'p>>;

    #[inline(always)]
    fn into_iter(self) -> Self::IntoIter {
        self.as_mut_slice().iter_mut()
    }
}

impl<const N: usize> std::fmt::Debug for Burst<'_, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl PktmbufPool<'_> {
    /// Adds `n` empty packets to `burst`, all or none (`rte_pktmbuf_alloc_bulk` into the
    /// burst's free slots): `ENOENT` ([`MbufError::Exhausted`]) when the pool has fewer, and
    /// `EINVAL` when the burst has fewer than `n` free slots; either way nothing is taken and
    /// the burst is as it was.
    #[inline(always)]
    pub fn alloc_burst<'a, const N: usize>(
        &'a self,
        burst: &mut Burst<'a, N>,
        n: usize,
    ) -> Result<(), MbufError> {
        if n > burst.spare() {
            return Err(burst_too_small(n, burst.len(), N));
        }
        let start = burst.len;
        self.fill_slots(&mut burst.slots[start..start + n])?;
        // The pool filled them all: they are packets now.
        burst.len += n;
        Ok(())
    }
}

#[cold]
fn burst_too_small(n: usize, len: usize, capacity: usize) -> MbufError {
    MbufError::InvalidArgument(format!(
        "{n} packets do not fit in a burst of {capacity} that holds {len}"
    ))
}
