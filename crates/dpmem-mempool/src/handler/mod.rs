//! Handlers: where a pool keeps the objects that are in it (DPDK's mempool ops).
//!
//! A handler is registered once per process under a name; a pool records the name in its
//! shared header, so every process that opens the pool finds the same handler (by name,
//! not by a table index that could differ between programs). The handler builds a shared
//! store when the pool is first populated ([`MempoolHandler::alloc`]), each process opens it
//! ([`MempoolHandler::attach`]), and the pool's destruction frees it.
//!
//! Built in: the ring handlers (`ring_mp_mc`, the default; `ring_sp_sc`, `ring_mp_sc`,
//! `ring_sp_mc`, `ring_mt_rts`, `ring_mt_hts`) and the stacks, LIFOs that hand back the most
//! recently freed (cache-warm) objects first: `stack` behind a spinlock, and `lf_stack`,
//! lock-free where the CPU has a 16-byte compare-and-swap (spinlocked where it has not).

mod ring;
mod stack;

use std::sync::{Arc, OnceLock, RwLock};

use dpmem_eal::Eal;

use crate::error::MempoolError;

pub(crate) use ring::RingStore;
pub use stack::StackKind;
pub(crate) use stack::StackStore;

/// Most handlers a process can register (`RTE_MEMPOOL_MAX_OPS_IDX`).
pub const MAX_HANDLERS: usize = 16;

/// Longest handler name (`RTE_MEMPOOL_OPS_NAMESIZE` less its NUL).
pub const HANDLER_NAME_MAX: usize = 31;

/// The default handler.
pub const DEFAULT_HANDLER: &str = "ring_mp_mc";

/// What a handler learns about the pool it serves.
#[derive(Debug)]
pub struct PoolContext<'a> {
    pub eal: &'a Eal,
    pub name: &'a str,
    /// Objects the pool holds when full: the store must have room for all of them.
    pub size: u32,
    /// Where the pool's memory comes from.
    pub socket: dpmem_eal::Socket,
    pub flags: crate::flags::MempoolFlags,
    /// A word in the pool's shared header for the handler to find its store again from any
    /// process (DPDK's `pool_data`): typically the store's address.
    pub pool_data: u64,
}

/// A pool's objects, as seen by one process.
pub trait HandlerStore: Send + Sync {
    /// Store all of `objs` (object addresses), or none.
    fn enqueue(&self, objs: &[usize]) -> bool;
    /// Fill all of `out` with objects, or take none and leave `out` as it was.
    fn dequeue(&self, out: &mut [usize]) -> bool;
    /// Objects in the store.
    fn count(&self) -> u32;
}

/// A kind of store. Implementations must keep all shared state in memory every process
/// maps at the same address (a memzone), reachable from `pool_data`.
pub trait MempoolHandler: Send + Sync {
    fn name(&self) -> &str;
    /// Builds the store of a new pool; returns the `pool_data` word and this process's handle.
    fn alloc(&self, pool: &PoolContext<'_>) -> Result<(u64, Box<dyn HandlerStore>), String>;
    /// Opens the store another handle (perhaps in another process) built.
    fn attach(&self, pool: &PoolContext<'_>) -> Result<Box<dyn HandlerStore>, String>;
    /// Frees the store; no handle on it is used afterwards.
    fn free(&self, pool: &PoolContext<'_>, store: Box<dyn HandlerStore>);
}

/// The handlers dpmem implements itself, dispatched without a virtual call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtin {
    Ring(ring::RingKind),
    Stack(StackKind),
}

/// A registered handler.
#[derive(Clone)]
pub(crate) enum Handler {
    Builtin(Builtin),
    User(Arc<dyn MempoolHandler>),
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Handler::Builtin(b) => write!(f, "{b:?}"),
            Handler::User(h) => write!(f, "user handler {:?}", h.name()),
        }
    }
}

fn builtin_names() -> Vec<(&'static str, Handler)> {
    use ring::RingKind::*;
    vec![
        ("ring_mp_mc", Handler::Builtin(Builtin::Ring(MpMc))),
        ("ring_sp_sc", Handler::Builtin(Builtin::Ring(SpSc))),
        ("ring_mp_sc", Handler::Builtin(Builtin::Ring(MpSc))),
        ("ring_sp_mc", Handler::Builtin(Builtin::Ring(SpMc))),
        ("ring_mt_rts", Handler::Builtin(Builtin::Ring(Rts))),
        ("ring_mt_hts", Handler::Builtin(Builtin::Ring(Hts))),
        ("stack", Handler::Builtin(Builtin::Stack(StackKind::Locked))),
        (
            "lf_stack",
            Handler::Builtin(Builtin::Stack(StackKind::LockFree)),
        ),
    ]
}

fn registry() -> &'static RwLock<Vec<(String, Handler)>> {
    static REGISTRY: OnceLock<RwLock<Vec<(String, Handler)>>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        RwLock::new(
            builtin_names()
                .into_iter()
                .map(|(n, h)| (n.to_owned(), h))
                .collect(),
        )
    })
}

