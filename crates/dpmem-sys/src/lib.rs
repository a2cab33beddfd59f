//! `dpmem-sys` is the one place where dpmem talks to Linux.
//!
//! Everything above this crate sees typed facts (page sizes, NUMA nodes, mounts, CPUs) and
//! safe-ish handles (reserved address ranges, hugepage files). Discovery reads sysfs and procfs
//! through a [`SysRoot`](root::SysRoot) so that tests can present any machine: two NUMA nodes,
//! 1 GiB pages, no hugetlbfs mount, no hugepages at all.
//!
//! The raw syscalls live in the modules that need them (`mapping`, `backing_file`, `pagemap`,
//! `numa`, `fd_table`, `seqpacket`, `datagram`, `udp`); each `unsafe` block there says which
//! invariant makes it sound.

pub mod backing_file;
pub mod cpu_topology;
pub mod datagram;
pub mod dir_handle;
pub mod dir_watch;
pub mod error;
pub mod fd_table;
pub mod futex;
pub mod hugepage_info;
pub mod hugepage_reserve;
pub mod mapping;
pub mod meminfo;
pub mod mounts;
pub mod numa;
pub mod pagemap;
pub mod process;
pub mod process_token;
pub mod readiness;
pub mod root;
pub mod seqpacket;
pub mod sync;
pub mod thread;
pub mod udp;

pub use error::{SysError, SysResult};
