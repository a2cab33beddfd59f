//! The text form of a [`MemoryLayout`].
//!
//! A memseg list can hold tens of thousands of segments (`--no-huge -m 64` is 16384 pages of
//! 4 KiB), so by default consecutive segments that look alike — adjacent slots, same socket,
//! same flags — print as one line that says whether their IOVAs are contiguous too.

use std::fmt::Write;

use dpmem::eal::memseg::flags;
use dpmem::eal::memseg_list::MemsegListInfo;
use dpmem::eal::{MemoryLayout, MemoryMode, Memseg, ProcessRole, BAD_IOVA};

use crate::byte_size::{approximate, ByteSize};

pub fn render(layout: &MemoryLayout, every_segment: bool) -> String {
    let mut out = String::new();
    let role = match layout.process_type {
        ProcessRole::Primary => "primary",
        ProcessRole::Secondary => "secondary",
    };
    let mode = match layout.memory_mode {
        MemoryMode::Dynamic => "dynamic",
        MemoryMode::Legacy => "legacy",
        MemoryMode::NoHuge => "no-huge",
    };
    let sizes: Vec<String> = layout
        .page_sizes
        .iter()
        .map(|&p| ByteSize(p).to_string())
        .collect();
    // `write!` into a String cannot fail.
    let _ = writeln!(out, "process type: {role}");
    let _ = writeln!(out, "memory mode:  {mode}");
    let _ = writeln!(out, "IOVA mode:    {}", layout.iova_mode.as_str());
    let _ = writeln!(out, "page sizes:   {}", sizes.join(", "));
    let _ = writeln!(out, "file prefix:  {}", layout.file_prefix);
    let _ = writeln!(
        out,
        "runtime dir:  {}",
        if layout.in_memory {
            "none (--in-memory)"
        } else {
            layout.runtime_dir.as_deref().unwrap_or("none")
        }
    );
    for list in &layout.memseg_lists {
        render_list(&mut out, &list.info, &list.segments, every_segment);
    }
    let _ = writeln!(out, "totals:");
    if layout.sockets.is_empty() {
        let _ = writeln!(out, "  no memory mapped");
    }
    for s in &layout.sockets {
        let _ = writeln!(out, "  socket {}: {}", s.socket_id, approximate(s.bytes));
    }
    out
}

fn render_list(out: &mut String, info: &MemsegListInfo, segments: &[Memseg], every_segment: bool) {
    let _ = writeln!(
        out,
        "memseg list {}: page size {}, socket {}, va 0x{:x}-0x{:x} ({}), {}/{} segments used{}",
        info.index,
        ByteSize(info.page_size),
        info.socket_id,
        info.base_va,
        info.base_va + info.len,
        approximate(info.len),
        info.n_used,
        info.n_segs,
        if info.external { ", external" } else { "" }
    );
    let slot = |seg: &Memseg| (seg.va - info.base_va) / info.page_size.max(1);
    let mut start = 0;
    while start < segments.len() {
        let mut end = start + 1;
        if !every_segment {
            while end < segments.len() && continues_run(info, &segments[end - 1], &segments[end]) {
                end += 1;
            }
        }
        let run = &segments[start..end];
        let (first, last) = (&run[0], &run[run.len() - 1]);
        let index = if run.len() == 1 {
            format!("{}", slot(first))
        } else {
            format!("{}..{}", slot(first), slot(last))
        };
        let bytes: u64 = run.iter().map(|s| s.len).sum();
        let _ = writeln!(
            out,
            "  seg {index:<11} va 0x{:x}-0x{:x}  iova {}  len {}  socket {}  {}",
            first.va,
            last.end(),
            iova_text(run),
            approximate(bytes),
            first.socket_id,
            flag_words(first.flags)
        );
        start = end;
    }
}

/// Whether `next` belongs on the same line as `prev`: the next slot, same socket and flags.
fn continues_run(info: &MemsegListInfo, prev: &Memseg, next: &Memseg) -> bool {
    next.va == prev.va + info.page_size
        && next.socket_id == prev.socket_id
        && next.flags == prev.flags
}

/// The IOVA of a run: its range when contiguous (what a device DMA across the run needs),
/// else how many contiguous pieces it falls into.
fn iova_text(run: &[Memseg]) -> String {
    let first = &run[0];
    if run.iter().any(|s| s.iova == BAD_IOVA) {
        return "unknown".to_owned();
    }
    let pieces = 1 + run
        .windows(2)
        .filter(|w| w[1].iova != w[0].iova.wrapping_add(w[0].len))
        .count();
    if run.len() == 1 {
        format!("0x{:x}", first.iova)
    } else if pieces == 1 {
        let last = &run[run.len() - 1];
        format!(
            "0x{:x}-0x{:x} (contiguous)",
            first.iova,
            last.iova + last.len
        )
    } else {
        format!("from 0x{:x} in {pieces} contiguous pieces", first.iova)
    }
}

