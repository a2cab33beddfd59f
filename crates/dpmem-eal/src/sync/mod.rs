//! Synchronisation that works across processes.
//!
//! `std::sync::Mutex` is private to one process; everything here lives inside shared memory and
//! works for every process that maps it.

pub mod lock_depth;
pub mod shared_locked;
pub mod shared_mutex;

pub use lock_depth::LockDepthScope;
pub use shared_locked::{SharedLocked, SharedLockedGuard};
pub use shared_mutex::{SharedMutex, SharedMutexGuard};
