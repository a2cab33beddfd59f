//! The workload families `dpmem bench` runs, by name: the table the command line, `list`
//! and the repeated runs share.

use crate::report::Report;
use crate::BenchOptions;

/// A workload family the command line can run.
#[derive(Debug)]
pub struct Workload {
    /// Its name on the command line.
    pub name: &'static str,
    /// One line for `dpmem bench list`.
    pub about: &'static str,
    /// The names of its rows, in table order (what `--filter` matches).
    pub rows: fn() -> Vec<String>,
    /// Runs it.
    pub run: fn(&BenchOptions) -> Report,
}

/// Every workload family known so far, in the order `list` prints them.
pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "init",
        about: "EAL init of 1 GiB of 2 MiB hugepages: legacy, dynamic, in-memory (ms)",
        rows: crate::init::row_names,
        run: crate::init::run_init,
    },
    Workload {
        name: "ring",
        about:
            "ring_perf_autotest: single/burst/bulk, SP/SC and MP/MC, 1 and 2 cores (cycles/elem)",
        rows: crate::ring::row_names,
        run: crate::ring::run_ring,
    },
    Workload {
        name: "malloc",
        about: "malloc/zmalloc+free 64 B..16 MiB, memzone reserve+free, churn (ns per op)",
        rows: crate::malloc::row_names,
        run: crate::malloc::run_malloc,
    },
    Workload {
        name: "mempool",
        about: "mempool_perf_autotest: cache 0/512, bulk 1..32, keep 32..512, 1 and 2 cores \
                (M objects/s, higher is better)",
        rows: crate::mempool::row_names,
        run: crate::mempool::run_mempool,
    },
    Workload {
        name: "mbuf",
        about: "packet buffers: alloc/free, bulk, data ops, clone, copy, extbuf attach, \
                ST 2110 tx packet, mixed-pool free, cross-core clone/free (ns per op)",
        rows: crate::mbuf::row_names,
        run: crate::mbuf::run_mbuf,
    },
    Workload {
        name: "dma",
        about: "copy engine vs DPDK's dma_skeleton: 64 B, 1 KiB, 4 KiB copies in bursts \
                (M copies/s, higher is better)",
        rows: crate::dma::row_names,
        run: crate::dma::run_dma,
    },
    Workload {
        name: "frame",
        about: "media frames: ST 2110-20 packetiser of a 1080p59.94 frame (and ST 2022-7), \
                reassembly copies by the CPU and by the copy engine vs dma_skeleton \
                (ns per packet)",
        rows: crate::frame::row_names,
        run: crate::frame::run_frame,
    },
    Workload {
        name: "mp",
        about: "inter-process channel between real processes: request_sync round trip with \
                1 and 2 secondaries, one-way message, a secondary's allocation that needs a new \
                page (µs)",
        rows: crate::mp::row_names,
        run: crate::mp::run_mp,
    },
];

/// The workload called `name`.
pub(crate) fn workload(name: &str) -> Option<&'static Workload> {
    WORKLOADS.iter().find(|w| w.name == name)
}
