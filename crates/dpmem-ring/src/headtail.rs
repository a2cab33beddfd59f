//! One side's head and tail, and how each sync mode moves them.
//!
//! A side (producers or consumers) claims slots by moving its **head**, works on them, and
//! publishes them to the other side by moving its **tail**. Positions are free-running
//! `u32`s; a position masked with the ring's `mask` is a slot index, and differences are
//! taken modulo 2^32, which is why a ring holds at most 2^31 slots.
//!
//! The other side only ever reads this side's tail, and reads it the same way whatever the
//! mode: the low 32 bits of [`TailBlock::word`] are the tail position. What the high bits
//! and the head word ([`HeadTail::head_word`]) hold depends on the mode:
//!
//! | mode | head word | `tail` (low 32 = position) |
//! | ---- | ---------- | -------------------------- |
//! | ST, MT | position, room left << 32 (0 unless cached), [`OPEN_CLAIM`] bit | position |
//! | RTS | position, count of head moves << 32 | position, count of finished moves << 32 |
//! | HTS | unused | position, head << 32 (one word, so head == tail is one load) |
//!
//! On a ring made with [`RingFlags::CACHED_OTHER_TAIL`](crate::RingFlags::CACHED_OTHER_TAIL),
//! an ST or MT claim that reads the other side's tail leaves in the high half of the head
//! word how much room that tail showed beyond the slots it took: the **room left**. The next
//! claim, by any thread of the side, starts from the word it loads anyway: when the room left
//! covers it, it takes its slots from there (and leaves the rest) without reading the other
//! side's cache line at all. Only a claim the room left does not cover reads the tail. The
//! other side's tail only moves forward, and the room left moves with the head in one word, in
//! the same store or compare-and-swap, less every claim that took from it: so it is never more
//! than there is. It may be less, by as much as the other side has freed since the tail was
//! read (counts reported are lower bounds); a claim it does not cover reads the tail again.
//!
//! The orderings follow DPDK's C11 model: a side reads the other side's tail with
//! `Acquire` (so the slots the other side wrote or emptied are seen) and publishes its own
//! tail with `Release` (so the slots it wrote or read are done before the other side sees
//! the move). Heads only order threads of the same side.

use crate::cache_padded::CachePadded;
use crate::config::{Behavior, RingFlags};
use crate::mode::SyncType;
use crate::sync::{prefetch_for_write, spin_wait, AtomicU32, AtomicU64, Ordering};

/// Where a side keeps its head, and whether its claims trust the room left in the head
/// word: what [`RingFlags::HEAD_TAIL_TOGETHER`](crate::RingFlags::HEAD_TAIL_TOGETHER) and
/// [`RingFlags::CACHED_OTHER_TAIL`](crate::RingFlags::CACHED_OTHER_TAIL) ask for, fixed at
/// initialisation. The flags allow three: [`Layout::APART`], [`Layout::APART_CACHED`] and
/// [`Layout::TOGETHER_CACHED`] — the last only for multi-thread sides (a single-thread side
/// of such a ring has its head apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The head word is beside the tail ([`TailBlock::head`]), not on a block of its own.
    pub(crate) together: bool,
    /// ST and MT claims keep and trust the room left (see the module docs).
    pub(crate) cached: bool,
}

impl Layout {
    /// DPDK's protocol on dpmem's default placement: heads apart, the other side's tail
    /// read by every claim.
    pub(crate) const APART: Layout = Layout {
        together: false,
        cached: false,
    };
    /// Heads apart, claims keep the room left: for pipelines that ask for it.
    pub(crate) const APART_CACHED: Layout = Layout {
        together: false,
        cached: true,
    };
    /// Heads beside tails, claims keep the room left: a mempool's multi-thread sides.
    pub(crate) const TOGETHER_CACHED: Layout = Layout {
        together: true,
        cached: true,
    };

    /// The layout a ring of `flags` gives its side of sync type `sync`: the rule `init_in`
    /// builds with and `attach` checks against. A single-thread side keeps its head apart
    /// whatever the flags (see [`RingFlags::HEAD_TAIL_TOGETHER`]). For flags `modes` accepts,
    /// it is one of the three layouts above.
    pub(crate) fn for_side(flags: RingFlags, sync: SyncType) -> Layout {
        Layout {
            together: flags.contains(RingFlags::HEAD_TAIL_TOGETHER) && sync != SyncType::St,
            cached: flags.contains(RingFlags::CACHED_OTHER_TAIL),
        }
    }
}

