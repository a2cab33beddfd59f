//! The stack handlers: a LIFO of object addresses in a memzone named `STK_<pool name>`.
//!
//! The lock-free form keeps two singly linked lists over one array of nodes, the *used* list
//! (nodes holding objects) and the *free* list (empty nodes), as DPDK's `rte_stack_lf` does.
//! Each list head is a 16-byte word — the top node and a tag bumped by every change —
//! swapped with one 16-byte compare-and-swap, so a head that was popped and pushed back
//! meanwhile (the ABA case) has another tag and the stale swap fails. A push of `n` first
//! reserves `n` free nodes by decrementing the free list's length, so the walk to the `n`th
//! node that follows can only meet a missing node when its snapshot was stale, in which
//! case the swap fails anyway and the walk restarts. Nodes are never unmapped while the
//! pool lives, so reading a stale node's `next` is harmless.
//!
//! The spinlocked form is an array and a length behind a spinlock. The lock word holds the
//! [`ProcessToken`] of the process in the section, so that a process can die in it without
//! stopping the others: a locker that has spun [`DEAD_HOLDER_CHECK_AFTER`] asks the kernel
//! whether the holder lives, and takes a dead holder's lock over with one compare-and-swap of
//! the word it saw (a dead process never writes it again, so one locker wins). Nothing needs
//! repairing then: the section writes the length once, at its end, so the stack holds exactly
//! what it held before the dead process's last put or get, or after it; the objects that put or
//! get was moving are lost with the process, as those in its cache are.
//!
//! The lock-free form survives a death too, losing only what the dead process held: a process
//! killed after it reserved nodes (by lowering a list's length) and before it swapped them out
//! leaves the length lower than the list, and one killed between the two lists holds its nodes
//! off both; either way the nodes and the objects it was moving leave circulation together.

use core::mem::size_of;
use core::ptr::NonNull;

use std::time::{Duration, Instant};

use dpmem_eal::memzone::Memzone;
use dpmem_eal::Eal;
use dpmem_sys::process_token::ProcessToken;
use portable_atomic::AtomicU128;

use super::PoolContext;
use crate::sync::{spin_wait, AtomicU32, AtomicU64, Ordering};

/// Prefix of a stack's memzone name.
pub(crate) const STACK_PREFIX: &str = "STK_";

const STACK_MAGIC: u64 = 0x6470_6d65_6d53_544b;

/// How long a locker spins on the locked form before it asks whether the holder is alive (a
/// section takes well under a microsecond; a holder this slow was preempted, or is dead).
pub(crate) const DEAD_HOLDER_CHECK_AFTER: Duration = Duration::from_millis(10);

/// Spins between looks at the clock while the lock is held.
const SPINS_PER_CLOCK_LOOK: u32 = 1024;

/// How a stack synchronises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackKind {
    /// One spinlock around the array.
    Locked,
    /// Lists swapped with a 16-byte compare-and-swap (spinlocked where the CPU lacks one).
    LockFree,
}

impl StackKind {
    /// What `self` becomes on this CPU.
    fn effective(self) -> StackKind {
        match self {
            StackKind::LockFree if AtomicU128::is_lock_free() => StackKind::LockFree,
            _ => StackKind::Locked,
        }
    }
}

#[repr(C, align(64))]
struct ListHead {
    /// Low 64 bits: top node index + 1 (0: empty); high 64 bits: the change tag.
    head: AtomicU128,
    /// Nodes in the list that are not reserved by a pop in progress.
    len: AtomicU64,
}

#[repr(C, align(64))]
struct StackHeader {
    magic: u64,
    capacity: u32,
    /// 1: locked, 2: lock-free.
    kind: u32,
    used: ListHead,
    free: ListHead,
    /// The locked form's lock: 0, or the [`ProcessToken`] of the process in the section.
    lock: AtomicU32,
    /// Objects held by the locked form (its array is the nodes' `data` words).
    locked_len: AtomicU32,
}

#[repr(C)]
struct Node {
    data: AtomicU64,
    /// Next node index + 1 (0: end of list).
    next: AtomicU64,
}

fn split(word: u128) -> (u64, u64) {
    (word as u64, (word >> 64) as u64)
}

fn join(top: u64, tag: u64) -> u128 {
    (top as u128) | ((tag as u128) << 64)
}

/// A process's handle on a pool's stack.
#[derive(Debug)]
pub(crate) struct StackStore<'eal> {
    zone: Memzone,
    header: NonNull<StackHeader>,
    kind: StackKind,
    _eal: core::marker::PhantomData<&'eal Eal>,
}

// SAFETY: the handle points into a memzone that lives as long as the EAL borrow; every shared
// word is an atomic or guarded by the lock/list protocol.
unsafe impl Send for StackStore<'_> {}
// SAFETY: as above.
unsafe impl Sync for StackStore<'_> {}