/// Segment flags as words: `pinned,dirty`; `-` when none is set.
fn flag_words(bits: u32) -> String {
    let mut words = Vec::new();
    if bits & flags::DO_NOT_FREE != 0 {
        words.push("pinned".to_owned());
    }
    if bits & flags::DIRTY != 0 {
        words.push("dirty".to_owned());
    }
    let unknown = bits & !(flags::DO_NOT_FREE | flags::DIRTY);
    if unknown != 0 {
        words.push(format!("0x{unknown:x}"));
    }
    if words.is_empty() {
        "-".to_owned()
    } else {
        words.join(",")
    }
}

/// The heaps' statistics and the memzone table, as text.
pub fn render_heaps(heaps: &[dpmem::eal::HeapStats], memzones: &[dpmem::eal::Memzone]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "heaps:");
    for h in heaps {
        if !h.attached {
            let _ = writeln!(
                out,
                "  {} (external, socket {}): total {} busy elements {} (memory not attached in this process: free space unknown)",
                h.name, h.socket_id, h.total_bytes, h.alloc_count
            );
            continue;
        }
        let _ = writeln!(
            out,
            "  {} ({}socket {}): total {} free {} allocated {} greatest free {} free elements {} busy elements {}",
            h.name,
            if h.external { "external, " } else { "" },
            h.socket_id,
            h.total_bytes,
            h.free_bytes,
            h.alloc_bytes,
            h.greatest_free_bytes,
            h.free_count,
            h.alloc_count
        );
    }
    let _ = writeln!(out, "memzones: {}", memzones.len());
    for mz in memzones {
        let _ = writeln!(
            out,
            "  {}: va {:#x} iova {:#x} len {} page {} socket {}",
            mz.name, mz.va, mz.iova, mz.len, mz.page_size, mz.socket_id
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(va: u64, iova: u64) -> Memseg {
        Memseg {
            va,
            iova,
            len: 4096,
            page_size: 4096,
            flags: flags::DO_NOT_FREE,
            ..Memseg::default()
        }
    }

    fn list(n_used: u32) -> MemsegListInfo {
        MemsegListInfo {
            index: 0,
            base_va: 0x10000,
            len: 16 * 4096,
            page_size: 4096,
            socket_id: 0,
            n_segs: 16,
            n_used,
            external: false,
            heap: false,
        }
    }

    #[test]
    fn contiguous_runs_collapse_to_one_line() {
        let segs: Vec<Memseg> = (0..4)
            .map(|i| seg(0x10000 + i * 4096, 0x10000 + i * 4096))
            .collect();
        let mut out = String::new();
        render_list(&mut out, &list(4), &segs, false);
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(out.contains("seg 0..3"), "{out}");
        assert!(out.contains("iova 0x10000-0x14000 (contiguous)"), "{out}");
        assert!(out.contains("pinned"), "{out}");

        let mut every = String::new();
        render_list(&mut every, &list(4), &segs, true);
        assert_eq!(every.lines().count(), 5, "{every}");
    }

    #[test]
    fn gaps_and_scattered_iovas_are_shown() {
        // Slots 0, 1 and 3: the hole starts a new line; slot 0 and 1 are not IOVA-adjacent.
        let segs = vec![
            seg(0x10000, 0x9000),
            seg(0x11000, 0x1000),
            seg(0x13000, 0x5000),
        ];
        let mut out = String::new();
        render_list(&mut out, &list(3), &segs, false);
        assert!(out.contains("seg 0..1"), "{out}");
        assert!(out.contains("in 2 contiguous pieces"), "{out}");
        assert!(out.contains("seg 3 "), "{out}");
    }

    fn heap(name: &str, socket_id: i32, external: bool) -> dpmem::eal::HeapStats {
        dpmem::eal::HeapStats {
            name: name.into(),
            socket_id,
            total_bytes: 4 << 20,
            free_bytes: 3 << 20,
            alloc_bytes: 1 << 20,
            greatest_free_bytes: 3 << 20,
            free_count: 1,
            alloc_count: 2,
            fallback_alloc_count: 0,
            external,
            attached: true,
        }
    }

    #[test]
    fn external_heaps_are_listed_with_the_socket_heaps() {
        let unattached = dpmem::eal::HeapStats {
            attached: false,
            ..heap("theirs", 257, true)
        };
        let heaps = [
            heap("socket_0", 0, false),
            heap("frames", 256, true),
            unattached,
        ];
        let out = render_heaps(&heaps, &[]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "heaps:");
        assert!(
            lines[1].starts_with("  socket_0 (socket 0): total 4194304"),
            "{out}"
        );
        assert!(
            lines[2].starts_with("  frames (external, socket 256): total 4194304 free 3145728"),
            "{out}"
        );
        assert!(lines[2].ends_with("busy elements 2"), "{out}");
        assert_eq!(
            lines[3],
            "  theirs (external, socket 257): total 4194304 busy elements 2 (memory not attached in this process: free space unknown)"
        );
    }

    #[test]
    fn flags_read_as_words() {
        assert_eq!(flag_words(0), "-");
        assert_eq!(
            flag_words(flags::DO_NOT_FREE | flags::DIRTY),
            "pinned,dirty"
        );
        assert_eq!(flag_words(1 << 7), "0x80");
    }
}
