//! Object caches: a small stack of free objects per lcore (or owned by the caller) in front
//! of the pool's handler, so that most gets and puts touch no shared cache line.
//!
//! The algorithm is DPDK 22.11's (`rte_mempool_do_generic_get/put`), which these rules
//! restate:
//! - **put** `n`: more than the flush threshold (1.5 × size) goes straight to the handler;
//!   if the cache cannot take `n` more without passing the threshold, its current contents
//!   go to the handler first; then the `n` objects go on top.
//! - **get** `n`: served from the top of the cache (most recently put first, the ones still
//!   warm in the CPU cache); a shortfall of more than [`CACHE_MAX_SIZE`] comes from the
//!   handler directly; a smaller one refills the cache with `size + shortfall` objects in one
//!   handler call and takes the shortfall from its top; if the handler cannot give that many,
//!   the shortfall alone is asked for; if even that fails the objects already taken from the
//!   cache go back (they were not overwritten) and the get fails as a whole.
//!
//! A cache is used by one thread at a time: per-lcore caches by the thread holding that lcore
//! id, user caches through `&mut`. Only `len` is read by others (for `avail_count`), so it
//! alone is atomic.

use crate::sync::{AtomicU32, Ordering};

/// Largest cache size (`RTE_MEMPOOL_CACHE_MAX_SIZE`).
pub const CACHE_MAX_SIZE: u32 = 512;

/// Objects a cache can hold: a refill brings `size + shortfall`, at most twice the maximum.
pub(crate) const CACHE_SLOTS: usize = 2 * CACHE_MAX_SIZE as usize;

/// The flush threshold of a cache of `size` (1.5 × size).
pub const fn flush_threshold(size: u32) -> u32 {
    size * 3 / 2
}

/// What a cache sits in front of: the pool's handler, all or nothing both ways.
pub(crate) trait Backend {
    /// Store all of `objs`, or none (`false`).
    fn enqueue_bulk(&self, objs: &[usize]) -> bool;
    /// Fill all of `out`, or take nothing and leave `out` as it was (`false`).
    fn dequeue_bulk(&self, out: &mut [usize]) -> bool;
}

/// The object slots of a cache.
pub(crate) type Slots = [usize; CACHE_SLOTS];

/// A cache's state. `#[repr(C)]` and pointer-free: per-lcore caches live in the pool's
/// memzone, shared by every process.
///
/// Other threads read `len` (for `avail_count`) while the owner works, so code outside the
/// owner never makes a reference to the whole state: it reads fields through the raw
/// pointer ([`len_of`], [`slots_of`]).
#[repr(C, align(64))]
pub(crate) struct CacheState {
    /// Objects kept after a refill.
    pub size: u32,
    /// A put that would pass this many flushes first.
    pub flush_threshold: u32,
    /// Objects held, `objs[..len]`, newest last.
    pub len: AtomicU32,
    /// 1 while an [`LcoreCache`](crate::LcoreCache) handle holds this cache: it keeps `len`
    /// in a register and only publishes it, so every other path leaves the cache alone and
    /// goes to the handler.
    pub held: AtomicU32,
    /// For user caches: the pool header it is bound to (0: none yet).
    pub bound_pool: u64,
    pub objs: Slots,
}

impl CacheState {
    pub fn new(size: u32) -> CacheState {
        CacheState {
            size,
            flush_threshold: flush_threshold(size),
            len: AtomicU32::new(0),
            held: AtomicU32::new(0),
            bound_pool: 0,
            objs: [0; CACHE_SLOTS],
        }
    }

    /// Objects held, for an owner of the whole state (a user cache, a test).
    pub fn len(&self) -> u32 {
        self.len.load(Ordering::Relaxed)
    }
}

/// Objects in `cache` (a snapshot when its owner is at work).
///
/// # Safety
/// `cache` points to a live state.
#[inline(always)]
pub(crate) unsafe fn len_of(cache: *const CacheState) -> u32 {
    // SAFETY: the caller's contract; the reference covers the atomic `len` alone.
    unsafe { (*cache).len.load(Ordering::Relaxed) }
}

