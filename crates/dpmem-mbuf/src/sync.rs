//! The packet buffer's view of dpmem's one source of atomics, `dpmem_sys::sync`: the
//! hardware's, or loom's under `RUSTFLAGS="--cfg loom"`, so that the reference-count
//! protocols ([`crate::refcount`]) run inside loom's model checker unchanged.

pub(crate) use dpmem_sys::sync::{AtomicU16, Ordering};
