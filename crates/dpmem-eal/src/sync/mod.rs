//! Synchronisation that works across processes.
//!
//! `std::sync::Mutex` is private to one process; everything here lives inside shared memory and
//! works for every process that maps it, including when one of them dies holding a lock (see
//! [`shared_mutex`]).

pub mod lock_depth;
pub mod lock_recovery;
pub mod shared_locked;
pub mod shared_mutex;

pub use lock_depth::LockDepthScope;
pub use shared_locked::{OwnerDied, Repair, SharedLocked, SharedLockedGuard};
pub use shared_mutex::{LockRetired, SharedMutex, SharedMutexGuard};