/// `size` and `flush_threshold` of `cache`, written only when the state is made.
///
/// # Safety
/// `cache` points to a live state.
#[inline(always)]
pub(crate) unsafe fn limits_of(cache: *const CacheState) -> (u32, u32) {
    // SAFETY: the caller's contract; plain reads of two fields nobody writes after init.
    let size = unsafe { (*cache).size };
    // SAFETY: as above.
    let threshold = unsafe { (*cache).flush_threshold };
    (size, threshold)
}

/// The object slots of `cache`, for one operation.
///
/// # Safety
/// `cache` points to a live state whose slots no other thread touches while the borrow
/// lasts (the owner of a per-lcore cache, the `&mut` holder of a user cache).
#[inline(always)]
pub(crate) unsafe fn slots_of<'a>(cache: *mut CacheState) -> &'a mut Slots {
    // SAFETY: the caller's contract: `cache` is live, so projecting to its `objs` field (no
    // reference to the whole state is made, see `CacheState`) is in bounds.
    let slots = unsafe { &raw mut (*cache).objs };
    // SAFETY: the caller's contract; no other thread touches the slots while this lasts.
    unsafe { &mut *slots }
}

/// Puts `objs` through a cache holding `slots[..len]` into `backend`; the cache's new length.
///
/// # Panics
/// When the backend refuses objects (more objects put than the pool has: a double put).
#[inline(always)]
pub(crate) fn put_into<B: Backend + ?Sized>(
    slots: &mut Slots,
    len: u32,
    flush_threshold: u32,
    backend: &B,
    objs: &[usize],
) -> u32 {
    let n = objs.len();
    let len = len as usize;
    // The common case, inlined into the caller: the objects fit under the threshold.
    if len + n <= flush_threshold as usize {
        copy_small(&mut slots[len..len + n], objs);
        return (len + n) as u32;
    }
    put_flushing(slots, len, flush_threshold, backend, objs)
}

/// The rest of [`put_into`]: past the threshold, flush the cache first (or bypass it).
#[cold]
#[inline(never)]
fn put_flushing<B: Backend + ?Sized>(
    slots: &mut Slots,
    len: usize,
    flush_threshold: u32,
    backend: &B,
    objs: &[usize],
) -> u32 {
    let n = objs.len();
    if n > flush_threshold as usize {
        enqueue_or_panic(backend, objs);
        return len as u32;
    }
    enqueue_or_panic(backend, &slots[..len]);
    slots[..n].copy_from_slice(objs);
    n as u32
}

/// Gets `out.len()` objects through a cache of `size` holding `slots[..len]` from
/// `backend`, all or none: the cache's new length, or `None` with nothing taken (the cache
/// still holds `slots[..len]`).
#[inline(always)]
pub(crate) fn get_from<B: Backend + ?Sized>(
    slots: &mut Slots,
    len: u32,
    size: u32,
    backend: &B,
    out: &mut [usize],
) -> Option<u32> {
    let n = out.len();
    let len = len as usize;
    // The common case, inlined into the caller: the cache has enough.
    if n <= len {
        take_top(&slots[..len], out);
        return Some((len - n) as u32);
    }
    get_refilling(slots, len, size, backend, out)
}

/// The rest of [`get_from`]: the cache is short, take what it has and refill it.
#[cold]
#[inline(never)]
fn get_refilling<B: Backend + ?Sized>(
    slots: &mut Slots,
    len: usize,
    size: u32,
    backend: &B,
    out: &mut [usize],
) -> Option<u32> {
    let n = out.len();
    // Everything the cache has, hottest first; the rest from the handler.
    take_top(&slots[..len], &mut out[..len]);
    let shortfall = n - len;
    let size = size as usize;
    if shortfall <= CACHE_MAX_SIZE as usize
        && size + shortfall <= CACHE_SLOTS
        && backend.dequeue_bulk(&mut slots[..size + shortfall])
    {
        take_top(&slots[..size + shortfall], &mut out[len..]);
        return Some(size as u32);
    }
    if backend.dequeue_bulk(&mut out[len..]) {
        return Some(0);
    }
    // The objects copied out of the cache are still in slots[..len]: the failed handler
    // calls wrote nothing. Keeping len as it was gives them back.
    None
}

