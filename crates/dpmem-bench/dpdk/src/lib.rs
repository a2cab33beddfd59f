//! The DPDK 22.11 side of `dpmem bench`, as the `dpmem-bench-dpdk` program.
//!
//! `dpmem bench` starts this program for every DPDK child of a workload (one per
//! `rte_eal_init`, as DPDK allows one per process); the workloads' child code is
//! `dpmem_bench`'s, reaching DPDK through [`dpmem_bench::DpdkLoops`], which the C shim
//! implements here. Keeping the shim in its own program keeps libdpdk out of `dpmem`: the
//! `dpmem` program starts where DPDK is not installed, and `ldd dpmem` lists no `librte`.

use std::ffi::OsString;

#[cfg(dpdk_shim)]
mod shim;

/// The program's `main`, returning its exit code. Built without DPDK it only says why, with
/// [`dpmem_bench::dpdk_runner::EXIT_NO_DPDK`], and `dpmem bench` shows that in the DPDK
/// columns.
pub fn main() -> i32 {
    let args: Vec<OsString> = std::env::args_os().collect();
    #[cfg(dpdk_shim)]
    {
        dpmem_bench::dpdk_child_main(&args, &shim::Shim)
    }
    #[cfg(not(dpdk_shim))]
    {
        let _ = args;
        eprintln!(
            "dpmem-bench-dpdk was built without DPDK: {}",
            env!("DPMEM_BENCH_DPDK_MISSING")
        );
        dpmem_bench::dpdk_runner::EXIT_NO_DPDK
    }
}
