//! Times the heap's small-block path as `dpmem bench malloc` does (N allocations timed as a
//! batch, then N frees), over many batches in one EAL: a quick look at the cost of one
//! allocation + free pair (`cargo run --release -p dpmem-eal --example malloc_free_loop`).

use std::ptr::NonNull;
use std::time::Instant;

use dpmem_eal::{DefaultMemory, Eal};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // As the bench's dpmem side: memory mapped at start and pinned, hugepages if there are any.
    let memory = DefaultMemory::detect(512);
    if let Some(note) = memory.note() {
        eprintln!("malloc_free_loop: {note}");
    }
    let mut args = vec!["loop".to_owned(), "-l".into(), "0".into()];
    args.extend(memory.eal_args_in_memory());
    args.extend([
        "--file-prefix".into(),
        format!("mallocloop{}_", std::process::id()),
    ]);
    let eal = Eal::init(args)?;
    let heaps = eal.heaps();
    let mut blocks: Vec<NonNull<u8>> = Vec::with_capacity(1000);
    // More batches for a profiler: DPMEM_LOOP_BATCHES=2000.
    let batch_count: usize = std::env::var("DPMEM_LOOP_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    for size in [64usize, 1024] {
        for zeroed in [false, true] {
            let mut batches = Vec::new();
            let mut alloc_phase = Vec::new();
            for _ in 0..batch_count {
                let start = Instant::now();
                for _ in 0..1000 {
                    let block = if zeroed {
                        heaps.zmalloc(size, 0)
                    } else {
                        heaps.malloc(size, 0)
                    };
                    blocks.push(block?);
                }
                alloc_phase.push(start.elapsed().as_nanos() as f64 / 1000.0);
                for block in blocks.drain(..) {
                    // SAFETY: allocated just above, freed once, unused.
                    unsafe { heaps.free(block) }?;
                }
                batches.push(start.elapsed().as_nanos() as f64 / 1000.0);
            }
            let first = batches[0];
            batches.sort_by(f64::total_cmp);
            alloc_phase.sort_by(f64::total_cmp);
            println!(
                "{}malloc+free {size} B x1000: first batch {first:.1} ns per pair, median of {batch_count} {:.1} (allocations {:.1})",
                if zeroed { "z" } else { "" },
                batches[batch_count / 2],
                alloc_phase[batch_count / 2]
            );
        }
    }
    Ok(())
}