/// The head and tail of one side, each on a 128-byte block of its own — or, on a ring made
/// with [`RingFlags::HEAD_TAIL_TOGETHER`](crate::RingFlags::HEAD_TAIL_TOGETHER), together on
/// the tail's block, as DPDK keeps them.
///
/// Apart is better when one group of threads produces and another consumes. The other side
/// polls the tail; with the head on the same line, that read takes the line away from this
/// side, whose next head move must fetch it back before the tail store needs it again: two
/// transfers between cores per operation instead of one, the first under a
/// compare-and-swap. (On two cores with bulks of 8 this took SP/SC from about 8 to 4–6 cycles
/// per element and MP/MC from 22–39 to 16–18.)
///
/// Together is better when every thread both enqueues and dequeues, as on a mempool's ring.
/// Then the threads of one side fight over the head *and* the tail, and two lines bounce
/// between cores where one would (mempool rows without a cache, two cores, medians of
/// alternating runs: about 0.85 of DPDK's rate apart, about 1.0 together; with the room
/// left kept, 0.79–5.0x apart and 0.91–5.3x together, together ahead in most rows). A
/// single-thread side keeps its head apart on every ring: its one thread contends with
/// nobody for it.
///
/// The tail's word stays where it is in every layout, so the other side reads it the same
/// way; only this side's own threads look for the head. HTS keeps both positions in the tail word and
/// its head block only holds the settings.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct HeadTail {
    /// The head (unless it is kept with the tail) and the side's settings.
    pub(crate) head: CachePadded<HeadBlock>,
    /// What the other side may use, and the head when the two are kept together.
    pub(crate) tail: CachePadded<TailBlock>,
}

/// The block of a side that the other side never reads.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct HeadBlock {
    /// Where the next claim starts (see the module table for RTS's count), unless
    /// `head_with_tail` is set.
    pub(crate) pos: AtomicU64,
    /// A [`SyncType`], fixed at initialisation.
    pub(crate) sync: u32,
    /// RTS only: how far the head may run ahead of the tail before new claims wait.
    pub(crate) htd_max: AtomicU32,
    /// Non-zero while a single-thread side has its one typed handle.
    pub(crate) handle_taken: AtomicU32,
    /// Non-zero when the head is [`TailBlock::head`] rather than `pos`; fixed at
    /// initialisation.
    pub(crate) head_with_tail: u32,
    /// Non-zero when ST and MT claims keep the room left in the head word; fixed at
    /// initialisation.
    pub(crate) cached_other_tail: u32,
}

/// The block the other side reads.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct TailBlock {
    /// Every position before the low 32 bits is published (see the module table).
    pub(crate) word: AtomicU64,
    /// The head, when this side keeps head and tail together (a multi-thread side of a ring
    /// with `HEAD_TAIL_TOGETHER`).
    pub(crate) head: AtomicU64,
}

/// Slots claimed by a head move.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Claim {
    /// Position of the first claimed slot.
    pub(crate) start: u32,
    /// How many were claimed (0 when nothing could be).
    pub(crate) n: u32,
    /// Free slots (producer) or filled slots (consumer) seen before the move: on a side
    /// that keeps the room left ([`Layout::cached`]), at least this many rather than
    /// exactly.
    pub(crate) room: u32,
}

#[inline(always)]
fn low(word: u64) -> u32 {
    word as u32
}

#[inline(always)]
fn high(word: u64) -> u32 {
    (word >> 32) as u32
}

#[inline(always)]
fn pack(low: u32, high: u32) -> u64 {
    (u64::from(high) << 32) | u64::from(low)
}

/// The top bit of a single-thread side's head word while a peek or zero-copy claim is open
/// (the head itself is the low half, the room left the other 31 bits of the high half:
/// rooms are below 2^31, as rings are). Marking the claim in the word every claim loads
/// anyway lets the next claim notice an abandoned one at no cost (reading the tail as well
/// cost a load per operation).
pub(crate) const OPEN_CLAIM: u32 = 1 << 31;

/// The bits of the head word's high half that hold the room left.
const ROOM_LEFT: u32 = OPEN_CLAIM - 1;

/// Moves a single-thread side's head back to its tail, giving back an abandoned claim, and
/// returns the new head word (no room left: the next claim reads the other side's tail).
#[cold]
#[inline(never)]
fn give_back_open_claim(head_word: &AtomicU64, tail: u32) -> u64 {
    head_word.store(u64::from(tail), Ordering::Relaxed);
    u64::from(tail)
}

/// How many of `wanted` to take when `room` are available.
#[inline(always)]
fn fit(wanted: u32, room: u32, behavior: Behavior) -> u32 {
    if wanted <= room {
        wanted
    } else {
        match behavior {
            Behavior::Fixed => 0,
            Behavior::Variable => room,
        }
    }
}

