//! Side-by-side benchmarks of dpmem and DPDK 22.11.
