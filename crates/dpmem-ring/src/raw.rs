//! The ring over raw elements: DPDK's `rte_ring_*_elem` API, in one block of memory.
//!
//! [`RawRing`] is a handle on a ring that lives in a [`RingMemory`] block. Its data
//! operations are `unsafe`, with DPDK's contract: the caller promises that a
//! single-thread side is used by one thread at a time and that buffers are as large as
//! the counts say. [`crate::Ring`] is the safe, typed layer on top.

use core::fmt;
use core::ptr::{self, NonNull};

use crate::cache_padded::{CachePadded, CACHE_PAD};
use crate::config::{Behavior, RingFlags};
use crate::error::RingError;
use crate::header::{RingHeader, RingMeta, RING_MAGIC, RING_NAME_MAX, SLOTS_OFFSET};
use crate::headtail::{HeadTail, Layout, OPEN_CLAIM};
use crate::memory::{HeapRegion, RingMemory};
use crate::mode::{ConsumerMode, ProducerMode, SyncType};
use crate::side::Side;
use crate::sync::{AtomicU32, AtomicU64, Ordering};
use crate::view::RingView;

/// Largest slot count: positions are `u32` and differences must stay below 2^31
/// (`RTE_RING_SZ_MASK`).
pub const RING_SIZE_MAX: u32 = 0x7fff_ffff;

/// Element size of a ring of pointers, DPDK's default (`rte_ring_create`).
pub const POINTER_ESIZE: u32 = core::mem::size_of::<usize>() as u32;

/// Validated geometry of a ring.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    size: u32,
    capacity: u32,
    esize: u32,
    producer: ProducerMode,
    consumer: ConsumerMode,
}

fn geometry(count: u32, esize: u32, flags: RingFlags) -> Result<Geometry, RingError> {
    if esize == 0 || !esize.is_multiple_of(4) {
        return Err(RingError::InvalidElementSize { esize });
    }
    let (producer, consumer) = flags.modes()?;
    let invalid = |reason| RingError::InvalidCount { count, reason };
    if count == 0 {
        return Err(invalid("a ring holds at least one element"));
    }
    let (size, capacity) = if flags.contains(RingFlags::EXACT_SZ) {
        // One slot stays empty so that full and empty differ: the array is the next power
        // of two above the count.
        let size = count
            .checked_add(1)
            .and_then(u32::checked_next_power_of_two)
            .filter(|s| *s <= RING_SIZE_MAX)
            .ok_or(invalid(
                "EXACT_SZ needs a power of two above it within 2^31 - 1",
            ))?;
        (size, count)
    } else {
        if !count.is_power_of_two() {
            return Err(invalid("not a power of two (use EXACT_SZ for any count)"));
        }
        if count > RING_SIZE_MAX {
            return Err(invalid("larger than 2^31 - 1"));
        }
        if count == 1 {
            return Err(invalid("a power-of-two ring of 1 slot holds nothing"));
        }
        (count, count - 1)
    };
    Ok(Geometry {
        size,
        capacity,
        esize,
        producer,
        consumer,
    })
}

fn checked_name(name: &str) -> Result<[u8; 32], RingError> {
    if name.len() > RING_NAME_MAX {
        return Err(RingError::NameTooLong {
            name: name.to_owned(),
            len: name.len(),
            max: RING_NAME_MAX,
        });
    }
    if name.is_empty() || name.bytes().any(|b| b == 0) {
        return Err(RingError::InvalidName {
            name: name.to_owned(),
        });
    }
    let mut stored = [0u8; 32];
    stored[..name.len()].copy_from_slice(name.as_bytes());
    Ok(stored)
}

/// Bytes of memory a ring of `count` elements of `esize` bytes needs: the header plus the
/// slot array, rounded up to whole 128-byte blocks (DPDK's `rte_ring_get_memsize_elem`).
pub fn memory_size(count: u32, esize: u32, flags: RingFlags) -> Result<usize, RingError> {
    let g = geometry(count, esize, flags)?;
    let slots = g.size as usize * g.esize as usize;
    Ok((SLOTS_OFFSET + slots).div_ceil(CACHE_PAD) * CACHE_PAD)
}