impl<'eal> StackStore<'eal> {
    pub fn create(
        eal: &'eal Eal,
        pool: &PoolContext<'_>,
        kind: StackKind,
    ) -> Result<(u64, Self), String> {
        let capacity = pool.size;
        let bytes = size_of::<StackHeader>() + capacity as usize * size_of::<Node>();
        let zone = eal
            .memzones()
            .reserve_aligned(
                &format!("{STACK_PREFIX}{}", pool.name),
                bytes,
                pool.socket,
                dpmem_eal::MemzoneFlags::empty(),
                64,
            )
            .map_err(|e| e.to_string())?;
        let kind = kind.effective();
        let header = NonNull::new(zone.as_ptr().cast::<StackHeader>()).expect("memzone at 0");
        // SAFETY: the memzone is new, ours alone, 64-byte aligned and `bytes` long.
        unsafe {
            header.as_ptr().write(StackHeader {
                magic: 0,
                capacity,
                kind: if kind == StackKind::LockFree { 2 } else { 1 },
                used: ListHead {
                    head: AtomicU128::new(0),
                    len: AtomicU64::new(0),
                },
                free: ListHead {
                    head: AtomicU128::new(join(u64::from(capacity > 0), 0)),
                    len: AtomicU64::new(u64::from(capacity)),
                },
                lock: AtomicU32::new(0),
                locked_len: AtomicU32::new(0),
            })
        };
        let store = StackStore {
            zone,
            header,
            kind,
            _eal: core::marker::PhantomData,
        };
        for i in 0..capacity as u64 {
            let next = if i + 1 < u64::from(capacity) {
                i + 2
            } else {
                0
            };
            let node = store.node_ptr(i + 1);
            // SAFETY: i < capacity: the node is inside the memzone.
            unsafe {
                node.write(Node {
                    data: AtomicU64::new(0),
                    next: AtomicU64::new(next),
                })
            };
        }
        // SAFETY: the header is initialised; the magic, written last, marks it usable.
        unsafe { (*header.as_ptr()).magic = STACK_MAGIC };
        Ok((store.zone.va as u64, store))
    }

    pub fn attach(eal: &'eal Eal, pool: &PoolContext<'_>) -> Result<Self, String> {
        let name = format!("{STACK_PREFIX}{}", pool.name);
        let zone = eal
            .memzones()
            .lookup(&name)
            .ok_or_else(|| format!("memzone {name:?} not found"))?;
        if zone.va as u64 != pool.pool_data {
            return Err("the pool's stack is not the one its header names".to_owned());
        }
        let header = NonNull::new(zone.as_ptr().cast::<StackHeader>()).expect("memzone at 0");
        // SAFETY: the memzone holds a stack built by `create` (checked through pool_data).
        let h = unsafe { header.as_ref() };
        if h.magic != STACK_MAGIC {
            return Err(format!("memzone {name:?} holds no stack"));
        }
        let kind = if h.kind == 2 {
            StackKind::LockFree
        } else {
            StackKind::Locked
        };
        Ok(StackStore {
            zone,
            header,
            kind,
            _eal: core::marker::PhantomData,
        })
    }

    pub fn free(self, eal: &Eal) {
        // SAFETY: the pool is being freed: its store is used by no handle any more.
        let _ = unsafe { eal.memzones().free(&self.zone) };
    }

    fn header(&self) -> &StackHeader {
        // SAFETY: the header was initialised by `create` and lives as long as the memzone.
        unsafe { self.header.as_ref() }
    }

    /// Where node `index1 - 1` is (indices are stored plus one so that 0 means none): in
    /// the memzone when `1 <= index1 <= capacity`.
    fn node_ptr(&self, index1: u64) -> *mut Node {
        self.header
            .as_ptr()
            .wrapping_add(1)
            .cast::<Node>()
            .wrapping_add(index1 as usize - 1)
    }

    fn node(&self, index1: u64) -> &Node {
        assert!(index1 >= 1 && index1 <= u64::from(self.header().capacity));
        let node = self.node_ptr(index1);
        // SAFETY: the index is in range (asserted); nodes are initialised at creation.
        unsafe { &*node }
    }

    #[inline]
    pub fn enqueue(&self, objs: &[usize]) -> bool {
        if objs.is_empty() {
            return true;
        }
        match self.kind {
            StackKind::Locked => self.locked(|h, len| {
                let n = objs.len() as u32;
                if *len + n > h.capacity {
                    return false;
                }
                for (k, &obj) in objs.iter().enumerate() {
                    self.node(u64::from(*len) + k as u64 + 1)
                        .data
                        .store(obj as u64, Ordering::Relaxed);
                }
                *len += n;
                true
            }),
            StackKind::LockFree => {
                let h = self.header();
                let n = objs.len() as u64;
                let Some((first, last)) = self.pop_chain(&h.free, n) else {
                    return false;
                };
                let mut at = first;
                for (k, &obj) in objs.iter().enumerate() {
                    let node = self.node(at);
                    node.data.store(obj as u64, Ordering::Relaxed);
                    if k + 1 < objs.len() {
                        at = node.next.load(Ordering::Relaxed);
                    }
                }
                debug_assert_eq!(at, last);
                self.push_chain(&h.used, first, last, n);
                true
            }
        }
    }

