//! `dpmem-bench-dpdk`: the DPDK 22.11 side of `dpmem bench`, which starts it; see the
//! `dpmem_bench_dpdk` crate.

fn main() {
    std::process::exit(dpmem_bench_dpdk::main());
}