/// Room for the claiming side: free slots for producers (`capacity` plus the consumers'
/// tail, minus our head), filled slots for consumers (`capacity` is 0: the producers' tail
/// minus our head). Modulo 2^32 both stay within `0..=capacity`.
#[inline(always)]
fn room(capacity: u32, other_tail: u32, head: u32) -> u32 {
    capacity.wrapping_add(other_tail).wrapping_sub(head)
}

impl HeadTail {
    pub(crate) fn new(sync: SyncType, htd_max: u32, layout: Layout) -> HeadTail {
        HeadTail {
            head: CachePadded(HeadBlock {
                pos: AtomicU64::new(0),
                sync: sync as u32,
                htd_max: AtomicU32::new(htd_max),
                handle_taken: AtomicU32::new(0),
                head_with_tail: u32::from(layout.together),
                cached_other_tail: u32::from(layout.cached),
            }),
            tail: CachePadded(TailBlock {
                word: AtomicU64::new(0),
                head: AtomicU64::new(0),
            }),
        }
    }

    /// Whether this side keeps its head beside its tail (fixed at initialisation).
    #[inline(always)]
    pub(crate) fn head_with_tail(&self) -> bool {
        self.head.head_with_tail != 0
    }

    /// This side's layout (fixed at initialisation).
    #[inline(always)]
    pub(crate) fn layout(&self) -> Layout {
        Layout {
            together: self.head_with_tail(),
            cached: self.head.cached_other_tail != 0,
        }
    }

    /// The word holding this side's head, on the head's block or beside the tail, for the
    /// paths that look the layout up as they go. The data path's [`HeadTail::move_head`]
    /// takes the layout as a constant instead: looking it up there put a load and a select
    /// in front of every head read, which cost about 1.5 cycles per element on one core.
    #[inline(always)]
    pub(crate) fn head_word(&self) -> &AtomicU64 {
        if self.head_with_tail() {
            &self.tail.head
        } else {
            &self.head.pos
        }
    }

    #[inline(always)]
    pub(crate) fn sync_type(&self) -> SyncType {
        SyncType::from_raw(self.head.sync)
    }

    /// The published tail position, as the other side sees it.
    #[inline(always)]
    pub(crate) fn tail_position(&self, order: Ordering) -> u32 {
        low(self.tail.word.load(order))
    }

    /// The head position (any mode), for counts and dumps.
    pub(crate) fn head_position(&self) -> u32 {
        match self.sync_type() {
            SyncType::MtHts => high(self.tail.word.load(Ordering::Relaxed)),
            _ => low(self.head_word().load(Ordering::Relaxed)),
        }
    }

    /// Put head and tail back to 0 (ring reset; no thread may be using the ring).
    pub(crate) fn reset(&self) {
        self.head_word().store(0, Ordering::Relaxed);
        self.tail.word.store(0, Ordering::Relaxed);
    }

    // ---- ST and MT ----------------------------------------------------------------

