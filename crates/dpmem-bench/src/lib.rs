//! Side-by-side benchmarks of dpmem and DPDK 22.11.
//!
//! Each workload family runs the same operations on dpmem and, through a small C shim
//! compiled against Debian's libdpdk (`csrc/dpdk_shim.c`, feature `dpdk`), on DPDK 22.11,
//! in one run, and reports both medians, their ratio, and the geometric mean of the ratios:
//!
//! ```text
//! dpmem bench init [--json] [--reps N]
//! dpmem bench ring [--json] [--reps N]
//! dpmem bench mempool [--json] [--reps N]
//! dpmem bench list
//! ```
//!
//! The `dpmem` binary must call [`child_main`] first thing in `main`: workloads that can run
//! only once per process (EAL init) re-execute the binary as a child.
//!
//! | family | what                                           | unit |
//! | ------ | ---------------------------------------------- | ---- |
//! | `init` | EAL init of 1 GiB: legacy, dynamic, in-memory  | ms   |
//! | `ring` | ring_perf_autotest's rows, 1 and 2 cores       | TSC cycles per element |
//! | `malloc` | malloc/zmalloc+free 64 B..16 MiB, memzones, churn | ns per op |
//! | `mempool` | mempool_perf_autotest's rows: cache 0/512, bulk 1..32, keep 32..512, 1 and 2 cores | million objects per second (higher is better) |

mod child;
mod cli;
mod dpdk_shim;
mod hugepage_host;
mod init;
mod kernel_baseline;
mod malloc;
mod mempool;
pub mod report;
mod ring;
pub mod stats;

pub use child::child_main;
pub use cli::{main_with_args, WORKLOADS};
pub use init::run_init;
pub use malloc::run_malloc;
pub use mempool::run_mempool;
pub use report::{Better, Measurement, Report, Row};
pub use ring::run_ring;

/// Settings shared by every workload.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Repetitions each median is taken over.
    pub reps: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions { reps: 5 }
    }
}
