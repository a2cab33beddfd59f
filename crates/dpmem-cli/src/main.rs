//! `dpmem`: hugepage management, the EAL's memory layout, and side-by-side benchmarks.
//!
//! ```text
//! dpmem pipeline [--sessions N] [--format 1080p59|720p59] [--duration S] [--port loopback|udp]
//!                [--redundant] [--no-dma] [--rx-frames N] [--json] [--quiet] [-- EAL-ARGS]
//! dpmem hugepages show [--json]
//! dpmem hugepages reserve SIZE [--page-size 2M|1G] [--node N] [--mount [DIR]]
//! dpmem hugepages clear
//! dpmem hugepages clean [--file-prefix P] [--dry-run]
//! dpmem info [--json] [--segments] [-- EAL-ARGS]
//! dpmem proc-info [--file-prefix P] [--json] [--segments]
//! dpmem map [--file-prefix P] [-o FILE|-] [--html] [-- EAL-ARGS]
//! dpmem bench <workload> [--json] [--reps N] [--repeat K] [--filter PATTERN]
//! dpmem bench list
//! ```
//!
//! A closed standard output (`dpmem info --json | head -1`) ends the program quietly, and an
//! argument that is not UTF-8 is an error message, not a panic.

mod byte_size;
mod hugepages;
mod info;
mod map;
mod pipeline;
mod proc_info;

use std::ffi::OsString;
use std::io::{ErrorKind, Write};

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
    /// The whole stack end to end: TX sessions packetise generated 1080p59.94 frames, a port
    /// moves the packets, RX sessions reassemble them through the DMA copy engine, and every
    /// frame is checked byte for byte; prints the streams sustained and the figures per stage.
    Pipeline(pipeline::PipelineArgs),
    /// Show, reserve and release hugepages, and clean up page files nobody holds (what
    /// dpdk-hugepages.py does).
    Hugepages(hugepages::HugepagesArgs),
    /// Initialise the EAL and print its memory layout.
    Info(info::InfoArgs),
    /// Attach to a running primary as a secondary and print its memory layout, heaps,
    /// memzones, rings and pools (what dpdk-proc-info does).
    ProcInfo(proc_info::ProcInfoArgs),
    /// Draw the memory as an SVG: memseg lists as bands of pages, the heap's elements, memzones
    /// and pools (of this process's EAL, or of a running primary with --file-prefix).
    Map(map::MapArgs),
    /// Run a benchmark workload on dpmem and DPDK 22.11 side by side.
    Bench(dpmem_bench::BenchArgs),
}

fn main() {
    // Arguments as the kernel gave them: `std::env::args()` panics on one that is not UTF-8,
    // where clap (and a benchmark child) names it in an error instead.
    let args: Vec<OsString> = std::env::args_os().collect();
    restore_default_sigpipe();
    // A benchmark child must reach its EAL init before anything else happens in the process.
    if let Some(code) = dpmem_bench::child_main(&args) {
        std::process::exit(code);
    }
    let cli = Cli::parse_from(args);
    let result = match cli.command {
        Command::Pipeline(args) => pipeline::run(args).and_then(|text| write_stdout(&text)),
        Command::Hugepages(args) => hugepages::run(args),
        Command::Info(args) => info::run(args).and_then(|text| write_stdout(&text)),
        Command::ProcInfo(args) => proc_info::run(args).and_then(|text| write_stdout(&text)),
        Command::Map(args) => map::run(args).and_then(|written| match written {
            map::Written::Stdout(text) => write_stdout(&text),
            map::Written::File(path) => {
                eprintln!("dpmem map: wrote {}", path.display());
                Ok(())
            }
        }),
        Command::Bench(args) => dpmem_bench::run(&args).and_then(|text| write_stdout(&text)),
    };
    if let Err(message) = result {
        eprintln!("dpmem: {message}");
        std::process::exit(1);
    }
}

/// Rust starts programs with SIGPIPE ignored, so a write to a pipe whose reader has gone
/// fails with EPIPE, and `println!` turns that failure into a panic. A command whose reader
/// went away (`| head -1`) should end quietly, as `cat` does: the default action ends the
/// process at that write, whichever command's output it was (the hugepages commands'
/// `println!`s, clap's help). Commands that must clean up first (`info`'s EAL leaves files
/// until it is dropped) do all their work before they write.
fn restore_default_sigpipe() {
    // SAFETY: SIG_DFL installs no handler, so no code of ours runs in signal context; this
    // runs first in `main`, before the program starts any thread that could be writing.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// A command's output, all at once; a reader that went away is the end of the command, not
/// an error (where SIGPIPE is blocked, so the write returns EPIPE instead of ending us).
fn write_stdout(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(format!("writing the output: {e}")),
        _ => Ok(()),
    }
}
