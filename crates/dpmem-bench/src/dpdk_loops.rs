//! The DPDK 22.11 side of every workload, as one interface.
//!
//! DPDK's fast paths are `static inline`, so its side of each workload is C, compiled
//! against libdpdk by the `dpmem-bench-dpdk` crate and linked into the `dpmem-bench-dpdk`
//! program only: the `dpmem` program must start where DPDK is not installed. What the DPDK
//! children do between the C calls (which rows, in which order, what they print) is the
//! same code as dpmem's children and lives next to it in this crate; it reaches the C
//! through this trait, which the program implements and hands to
//! [`crate::dpdk_child_main`].

use crate::clocks::Elapsed;

/// Times of one `rte_eal_init` and the `rte_eal_cleanup` that follows it.
#[derive(Debug, Clone, Copy)]
pub struct EalTimes {
    /// Nanoseconds spent in `rte_eal_init`.
    pub init_ns: u64,
    /// Nanoseconds spent in `rte_eal_cleanup`.
    pub cleanup_ns: u64,
}

/// What one lcore did in a mempool row: objects taken and handed back, and in what time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LcoreCount {
    /// Objects got and put back (each counts once).
    pub objects: u64,
    /// Nanoseconds the lcore's timed loop ran.
    pub elapsed_ns: u64,
}

/// The malloc workload's loops for one child; a count of 0 skips that loop.
#[derive(Debug, Clone)]
pub struct MallocPlan {
    /// Allocation sizes, in bytes.
    pub sizes: Vec<u64>,
    /// Per size: allocations of the `malloc` batch.
    pub malloc_counts: Vec<u64>,
    /// Per size: allocations of the `zmalloc` batch.
    pub zmalloc_counts: Vec<u64>,
    /// Bytes of each memzone.
    pub memzone_len: u64,
    /// Memzones reserved then freed.
    pub memzone_count: u32,
    /// Slots of the churn.
    pub churn_slots: u32,
    /// Random allocations and frees of the churn.
    pub churn_ops: u32,
}

/// What the malloc loops measured, in nanoseconds per operation (0 where skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MallocTimes {
    /// Per size: one allocation and its free, `malloc` batch.
    pub malloc_ns: Vec<u64>,
    /// Per size: the same, `zmalloc` batch.
    pub zmalloc_ns: Vec<u64>,
    /// One memzone reserve and its free.
    pub memzone_ns: u64,
    /// One churn step.
    pub churn_ns: u64,
    /// Greatest free block of socket 0 after the churn, before its blocks are freed.
    pub greatest_free_after_churn: u64,
}

/// The pools and packet sizes of the mbuf workload, the same on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MbufShape {
    /// Buffers of each pool.
    pub buffers: u32,
    /// Buffers each lcore keeps in its cache, per pool.
    pub cache: u32,
    /// Data room of the main pool and the second pool (headroom included).
    pub data_room: u16,
    /// Data room of the header pool (the chain pool has none).
    pub hdr_room: u16,
    /// Packets per burst.
    pub burst: u32,
    /// Bytes of a transmitted packet's header.
    pub hdr_len: u16,
    /// Bytes of a transmitted packet's external payload.
    pub ext_len: u16,
    /// Bytes of the packet the clone and copy rows start from.
    pub copy_len: u32,
}

/// DPDK 22.11's side of the workloads. Every EAL init may be called once per process (DPDK's
/// rule), and only in a benchmark child; the loops run after their workload's init.
pub trait DpdkLoops:
    crate::dpdk_dma_loops::DpdkDmaLoops
    + crate::dpdk_frame_loops::DpdkFrameLoops
    + crate::dpdk_mp_loops::DpdkMpLoops
{
    /// The DPDK build, e.g. `DPDK 22.11.4`.
    fn version(&self) -> String;

    /// `rte_eal_init(args)` then `rte_eal_cleanup()`, both timed. `args[0]` is the program
    /// name, as in `argv`.
    fn eal_init_and_cleanup(&self, args: &[String]) -> Result<EalTimes, String>;

    /// `rte_eal_init(args)` and the four rings the ring workload uses (pointer and 16-byte
    /// elements, SP/SC and MP/MC, 4096 slots).
    fn ring_eal_init(&self, args: &[String]) -> Result<(), String>;

    /// One core: `iters` times enqueue then dequeue `n` elements (`op` 0 single, 1 burst,
    /// 2 bulk) of `esize` (8 or 16) bytes; TSC cycles of the loop.
    fn ring_one_core(
        &self,
        esize: u32,
        single_thread: bool,
        op: i32,
        n: u32,
        iters: u64,
    ) -> Result<u64, String>;

    /// Two cores: the main lcore enqueues `iters` bulks of `n`, the next lcore dequeues
    /// them; TSC cycles of (enqueuer, dequeuer).
    fn ring_two_cores(
        &self,
        esize: u32,
        single_thread: bool,
        n: u32,
        iters: u64,
    ) -> Result<(u64, u64), String>;

    /// `rte_eal_init(args)`, then the mempool workload's two pools of `elt_size`-byte
    /// objects (no cache; a cache of 512); returns their object count.
    fn mempool_eal_init(&self, args: &[String], elt_size: u32) -> Result<u32, String>;

    /// One mempool row: `cores` lcores (1 or 2) each take `keep` objects in gets of `bulk`
    /// and put them back in puts of `bulk`, over and over for `duration_ns`, on the pool
    /// with cache `cache_size` (0 or 512).
    fn mempool_run(
        &self,
        cache_size: u32,
        cores: u32,
        bulk: u32,
        keep: u32,
        duration_ns: u64,
    ) -> Result<Vec<LcoreCount>, String>;

    /// `rte_eal_init(args)`, the malloc loops of `plan`, then `rte_eal_cleanup()`.
    fn malloc(&self, args: &[String], plan: &MallocPlan) -> Result<MallocTimes, String>;

    /// `rte_eal_init(args)`, then the mbuf workload's pools of `shape` (main, second,
    /// header, chain), its cross-core ring and its external frame.
    fn mbuf_eal_init(&self, args: &[String], shape: &MbufShape) -> Result<(), String>;

    /// One mbuf row (`row`: the workload's row code), `ops` operations timed as one loop;
    /// every pool must be full before and after it.
    fn mbuf_run(&self, row: u32, ops: u64) -> Result<Elapsed, String>;
}
