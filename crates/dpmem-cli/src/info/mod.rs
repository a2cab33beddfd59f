//! `dpmem info`: initialise the EAL and print the memory layout, heaps, memzones and the lcore
//! table it built.

mod layout_text;
mod lcore_text;
pub mod mempool_text;
pub mod ring_text;

use clap::Args;
use dpmem::eal::lcore::LcoreInfo;
use dpmem::eal::{Eal, HugeUnlink, MemoryLayout, MemoryMode};
use serde::Serialize;

/// What `--json` prints: the memory layout's fields, then the lcore table (this process's;
/// `dpmem proc-info` leaves it out), heaps, memzones, rings and mempools.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    #[serde(flatten)]
    pub layout: MemoryLayout,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lcores: Option<Vec<LcoreInfo>>,
    pub heaps: Vec<dpmem::eal::HeapStats>,
    pub memzones: Vec<dpmem::eal::Memzone>,
    pub rings: Vec<ring_text::RingInfo>,
    pub mempools: Vec<mempool_text::MempoolInfo>,
    /// In legacy memory with files kept, that the page files outlive the process and how to
    /// remove them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Snapshot {
    /// Reads everything an EAL can tell about its memory; `with_lcores` takes this process's
    /// lcore table too. Only reads: no memory is allocated and no pool object moved.
    pub fn collect(eal: &Eal, with_lcores: bool) -> Snapshot {
        let layout = eal.layout();
        let note = legacy_files_note(eal, &layout);
        Snapshot {
            lcores: with_lcores.then(|| eal.lcore_threads().table()),
            heaps: eal.heaps().all_stats(),
            memzones: eal.memzones().list(),
            rings: ring_text::collect(eal),
            mempools: mempool_text::collect(eal),
            layout,
            note,
        }
    }

    pub fn to_json(&self) -> Result<String, String> {
        serde_json::to_string_pretty(self)
            .map(|text| text + "\n")
            .map_err(|e| e.to_string())
    }

    pub fn to_text(&self, every_segment: bool) -> String {
        let mut out = layout_text::render(&self.layout, every_segment);
        if let Some(note) = &self.note {
            out.push_str(note);
            out.push('\n');
        }
        out + &layout_text::render_heaps(&self.heaps, &self.memzones)
            + &ring_text::render(&self.rings)
            + &mempool_text::render(&self.mempools)
            + &self
                .lcores
                .as_deref()
                .map(lcore_text::render)
                .unwrap_or_default()
    }
}

/// The one line a legacy-memory run gets: its hugepage files stay after it exits (legacy
/// memory never gives pages back, and DPDK keeps the files so secondaries can map them), so
/// say so and say how to remove them. Nothing for dynamic memory, `--in-memory` or a run that
/// unlinks its files.
fn legacy_files_note(eal: &Eal, layout: &MemoryLayout) -> Option<String> {
    let unlinked = eal.options().effective_huge_unlink() == HugeUnlink::Always;
    (layout.memory_mode == MemoryMode::Legacy && !layout.in_memory && !unlinked).then(|| {
        format!(
            "note: legacy memory keeps its hugepage files after the process exits (unless \
             --huge-unlink); remove them with `dpmem hugepages clean --file-prefix {}`",
            layout.file_prefix
        )
    })
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
    let (eal, eal_args) = bring_up("info", args.eal_args)?;
    let snapshot = Snapshot::collect(&eal, true);
    drop(eal);
    if args.json {
        snapshot.to_json()
    } else {
        Ok(format!("EAL options: {}\n", eal_args.join(" ")) + &snapshot.to_text(args.segments))
    }
}

/// Brings up an EAL of this process for `dpmem <command>` on `eal_args`, or, when there are
/// none, on the embedded default: 16 MiB of hugepages when they are usable, else `--no-huge`,
/// with the file prefix `dpmem-<command>-<pid>`. Returns the EAL and the options it was given.
pub fn bring_up(command: &str, eal_args: Vec<String>) -> Result<(Eal, Vec<String>), String> {
    let eal_args = if eal_args.is_empty() {
        let memory = dpmem::DefaultMemory::detect(DEFAULT_MEMORY_MB);
        if let Some(note) = memory.note() {
            // stderr, so that what the command writes to stdout stays parseable.
            eprintln!("dpmem {command}: {note}");
        }
        let mut eal_args = memory.eal_args();
        // The pid keeps concurrent runs, and any running application, apart.
        eal_args.extend([
            "--file-prefix".to_owned(),
            format!("dpmem-{command}-{}", std::process::id()),
        ]);
        eal_args
    } else {
        eal_args
    };
    let argv = std::iter::once("dpmem".to_owned()).chain(eal_args.iter().cloned());
    let eal = Eal::init(argv).map_err(|e| format!("EAL init failed: {e}"))?;
    Ok((eal, eal_args))
}