/// Build a ring in the memory at `mem`, overwriting whatever is there.
///
/// Checks every argument before writing a byte, so bad input leaves the memory as it was.
/// The header is written with its magic 0, then the magic is stored with `Release`: an
/// [`RawRing::attach`] that finds it sees the whole header.
///
/// # Safety
/// `mem` is valid for writes of `len` bytes, and nothing else reads or writes them while
/// this runs.
pub unsafe fn init_in(
    mem: *mut u8,
    len: usize,
    name: &str,
    count: u32,
    esize: u32,
    flags: RingFlags,
) -> Result<(), RingError> {
    let needed = memory_size(count, esize, flags)?;
    let g = geometry(count, esize, flags)?;
    let name = checked_name(name)?;
    let region_error = |reason: String| RingError::BadRegion {
        addr: mem as usize,
        len,
        reason,
    };
    if mem.is_null() || !(mem as usize).is_multiple_of(CACHE_PAD) {
        return Err(region_error(format!("not aligned to {CACHE_PAD} bytes")));
    }
    if len < needed {
        return Err(region_error(format!("too small, {needed} bytes needed")));
    }
    // RTS's default distance: an eighth of the capacity (DPDK's default).
    let htd_max = g.capacity / 8;
    let layout = |sync: SyncType| Layout::for_side(flags, sync);
    let (prod_sync, cons_sync) = (g.producer.sync_type(), g.consumer.sync_type());
    crate::sync::detect_prefetch_for_write();
    let header = RingHeader {
        meta: CachePadded(RingMeta {
            magic: AtomicU64::new(0),
            memory_size: needed as u64,
            name,
            flags: flags.bits(),
            size: g.size,
            mask: g.size - 1,
            capacity: g.capacity,
            esize: g.esize,
            #[cfg(loom)]
            slot_cells: (0..g.size)
                .map(|_| crate::sync::ModelCell::new(()))
                .collect(),
        }),
        prod: HeadTail::new(prod_sync, htd_max, layout(prod_sync)),
        cons: HeadTail::new(cons_sync, htd_max, layout(cons_sync)),
    };
    let header_ptr = mem.cast::<RingHeader>();
    // SAFETY: mem is 128-aligned (checked), valid for len >= needed > size_of header
    // bytes, and exclusively ours (the caller's contract).
    unsafe { ptr::write(header_ptr, header) };
    // SAFETY: the header was just written at header_ptr, initialised and aligned; shared
    // from here on only through atomics and fields nothing writes after initialisation.
    let written = unsafe { &*header_ptr };
    // Release: every field written above happens before whatever an attach that loads the
    // magic with Acquire and finds it reads next.
    written.meta.magic.store(RING_MAGIC, Ordering::Release);
    Ok(())
}

/// A side's head position and the room left kept beside it (0 where claims keep none).
fn head_and_room_left(side: &HeadTail) -> (u32, u32) {
    match side.sync_type() {
        // Both positions live in the tail word: the head is its high half.
        SyncType::MtHts => ((side.tail.word.load(Ordering::Acquire) >> 32) as u32, 0),
        // The high half counts head moves.
        SyncType::MtRts => (side.head_word().load(Ordering::Acquire) as u32, 0),
        SyncType::St | SyncType::Mt => {
            let word = side.head_word().load(Ordering::Acquire);
            let room = if side.layout().cached {
                (word >> 32) as u32 & !OPEN_CLAIM
            } else {
                0
            };
            (word as u32, room)
        }
    }
}

/// A handle on a ring living in a block of memory `M`.
pub struct RawRing<M: RingMemory = HeapRegion> {
    /// The header at the start of `memory`, with provenance over the whole block (the
    /// slots are reached through it).
    header: NonNull<RingHeader>,
    memory: M,
    /// Whether this handle built the ring (and, under loom, must drop its atomics).
    #[cfg_attr(not(loom), allow(dead_code))]
    created: bool,
}

// SAFETY: the handle is a pointer into memory M owns; every access to the shared bytes
// goes through atomics or through slots claimed by the head/tail protocol.
unsafe impl<M: RingMemory + Send> Send for RawRing<M> {}
// SAFETY: as above; &RawRing operations are the ring protocol itself.
unsafe impl<M: RingMemory + Sync> Sync for RawRing<M> {}

impl RawRing<HeapRegion> {
    /// A ring of `count` elements of `esize` bytes in a fresh heap block.
    pub fn new(name: &str, count: u32, esize: u32, flags: RingFlags) -> Result<Self, RingError> {
        let bytes = memory_size(count, esize, flags)?;
        checked_name(name)?;
        let memory = HeapRegion::zeroed(bytes).ok_or_else(|| RingError::OutOfMemory {
            name: name.to_owned(),
            bytes,
        })?;
        RawRing::create_in(memory, name, count, esize, flags)
    }
}

impl<M: RingMemory> RawRing<M> {
    /// Build a ring in `memory` and return the handle that owns it.
    pub fn create_in(
        memory: M,
        name: &str,
        count: u32,
        esize: u32,
        flags: RingFlags,
    ) -> Result<Self, RingError> {
        let base = memory.base();
        // SAFETY: RingMemory guarantees base is valid for len() bytes, and we own `memory`,
        // so nothing else uses it while the ring is built.
        unsafe { init_in(base.as_ptr(), memory.len(), name, count, esize, flags)? };
        Ok(RawRing {
            header: base.cast(),
            memory,
            created: true,
        })
    }

