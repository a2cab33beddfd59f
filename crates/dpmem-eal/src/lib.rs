//! `dpmem-eal` is dpmem's environment abstraction layer: what DPDK's EAL does for memory.
//!
//! It parses DPDK's command-line options, discovers hugepages, reserves one virtual-address
//! window per memseg list, maps hugepage memory into those windows in every mode DPDK 22.11
//! offers (dynamic, legacy, single-file segments, in-memory, no-huge), records each page's
//! IOVA and NUMA node, and keeps that metadata in a shared configuration file that secondary
//! processes map at the same virtual address.

pub mod fbarray;
pub mod options;