    /// Claim up to `n` slots, single-thread (`SINGLE`) or by CAS against other threads, on a
    /// side whose head is beside its tail when `TOGETHER` and that keeps the room left when
    /// `CACHED` (both must match the side's [`HeadTail::layout`]).
    #[inline(always)]
    pub(crate) fn move_head<const SINGLE: bool, const TOGETHER: bool, const CACHED: bool>(
        &self,
        other: &HeadTail,
        capacity: u32,
        n: u32,
        behavior: Behavior,
    ) -> Claim {
        debug_assert_eq!(
            Layout {
                together: TOGETHER,
                cached: CACHED
            },
            self.layout()
        );
        let head_word = if TOGETHER {
            &self.tail.head
        } else {
            &self.head.pos
        };
        if !SINGLE {
            // The compare-and-swap below needs the line for writing: asking for it so now
            // saves fetching it shared for this load and then again, exclusive, for the CAS
            // when another core holds it (mempool rows without a cache, two cores: 4–8%
            // more objects per second).
            prefetch_for_write(head_word);
        }
        // Acquire: a head another thread moved came with the other side's tail it saw;
        // reading that tail afterwards must not see an older one, or the room computed
        // below could be larger than it is.
        let mut word = head_word.load(Ordering::Acquire);
        if SINGLE && high(word) & OPEN_CLAIM != 0 {
            // A peek or zero-copy claim is still open, so its reservation was leaked
            // (`mem::forget`; the safe API finishes or drops every other one, and the unsafe
            // one forbids claiming between a start and its finish). Claiming after it would
            // publish its unwritten slots: give it back first.
            word = give_back_open_claim(head_word, self.tail_position(Ordering::Relaxed));
        }
        loop {
            let head = low(word);
            let room_left = high(word) & ROOM_LEFT;
            // `n - 1 < room_left` is `n <= room_left` except for n = 0, which asks for the
            // room itself (DPDK's free-space idiom): that one reads the tail.
            let room = if CACHED && n.wrapping_sub(1) < room_left {
                // What a claim read from the other side's tail, less what claims took since:
                // no more than there is (tails only move forward), enough for this one. The
                // Acquire load of the word pairs with the Release that stored it, by a
                // thread that had read that tail with Acquire: the slots it vouches for are
                // visible to us as well.
                room_left
            } else {
                // Acquire pairs with the other side's Release of its tail: the slots it
                // wrote (or emptied) are visible before we read (or overwrite) them.
                room(capacity, other.tail_position(Ordering::Acquire), head)
            };
            let take = fit(n, room, behavior);
            if take == 0 {
                return Claim {
                    start: head,
                    n: 0,
                    room,
                };
            }
            let new_head = head.wrapping_add(take);
            let new_word = if CACHED {
                pack(new_head, room - take)
            } else {
                u64::from(new_head)
            };
            if SINGLE {
                // Release when the word carries a room left: a multi-thread claim on this
                // side may later trust it (a per-call MP operation after an SP one), and must
                // then see what the tail it came from vouched for. Relaxed otherwise: the
                // head alone orders nothing for the other side.
                let order = if CACHED {
                    Ordering::Release
                } else {
                    Ordering::Relaxed
                };
                head_word.store(new_word, order);
                return Claim {
                    start: head,
                    n: take,
                    room,
                };
            }
            // The whole word is compared: a claim made since moved the head and the room
            // left together.
            match head_word.compare_exchange(word, new_word, Ordering::Release, Ordering::Acquire) {
                Ok(_) => {
                    return Claim {
                        start: head,
                        n: take,
                        room,
                    }
                }
                Err(now) => word = now,
            }
        }
    }

    /// Publish the slots `start..start + n` claimed by [`HeadTail::move_head`].
    #[inline(always)]
    pub(crate) fn update_tail<const SINGLE: bool>(&self, start: u32, n: u32) {
        if !SINGLE {
            // Claims publish in the order they were made: wait for the threads that
            // claimed before us. (This is the wait that can livelock when one of them is
            // preempted; see the crate docs.) Acquire: our Release store below must carry
            // the earlier claims' slot writes to consumers too, and a plain store continues no
            // release sequence, so we take them over here (free on x86).
            while self.tail_position(Ordering::Acquire) != start {
                spin_wait();
            }
        }
        self.tail
            .word
            .store(u64::from(start.wrapping_add(n)), Ordering::Release);
    }

    // ---- HTS --------------------------------------------------------------------------

    /// Wait until no operation is in flight on this side, then return (head, tail word).
    #[inline(always)]
    fn hts_wait_idle(&self) -> u64 {
        loop {
            let word = self.tail.word.load(Ordering::Acquire);
            if low(word) == high(word) {
                return word;
            }
            spin_wait();
        }
    }

    /// HTS claim: wait until the side is idle, then move the head in the shared word.
    #[inline(always)]
    pub(crate) fn hts_move_head(
        &self,
        other: &HeadTail,
        capacity: u32,
        n: u32,
        behavior: Behavior,
    ) -> Claim {
        loop {
            let word = self.hts_wait_idle();
            let head = high(word);
            let room = room(capacity, other.tail_position(Ordering::Acquire), head);
            let take = fit(n, room, behavior);
            if take == 0 {
                return Claim {
                    start: head,
                    n: 0,
                    room,
                };
            }
            let new_word = pack(low(word), head.wrapping_add(take));
            if self
                .tail
                .word
                .compare_exchange(word, new_word, Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                return Claim {
                    start: head,
                    n: take,
                    room,
                };
            }
        }
    }

    /// HTS publish: head and tail both at `start + n`, the side idle again.
    #[inline(always)]
    pub(crate) fn hts_update_tail(&self, start: u32, n: u32) {
        let pos = start.wrapping_add(n);
        self.tail.word.store(pack(pos, pos), Ordering::Release);
    }

    // ---- RTS --------------------------------------------------------------------------