    /// A handle on a ring another handle (maybe in another process) built in `memory`.
    pub fn attach(memory: M) -> Result<Self, RingError> {
        let base = memory.base();
        let len = memory.len();
        let bad = |reason: String| RingError::BadRegion {
            addr: base.as_ptr() as usize,
            len,
            reason,
        };
        if !(base.as_ptr() as usize).is_multiple_of(CACHE_PAD) {
            return Err(bad(format!("not aligned to {CACHE_PAD} bytes")));
        }
        if len < SLOTS_OFFSET {
            return Err(bad("smaller than a ring header".to_owned()));
        }
        let header = base.cast::<RingHeader>();
        // SAFETY: base is aligned and valid for a header's bytes (checked), and every bit
        // pattern is a valid header: integers, atomics and a byte array (the loom build, whose
        // header holds loom's handles, only attaches to rings it built).
        let magic = unsafe { header.as_ref() }
            .meta
            .magic
            .load(Ordering::Acquire);
        // Acquire pairs with init_in's Release store of the magic: with it found, the
        // fields checked and used below are the ones init_in wrote.
        if magic != RING_MAGIC {
            return Err(RingError::NotARing { magic });
        }
        crate::sync::detect_prefetch_for_write();
        let ring = RawRing {
            header,
            memory,
            created: false,
        };
        // The data path trusts the sizes (slot indexes) and each side's recorded mode and
        // layout (which word it moves): refuse a header that `init_in` would not have written.
        let meta = ring.meta();
        let flags = RingFlags::from_bits_retain(meta.flags);
        let count = if flags.contains(RingFlags::EXACT_SZ) {
            meta.capacity
        } else {
            meta.size
        };
        let g = geometry(count, meta.esize, flags)
            .map_err(|e| bad(format!("holds a ring no build makes: {e}")))?;
        let needed = memory_size(count, meta.esize, flags)?;
        if (g.size, g.capacity, needed as u64) != (meta.size, meta.capacity, meta.memory_size)
            || meta.mask != meta.size.wrapping_sub(1)
        {
            return Err(bad(format!(
                "holds inconsistent sizes: {} slots, mask {:#x}, capacity {}, {} bytes",
                meta.size, meta.mask, meta.capacity, meta.memory_size
            )));
        }
        let sides = [
            (Side::Producer, g.producer.sync_type()),
            (Side::Consumer, g.consumer.sync_type()),
        ];
        for (which, sync) in sides {
            let side = ring.side(which);
            if side.sync_type() != sync || side.layout() != Layout::for_side(flags, sync) {
                return Err(bad(format!(
                    "holds a {} side ({:?}, {:?}) its flags {flags:?} do not give",
                    which.name(),
                    side.sync_type(),
                    side.layout()
                )));
            }
        }
        if needed > len {
            return Err(bad(format!("holds a ring of {needed} bytes")));
        }
        ring.check_positions(g.capacity).map_err(bad)?;
        Ok(ring)
    }

    /// Refuses head and tail positions that no ring in use shows, which the data path would
    /// turn into a room larger than the ring and so into copies past the slot array.
    ///
    /// In use, whatever operations are in flight, positions (modulo 2^32, from the consumers'
    /// tail) keep `cons tail <= cons head <= prod tail <= prod head <= cons tail + capacity`,
    /// and a room left kept beside a head never reaches past the other side's tail (the
    /// consumers' `head + room <= prod tail`, the producers' `head + room <= cons tail +
    /// capacity`). Each position only moves forward, so reading them in this order — each
    /// side's tail before its head, the consumers' first, and the consumers' tail once more
    /// at the end for the bounds that need it later — checks them without a false refusal
    /// while other threads or processes work on the ring.
    fn check_positions(&self, capacity: u32) -> Result<(), String> {
        let (prod, cons) = (self.prod(), self.cons());
        let cons_tail = cons.tail_position(Ordering::Acquire);
        let (cons_head, cons_room) = head_and_room_left(cons);
        let prod_tail = prod.tail_position(Ordering::Acquire);
        let (prod_head, prod_room) = head_and_room_left(prod);
        let cons_tail_later = cons.tail_position(Ordering::Acquire);
        let from = |pos: u32| u64::from(pos.wrapping_sub(cons_tail));
        let limit = from(cons_tail_later) + u64::from(capacity);
        let consistent = from(cons_head) <= from(prod_tail)
            && from(prod_tail) <= from(prod_head)
            && from(prod_head) + u64::from(prod_room) <= limit
            && from(cons_head) + u64::from(cons_room) <= from(prod_tail);
        if consistent {
            return Ok(());
        }
        Err(format!(
            "holds positions no ring in use shows: producers head {prod_head} (room left \
             {prod_room}) tail {prod_tail}, consumers head {cons_head} (room left {cons_room}) \
             tail {cons_tail}, capacity {capacity}"
        ))
    }

    /// The block the ring lives in.
    pub fn memory(&self) -> &M {
        &self.memory
    }

    #[inline(always)]
    fn header(&self) -> &RingHeader {
        // SAFETY: header points at an initialised RingHeader inside memory, which lives
        // as long as self; its shared parts are atomics or never written after init.
        unsafe { self.header.as_ref() }
    }

