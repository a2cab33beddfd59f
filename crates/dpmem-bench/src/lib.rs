//! Side-by-side benchmarks of dpmem and DPDK 22.11.
//!
//! Each workload family runs the same operations on dpmem and on DPDK 22.11 in one run, and
//! reports both medians, their ratio, and the geometric mean of the ratios:
//!
//! ```text
//! dpmem bench <init|ring|malloc|mempool|mbuf|dma|frame|mp> [--json] [--reps N] [--repeat K] [--filter PATTERN]
//! dpmem bench list
//! ```
//!
//! DPDK's side is C compiled against Debian's libdpdk (the `dpmem-bench-dpdk` crate), and
//! only the `dpmem-bench-dpdk` program links it: `dpmem bench` runs DPDK's side there as a
//! child process ([`dpdk_runner`]), so the `dpmem` program itself starts on machines without
//! DPDK. That program's `main` is [`dpdk_child_main`] with the C behind [`DpdkLoops`].
//!
//! The `dpmem` program must call [`child_main`] first thing in `main`: workloads that can
//! run only once per process (EAL init) re-execute the program as a child.
//!
//! | family | what                                           | unit |
//! | ------ | ---------------------------------------------- | ---- |
//! | `init` | EAL init of 1 GiB: legacy, dynamic, in-memory  | ms   |
//! | `ring` | ring_perf_autotest's rows, 1 and 2 cores       | TSC cycles per element |
//! | `malloc` | malloc/zmalloc+free 64 B..16 MiB, memzones, churn | ns per op |
//! | `mempool` | mempool_perf_autotest's rows: cache 0/512, bulk 1..32, keep 32..512, 1 and 2 cores | million objects per second (higher is better) |
//! | `mbuf` | packet buffers: alloc/free single and bulk, data operations, clone, copy, external buffers, an ST 2110 transmit packet, mixed-pool bulk free, clone and free on two lcores | ns per op (and TSC cycles) |
//! | `dma` | copy engine vs DPDK's `dma_skeleton`: 64 B, 1 KiB, 4 KiB copies in bursts | million copies per second (higher is better) |
//! | `frame` | media frames: the ST 2110-20 packetiser on a 1080p59.94 frame (and ST 2022-7), reassembly copies by the CPU and by the copy engine vs `dma_skeleton` | ns per packet (and TSC cycles) |
//! | `mp` | inter-process channel between a real primary and real secondaries: synchronous request round trip with one and two secondaries, one-way message, a secondary's allocation that needs a new page | µs per round trip or message |

mod child;
mod child_dispatch;
mod cli;
mod clocks;
mod dma;
mod dpdk_dma_loops;
mod dpdk_frame_loops;
mod dpdk_loops;
mod dpdk_mp_loops;
pub mod dpdk_runner;
mod frame;
mod hugepage_host;
mod init;
mod kernel_baseline;
mod malloc;
mod mbuf;
mod mempool;
mod mp;
mod per_op;
mod repeat;
pub mod repeated_report;
pub mod report;
mod ring;
mod row_selection;
mod samples;
mod side_setup;
pub mod stats;
mod tsc;
mod workloads;

pub use child_dispatch::{child_main, dpdk_child_main};
pub use cli::{run, BenchArgs};
pub use clocks::Elapsed;
pub use dma::run_dma;
pub use dpdk_dma_loops::{CopyCount, DpdkDmaLoops};
pub use dpdk_frame_loops::{DpdkFrameLoops, FrameShape};
pub use dpdk_loops::{DpdkLoops, EalTimes, LcoreCount, MallocPlan, MallocTimes, MbufShape};
pub use dpdk_mp_loops::DpdkMpLoops;
pub use frame::run_frame;
pub use init::run_init;
pub use malloc::run_malloc;
pub use mbuf::run_mbuf;
pub use mempool::run_mempool;
pub use mp::run_mp;
pub use report::{Better, Measurement, Report, Row};
pub use ring::run_ring;
pub use workloads::{Workload, WORKLOADS};

/// Settings shared by every workload.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Repetitions each median is taken over, inside one run.
    pub reps: usize,
    /// Only the rows whose name contains this (all rows without it).
    pub filter: Option<String>,
}

impl BenchOptions {
    /// The rows of a workload whose rows are `names` that these options select.
    pub(crate) fn selection(&self, names: &[String]) -> row_selection::RowSelection {
        row_selection::RowSelection::matching(names, self.filter.as_deref())
    }
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            reps: 5,
            filter: None,
        }
    }
}
