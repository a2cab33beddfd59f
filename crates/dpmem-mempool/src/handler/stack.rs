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
//! The spinlocked form is an array and a length behind a spinlock.

use core::mem::size_of;
use core::ptr::NonNull;

use dpmem_eal::memzone::Memzone;
use dpmem_eal::Eal;
use portable_atomic::AtomicU128;

use super::PoolContext;
use crate::sync::{spin_wait, AtomicU32, AtomicU64, Ordering};

/// Prefix of a stack's memzone name.
pub(crate) const STACK_PREFIX: &str = "STK_";

const STACK_MAGIC: u64 = 0x6470_6d65_6d53_544b;

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
        while h
            .lock
            .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spin_wait();
        }
        let mut len = h.locked_len.load(Ordering::Relaxed);
        let r = f(h, &mut len);
        h.locked_len.store(len, Ordering::Relaxed);
        h.lock.store(0, Ordering::Release);
        r
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
