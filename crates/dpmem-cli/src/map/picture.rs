//! The whole map: a title naming the EAL, the legend, then one section per socket with a band
//! per memseg list, and whatever lies outside every list (a pool over memory of its own).
//!
//! Every memseg list, memzone and pool is one group element whose class says what it is
//! (`memseg-list`, `memzone`, `pool`) and whose `data-` attributes carry its name and sizes,
//! so that programs (and the tests) can find them; a `<title>` in each gives the hover text.

use std::collections::BTreeMap;

use dpmem::eal::heap::{HeapElement, HeapElementState};
use dpmem::eal::{HeapStats, MemoryMode, ProcessRole, Socket};

use super::band::{self, BandInput, PoolSpans, BAND_RIGHT, NAME_X};
use super::gather::MapInput;
use super::legend;
use super::palette::{DEFS, STYLE};
use super::xml::{px, XmlWriter};
use crate::byte_size::{approximate, ByteSize};

/// Pixels across the whole picture.
const WIDTH: f64 = BAND_RIGHT + 16.0;

/// The SVG document.
pub fn render(input: &MapInput) -> String {
    let mut body = XmlWriter::new();
    let mut y = 0.0;
    y += header(&mut body, input, y);
    y += legend::draw(&mut body, y);
    let places = Places::of(input);
    let mut by_socket: BTreeMap<SocketOrder, Vec<usize>> = BTreeMap::new();
    for (i, list) in input.snapshot.layout.memseg_lists.iter().enumerate() {
        by_socket
            .entry(SocketOrder(list.info.socket))
            .or_default()
            .push(i);
    }
    for (socket, lists) in &by_socket {
        y += section(&mut body, input, &places, socket.0, lists, y);
    }
    y += outside(&mut body, &places, y);
    for note in input.unwalked.iter().chain(&input.snapshot.note) {
        body.text(
            "text",
            &[
                ("class", "note".to_owned()),
                ("x", px(NAME_X)),
                ("y", px(y + 12.0)),
            ],
            note,
        );
        y += 16.0;
    }
    let height = y + 8.0;

    let mut w = XmlWriter::new();
    w.start(
        "svg",
        &[
            ("xmlns", "http://www.w3.org/2000/svg".to_owned()),
            ("width", px(WIDTH)),
            ("height", px(height)),
            ("viewBox", format!("0 0 {} {}", px(WIDTH), px(height))),
            ("class", "dpmem-map".to_owned()),
            (
                "data-file-prefix",
                input.snapshot.layout.file_prefix.clone(),
            ),
        ],
    );
    w.text(
        "title",
        &[],
        &format!("dpmem memory map: {}", input.snapshot.layout.file_prefix),
    );
    w.verbatim("<style>");
    w.verbatim(STYLE);
    w.verbatim("</style>\n");
    w.verbatim(DEFS);
    w.empty(
        "rect",
        &[
            ("x", "0".to_owned()),
            ("y", "0".to_owned()),
            ("width", px(WIDTH)),
            ("height", px(height)),
            ("fill", "#ffffff".to_owned()),
        ],
    );
    w.verbatim(&body.finish());
    w.end();
    w.finish()
}

/// Sockets in the order sections are drawn: NUMA nodes ascending, then external heaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SocketOrder(Socket);

impl Ord for SocketOrder {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |s: Socket| (matches!(s, Socket::External(_)), s.to_raw());
        key(self.0).cmp(&key(other.0))
    }
}

impl PartialOrd for SocketOrder {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

fn header(w: &mut XmlWriter, input: &MapInput, y: f64) -> f64 {
    let s = &input.snapshot;
    let layout = &s.layout;
    let whose = match layout.process_type {
        ProcessRole::Primary => "this process's EAL",
        ProcessRole::Secondary => "a running primary, seen from a secondary",
    };
    let mode = match layout.memory_mode {
        MemoryMode::Dynamic => "dynamic memory",
        MemoryMode::Legacy => "legacy memory",
        MemoryMode::NoHuge => "no hugepages (--no-huge)",
    };
    let sizes: Vec<String> = layout
        .page_sizes
        .iter()
        .map(|&p| ByteSize(p).to_string())
        .collect();
    let mapped: u64 = layout
        .memseg_lists
        .iter()
        .flat_map(|l| &l.segments)
        .map(|seg| seg.len() as u64)
        .sum();
    w.text(
        "text",
        &[
            ("class", "title".to_owned()),
            ("x", px(NAME_X)),
            ("y", px(y + 22.0)),
        ],
        &format!(
            "dpmem memory map · file prefix {:?} · {whose}",
            layout.file_prefix
        ),
    );
    w.text(
        "text",
        &[
            ("class", "sub".to_owned()),
            ("x", px(NAME_X)),
            ("y", px(y + 40.0)),
        ],
        &format!(
            "{mode} · IOVA mode {} · page sizes {} · {}, {} mapped · {} · {} · {}",
            layout.iova_mode.as_str(),
            sizes.join(", "),
            plural(layout.memseg_lists.len(), "memseg list"),
            approximate(mapped),
            plural(s.memzones.len(), "memzone"),
            plural(s.mempools.len(), "pool"),
            plural(s.rings.len(), "ring"),
        ),
    );
    w.text(
        "text",
        &[
            ("class", "sub".to_owned()),
            ("x", px(NAME_X)),
            ("y", px(y + 55.0)),
        ],
        "One band per memseg list, each as wide as the picture; address space without pages, when long, is folded (zigzag) to leave the width to mapped memory.",
    );
    66.0
}

/// Which memseg list each memzone, heap element and piece of pool memory lies in.
struct Places<'a> {
    /// Per list (by position in the layout): its elements, memzones and pools.
    elements: Vec<Vec<&'a HeapElement>>,
    zones: Vec<Vec<&'a dpmem::eal::Memzone>>,
    pools: Vec<Vec<PoolSpans<'a>>>,
    /// Memzones and pools in no list.
    zones_outside: Vec<&'a dpmem::eal::Memzone>,
    /// Pools with memory in no list: that memory, and whether the pool is named there.
    pools_outside: Vec<PoolSpans<'a>>,
}