/// Registers a handler for this process (`rte_mempool_register_ops`). Every process that
/// opens a pool using it must register it too, under the same name.
pub fn register_handler(handler: Arc<dyn MempoolHandler>) -> Result<(), MempoolError> {
    let name = handler.name().to_owned();
    if name.is_empty() || name.len() > HANDLER_NAME_MAX {
        return Err(MempoolError::InvalidArgument(format!(
            "mempool handler name {name:?} must be 1..={HANDLER_NAME_MAX} bytes"
        )));
    }
    let mut table = registry().write().unwrap_or_else(|e| e.into_inner());
    if table.iter().any(|(n, _)| *n == name) {
        return Err(MempoolError::HandlerExists(name));
    }
    if table.len() >= MAX_HANDLERS {
        return Err(MempoolError::HandlerTableFull { max: MAX_HANDLERS });
    }
    table.push((name, Handler::User(handler)));
    Ok(())
}

/// Names of the registered handlers, built-in ones first.
pub fn handler_names() -> Vec<String> {
    let table = registry().read().unwrap_or_else(|e| e.into_inner());
    table.iter().map(|(n, _)| n.clone()).collect()
}

pub(crate) fn find(name: &str) -> Result<Handler, MempoolError> {
    let table = registry().read().unwrap_or_else(|e| e.into_inner());
    table
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, h)| h.clone())
        .ok_or_else(|| MempoolError::UnknownHandler(name.to_owned()))
}

/// The handler a pool gets by default: the ring mode its SP_PUT/SC_GET flags ask for.
pub(crate) fn default_for(flags: crate::flags::MempoolFlags) -> &'static str {
    use crate::flags::MempoolFlags as F;
    match (flags.contains(F::SP_PUT), flags.contains(F::SC_GET)) {
        (true, true) => "ring_sp_sc",
        (true, false) => "ring_sp_mc",
        (false, true) => "ring_mp_sc",
        (false, false) => DEFAULT_HANDLER,
    }
}

/// One process's open store of a pool: a match on built-ins, a virtual call for the rest.
pub(crate) enum Store<'eal> {
    Ring(RingStore<'eal>),
    Stack(StackStore<'eal>),
    User(Arc<dyn MempoolHandler>, Box<dyn HandlerStore>),
}

impl std::fmt::Debug for Store<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Store::Ring(r) => r.fmt(f),
            Store::Stack(s) => s.fmt(f),
            Store::User(h, _) => write!(f, "store of user handler {:?}", h.name()),
        }
    }
}

impl<'eal> Store<'eal> {
    pub fn alloc(
        handler: &Handler,
        eal: &'eal Eal,
        pool: &PoolContext<'_>,
    ) -> Result<(u64, Self), String> {
        match handler {
            Handler::Builtin(Builtin::Ring(kind)) => {
                RingStore::create(eal, pool, *kind).map(|(d, s)| (d, Store::Ring(s)))
            }
            Handler::Builtin(Builtin::Stack(kind)) => {
                StackStore::create(eal, pool, *kind).map(|(d, s)| (d, Store::Stack(s)))
            }
            Handler::User(h) => h.alloc(pool).map(|(d, s)| (d, Store::User(h.clone(), s))),
        }
    }

    pub fn attach(
        handler: &Handler,
        eal: &'eal Eal,
        pool: &PoolContext<'_>,
    ) -> Result<Self, String> {
        match handler {
            Handler::Builtin(Builtin::Ring(_)) => RingStore::attach(eal, pool).map(Store::Ring),
            Handler::Builtin(Builtin::Stack(_)) => StackStore::attach(eal, pool).map(Store::Stack),
            Handler::User(h) => h.attach(pool).map(|s| Store::User(h.clone(), s)),
        }
    }

    pub fn free(self, pool: &PoolContext<'_>) {
        match self {
            Store::Ring(r) => r.free(pool.eal),
            Store::Stack(s) => s.free(pool.eal),
            Store::User(h, s) => h.free(pool, s),
        }
    }

    #[inline(always)]
    pub fn enqueue(&self, objs: &[usize]) -> bool {
        match self {
            Store::Ring(r) => r.enqueue(objs),
            Store::Stack(s) => s.enqueue(objs),
            Store::User(_, s) => s.enqueue(objs),
        }
    }

    #[inline(always)]
    pub fn dequeue(&self, out: &mut [usize]) -> bool {
        match self {
            Store::Ring(r) => r.dequeue(out),
            Store::Stack(s) => s.dequeue(out),
            Store::User(_, s) => s.dequeue(out),
        }
    }

    pub fn count(&self) -> u32 {
        match self {
            Store::Ring(r) => r.count(),
            Store::Stack(s) => s.count(),
            Store::User(_, s) => s.count(),
        }
    }
}

impl crate::cache::Backend for Store<'_> {
    #[inline(always)]
    fn enqueue_bulk(&self, objs: &[usize]) -> bool {
        self.enqueue(objs)
    }
    #[inline(always)]
    fn dequeue_bulk(&self, out: &mut [usize]) -> bool {
        self.dequeue(out)
    }
}