/// Puts `objs` through `cache` into `backend`.
///
/// # Safety
/// `cache` is valid and used by no other thread during the call.
///
/// # Panics
/// As [`put_into`].
#[inline(always)]
pub(crate) unsafe fn put<B: Backend + ?Sized>(cache: *mut CacheState, backend: &B, objs: &[usize]) {
    // SAFETY: the caller's contract.
    let len = unsafe { len_of(cache) };
    // SAFETY: as above.
    let (_, threshold) = unsafe { limits_of(cache) };
    // SAFETY: the caller gives this thread the cache alone.
    let slots = unsafe { slots_of(cache) };
    let len = put_into(slots, len, threshold, backend, objs);
    // SAFETY: the caller's contract; the store covers the atomic `len` alone.
    unsafe { (*cache).len.store(len, Ordering::Relaxed) };
}

/// Gets `out.len()` objects through `cache` from `backend`, all or none.
///
/// # Safety
/// `cache` is valid and used by no other thread during the call.
#[inline(always)]
pub(crate) unsafe fn get<B: Backend + ?Sized>(
    cache: *mut CacheState,
    backend: &B,
    out: &mut [usize],
) -> bool {
    // SAFETY: the caller's contract.
    let len = unsafe { len_of(cache) };
    // SAFETY: as above.
    let (size, _) = unsafe { limits_of(cache) };
    // SAFETY: the caller gives this thread the cache alone.
    let slots = unsafe { slots_of(cache) };
    match get_from(slots, len, size, backend, out) {
        Some(len) => {
            // SAFETY: the caller's contract; the store covers the atomic `len` alone.
            unsafe { (*cache).len.store(len, Ordering::Relaxed) };
            true
        }
        None => false,
    }
}

/// Copies words into the cache, inline: blocks of 8 words as 16-byte moves, then the rest
/// one by one. A plain word loop was unrolled into single-word moves (a put of 32 took
/// 3 ns more than DPDK's), and `copy_from_slice` of the whole run calls `memcpy`, even for
/// one or two pointers.
#[inline(always)]
fn copy_small(dst: &mut [usize], src: &[usize]) {
    let mut dst_blocks = dst.chunks_exact_mut(8);
    let mut src_blocks = src.chunks_exact(8);
    for (d, s) in (&mut dst_blocks).zip(&mut src_blocks) {
        d.copy_from_slice(s);
    }
    for (d, s) in dst_blocks
        .into_remainder()
        .iter_mut()
        .zip(src_blocks.remainder())
    {
        *d = *s;
    }
}

/// Copies the top `out.len()` entries of the stack `held` into `out`, topmost first.
#[inline(always)]
fn take_top(held: &[usize], out: &mut [usize]) {
    let top = held.len();
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = held[top - 1 - i];
    }
}

/// Empties `cache` into `backend`.
///
/// # Safety
/// As [`put`].
pub(crate) unsafe fn flush<B: Backend + ?Sized>(cache: *mut CacheState, backend: &B) {
    // SAFETY: the caller's contract.
    let len = unsafe { len_of(cache) } as usize;
    // SAFETY: the caller gives this thread the cache alone.
    let slots = unsafe { slots_of(cache) };
    // A length past the slots can only come from corrupt shared memory: say so rather than
    // lose the objects quietly.
    assert!(
        len <= CACHE_SLOTS,
        "mempool lcore cache is corrupt: it says it holds {len} objects"
    );
    enqueue_or_panic(backend, &slots[..len]);
    // SAFETY: the caller's contract; the store covers the atomic `len` alone.
    unsafe { (*cache).len.store(0, Ordering::Relaxed) };
}