    /// RTS claim: wait while the head is too far ahead of the tail, then CAS (position,
    /// count) forward.
    #[inline(always)]
    pub(crate) fn rts_move_head(
        &self,
        other: &HeadTail,
        capacity: u32,
        n: u32,
        behavior: Behavior,
    ) -> Claim {
        let htd_max = self.head.htd_max.load(Ordering::Relaxed);
        loop {
            // Bounding the distance keeps a preempted thread from stalling everyone for
            // long: at most htd_max slots can be claimed past its unfinished ones.
            let mut head = self.head_word().load(Ordering::Acquire);
            while low(head).wrapping_sub(self.tail_position(Ordering::Relaxed)) > htd_max {
                spin_wait();
                head = self.head_word().load(Ordering::Acquire);
            }
            let room = room(capacity, other.tail_position(Ordering::Acquire), low(head));
            let take = fit(n, room, behavior);
            if take == 0 {
                return Claim {
                    start: low(head),
                    n: 0,
                    room,
                };
            }
            let new_head = pack(low(head).wrapping_add(take), high(head).wrapping_add(1));
            if self
                .head_word()
                .compare_exchange(head, new_head, Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                return Claim {
                    start: low(head),
                    n: take,
                    room,
                };
            }
        }
    }

    /// RTS publish: count this operation as finished; whoever finishes the last claim made
    /// so far moves the tail position up to the head.
    #[inline(always)]
    pub(crate) fn rts_update_tail(&self) {
        let mut tail = self.tail.word.load(Ordering::Acquire);
        loop {
            let head = self.head_word().load(Ordering::Relaxed);
            let finished = high(tail).wrapping_add(1);
            let pos = if finished == high(head) {
                low(head)
            } else {
                low(tail)
            };
            match self.tail.word.compare_exchange(
                tail,
                pack(pos, finished),
                Ordering::Release,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(now) => tail = now,
            }
        }
    }

    // ---- peek / zero-copy finish (ST and HTS) -------------------------------------

    /// Marks the claim a single-thread side's peek or zero-copy start just made as open (see
    /// [`OPEN_CLAIM`]), with no room left; [`HeadTail::finish_in_flight`] clears the mark.
    pub(crate) fn mark_open_claim(&self, claim: &Claim) {
        if claim.n > 0 {
            self.head_word().store(
                pack(claim.start.wrapping_add(claim.n), OPEN_CLAIM),
                Ordering::Relaxed,
            );
        }
    }

    /// How many slots the in-flight peek/zero-copy operation holds (ST or HTS side).
    pub(crate) fn in_flight(&self) -> (u32, u32) {
        match self.sync_type() {
            SyncType::MtHts => {
                let word = self.tail.word.load(Ordering::Relaxed);
                (low(word), high(word).wrapping_sub(low(word)))
            }
            _ => {
                let tail = self.tail_position(Ordering::Relaxed);
                (
                    tail,
                    low(self.head_word().load(Ordering::Relaxed)).wrapping_sub(tail),
                )
            }
        }
    }

    /// End a peek/zero-copy operation that started at `tail`: publish `n` slots and give
    /// back the rest of the claim (head and tail both at `tail + n`).
    pub(crate) fn finish_in_flight(&self, tail: u32, n: u32) {
        let pos = tail.wrapping_add(n);
        match self.sync_type() {
            SyncType::MtHts => self.tail.word.store(pack(pos, pos), Ordering::Release),
            _ => {
                self.head_word().store(u64::from(pos), Ordering::Relaxed);
                self.tail.word.store(u64::from(pos), Ordering::Release);
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Two multi-thread claims made in turn, the later one finished first: its slots are not
    /// published before the earlier claim's, which may still be being written. The other side
    /// never sees the tail pass a slot in progress, and the tail never moves back.
    #[test]
    fn multi_thread_claims_publish_in_the_order_they_were_made() {
        let producers = HeadTail::new(SyncType::Mt, 0, Layout::APART);
        let consumers = HeadTail::new(SyncType::Mt, 0, Layout::APART);
        let capacity = 15;
        let claim = |n| {
            producers.move_head::<false, false, false>(&consumers, capacity, n, Behavior::Fixed)
        };
        let (earlier, later) = (claim(4), claim(3));
        assert_eq!((earlier.start, earlier.n), (0, 4));
        assert_eq!((later.start, later.n), (4, 3));
        std::thread::scope(|s| {
            let publisher = s.spawn(|| producers.update_tail::<false>(later.start, later.n));
            std::thread::sleep(Duration::from_millis(50));
            assert_eq!(
                producers.tail_position(Ordering::Acquire),
                0,
                "the later claim published past the earlier one"
            );
            assert!(!publisher.is_finished(), "the later claim waits its turn");
            producers.update_tail::<false>(earlier.start, earlier.n);
            publisher.join().unwrap();
        });
        assert_eq!(producers.tail_position(Ordering::Acquire), 7);
    }
}