    #[inline]
    pub fn dequeue(&self, out: &mut [usize]) -> bool {
        if out.is_empty() {
            return true;
        }
        match self.kind {
            StackKind::Locked => self.locked(|_, len| {
                let n = out.len() as u32;
                if *len < n {
                    return false;
                }
                for (k, slot) in out.iter_mut().enumerate() {
                    *slot = self
                        .node(u64::from(*len) - k as u64)
                        .data
                        .load(Ordering::Relaxed) as usize;
                }
                *len -= n;
                true
            }),
            StackKind::LockFree => {
                let h = self.header();
                let n = out.len() as u64;
                let Some((first, last)) = self.pop_chain(&h.used, n) else {
                    return false;
                };
                let mut at = first;
                for (k, slot) in out.iter_mut().enumerate() {
                    let node = self.node(at);
                    *slot = node.data.load(Ordering::Relaxed) as usize;
                    if k + 1 < n as usize {
                        at = node.next.load(Ordering::Relaxed);
                    }
                }
                self.push_chain(&h.free, first, last, n);
                true
            }
        }
    }

    pub fn count(&self) -> u32 {
        let h = self.header();
        match self.kind {
            StackKind::Locked => h.locked_len.load(Ordering::Relaxed),
            StackKind::LockFree => h.used.len.load(Ordering::Relaxed) as u32,
        }
    }

    fn locked<R>(&self, f: impl FnOnce(&StackHeader, &mut u32) -> R) -> R {
        let h = self.header();
        let me = ProcessToken::own().raw();
        if h.lock
            .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended(me);
        }
        let mut len = h.locked_len.load(Ordering::Relaxed);
        let r = f(h, &mut len);
        h.locked_len.store(len, Ordering::Relaxed);
        h.lock.store(0, Ordering::Release);
        r
    }

    /// Spins until the locked form's lock is this process's (`me`), taking it over from a holder
    /// that died in the section.
    #[cold]
    fn lock_contended(&self, me: u32) {
        let h = self.header();
        let mut spins = 0u32;
        let mut since: Option<Instant> = None;
        loop {
            let seen = h.lock.load(Ordering::Relaxed);
            if seen == 0 {
                if h.lock
                    .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
                continue;
            }
            spin_wait();
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(SPINS_PER_CLOCK_LOOK) {
                continue;
            }
            let started = *since.get_or_insert_with(Instant::now);
            if started.elapsed() < DEAD_HOLDER_CHECK_AFTER {
                continue;
            }
            since = None;
            let holder = ProcessToken::from_raw(seen);
            if holder.is_alive() {
                // A holder that slow lost its CPU: let it have one.
                std::thread::yield_now();
                continue;
            }
            // The word still naming the dead holder proves nobody took over before.
            if h.lock
                .compare_exchange(seen, me, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                dpmem_eal::lock_recovery::record_takeover(
                    &format!("the stack of mempool {:?}", self.pool_name()),
                    holder.pid(),
                    Ok("its length is written in one store at the end of a section, so it is whole; the objects the dead process was putting or getting are lost with it"),
                );
                return;
            }
        }
    }

    /// The name of the pool whose stack this is.
    fn pool_name(&self) -> &str {
        self.zone
            .name
            .strip_prefix(STACK_PREFIX)
            .unwrap_or(&self.zone.name)
    }

    /// Takes `n` nodes off `list`: the chain `first ..= last`, still linked in order.
    fn pop_chain(&self, list: &ListHead, n: u64) -> Option<(u64, u64)> {
        let mut len = list.len.load(Ordering::Relaxed);
        loop {
            if len < n {
                return None;
            }
            match list
                .len
                .compare_exchange_weak(len, len - n, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => len = now,
            }
        }
        loop {
            let old = list.head.load(Ordering::Acquire);
            let (top, tag) = split(old);
            let mut last = top;
            let mut walked = 1;
            while last != 0 && walked < n {
                last = self.node(last).next.load(Ordering::Acquire);
                walked += 1;
            }
            if last == 0 {
                // A stale snapshot (the reservation guarantees n nodes in a current one).
                spin_wait();
                continue;
            }
            let rest = self.node(last).next.load(Ordering::Acquire);
            if list
                .head
                .compare_exchange_weak(
                    old,
                    join(rest, tag + 1),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
            {
                return Some((top, last));
            }
            spin_wait();
        }
    }

    /// Puts the chain `first ..= last` of `n` nodes on top of `list`.
    fn push_chain(&self, list: &ListHead, first: u64, last: u64, n: u64) {
        loop {
            let old = list.head.load(Ordering::Acquire);
            let (top, tag) = split(old);
            self.node(last).next.store(top, Ordering::Relaxed);
            if list
                .head
                .compare_exchange_weak(
                    old,
                    join(first, tag + 1),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
            {
                break;
            }
            spin_wait();
        }
        list.len.fetch_add(n, Ordering::Release);
    }
}