    #[inline(always)]
    pub(crate) fn meta(&self) -> &RingMeta {
        &self.header().meta.0
    }

    #[inline(always)]
    pub(crate) fn prod(&self) -> &HeadTail {
        &self.header().prod
    }

    #[inline(always)]
    pub(crate) fn cons(&self) -> &HeadTail {
        &self.header().cons
    }

    /// The head and tail of `side`.
    #[inline(always)]
    pub(crate) fn side(&self, side: Side) -> &HeadTail {
        side.of(self.header())
    }

    /// Slot 0, as units of `S`.
    #[inline(always)]
    pub(crate) fn slots<S>(&self) -> *mut S {
        // SAFETY: SLOTS_OFFSET is within the block (init_in checked len >= memory_size).
        unsafe { self.header.as_ptr().cast::<u8>().add(SLOTS_OFFSET).cast() }
    }

    /// The ring's name.
    pub fn name(&self) -> &str {
        let raw = &self.meta().name;
        let len = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
        core::str::from_utf8(&raw[..len]).unwrap_or("<not utf-8>")
    }

    /// The creation flags.
    pub fn flags(&self) -> RingFlags {
        RingFlags::from_bits_retain(self.meta().flags)
    }

    /// Slots in the array (a power of two).
    pub fn size(&self) -> u32 {
        self.meta().size
    }

    /// Most elements the ring holds.
    pub fn capacity(&self) -> u32 {
        self.meta().capacity
    }

    /// Bytes per element.
    pub fn esize(&self) -> u32 {
        self.meta().esize
    }

    /// Bytes of the block the ring occupies.
    pub fn memory_size(&self) -> usize {
        self.meta().memory_size as usize
    }

    /// The producers' mode.
    pub fn producer_mode(&self) -> ProducerMode {
        ProducerMode::from_sync(self.prod().sync_type())
    }

    /// The consumers' mode.
    pub fn consumer_mode(&self) -> ConsumerMode {
        ConsumerMode::from_sync(self.cons().sync_type())
    }

    /// Elements in the ring (a snapshot when other threads are at work).
    pub fn count(&self) -> u32 {
        let prod = self.prod().tail_position(Ordering::Relaxed);
        let cons = self.cons().tail_position(Ordering::Relaxed);
        prod.wrapping_sub(cons).min(self.capacity())
    }

    /// Free slots (a snapshot).
    pub fn free_count(&self) -> u32 {
        self.capacity() - self.count()
    }

    /// Whether the ring is full (a snapshot).
    pub fn is_full(&self) -> bool {
        self.free_count() == 0
    }

    /// Whether the ring is empty (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// Empty the ring: heads and tails back to 0.
    ///
    /// # Safety
    /// No other thread or process is using the ring.
    pub unsafe fn reset(&self) {
        self.prod().reset();
        self.cons().reset();
    }

    /// The head-tail distance limit of side `which`, or [`RingError::NotRts`] when the side
    /// is not RTS and has none.
    fn htd_max(&self, which: Side) -> Result<&AtomicU32, RingError> {
        let side = self.side(which);
        if side.sync_type() != SyncType::MtRts {
            return Err(RingError::NotRts {
                name: self.name().to_owned(),
                side: which.name(),
            });
        }
        Ok(&side.head.htd_max)
    }

    /// The RTS producers' head-tail distance limit.
    pub fn prod_htd_max(&self) -> Result<u32, RingError> {
        Ok(self.htd_max(Side::Producer)?.load(Ordering::Relaxed))
    }

    /// Set the RTS producers' head-tail distance limit (0 serialises them fully).
    pub fn set_prod_htd_max(&self, max: u32) -> Result<(), RingError> {
        self.htd_max(Side::Producer)?.store(max, Ordering::Relaxed);
        Ok(())
    }

    /// The RTS consumers' head-tail distance limit.
    pub fn cons_htd_max(&self) -> Result<u32, RingError> {
        Ok(self.htd_max(Side::Consumer)?.load(Ordering::Relaxed))
    }

    /// Set the RTS consumers' head-tail distance limit.
    pub fn set_cons_htd_max(&self, max: u32) -> Result<(), RingError> {
        self.htd_max(Side::Consumer)?.store(max, Ordering::Relaxed);
        Ok(())
    }

    /// A multi-line description of the ring's state (DPDK's `rte_ring_dump`).
    pub fn dump(&self) -> String {
        let side = |ht: &HeadTail| {
            format!(
                "head={} tail={} sync={:?}",
                ht.head_position(),
                ht.tail_position(Ordering::Relaxed),
                ht.sync_type()
            )
        };
        format!(
            "ring <{}>@{:p}\n  flags={:#x}\n  size={}\n  capacity={}\n  esize={}\n  \
             producer {:?}: {}\n  consumer {:?}: {}\n  used={}\n  avail={}\n",
            self.name(),
            self.header,
            self.meta().flags,
            self.size(),
            self.capacity(),
            self.esize(),
            self.producer_mode(),
            side(self.prod()),
            self.consumer_mode(),
            side(self.cons()),
            self.count(),
            self.free_count()
        )
    }