pub(crate) fn enqueue_or_panic<B: Backend + ?Sized>(backend: &B, objs: &[usize]) {
    if !objs.is_empty() && !backend.enqueue_bulk(objs) {
        panic!(
            "mempool handler refused {} objects: more objects were put than the pool holds \
             (an object put twice, or one from elsewhere)",
            objs.len()
        );
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// A handler that is a plain vector with a capacity.
    struct VecBackend {
        objs: RefCell<Vec<usize>>,
        capacity: usize,
        calls: RefCell<usize>,
    }

    impl Backend for VecBackend {
        fn enqueue_bulk(&self, objs: &[usize]) -> bool {
            *self.calls.borrow_mut() += 1;
            let mut v = self.objs.borrow_mut();
            if v.len() + objs.len() > self.capacity {
                return false;
            }
            v.extend_from_slice(objs);
            true
        }
        fn dequeue_bulk(&self, out: &mut [usize]) -> bool {
            *self.calls.borrow_mut() += 1;
            let mut v = self.objs.borrow_mut();
            if v.len() < out.len() {
                return false;
            }
            let at = v.len() - out.len();
            out.copy_from_slice(&v[at..]);
            v.truncate(at);
            true
        }
    }

    fn backend(n: usize) -> VecBackend {
        VecBackend {
            objs: RefCell::new((1..=n).collect()),
            capacity: n,
            calls: RefCell::new(0),
        }
    }

    #[test]
    fn refill_keeps_size_and_flush_happens_past_threshold() {
        let b = backend(100);
        let mut c = Box::new(CacheState::new(8));
        let mut out = [0usize; 3];
        // SAFETY: the cache is this thread's alone.
        assert!(unsafe { get(&mut *c, &b, &mut out) });
        assert_eq!(
            c.len(),
            8,
            "refill brings size + shortfall, shortfall taken"
        );
        assert_eq!(b.objs.borrow().len(), 100 - 11);
        // Put back 3: 11 <= 12, stays in cache.
        // SAFETY: as above.
        unsafe { put(&mut *c, &b, &out) };
        assert_eq!(c.len(), 11);
        // 11 + 2 > 12: the 11 are flushed, the 2 stay.
        // SAFETY: as above.
        unsafe { put(&mut *c, &b, &[500, 501]) };
        assert_eq!(c.len(), 2);
        assert_eq!(b.objs.borrow().len(), 100);
    }

    #[test]
    fn failed_get_gives_cache_objects_back() {
        let b = backend(4);
        let mut c = Box::new(CacheState::new(8));
        let mut one = [0usize; 1];
        // The handler holds 4: a refill of 9 fails, the shortfall of 1 succeeds.
        // SAFETY: the cache is this thread's alone.
        assert!(unsafe { get(&mut *c, &b, &mut one) });
        assert_eq!(c.len(), 0);
        // SAFETY: as above.
        unsafe { put(&mut *c, &b, &one) };
        let mut five = [0usize; 5];
        // SAFETY: as above.
        assert!(!unsafe { get(&mut *c, &b, &mut five) });
        assert_eq!(c.len(), 1, "the cached object is still there");
        assert_eq!(b.objs.borrow().len(), 3, "the handler lost nothing");
    }

    #[test]
    fn huge_requests_bypass_the_cache() {
        let b = backend(2000);
        let mut c = Box::new(CacheState::new(4));
        let mut many = vec![0usize; 600];
        // SAFETY: the cache is this thread's alone.
        assert!(unsafe { get(&mut *c, &b, &mut many) });
        assert_eq!(c.len(), 0);
        // SAFETY: as above.
        unsafe { put(&mut *c, &b, &many) };
        assert_eq!(c.len(), 0, "more than the threshold goes to the handler");
        assert_eq!(b.objs.borrow().len(), 2000);
    }

    /// A put of exactly the flush threshold is not "more than the threshold": it empties the
    /// cache into the handler and then stays in the cache, as DPDK's does.
    #[test]
    fn a_put_of_exactly_the_threshold_flushes_then_stays_in_the_cache() {
        let b = VecBackend {
            objs: RefCell::new(Vec::new()),
            capacity: 13,
            calls: RefCell::new(0),
        };
        let mut c = Box::new(CacheState::new(8));
        // SAFETY: the cache is this thread's alone.
        unsafe { put(&mut *c, &b, &[7]) };
        let twelve: Vec<usize> = (100..112).collect();
        // SAFETY: as above.
        unsafe { put(&mut *c, &b, &twelve) };
        assert_eq!(c.len(), 12, "the 12 stay in the cache");
        assert_eq!(
            *b.objs.borrow(),
            vec![7],
            "the one cached before went to the handler"
        );
    }

    /// The largest cache (512, threshold 768) has room for its biggest refill (512 + a
    /// shortfall of up to 512) and for a put up to its threshold.
    #[test]
    fn the_largest_cache_refills_and_takes_puts_up_to_its_threshold() {
        let b = backend(2000);
        let mut c = Box::new(CacheState::new(CACHE_MAX_SIZE));
        let mut out = vec![0usize; 500];
        // SAFETY: the cache is this thread's alone.
        assert!(unsafe { get(&mut *c, &b, &mut out) });
        assert_eq!(
            c.len(),
            CACHE_MAX_SIZE,
            "refilled with 512 + 500, 500 taken"
        );
        assert_eq!(b.objs.borrow().len(), 2000 - 1012);
        let threshold = flush_threshold(CACHE_MAX_SIZE);
        assert_eq!(threshold, 768);
        // SAFETY: as above.
        unsafe { put(&mut *c, &b, &out[..(threshold - CACHE_MAX_SIZE) as usize]) };
        assert_eq!(c.len(), threshold, "up to the threshold stays in the cache");
    }

    /// Puts of every length from 0 to 40 (whole blocks of 8 and remainders) land in the
    /// cache in order, and gets hand them back topmost first.
    #[test]
    fn puts_of_any_length_copy_every_object_in_order() {
        for n in 0..=40usize {
            let b = backend(0);
            let mut c = Box::new(CacheState::new(64));
            let objs: Vec<usize> = (1..=n).map(|i| i * 8).collect();
            // SAFETY: the cache is this thread's alone.
            unsafe { put(&mut *c, &b, &objs) };
            assert_eq!(c.len() as usize, n);
            // SAFETY: as above; the state was made just above.
            let slots = unsafe { slots_of(&mut *c) };
            assert_eq!(&slots[..n], &objs[..], "put of {n}");
            let mut out = vec![0usize; n];
            // SAFETY: as above.
            assert!(unsafe { get(&mut *c, &b, &mut out) });
            let reversed: Vec<usize> = objs.iter().rev().copied().collect();
            assert_eq!(out, reversed, "get of {n}");
        }
    }
}

/// The cache protocol under loom: two threads, each with its own cache, get, put and flush
/// through one shared MP/MC ring; every interleaving ends with every object back in the
/// ring exactly once. Run with
/// `RUSTFLAGS="--cfg loom" cargo test -p dpmem-mempool --release --lib loom`.
#[cfg(all(test, loom))]
mod loom_tests {
    use std::collections::BTreeSet;

    use dpmem_ring::{Ring, RingFlags};
    use loom::sync::Arc;

    use super::*;

    struct RingBackend(Ring<usize>);

    impl Backend for RingBackend {
        fn enqueue_bulk(&self, objs: &[usize]) -> bool {
            let mut p = self.0.producer().unwrap();
            p.enqueue_bulk(objs).count as usize == objs.len()
        }
        fn dequeue_bulk(&self, out: &mut [usize]) -> bool {
            let mut c = self.0.consumer().unwrap();
            c.dequeue_bulk(out).count as usize == out.len()
        }
    }

    fn worker(backend: &RingBackend) {
        let mut cache = Box::new(CacheState::new(1));
        let mut got = [0usize; 1];
        // SAFETY: the cache is this thread's alone.
        if unsafe { get(&mut *cache, backend, &mut got) } {
            // SAFETY: as above.
            unsafe { put(&mut *cache, backend, &got) };
        }
        // SAFETY: as above.
        unsafe { flush(&mut *cache, backend) };
    }

    /// The `held` protocol of [`LcoreCache`](crate::LcoreCache) and the plain calls, with
    /// the lcore id handed from one thread to another while the first still holds the cache:
    /// thread A takes the cache (compare-and-swap of `held`), gets an object with the length
    /// kept locally, gives its lcore id away, puts the object back and lets go of the cache;
    /// thread B takes the id, then gets and puts one object the plain way, through the cache
    /// only when `held` is clear. Every interleaving ends with each object once in the
    /// cache or the ring.
    #[test]
    fn loom_held_cache_is_left_alone_by_the_next_owner_of_the_lcore_id() {
        use crate::sync::AtomicU32 as Flag;

        struct Shared {
            backend: RingBackend,
            cache: std::cell::UnsafeCell<CacheState>,
            /// Who has the lcore id: 1 (thread A) or 0 (free, then thread B).
            lcore_owner: Flag,
        }
        // SAFETY: the cache is used under the protocol being checked; the rest is atomics.
        unsafe impl Sync for Shared {}
        // SAFETY: as above.
        unsafe impl Send for Shared {}

        fn plain_get_put(shared: &Shared) {
            let cache = shared.cache.get();
            let mut got = [0usize; 1];
            // SAFETY: `held` alone is referenced.
            let held = unsafe { &(*cache).held }.load(Ordering::Acquire) != 0;
            if held {
                if shared.backend.dequeue_bulk(&mut got) {
                    enqueue_or_panic(&shared.backend, &got);
                }
            } else {
                // SAFETY: this thread has the lcore id and the cache is not held.
                if unsafe { get(cache, &shared.backend, &mut got) } {
                    // SAFETY: as above.
                    unsafe { put(cache, &shared.backend, &got) };
                }
            }
        }

        loom::model(|| {
            let ring = Ring::<usize>::new("loom", 4, RingFlags::NONE).unwrap();
            let shared = Arc::new(Shared {
                backend: RingBackend(ring),
                cache: std::cell::UnsafeCell::new(CacheState::new(1)),
                lcore_owner: Flag::new(1),
            });
            assert!(shared.backend.enqueue_bulk(&[1, 2, 3]));
            let b = shared.clone();
            let thread_b = loom::thread::spawn(move || {
                while b
                    .lcore_owner
                    .compare_exchange(0, 2, Ordering::Acquire, Ordering::Relaxed)
                    .is_err()
                {
                    loom::thread::yield_now();
                }
                plain_get_put(&b);
            });
            // Thread A: the handle.
            let cache = shared.cache.get();
            // SAFETY: `held` alone is referenced.
            let taken = unsafe { &(*cache).held }.compare_exchange(
                0,
                1,
                Ordering::Acquire,
                Ordering::Relaxed,
            );
            assert!(taken.is_ok(), "nobody else holds it yet");
            // SAFETY: held by this thread.
            let (size, threshold) = unsafe { limits_of(cache) };
            // SAFETY: as above.
            let mut len = unsafe { len_of(cache) };
            let mut got = [0usize; 1];
            // SAFETY: as above.
            let slots = unsafe { slots_of(cache) };
            len = get_from(slots, len, size, &shared.backend, &mut got).unwrap();
            // SAFETY: as above; the store covers `len` alone.
            unsafe { (*cache).len.store(len, Ordering::Relaxed) };
            shared.lcore_owner.store(0, Ordering::Release);
            // SAFETY: still held by this thread.
            let slots = unsafe { slots_of(cache) };
            len = put_into(slots, len, threshold, &shared.backend, &got);
            // SAFETY: as above.
            unsafe { (*cache).len.store(len, Ordering::Relaxed) };
            // SAFETY: `held` alone is referenced.
            unsafe { &(*cache).held }.store(0, Ordering::Release);
            thread_b.join().unwrap();
            // SAFETY: both threads are done.
            unsafe { flush(cache, &shared.backend) };
            let mut all = [0usize; 3];
            assert!(shared.backend.dequeue_bulk(&mut all));
            assert_eq!(
                all.iter().copied().collect::<BTreeSet<_>>(),
                BTreeSet::from([1, 2, 3])
            );
        });
    }

    #[test]
    fn loom_two_caches_lose_and_duplicate_nothing() {
        loom::model(|| {
            let ring = Ring::<usize>::new("loom", 4, RingFlags::NONE).unwrap();
            let backend = Arc::new(RingBackend(ring));
            assert!(backend.enqueue_bulk(&[1, 2, 3]));
            let other = backend.clone();
            let t = loom::thread::spawn(move || worker(&other));
            worker(&backend);
            t.join().unwrap();
            let mut all = [0usize; 3];
            assert!(backend.dequeue_bulk(&mut all));
            assert_eq!(
                all.iter().copied().collect::<BTreeSet<_>>(),
                BTreeSet::from([1, 2, 3])
            );
        });
    }
}