impl<'a> Places<'a> {
    fn of(input: &'a MapInput) -> Places<'a> {
        let lists = &input.snapshot.layout.memseg_lists;
        let list_of = |va: usize| {
            lists
                .iter()
                .position(|l| va >= l.info.base_va && va < l.info.base_va + l.info.len)
        };
        let mut places = Places {
            elements: vec![Vec::new(); lists.len()],
            zones: vec![Vec::new(); lists.len()],
            pools: (0..lists.len()).map(|_| Vec::new()).collect(),
            zones_outside: Vec::new(),
            pools_outside: Vec::new(),
        };
        for e in &input.elements {
            if let Some(i) = list_of(e.va) {
                places.elements[i].push(e);
            }
        }
        for list in &mut places.elements {
            list.sort_by_key(|e| e.va);
        }
        for zone in &input.snapshot.memzones {
            match list_of(zone.va) {
                Some(i) => places.zones[i].push(zone),
                None => places.zones_outside.push(zone),
            }
        }
        for pool in &input.snapshot.mempools {
            let header = input
                .snapshot
                .memzones
                .iter()
                .find(|z| z.name == pool.memzone)
                .map(|z| (z.va, z.len));
            let spans = header
                .into_iter()
                .chain(pool.chunks.iter().map(|c| (c.va, c.len)));
            let mut by_list: BTreeMap<usize, Vec<(usize, usize)>> = BTreeMap::new();
            let mut outside = Vec::new();
            for (va, len) in spans {
                match list_of(va) {
                    Some(i) => by_list.entry(i).or_default().push((va, len)),
                    None => outside.push((va, len)),
                }
            }
            // The pool is named once: where its header is, else its first memory in a list,
            // else (all of it outside the lists) below them.
            let home = header
                .and_then(|(va, _)| list_of(va))
                .or_else(|| by_list.keys().next().copied());
            for (i, spans) in by_list {
                places.pools[i].push(PoolSpans {
                    pool,
                    spans,
                    home: Some(i) == home,
                });
            }
            if !outside.is_empty() || home.is_none() {
                places.pools_outside.push(PoolSpans {
                    pool,
                    spans: outside,
                    home: home.is_none(),
                });
            }
        }
        places
    }
}

/// A socket's heading and its lists' bands; returns the height.
fn section(
    w: &mut XmlWriter,
    input: &MapInput,
    places: &Places<'_>,
    socket: Socket,
    lists: &[usize],
    y: f64,
) -> f64 {
    let layout = &input.snapshot.layout;
    let mapped: u64 = lists
        .iter()
        .flat_map(|&i| &layout.memseg_lists[i].segments)
        .map(|s| s.len() as u64)
        .sum();
    let heap = input.snapshot.heaps.iter().find(|h| h.socket == socket);
    let name = match (socket, heap) {
        (Socket::External(_), Some(h)) => {
            format!("external heap {:?} (socket id {})", h.name, socket.to_raw())
        }
        _ => socket.to_string(),
    };
    let elements: Vec<&HeapElement> = lists
        .iter()
        .flat_map(|&i| places.elements[i].iter().copied())
        .collect();
    w.start(
        "g",
        &[
            ("class", "socket".to_owned()),
            ("data-socket", socket.to_raw().to_string()),
            (
                "data-busy",
                count(&elements, HeapElementState::Busy).to_string(),
            ),
            (
                "data-free",
                count(&elements, HeapElementState::Free).to_string(),
            ),
            (
                "data-parked",
                count(&elements, HeapElementState::Parked).to_string(),
            ),
        ],
    );
    w.text(
        "text",
        &[
            ("class", "section".to_owned()),
            ("x", px(NAME_X)),
            ("y", px(y + 20.0)),
        ],
        &format!(
            "{name} · {} · {} mapped",
            plural(lists.len(), "memseg list"),
            approximate(mapped)
        ),
    );
    w.text(
        "text",
        &[
            ("class", "section-sub".to_owned()),
            ("x", px(NAME_X)),
            ("y", px(y + 35.0)),
        ],
        &heap_summary(heap, &elements),
    );
    let mut at = y + 46.0;
    for &i in lists {
        let input = BandInput {
            list: &layout.memseg_lists[i],
            elements: places.elements[i].clone(),
            zones: places.zones[i].clone(),
            pools: places.pools[i].clone(),
            rings: &input.snapshot.rings,
        };
        at += band::draw(w, &input, at);
    }
    w.end();
    at - y
}

fn count(elements: &[&HeapElement], state: HeapElementState) -> usize {
    elements.iter().filter(|e| e.state == state).count()
}

/// One line on the heap of a socket, counted from its elements as they lie.
fn heap_summary(heap: Option<&HeapStats>, elements: &[&HeapElement]) -> String {
    let Some(heap) = heap else {
        return "no heap".to_owned();
    };
    let name = &heap.name;
    if !heap.attached {
        return format!(
            "heap {name}: {} with {} busy elements; its memory is not attached in this process, so its elements are not drawn",
            approximate(heap.total_bytes),
            heap.alloc_count
        );
    }
    if elements.is_empty() {
        return format!("heap {name}: no element");
    }
    let bytes = |state| -> u64 {
        elements
            .iter()
            .filter(|e| e.state == state)
            .map(|e| e.len as u64)
            .sum()
    };
    let largest_free = elements
        .iter()
        .filter(|e| e.state == HeapElementState::Free)
        .map(|e| e.len as u64)
        .max()
        .unwrap_or(0);
    let total: u64 = elements.iter().map(|e| e.len as u64).sum();
    format!(
        "heap {name}: {} in {} · busy {} in {} · free {} in {} (largest {}) · parked {} in {}",
        approximate(total),
        plural(elements.len(), "element"),
        approximate(bytes(HeapElementState::Busy)),
        count(elements, HeapElementState::Busy),
        approximate(bytes(HeapElementState::Free)),
        count(elements, HeapElementState::Free),
        approximate(largest_free),
        approximate(bytes(HeapElementState::Parked)),
        count(elements, HeapElementState::Parked),
    )
}

/// `1 element`, `3 elements`.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Memzones and pools with memory in no memseg list, listed with their hover titles (one
/// group each, so that every memzone and pool has exactly one `memzone`/`pool` group).
fn outside(w: &mut XmlWriter, places: &Places<'_>, y: f64) -> f64 {
    if places.zones_outside.is_empty() && places.pools_outside.is_empty() {
        return 0.0;
    }
    let mut at = y;
    w.text(
        "text",
        &[
            ("class", "section".to_owned()),
            ("x", px(NAME_X)),
            ("y", px(at + 20.0)),
        ],
        "outside the memseg lists",
    );
    at += 28.0;
    for zone in &places.zones_outside {
        w.start(
            "g",
            &[
                ("class", "memzone".to_owned()),
                ("data-name", zone.name.clone()),
                ("data-len", zone.len.to_string()),
                ("data-va", format!("{:#x}", zone.va)),
            ],
        );
        let text = format!(
            "memzone {} {} at va {:#x}",
            zone.name,
            approximate(zone.len as u64),
            zone.va
        );
        w.text("title", &[], &text);
        w.text(
            "text",
            &[
                ("class", "label".to_owned()),
                ("x", px(NAME_X)),
                ("y", px(at + 10.0)),
            ],
            &text,
        );
        w.end();
        at += 14.0;
    }
    for part in &places.pools_outside {
        let pool = part.pool;
        let bytes: u64 = part.spans.iter().map(|s| s.1 as u64).sum();
        let class = if part.home { "pool" } else { "pool-part" };
        w.start("g", &band::pool_attrs(pool, class));
        w.text("title", &[], &band::pool_title(pool, bytes));
        w.text(
            "text",
            &[
                ("class", "label".to_owned()),
                ("x", px(NAME_X)),
                ("y", px(at + 10.0)),
            ],
            &format!(
                "pool {} {} × {}: object memory outside the memseg lists, from va {:#x}",
                pool.name,
                pool.size,
                approximate(u64::from(pool.elt_size)),
                part.spans.first().map_or(0, |s| s.0)
            ),
        );
        w.end();
        at += 14.0;
    }
    at - y + 8.0
}
