//! Lcores and threads: which lcores exist, the threads that run them, and what each thread
//! knows about itself (DPDK's `rte_lcore.h`, `rte_launch.h`, `rte_thread_register`,
//! `rte_ctrl_thread_create`, `rte_cycles.h`).
//!
//! An EAL instance owns one [`LcoreThreads`]: its lcore table (built from `-l`, `-c` or
//! `--lcores` and the CPU topology), one worker thread per lcore other than the main one, each
//! pinned to its CPU set and waiting for work, and the lcore ids lent to registered non-EAL
//! threads. The thread that initialises the EAL becomes its main lcore and is pinned to the
//! main lcore's CPU set, as in DPDK.
//!
//! # Several EAL instances in one process
//!
//! DPDK has one EAL per process, so "the calling thread's lcore id" is unambiguous there.
//! dpmem allows several, so a thread may hold an lcore in more than one of them (it
//! initialised two EALs, or registered itself with two). Each thread keeps a small list of
//! its bindings, newest last:
//!
//! - [`LcoreThreads::current_lcore_id`] is exact: this thread's lcore id *in that EAL*, or
//!   [`LCORE_ID_ANY`]. Per-EAL structures (mempool caches) should use it.
//! - The free function [`lcore_id`] answers for the newest binding whose EAL is still alive —
//!   for a worker, its own EAL; for a thread that initialised several EALs, the most recent.
//!   With a single EAL (the DPDK case) both agree.
//! - A binding dies with its EAL: once an EAL is dropped, every thread sees its lcore ids as
//!   gone, even threads that never hear about the drop.
//! - Dropping an EAL on the thread that initialised it gives that thread back the affinity
//!   it had before (or the CPU set of its newest remaining main lcore). Dropped elsewhere,
//!   the initialising thread keeps its pinning: one thread cannot safely change another's
//!   thread-local state.
//!
//! # Fake machines
//!
//! When the EAL reads a fake sysfs root (`EalSettings::sys_root`), its CPUs are imaginary, so
//! threads are started but not pinned; their recorded CPU sets and sockets are the ones the
//! fake topology gives, which is what tests of the lcore table need.

mod control_thread;
mod error;
mod launch;
mod lcore_threads;
mod registry;
mod scope;
mod table;
pub mod thread_local;
pub mod tsc;

pub use control_thread::ControlThread;
pub use error::LcoreError;
pub use launch::{Launch, MainLcore, MpLaunch};
pub(crate) use lcore_threads::LcoreSetup;
pub use lcore_threads::{LcoreIdProbe, LcoreThreads, WaitResult};
pub use scope::{LcoreScope, ScopedLaunch};
pub use table::{build_table, LcoreInfo, LcoreRole};
pub use thread_local::{lcore_id, set_thread_affinity, socket_id, thread_affinity};

/// The lcore id of a thread that has none (`LCORE_ID_ANY`): unregistered threads, control
/// threads, and threads of an EAL that is gone.
pub const LCORE_ID_ANY: u32 = u32::MAX;
