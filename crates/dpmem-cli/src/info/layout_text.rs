//! The text form of a [`MemoryLayout`].
//!
//! A memseg list can hold tens of thousands of segments (`--no-huge -m 64` is 16384 pages of
//! 4 KiB), so by default consecutive segments that look alike — adjacent slots, same socket,
//! same flags — print as one line that says whether their IOVAs are contiguous too.

use std::fmt::Write;

use dpmem::eal::memseg_list::MemsegListInfo;
use dpmem::eal::{MemoryLayout, MemoryMode, Memseg, ProcessRole, Socket};

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
        let _ = writeln!(out, "  {}: {}", s.socket, approximate(s.bytes));
    }
    out
}

fn render_list(out: &mut String, info: &MemsegListInfo, segments: &[Memseg], every_segment: bool) {
    let segments: Vec<SegLine> = segments.iter().map(SegLine::of).collect();
    render_segments(out, info, &segments, every_segment);
}

/// What a segment's line shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SegLine {
    va: usize,
    iova: Option<u64>,
    len: usize,
    socket: Socket,
    pinned: bool,
    dirty: bool,
}

impl SegLine {
    fn of(seg: &Memseg) -> SegLine {
        SegLine {
            va: seg.va(),
            iova: seg.iova().map(|i| i.get()),
            len: seg.len(),
            socket: seg.socket(),
            pinned: seg.is_pinned(),
            dirty: seg.is_dirty(),
        }
    }
}

fn render_segments(
    out: &mut String,
    info: &MemsegListInfo,
    segments: &[SegLine],
    every_segment: bool,
) {
    let _ = writeln!(
        out,
        "memseg list {}: page size {}, {}, va 0x{:x}-0x{:x} ({}), {}/{} segments used{}",
        info.index,
        ByteSize(info.page_size),
        info.socket,
        info.base_va,
        info.base_va + info.len,
        approximate(info.len as u64),
        info.n_used,
        info.n_segs,
        if info.external { ", external" } else { "" }
    );
    let slot = |seg: &SegLine| (seg.va - info.base_va) as u64 / info.page_size.max(1);
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
        let bytes: u64 = run.iter().map(|s| s.len as u64).sum();
        let _ = writeln!(
            out,
            "  seg {index:<11} va 0x{:x}-0x{:x}  iova {}  len {}  {}  {}",
            first.va,
            last.va + last.len,
            iova_text(run),
            approximate(bytes),
            first.socket,
            flag_words(first)
        );
        start = end;
    }
}

/// Whether `next` belongs on the same line as `prev`: the next slot, same socket and flags.
fn continues_run(info: &MemsegListInfo, prev: &SegLine, next: &SegLine) -> bool {
    next.va as u64 == prev.va as u64 + info.page_size
        && next.socket == prev.socket
        && (next.pinned, next.dirty) == (prev.pinned, prev.dirty)
}

/// The IOVA of a run: its range when contiguous (what a device DMA across the run needs),
/// else how many contiguous pieces it falls into.
fn iova_text(run: &[SegLine]) -> String {
    let Some(iovas) = run
        .iter()
        .map(|s| s.iova.map(|i| (i, s.len as u64)))
        .collect::<Option<Vec<(u64, u64)>>>()
    else {
        return "unknown".to_owned();
    };
    let first = iovas[0].0;
    let pieces = 1 + iovas
        .windows(2)
        .filter(|w| w[1].0 != w[0].0.wrapping_add(w[0].1))
        .count();
    if iovas.len() == 1 {
        format!("0x{first:x}")
    } else if pieces == 1 {
        let (last, len) = iovas[iovas.len() - 1];
        format!("0x{first:x}-0x{:x} (contiguous)", last + len)
    } else {
        format!("from 0x{first:x} in {pieces} contiguous pieces")
    }
}

/// Segment flags as words: `pinned,dirty`; `-` when none is set.
fn flag_words(seg: &SegLine) -> String {
    let words: Vec<&str> = [(seg.pinned, "pinned"), (seg.dirty, "dirty")]
        .into_iter()
        .filter_map(|(set, word)| set.then_some(word))
        .collect();
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
                "  {} ({}): total {} busy elements {} (memory not attached in this process: free space unknown)",
                h.name, h.socket, h.total_bytes, h.alloc_count
            );
            continue;
        }
        let _ = writeln!(
            out,
            "  {} ({}): total {} free {} allocated {} greatest free {} free elements {} busy elements {}",
            h.name,
            h.socket,
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
        let iova = mz
            .iova
            .map_or_else(|| "unknown".to_owned(), |i| i.to_string());
        let _ = writeln!(
            out,
            "  {}: va {:#x} iova {iova} len {} page {} {}",
            mz.name, mz.va, mz.len, mz.page_size, mz.socket
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(va: usize, iova: u64) -> SegLine {
        SegLine {
            va,
            iova: Some(iova),
            len: 4096,
            socket: Socket::Node(0),
            pinned: true,
            dirty: false,
        }
    }

    fn list(n_used: u32) -> MemsegListInfo {
        MemsegListInfo {
            index: 0,
            base_va: 0x10000,
            len: 16 * 4096,
            page_size: 4096,
            socket: Socket::Node(0),
            n_segs: 16,
            n_used,
            external: false,
            heap: false,
        }
    }

    #[test]
    fn contiguous_runs_collapse_to_one_line() {
        let segs: Vec<SegLine> = (0..4)
            .map(|i| seg(0x10000 + i * 4096, 0x10000 + i as u64 * 4096))
            .collect();
        let mut out = String::new();
        render_segments(&mut out, &list(4), &segs, false);
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(out.contains("seg 0..3"), "{out}");
        assert!(out.contains("iova 0x10000-0x14000 (contiguous)"), "{out}");
        assert!(out.contains("pinned"), "{out}");

        let mut every = String::new();
        render_segments(&mut every, &list(4), &segs, true);
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
        render_segments(&mut out, &list(3), &segs, false);
        assert!(out.contains("seg 0..1"), "{out}");
        assert!(out.contains("in 2 contiguous pieces"), "{out}");
        assert!(out.contains("seg 3 "), "{out}");
    }

    fn heap(name: &str, socket_id: i32, external: bool) -> dpmem::eal::HeapStats {
        dpmem::eal::HeapStats {
            name: name.into(),
            socket: Socket::from_raw(socket_id).unwrap(),
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
            lines[2].starts_with(
                "  frames (external heap 0 (socket id 256)): total 4194304 free 3145728"
            ),
            "{out}"
        );
        assert!(lines[2].ends_with("busy elements 2"), "{out}");
        assert_eq!(
            lines[3],
            "  theirs (external heap 1 (socket id 257)): total 4194304 busy elements 2 (memory not attached in this process: free space unknown)"
        );
    }

    #[test]
    fn flags_read_as_words() {
        let plain = SegLine {
            pinned: false,
            ..seg(0, 0)
        };
        assert_eq!(flag_words(&plain), "-");
        let both = SegLine {
            dirty: true,
            ..seg(0, 0)
        };
        assert_eq!(flag_words(&both), "pinned,dirty");
    }
}
