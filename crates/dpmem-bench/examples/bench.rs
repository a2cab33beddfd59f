//! `dpmem bench` without the rest of the `dpmem` program:
//! `cargo run --release -p dpmem-bench --features dpdk --example bench -- init`.
//!
//! Like the `dpmem` binary, it hands child invocations to `child_main` before anything else.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(code) = dpmem_bench::child_main(&args) {
        std::process::exit(code);
    }
    std::process::exit(dpmem_bench::main_with_args(&args[1..]));
}