    // ---- the data path ------------------------------------------------------------

    /// What the data path needs of the header (see [`RingView`]).
    #[inline(always)]
    pub(crate) fn view(&self) -> RingView<'_> {
        // SAFETY: the header of this ring, at the start of its block (header pointer with
        // provenance over the whole block), which lives as long as the borrow of self.
        unsafe { RingView::new(self.header) }
    }

    /// The sync a per-call SP/MP (SC/MC) choice maps to on a side: the choice on an ST/MT
    /// side (`single_thread`: SP or SC was asked), the side's own (thread-safe) mode on RTS
    /// and HTS sides, whose head words classic MT must not touch.
    ///
    /// The choice is a `bool`, not the asked mode's [`SyncType`]: the two give the same
    /// result, but with a `SyncType` (or any two-valued enum) the compiler arranged the mode
    /// dispatch after it worse: up to 5 more instructions per raw enqueue or dequeue, with or
    /// without a per-call mode.
    #[inline(always)]
    pub(crate) fn per_call_sync(side: &HeadTail, single_thread: bool) -> SyncType {
        match side.sync_type() {
            s @ (SyncType::MtRts | SyncType::MtHts) => s,
            _ if single_thread => SyncType::St,
            _ => SyncType::Mt,
        }
    }

    fn check_len(&self, bytes: usize, n: u32) {
        let needed = n as usize * self.esize() as usize;
        assert!(
            bytes >= needed,
            "ring {}: buffer of {bytes} bytes for {n} elements of {} bytes",
            self.name(),
            self.esize()
        );
    }

    /// Enqueue the first `n` elements of `objs` (bytes, `esize` each) in the producer
    /// mode `mode` (`None`: the ring's own). Returns how many went in (`Fixed`: 0 or `n`)
    /// and the free slots left (a lower bound on a ring with
    /// [`RingFlags::CACHED_OTHER_TAIL`]).
    ///
    /// # Safety
    /// When the mode in effect or the side's own mode is SP, no other enqueue on this ring
    /// is in flight (from another thread, or a peek or zero-copy start of this one not yet
    /// finished).
    ///
    /// # Panics
    /// When `objs` is shorter than `n * esize` bytes.
    pub unsafe fn enqueue_elems(
        &self,
        objs: &[u8],
        n: u32,
        behavior: Behavior,
        mode: Option<ProducerMode>,
    ) -> (u32, u32) {
        self.check_len(objs.len(), n);
        let sync = match mode {
            None => self.prod().sync_type(),
            Some(m) => Self::per_call_sync(self.prod(), m == ProducerMode::Sp),
        };
        // SAFETY: objs holds n * esize bytes (checked); the ST exclusivity is the caller's
        // contract.
        let claim = unsafe {
            self.view()
                .enqueue_from(sync, objs.as_ptr(), self.esize() as usize, n, behavior)
        };
        (claim.n, claim.room - claim.n)
    }

    /// Dequeue up to `n` elements into `objs` in consumer mode `mode` (`None`: the ring's
    /// own). Returns how many came out and how many are left (a lower bound with
    /// `CACHED_OTHER_TAIL`).
    ///
    /// # Safety
    /// When the mode in effect or the side's own mode is SC, no other dequeue on this ring
    /// is in flight (from another thread, or a peek or zero-copy start of this one not yet
    /// finished).
    ///
    /// # Panics
    /// When `objs` is shorter than `n * esize` bytes.
    pub unsafe fn dequeue_elems(
        &self,
        objs: &mut [u8],
        n: u32,
        behavior: Behavior,
        mode: Option<ConsumerMode>,
    ) -> (u32, u32) {
        self.check_len(objs.len(), n);
        let sync = match mode {
            None => self.cons().sync_type(),
            Some(m) => Self::per_call_sync(self.cons(), m == ConsumerMode::Sc),
        };
        // SAFETY: objs has room for n * esize bytes (checked); the SC exclusivity is the
        // caller's contract.
        let claim = unsafe {
            self.view()
                .dequeue_into(sync, objs.as_mut_ptr(), self.esize() as usize, n, behavior)
        };
        (claim.n, claim.room - claim.n)
    }
}

impl<M: RingMemory> Drop for RawRing<M> {
    fn drop(&mut self) {
        // loom's atomics are handles into the model's state and must be dropped; the real
        // ones are plain words and the memory's owner frees the block.
        #[cfg(loom)]
        if self.created {
            // SAFETY: this handle built the header and is the last user (loom tests keep
            // one owning handle, shared through Arc).
            unsafe { ptr::drop_in_place(self.header.as_ptr()) };
        }
    }
}

