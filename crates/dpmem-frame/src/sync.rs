//! The frame's view of dpmem's one source of atomics, `dpmem_sys::sync`: the hardware's, or
//! loom's under `RUSTFLAGS="--cfg loom"`, so the frame reference protocol ([`crate::slot`])
//! runs inside loom's model checker unchanged.

pub(crate) use dpmem_sys::sync::{AtomicU32, AtomicU64, Ordering};
