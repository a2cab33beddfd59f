//! `dpmem info`: initialise the EAL and print the memory layout, heaps, memzones and the lcore
//! table it built.

mod layout_text;
mod lcore_text;
mod mempool_text;

use clap::Args;
use dpmem::eal::lcore::LcoreInfo;
use dpmem::eal::{Eal, MemoryLayout};
use serde::Serialize;

/// What `--json` prints: the memory layout's fields, then the lcore table, heaps, memzones and
/// mempools.
#[derive(Debug, Serialize)]
struct InfoReport<'a> {
    #[serde(flatten)]
    layout: &'a MemoryLayout,
    lcores: &'a [LcoreInfo],
    heaps: &'a [dpmem::eal::HeapStats],
    memzones: &'a [dpmem::eal::Memzone],
    mempools: &'a [mempool_text::MempoolInfo],
}

/// Memory the embedded default asks for, in MiB.
const DEFAULT_MEMORY_MB: u64 = 16;

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Print the layout as JSON.
    #[arg(long)]
    json: bool,
    /// List every segment instead of collapsing contiguous runs.
    #[arg(long)]
    segments: bool,
    /// EAL options, after `--`. Without them a 16 MiB configuration that runs on any Linux
    /// machine is used: hugepages when they are usable, else `--no-huge`.
    #[arg(last = true, value_name = "EAL-ARGS")]
    eal_args: Vec<String>,
}

/// Brings the EAL up, describes it, and takes it down again; the description is returned
/// rather than printed so that the EAL's files are gone before anything is written (a
/// reader that closes the pipe early ends the program at the first write).
pub fn run(args: InfoArgs) -> Result<String, String> {
    let eal_args = if args.eal_args.is_empty() {
        let memory = dpmem::DefaultMemory::detect(DEFAULT_MEMORY_MB);
        if let Some(note) = memory.note() {
            // stderr, so that `--json` output stays parseable.
            eprintln!("dpmem info: {note}");
        }
        let mut eal_args = memory.eal_args();
        // The pid keeps concurrent runs, and any running application, apart.
        eal_args.extend([
            "--file-prefix".to_owned(),
            format!("dpmem-info-{}", std::process::id()),
        ]);
        eal_args
    } else {
        args.eal_args
    };
    let argv = std::iter::once("dpmem".to_owned()).chain(eal_args.iter().cloned());
    let eal = Eal::init(argv).map_err(|e| format!("EAL init failed: {e}"))?;
    let layout = eal.layout();
    let lcores = eal.lcore_threads().table();
    let heaps = eal.heaps().all_stats();
    let memzones = eal.memzones().list();
    let mempools = mempool_text::collect(&eal);
    drop(eal);
    if args.json {
        let report = InfoReport {
            layout: &layout,
            lcores: &lcores,
            heaps: &heaps,
            memzones: &memzones,
            mempools: &mempools,
        };
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        Ok(text + "\n")
    } else {
        Ok(format!("EAL options: {}\n", eal_args.join(" "))
            + &layout_text::render(&layout, args.segments)
            + &layout_text::render_heaps(&heaps, &memzones)
            + &mempool_text::render(&mempools)
            + &lcore_text::render(&lcores))
    }
}
