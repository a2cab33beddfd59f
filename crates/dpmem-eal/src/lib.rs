//! `dpmem-eal` is dpmem's environment abstraction layer: what DPDK's EAL does for memory.
//!
//! It parses DPDK's command-line options, discovers hugepages, reserves one virtual-address
//! window per memseg list, maps hugepage memory into those windows in every mode DPDK 22.11
//! offers (dynamic, legacy, single-file segments, in-memory, no-huge), records each page's
//! IOVA and NUMA node, and keeps that metadata in a shared configuration file that secondary
//! processes map at the same virtual address. A secondary maps the primary's pages when it
//! attaches; in dynamic memory, pages mapped later by any process (a secondary asks the
//! primary) are mapped in every live process before the call that mapped them returns, so a
//! pointer handed over at once is valid everywhere (DPDK's synchronous hotplug round; see
//! `memory/cross_process.rs`). A secondary the round missed catches up in its heap and memzone
//! calls, or when it calls [`Memory::sync_with_primary`].
//!
//! ```no_run
//! let eal = dpmem_eal::Eal::init(["app", "--no-huge", "-m", "64"])?;
//! for list in eal.memory().lists() {
//!     println!("{:#x}: {} pages of {} bytes on socket {}", list.base_va, list.n_used, list.page_size, list.socket);
//! }
//! # Ok::<(), dpmem_eal::EalError>(())
//! ```
//!
//! # Telemetry
//!
//! Each EAL serves DPDK 22.11's telemetry protocol on a unix socket where DPDK puts its own
//! (`/var/run/dpdk/<file prefix>/dpdk_telemetry.v2` for root), so DPDK's client reads a
//! running dpmem program unchanged: `dpdk-telemetry.py -f <file prefix>`, then `/` for the
//! commands, `/eal/heap_info,0`, `/eal/memzone_list`, `/mempool/list`, ... It starts with
//! the EAL (`--no-telemetry` turns it off) and goes with it;
//! [`telemetry::register_command`] adds an application's own commands. See [`telemetry`].
//!
//! # Inter-process channel
//!
//! The processes of one file prefix talk as DPDK's do (`rte_mp_*`): [`Eal::ipc`] registers
//! named actions, sends one-way messages (a name, up to 256 bytes, up to 8 file descriptors)
//! and makes synchronous and asynchronous requests that gather every peer's reply, handled
//! on a control thread. See [`ipc`].

mod byte_count;
mod crash_point;
mod default_memory;
pub mod eal;
pub mod error;
pub mod fbarray;
pub mod heap;
mod hotplug_channel;
pub mod iova;
pub mod ipc;
pub mod lcore;
pub mod limits;
mod list_table_repair;
pub mod memcheck;
pub mod memory;
pub mod memseg;
pub mod memseg_list;
pub mod memzone;
mod memzone_flags;
mod no_primary;
pub mod options;
pub mod runtime_dir;
mod shared_config;
mod shared_name;
mod socket;
mod sync;
pub mod telemetry;

pub use default_memory::DefaultMemory;
pub use eal::{Eal, EalSettings, MemoryLayout};
pub use error::{EalError, ErrorKind};
pub use heap::{DpmemGlobalAlloc, HeapAllocator, HeapBox, HeapRequest, HeapStats, Heaps};
pub use iova::{Iova, IovaMode};
pub use memory::{
    LayoutWatch, MemEvent, Memory, MemoryMode, PageRequest, PageRun, Pages, ProcessRole,
};
pub use memseg::Memseg;
pub use memzone::{Memzone, MemzoneRequest, Memzones};
pub use memzone_flags::MemzoneFlags;
pub use options::{EalOptions, HugeUnlink};
pub use socket::Socket;
pub use sync::lock_recovery;
