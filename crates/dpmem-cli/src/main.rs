//! `dpmem`: hugepage management, the EAL's memory layout, and side-by-side benchmarks.
//!
//! ```text
//! dpmem hugepages show [--json]
//! dpmem hugepages reserve SIZE [--page-size 2M|1G] [--node N] [--mount [DIR]]
//! dpmem hugepages clear
//! dpmem info [--json] [--segments] [-- EAL-ARGS]
//! dpmem bench <workload> [--json] [--reps N] | dpmem bench list
//! ```

mod byte_size;
mod hugepages;
mod info;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "dpmem",
    version,
    about = "dpmem: DPDK's data-plane memory subsystem, in Rust"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show, reserve and release hugepages (what dpdk-hugepages.py does).
    Hugepages(hugepages::HugepagesArgs),
    /// Initialise the EAL and print its memory layout.
    Info(info::InfoArgs),
    /// Run a benchmark workload on dpmem and DPDK 22.11 side by side.
    // The bench harness has its own parser (it also serves the bench child processes), so
    // every word after `bench`, `--help` included, goes to it untouched.
    #[command(disable_help_flag = true)]
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // A benchmark child must reach its EAL init before anything else happens in the process.
    if let Some(code) = dpmem_bench::child_main(&args) {
        std::process::exit(code);
    }
    let cli = Cli::parse_from(&args);
    let result = match cli.command {
        Command::Hugepages(args) => hugepages::run(args),
        Command::Info(args) => info::run(args),
        Command::Bench { args } => std::process::exit(dpmem_bench::main_with_args(&args)),
    };
    if let Err(message) = result {
        eprintln!("dpmem: {message}");
        std::process::exit(1);
    }
}