impl<M: RingMemory> fmt::Debug for RawRing<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawRing")
            .field("name", &self.name())
            .field("size", &self.size())
            .field("capacity", &self.capacity())
            .field("esize", &self.esize())
            .field("producer", &self.producer_mode())
            .field("consumer", &self.consumer_mode())
            .field("count", &self.count())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::Ring;

    /// (head word beside the tail, head word on the head block), low 32 bits.
    fn head_words(side: &HeadTail) -> (u32, u32) {
        (
            side.tail.head.load(Ordering::Relaxed) as u32,
            side.head.pos.load(Ordering::Relaxed) as u32,
        )
    }

    /// Where each side's head lives after some traffic, in every layout and every mode with
    /// a head word (HTS keeps its head in the tail word), through the raw per-call API
    /// (which looks the layout up on each call) and the typed handles (which decode it once):
    /// beside the tail only for the multi-thread sides of a ring that asks.
    #[test]
    fn heads_live_beside_tails_only_on_multi_thread_sides_of_rings_that_ask() {
        for modes in [
            RingFlags::NONE,
            RingFlags::SP_ENQ | RingFlags::SC_DEQ,
            RingFlags::MP_RTS_ENQ | RingFlags::MC_RTS_DEQ,
        ] {
            for layout in [
                RingFlags::NONE,
                RingFlags::CACHED_OTHER_TAIL,
                RingFlags::HEAD_TAIL_TOGETHER | RingFlags::CACHED_OTHER_TAIL,
            ] {
                let flags = modes | layout;
                let ring = Ring::<u64>::new("where", 16, flags).unwrap();
                ring.producer().unwrap().enqueue_bulk(&[1, 2, 3, 4]);
                ring.consumer().unwrap().dequeue_bulk(&mut [0u64; 1]);
                let raw = ring.raw();
                // SAFETY: one thread uses the ring.
                let (n, _) = unsafe { raw.enqueue_elems(&[0u8; 8], 1, Behavior::Fixed, None) };
                assert_eq!(n, 1);
                let mut one = [0u8; 8];
                // SAFETY: one thread uses the ring.
                let (n, _) = unsafe { raw.dequeue_elems(&mut one, 1, Behavior::Fixed, None) };
                assert_eq!(n, 1);
                let together = flags.contains(RingFlags::HEAD_TAIL_TOGETHER)
                    && !flags.contains(RingFlags::SP_ENQ);
                for (side, pos) in [(raw.prod(), 5), (raw.cons(), 2)] {
                    let expected = if together { (pos, 0) } else { (0, pos) };
                    assert_eq!(head_words(side), expected, "{flags:?}");
                    assert_eq!(side.head_position(), pos);
                    assert_eq!(side.tail_position(Ordering::Relaxed), pos);
                }
                assert_eq!(raw.count(), 3);
            }
        }
    }

    /// A second handle on `ring`'s block, as another process's mapping would be.
    struct View(NonNull<u8>, usize);

    // SAFETY: the tests use a view only while the ring that owns the block lives.
    unsafe impl RingMemory for View {
        fn base(&self) -> NonNull<u8> {
            self.0
        }
        fn len(&self) -> usize {
            self.1
        }
    }

    fn view_of(ring: &RawRing) -> View {
        View(ring.memory().base(), ring.memory_size())
    }

    /// Sets a side's head and tail positions (and the high half of its head word) as damage
    /// to the header would.
    fn set_positions(side: &HeadTail, head: u32, tail: u32, head_high: u32) {
        side.head_word()
            .store(pack(head, head_high), Ordering::Relaxed);
        side.tail.word.store(u64::from(tail), Ordering::Relaxed);
    }

    fn pack(low: u32, high: u32) -> u64 {
        (u64::from(high) << 32) | u64::from(low)
    }

    /// Positions no ring in use can show are refused: the data path computes the room from
    /// them and would move more elements than the slot array holds (a burst of 64 into an
    /// 8-slot ring whose consumers look 100 positions ahead took all 64, 59 of them written
    /// from slot 0 on, far past the end of the block).
    #[test]
    fn attach_refuses_positions_no_ring_in_use_shows() {
        let sp_sc = RingFlags::SP_ENQ | RingFlags::SC_DEQ;
        let cached = sp_sc | RingFlags::CACHED_OTHER_TAIL;
        // (flags, producer head, tail, room left; consumer head, tail, room left)
        let damaged = [
            // Consumers ahead of the producers.
            (sp_sc, (3, 3, 0), (100, 100, 0)),
            // Consumers have taken elements the producers have not published.
            (sp_sc, (5, 3, 0), (4, 2, 0)),
            // More elements in the ring than it holds.
            (sp_sc, (20, 20, 0), (0, 0, 0)),
            // A tail ahead of its head.
            (sp_sc, (3, 5, 0), (0, 0, 0)),
            // A room left beyond the room there is.
            (cached, (3, 3, 1000), (0, 0, 0)),
            (cached, (3, 3, 0), (1, 1, 5)),
        ];
        for (flags, prod, cons) in damaged {
            let ring = RawRing::new("damaged", 8, 4, flags).unwrap();
            set_positions(ring.prod(), prod.0, prod.1, prod.2);
            set_positions(ring.cons(), cons.0, cons.1, cons.2);
            let err = RawRing::attach(view_of(&ring))
                .map(|attached| attached.dump())
                .unwrap_err();
            assert!(
                err.to_string().contains("positions"),
                "{flags:?} {prod:?} {cons:?}: {err}"
            );
        }
    }

    /// What a ring in use shows is accepted: positions anywhere (here across the wrap at 2^32),
    /// and an operation in flight on a side (head ahead of tail, room left kept).
    #[test]
    fn attach_accepts_positions_of_a_ring_in_use() {
        let near_wrap = u32::MAX - 2;
        let ring = RawRing::new("in use", 8, 4, RingFlags::CACHED_OTHER_TAIL).unwrap();
        set_positions(
            ring.prod(),
            near_wrap.wrapping_add(6),
            near_wrap.wrapping_add(4),
            1,
        );
        set_positions(ring.cons(), near_wrap.wrapping_add(1), near_wrap, 2);
        let attached = RawRing::attach(view_of(&ring)).unwrap();
        assert_eq!(attached.count(), 4);
        // The in-flight operations finish (as their threads would), then the ring works on
        // across the wrap.
        let finish = |side: &HeadTail| {
            side.tail
                .word
                .store(u64::from(side.head_position()), Ordering::Relaxed)
        };
        finish(ring.prod());
        finish(ring.cons());
        let mut out = [0u8; 4 * 5];
        // SAFETY: one thread uses the ring; the buffer has room for the elements asked for.
        let (taken, _) = unsafe { attached.dequeue_elems(&mut out, 5, Behavior::Fixed, None) };
        assert_eq!(taken, 5);
        // SAFETY: as above, the buffer holds them.
        let (put, _) = unsafe { attached.enqueue_elems(&[7; 4 * 7], 7, Behavior::Fixed, None) };
        assert_eq!(put, 7);
        // SAFETY: as above.
        let (over, _) = unsafe { attached.enqueue_elems(&[7; 4], 1, Behavior::Fixed, None) };
        assert_eq!(over, 0, "full at 7");
    }

    /// The memory a ring needs is its header and its slot array, in whole 128-byte blocks, as
    /// DPDK's `rte_ring_get_memsize_elem` computes it.
    #[test]
    fn memory_size_is_the_header_and_the_slots_rounded_up_to_128_bytes() {
        for (count, esize, flags, slots) in [
            (1024, 8, RingFlags::NONE, 1024 * 8),
            (1000, 4, RingFlags::EXACT_SZ, 1024 * 4),
            (2, 20, RingFlags::NONE, 2 * 20),
        ] {
            assert_eq!(
                memory_size(count, esize, flags).unwrap(),
                (SLOTS_OFFSET + slots).next_multiple_of(CACHE_PAD),
                "{count} x {esize} {flags:?}"
            );
        }
    }

    /// `attach` takes a region that holds the whole ring, however much bigger, and refuses one
    /// that is smaller than a header (reading one would run past it) or than the ring it holds.
    #[test]
    fn attach_takes_a_region_holding_the_ring_and_refuses_a_shorter_one() {
        let needed = memory_size(16, 8, RingFlags::NONE).unwrap();
        let region = HeapRegion::zeroed(needed + 4096).unwrap();
        let ring = RawRing::create_in(region, "roomy", 16, 8, RingFlags::NONE).unwrap();
        let base = ring.memory().base();
        let whole = RawRing::attach(View(base, needed + 4096)).unwrap();
        assert_eq!(whole.capacity(), 15);
        assert!(RawRing::attach(View(base, needed)).is_ok());
        for (len, says) in [
            (needed - 1, "holds a ring of"),
            (SLOTS_OFFSET, "holds a ring of"),
            (SLOTS_OFFSET - 1, "smaller than a ring header"),
            (8, "smaller than a ring header"),
        ] {
            let err = RawRing::attach(View(base, len)).unwrap_err();
            assert!(
                matches!(err, RingError::BadRegion { .. }) && err.to_string().contains(says),
                "{len} bytes: {err}"
            );
        }
    }

    /// An HTS ring in use keeps each side's head in the high half of its tail word: a second
    /// handle reads it from there, and finds the ring neither empty nor full, then full.
    #[test]
    fn attach_reads_an_hts_rings_heads_from_its_tail_words() {
        let flags = RingFlags::MP_HTS_ENQ | RingFlags::MC_HTS_DEQ;
        let ring = RawRing::new("hts", 8, 4, flags).unwrap();
        assert!(ring.is_empty() && !ring.is_full());
        // SAFETY: one thread uses the ring; the buffers hold the elements asked for.
        let (put, _) = unsafe { ring.enqueue_elems(&[1; 4 * 5], 5, Behavior::Fixed, None) };
        let mut out = [0u8; 4 * 2];
        // SAFETY: as above.
        let (taken, _) = unsafe { ring.dequeue_elems(&mut out, 2, Behavior::Fixed, None) };
        assert_eq!((put, taken), (5, 2));
        let attached = RawRing::attach(view_of(&ring)).unwrap();
        assert_eq!(attached.count(), 3);
        assert!(!attached.is_empty() && !attached.is_full());
        // SAFETY: as above.
        let (put, _) = unsafe { attached.enqueue_elems(&[2; 4 * 4], 4, Behavior::Fixed, None) };
        assert_eq!(put, 4);
        assert!(attached.is_full() && !attached.is_empty());
        let shown = format!("{attached:?}");
        assert!(
            shown.contains("\"hts\"") && shown.contains("count: 7"),
            "the debug form names the ring and its count: {shown}"
        );
    }

    /// A per-call SP (SC) choice on an HTS side runs the side's own HTS protocol: its head
    /// stays in the high half of its tail word, where the next HTS call looks for it.
    #[test]
    fn a_per_call_single_thread_choice_keeps_an_hts_side_in_its_own_protocol() {
        let flags = RingFlags::MP_HTS_ENQ | RingFlags::MC_HTS_DEQ;
        let ring = RawRing::new("hts per call", 8, 4, flags).unwrap();
        // SAFETY: one thread uses the ring; the buffers hold the elements asked for.
        let (put, _) =
            unsafe { ring.enqueue_elems(&[1; 4 * 3], 3, Behavior::Fixed, Some(ProducerMode::Sp)) };
        let mut out = [0u8; 4];
        // SAFETY: as above.
        let (taken, _) =
            unsafe { ring.dequeue_elems(&mut out, 1, Behavior::Fixed, Some(ConsumerMode::Sc)) };
        assert_eq!((put, taken), (3, 1));
        for (side, pos) in [(ring.prod(), 3), (ring.cons(), 1)] {
            assert_eq!(side.sync_type(), SyncType::MtHts);
            assert_eq!(side.tail.word.load(Ordering::Relaxed), pack(pos, pos));
            assert_eq!(side.head_position(), pos);
        }
        // SAFETY: as above.
        let (put, _) = unsafe { ring.enqueue_elems(&[2; 4], 1, Behavior::Fixed, None) };
        assert_eq!((put, ring.count()), (1, 3));
    }

    /// The RTS consumers' limit reads back what was set.
    #[test]
    fn the_rts_consumers_head_tail_distance_reads_back() {
        let flags = RingFlags::MP_RTS_ENQ | RingFlags::MC_RTS_DEQ;
        let ring = RawRing::new("rts limits", 64, 8, flags).unwrap();
        ring.set_cons_htd_max(5).unwrap();
        ring.set_prod_htd_max(2).unwrap();
        assert_eq!((ring.prod_htd_max(), ring.cons_htd_max()), (Ok(2), Ok(5)));
    }

    /// A buffer shorter than the elements asked for is refused before a byte is copied.
    #[test]
    #[should_panic(expected = "buffer of 7 bytes for 2 elements of 4 bytes")]
    fn a_buffer_shorter_than_the_elements_asked_for_panics() {
        let ring = RawRing::new("short", 8, 4, RingFlags::NONE).unwrap();
        let objs = [0u8; 16];
        // SAFETY: one thread uses the ring; the call must refuse the short buffer.
        unsafe { ring.enqueue_elems(&objs[..7], 2, Behavior::Fixed, None) };
    }

    /// A per-call MP choice on a multi-thread side is the thread-safe path: two threads
    /// enqueueing with it at once lose and duplicate nothing.
    #[test]
    fn per_call_multi_producer_enqueues_from_two_threads_lose_nothing() {
        const EACH: u32 = 100_000;
        let ring = RawRing::new("mp per call", 1 << 18, 4, RingFlags::NONE).unwrap();
        std::thread::scope(|s| {
            for t in 0..2u32 {
                let ring = &ring;
                s.spawn(move || {
                    for i in 0..EACH {
                        let value = (t * EACH + i).to_ne_bytes();
                        // SAFETY: the buffer holds one element; MP is safe from any thread.
                        let (put, _) = unsafe {
                            ring.enqueue_elems(&value, 1, Behavior::Fixed, Some(ProducerMode::Mp))
                        };
                        assert_eq!(put, 1);
                    }
                });
            }
        });
        assert_eq!(ring.count(), 2 * EACH);
        let mut out = vec![0u8; 4 * 2 * EACH as usize];
        // SAFETY: one thread uses the ring now; the buffer holds every element.
        let (taken, _) = unsafe { ring.dequeue_elems(&mut out, 2 * EACH, Behavior::Fixed, None) };
        assert_eq!(taken, 2 * EACH);
        let mut values: Vec<u32> = out
            .chunks_exact(4)
            .map(|b| u32::from_ne_bytes(b.try_into().unwrap()))
            .collect();
        values.sort_unstable();
        assert!(
            values.iter().copied().eq(0..2 * EACH),
            "lost or duplicated elements"
        );
    }
}
