//! One memseg list drawn as a band: its pages, the heap's elements on them, and the memzones
//! and pools that live there, all on one [axis](super::axis) so that what lies at an address
//! is drawn at the same x in every row.
//!
//! ```text
//! memseg list 0 · 2M pages · socket 0 · 18 of 16384 mapped (36M of 32G) · 1 px ≈ 31K
//!  pages  [pinned | may go back |   ≈ not mapped ≈   ]   red ticks: IOVA breaks
//!  heap   [busy|free|parked|summaries of narrow elements]
//!  0x…                                              0x…
//!  zones  ▬ name size    ▬ name size
//!  pools  ▬ name objects
//! ```

use dpmem::eal::eal::ListLayout;
use dpmem::eal::heap::{HeapElement, HeapElementState};
use dpmem::eal::Memzone;

use super::axis::Axis;
use super::lanes::{self, Labelled, CHAR_PX};
use super::pages::{IovaBreak, Page, PageKind, PageRow, PageState};
use super::runs::{self, Piece, Run};
use super::xml::{px, XmlWriter};
use crate::byte_size::{approximate, ByteSize};
use crate::info::mempool_text::MempoolInfo;
use crate::info::ring_text::RingInfo;

/// Where the rows' names go, and where the bands start and end.
pub const NAME_X: f64 = 16.0;
pub const BAND_X: f64 = 64.0;
pub const BAND_RIGHT: f64 = 1264.0;
/// Runs narrower than this are summarised (see [`super::runs`]).
const MIN_RUN_PX: f64 = 1.5;
/// IOVA breaks closer than this are drawn as one mark.
const BREAK_MERGE_PX: f64 = 3.0;
const TITLE_PX: f64 = 19.0;
const ROW_PX: f64 = 22.0;
/// The page row of a list with no page mapped.
const EMPTY_ROW_PX: f64 = 6.0;
const ROW_GAP_PX: f64 = 3.0;
const AXIS_PX: f64 = 13.0;
const LANE_PX: f64 = 15.0;
const MAX_LANES: usize = 10;
const BAND_GAP_PX: f64 = 14.0;

/// A pool's memory in this list: its header memzone and object chunks, `(va, len)`.
#[derive(Debug, Clone)]
pub struct PoolSpans<'a> {
    pub pool: &'a MempoolInfo,
    pub spans: Vec<(usize, usize)>,
    /// This band names the pool (`class="pool"`); other bands holding some of its memory draw
    /// theirs as `pool-part`.
    pub home: bool,
}

/// What lives in one list.
#[derive(Debug)]
pub struct BandInput<'a> {
    pub list: &'a ListLayout,
    /// The heap's elements in this list, in address order.
    pub elements: Vec<&'a HeapElement>,
    pub zones: Vec<&'a Memzone>,
    pub pools: Vec<PoolSpans<'a>>,
    /// Every ring, to name a ring's memzone for what it is.
    pub rings: &'a [RingInfo],
}

/// Draws the band at `y`; returns its height.
pub fn draw(w: &mut XmlWriter, input: &BandInput<'_>, y: f64) -> f64 {
    let info = &input.list.info;
    let pages: Vec<Page> = input.list.segments.iter().map(Page::of).collect();
    let row = PageRow::of(info, &pages);
    let axis = Axis::new(BAND_X, BAND_RIGHT - BAND_X, &row.stretches);
    let mapped: u64 = pages.iter().map(|p| p.len as u64).sum();
    w.start(
        "g",
        &[
            ("class", "memseg-list".to_owned()),
            ("data-list", info.index.to_string()),
            ("data-socket", info.socket.to_raw().to_string()),
            ("data-page-size", info.page_size.to_string()),
            ("data-slots", info.n_segs.to_string()),
            ("data-mapped", pages.len().to_string()),
            ("data-external", info.external.to_string()),
        ],
    );
    let mut title = format!(
        "memseg list {} · {} pages · {} · {} of {} mapped ({} of {}) · 1 px ≈ {}",
        info.index,
        ByteSize(info.page_size),
        info.socket,
        pages.len(),
        info.n_segs,
        approximate(mapped),
        approximate(info.len as u64),
        approximate(axis.bytes_per_px().round() as u64),
    );
    if info.external {
        title.push_str(" · external memory");
    }
    if row.unknown_iova > 0 {
        title.push_str(&format!(" · IOVA unknown for {} pages", row.unknown_iova));
    }
    w.text(
        "text",
        &[
            ("class", "band-title".to_owned()),
            ("x", px(NAME_X)),
            ("y", px(y + 11.0)),
        ],
        &title,
    );
    let pages_y = y + TITLE_PX;
    if pages.is_empty() {
        // Nothing mapped, so nothing of the heap, no memzone and no pool: a thin band says so.
        rect(
            w,
            "page not-mapped",
            BAND_X,
            BAND_RIGHT,
            pages_y,
            EMPTY_ROW_PX,
            Some(&format!(
                "not mapped: {} of address space reserved, va {:#x}–{:#x}",
                approximate(info.len as u64),
                info.base_va,
                info.base_va + info.len
            )),
        );
        w.end();
        return TITLE_PX + EMPTY_ROW_PX + BAND_GAP_PX;
    }
    let heap_y = pages_y + ROW_PX + ROW_GAP_PX;
    row_name(w, "pages", pages_y);
    row_name(w, "heap", heap_y);

    let page_runs = runs::merge(row.pieces.iter().copied(), &axis, MIN_RUN_PX);
    for run in &page_runs {
        draw_page_run(w, run, info.base_va, info.page_size, pages_y);
    }
    draw_folds(w, &axis, pages_y);
    draw_page_grid(w, &axis, info.page_size, pages_y);
    draw_iova_breaks(w, &row.iova_breaks, &axis, pages_y);
    frame(w, pages_y);

    // The heap row: elements where they are, an empty background where the heap has none.
    w.empty(
        "rect",
        &[
            ("class", "elem none".to_owned()),
            ("x", px(BAND_X)),
            ("y", px(heap_y)),
            ("width", px(BAND_RIGHT - BAND_X)),
            ("height", px(ROW_PX)),
        ],
    );
    let pieces = input.elements.iter().map(|e| Piece {
        va: e.va,
        len: e.len,
        kind: e.state,
    });
    let elem_runs = runs::merge(pieces, &axis, MIN_RUN_PX);
    for run in &elem_runs {
        draw_element_run(w, run, &input.elements, heap_y);
    }
    frame(w, heap_y);

    let axis_y = heap_y + ROW_PX;
    draw_axis_labels(w, &axis, axis_y);
    let mut at = axis_y + AXIS_PX + 2.0;
    at += draw_zones(w, input, &axis, heap_y, at);
    at += draw_pools(w, input, &axis, heap_y, at);
    w.end();
    at - y + BAND_GAP_PX
}

fn row_name(w: &mut XmlWriter, name: &str, y: f64) {
    w.text(
        "text",
        &[
            ("class", "row-name".to_owned()),
            ("x", px(NAME_X)),
            ("y", px(y + 14.0)),
        ],
        name,
    );
}

fn frame(w: &mut XmlWriter, y: f64) {
    w.empty(
        "rect",
        &[
            ("class", "band-frame".to_owned()),
            ("x", px(BAND_X)),
            ("y", px(y)),
            ("width", px(BAND_RIGHT - BAND_X)),
            ("height", px(ROW_PX)),
        ],
    );
}

fn rect(w: &mut XmlWriter, class: &str, x0: f64, x1: f64, y: f64, h: f64, title: Option<&str>) {
    let attrs = [
        ("class", class.to_owned()),
        ("x", px(x0)),
        ("y", px(y)),
        // A run narrower than a pixel is still drawn, a pixel wide.
        ("width", px((x1 - x0).max(1.0))),
        ("height", px(h)),
    ];
    match title {
        Some(t) => {
            w.start("rect", &attrs);
            w.text("title", &[], t);
            w.end();
        }
        None => w.empty("rect", &attrs),
    }
}

fn page_class(kind: PageKind) -> &'static str {
    match kind.state {
        PageState::Pinned => "page pinned",
        PageState::MayGoBack => "page may-go-back",
        PageState::External => "page external",
        PageState::NotMapped => "page not-mapped",
    }
}

fn page_words(kind: PageKind) -> String {
    let state = match kind.state {
        PageState::Pinned => "pinned",
        PageState::MayGoBack => "mapped on demand (may go back)",
        PageState::External => "external",
        PageState::NotMapped => "not mapped",
    };
    if kind.dirty {
        format!("{state}, dirty")
    } else {
        state.to_owned()
    }
}

fn draw_page_run(w: &mut XmlWriter, run: &Run<PageKind>, base: usize, page: u64, y: f64) {
    let slot = |va: usize| (va - base) as u64 / page.max(1);
    let slots = if run.len as u64 <= page {
        format!("slot {}", slot(run.va))
    } else {
        format!("slots {}–{}", slot(run.va), slot(run.end() - 1))
    };
    let range = format!(
        "{slots}, va {:#x}–{:#x} ({})",
        run.va,
        run.end(),
        approximate(run.len as u64)
    );
    if let Some(kind) = run.single_kind() {
        let title = format!("{}: {range}", page_words(kind));
        rect(w, page_class(kind), run.x0, run.x1, y, ROW_PX, Some(&title));
        if kind.dirty {
            rect(w, "dirty", run.x0, run.x1, y, ROW_PX, None);
        }
        return;
    }
    let parts: Vec<String> = run
        .kinds
        .iter()
        .map(|k| {
            format!(
                "{} {} ({})",
                k.count,
                page_words(k.kind),
                approximate(k.bytes)
            )
        })
        .collect();
    w.start("g", &[("class", "page-summary".to_owned())]);
    w.text("title", &[], &format!("{range}: {}", parts.join(", ")));
    stacked(w, run, y, |kind| {
        (page_class(kind), kind.dirty.then_some("dirty"))
    });
    w.end();
}

/// A summary run: its kinds stacked top to bottom, each as tall as its share of the bytes.
fn stacked<K: Copy + Ord>(
    w: &mut XmlWriter,
    run: &Run<K>,
    y: f64,
    class: impl Fn(K) -> (&'static str, Option<&'static str>),
) {
    let total: u64 = run.kinds.iter().map(|k| k.bytes).sum::<u64>().max(1);
    let mut at = y;
    for k in &run.kinds {
        let h = ROW_PX * k.bytes as f64 / total as f64;
        let (fill, overlay) = class(k.kind);
        rect(w, fill, run.x0, run.x1, at, h, None);
        if let Some(overlay) = overlay {
            rect(w, overlay, run.x0, run.x1, at, h, None);
        }
        at += h;
    }
}

/// A zigzag across each folded hole, so that it reads as a break in the scale.
fn draw_folds(w: &mut XmlWriter, axis: &Axis, y: f64) {
    for p in axis.pieces().iter().filter(|p| p.folded) {
        let mid = p.x + p.width / 2.0;
        let d = format!(
            "M{} {} L{} {} L{} {} L{} {} L{} {}",
            px(mid - 3.0),
            px(y - 2.0),
            px(mid + 3.0),
            px(y + ROW_PX * 0.3),
            px(mid - 3.0),
            px(y + ROW_PX * 0.6),
            px(mid + 3.0),
            px(y + ROW_PX * 0.85),
            px(mid - 3.0),
            px(y + ROW_PX + 2.0)
        );
        w.start("path", &[("class", "fold".to_owned()), ("d", d)]);
        w.text(
            "title",
            &[],
            &format!(
                "{} of address space not mapped, va {:#x}–{:#x} (folded: not to scale)",
                approximate(p.len as u64),
                p.va,
                p.va + p.len
            ),
        );
        w.end();
    }
}

/// Page boundaries in mapped memory, where pages are wide enough for them to show.
fn draw_page_grid(w: &mut XmlWriter, axis: &Axis, page: u64, y: f64) {
    let page = page as usize;
    let mut d = String::new();
    for p in axis.pieces().iter().filter(|p| p.mapped) {
        let page_px = p.width * page as f64 / p.len.max(1) as f64;
        if page_px < 4.0 {
            continue;
        }
        let mut va = p.va + page;
        while va < p.va + p.len {
            let x = axis.x_of(va);
            d.push_str(&format!("M{} {}v{}", px(x), px(y), px(ROW_PX)));
            va += page;
        }
    }
    if !d.is_empty() {
        w.empty("path", &[("class", "page-grid".to_owned()), ("d", d)]);
    }
}

fn draw_iova_breaks(w: &mut XmlWriter, breaks: &[IovaBreak], axis: &Axis, y: f64) {
    let hex = |v: Option<u64>| v.map_or_else(|| "unknown".to_owned(), |v| format!("{v:#x}"));
    let mut i = 0;
    while i < breaks.len() {
        let x = axis.x_of(breaks[i].va);
        let mut j = i + 1;
        while j < breaks.len() && axis.x_of(breaks[j].va) - x < BREAK_MERGE_PX {
            j += 1;
        }
        let title = if j - i == 1 {
            let b = &breaks[i];
            format!(
                "IOVA break at va {:#x}: the page before ends at IOVA {}, this one starts at {}",
                b.va,
                hex(b.before),
                hex(b.after)
            )
        } else {
            format!(
                "{} IOVA breaks between va {:#x} and {:#x}",
                j - i,
                breaks[i].va,
                breaks[j - 1].va
            )
        };
        w.start(
            "line",
            &[
                ("class", "iova-break".to_owned()),
                ("data-count", (j - i).to_string()),
                // A tick over the top of the page row only: where every page is a break
                // (physical addresses of pages mapped one by one) the ticks make a red fringe
                // and the pages' colours still show.
                ("x1", px(x)),
                ("y1", px(y - 4.0)),
                ("x2", px(x)),
                ("y2", px(y + ROW_PX * 0.35)),
            ],
        );
        w.text("title", &[], &title);
        w.end();
        i = j;
    }
}

fn elem_class(state: HeapElementState) -> &'static str {
    match state {
        HeapElementState::Busy => "elem busy",
        HeapElementState::Free => "elem free",
        HeapElementState::Parked => "elem parked",
    }
}

fn elem_word(state: HeapElementState) -> &'static str {
    match state {
        HeapElementState::Busy => "busy",
        HeapElementState::Free => "free",
        HeapElementState::Parked => "parked",
    }
}

fn draw_element_run(
    w: &mut XmlWriter,
    run: &Run<HeapElementState>,
    elements: &[&HeapElement],
    y: f64,
) {
    let range = format!(
        "va {:#x}–{:#x} ({})",
        run.va,
        run.end(),
        approximate(run.len as u64)
    );
    if let Some(state) = run.single_kind() {
        let title = if run.count() == 1 {
            let e = elements
                .iter()
                .find(|e| e.va == run.va)
                .expect("a run of one element is that element");
            match state {
                HeapElementState::Busy => format!(
                    "busy element, {range}: {} usable{}",
                    approximate(e.usable_len as u64),
                    if e.dirty { ", dirty" } else { "" }
                ),
                HeapElementState::Free => format!("free element, {range}"),
                HeapElementState::Parked => {
                    format!("parked element (freed, waiting on a quick list), {range}")
                }
            }
        } else {
            format!("{} {} elements, {range}", run.count(), elem_word(state))
        };
        rect(
            w,
            elem_class(state),
            run.x0,
            run.x1,
            y,
            ROW_PX,
            Some(&title),
        );
        return;
    }
    let parts: Vec<String> = run
        .kinds
        .iter()
        .map(|k| {
            format!(
                "{} {} ({})",
                k.count,
                elem_word(k.kind),
                approximate(k.bytes)
            )
        })
        .collect();
    w.start(
        "g",
        &[
            ("class", "elem-summary".to_owned()),
            ("data-count", run.count().to_string()),
        ],
    );
    w.text(
        "title",
        &[],
        &format!(
            "{} elements, {range}, each under {MIN_RUN_PX} px: {}",
            run.count(),
            parts.join(", ")
        ),
    );
    stacked(w, run, y, |state| (elem_class(state), None));
    w.end();
}

/// The list's first and last address, and the size of each folded hole under it.
fn draw_axis_labels(w: &mut XmlWriter, axis: &Axis, y: f64) {
    let pieces = axis.pieces();
    let (Some(first), Some(last)) = (pieces.first(), pieces.last()) else {
        return;
    };
    let label = |w: &mut XmlWriter, x: f64, anchor: &str, text: &str| {
        w.text(
            "text",
            &[
                ("class", "axis".to_owned()),
                ("x", px(x)),
                ("y", px(y + 10.0)),
                ("text-anchor", anchor.to_owned()),
            ],
            text,
        );
    };
    label(w, BAND_X, "start", &format!("{:#x}", first.va));
    label(w, BAND_RIGHT, "end", &format!("{:#x}", last.va + last.len));
    // Fold sizes, where they do not run into the addresses at the ends.
    let ends = 20.0 * CHAR_PX;
    for p in pieces.iter().filter(|p| p.folded) {
        let mid = p.x + p.width / 2.0;
        if mid - BAND_X > ends && BAND_RIGHT - mid > ends {
            label(w, mid, "middle", &format!("≈{}", approximate(p.len as u64)));
        }
    }
}

fn zone_title(zone: &Memzone, rings: &[RingInfo]) -> String {
    let iova = zone
        .iova
        .map_or_else(|| "unknown".to_owned(), |i| format!("{:#x}", i.get()));
    let mut title = format!(
        "memzone {}: {} at va {:#x}–{:#x}, IOVA {iova}, {}, {} pages",
        zone.name,
        approximate(zone.len as u64),
        zone.va,
        zone.va + zone.len,
        zone.socket,
        ByteSize(zone.page_size)
    );
    if let Some(ring) = rings.iter().find(|r| r.memzone == zone.name) {
        match &ring.error {
            None => title.push_str(&format!(
                "; ring {}: {} of {} elements of {} B, {}/{}",
                ring.name,
                ring.count,
                ring.capacity,
                ring.elt_size,
                ring.producer_mode,
                ring.consumer_mode
            )),
            Some(e) => title.push_str(&format!("; not a readable ring: {e}")),
        }
    }
    title
}

/// What goes in the lanes: a bar under each stretch of its memory, each with a label.
trait Barred {
    /// Each stretch of the item's memory, `(va, len)` in address order, and its label.
    fn parts(&self) -> Vec<(usize, usize, String)>;
}

impl Barred for &Memzone {
    /// One part, labelled `name size`.
    fn parts(&self) -> Vec<(usize, usize, String)> {
        let label = format!("{} {}", self.name, approximate(self.len as u64));
        vec![(self.va, self.len, label)]
    }
}

impl Barred for PoolSpans<'_> {
    /// Stretches that touch merge; the first is labelled `name N × SIZE, K in use` (where the
    /// pool is named) and the others `name: size`, so that each bar says whose it is.
    fn parts(&self) -> Vec<(usize, usize, String)> {
        let mut merged: Vec<(usize, usize)> = Vec::new();
        let mut spans = self.spans.clone();
        spans.sort_unstable();
        for (va, len) in spans {
            match merged.last_mut() {
                Some(last) if last.0 + last.1 == va => last.1 += len,
                _ => merged.push((va, len)),
            }
        }
        let pool = self.pool;
        merged
            .into_iter()
            .enumerate()
            .map(|(i, (va, len))| {
                let label = if i == 0 && self.home {
                    format!(
                        "{} {} × {}, {} in use",
                        pool.name,
                        pool.size,
                        approximate(u64::from(pool.elt_size)),
                        pool.in_use
                    )
                } else {
                    format!("{}: {}", pool.name, approximate(len as u64))
                };
                (va, len, label)
            })
            .collect()
    }
}

/// A part of an item as placed in the lanes: its bar's extent, its lane's y, and its label with
/// where it goes (`None` when no lane had room for it).
struct PlacedPart {
    x0: f64,
    x1: f64,
    lane_y: f64,
    label: Option<(String, f64, bool)>,
}

/// The lanes of labelled bars under the band, named `name`; `draw` draws one item given its
/// placed parts. Returns the lanes' height.
fn draw_lanes<T: Barred>(
    w: &mut XmlWriter,
    name: &str,
    items: &[T],
    mut draw: impl FnMut(&mut XmlWriter, &T, &[PlacedPart]),
    axis: &Axis,
    y: f64,
) -> f64 {
    if items.is_empty() {
        return 0.0;
    }
    let parts: Vec<Vec<(f64, f64, String)>> = items
        .iter()
        .map(|item| {
            item.parts()
                .into_iter()
                .map(|(va, len, label)| (axis.x_of(va), axis.x_of(va + len), label))
                .collect()
        })
        .collect();
    let labelled: Vec<Labelled> = parts
        .iter()
        .flatten()
        .map(|(x0, x1, label)| Labelled {
            x0: *x0,
            x1: *x1,
            chars: label.chars().count(),
        })
        .collect();
    let (placements, lanes) = lanes::place(&labelled, BAND_X, BAND_RIGHT, MAX_LANES);
    row_name(w, name, y - 5.0);
    let mut placements = placements.into_iter();
    for (item, parts) in items.iter().zip(parts) {
        let placed: Vec<PlacedPart> = parts
            .into_iter()
            .zip(placements.by_ref())
            .map(|((x0, x1, label), p)| PlacedPart {
                x0,
                x1,
                lane_y: y + p.lane as f64 * LANE_PX,
                label: p.labelled.then_some((label, p.text_x, p.anchor_end)),
            })
            .collect();
        draw(w, item, &placed);
    }
    lanes as f64 * LANE_PX + 4.0
}

/// The parts' bars, each with its label on top and the bar under it like an underline as long
/// as the memory.
fn bars_and_labels(w: &mut XmlWriter, bar_class: &str, parts: &[PlacedPart]) {
    for part in parts {
        rect(
            w,
            bar_class,
            part.x0,
            part.x1.max(part.x0 + 1.5),
            part.lane_y + 12.0,
            2.5,
            None,
        );
        if let Some((text, x, anchor_end)) = &part.label {
            w.text(
                "text",
                &[
                    ("class", "label".to_owned()),
                    ("x", px(*x)),
                    ("y", px(part.lane_y + 9.0)),
                    (
                        "text-anchor",
                        if *anchor_end { "end" } else { "start" }.to_owned(),
                    ),
                ],
                text,
            );
        }
    }
}

fn draw_zones(w: &mut XmlWriter, input: &BandInput<'_>, axis: &Axis, heap_y: f64, y: f64) -> f64 {
    draw_lanes(
        w,
        "zones",
        &input.zones,
        |w, zone, parts| {
            w.start(
                "g",
                &[
                    ("class", "memzone".to_owned()),
                    ("data-name", zone.name.clone()),
                    ("data-len", zone.len.to_string()),
                    ("data-va", format!("{:#x}", zone.va)),
                ],
            );
            w.text("title", &[], &zone_title(zone, input.rings));
            for part in parts {
                rect(
                    w,
                    "zone-outline",
                    part.x0,
                    part.x1,
                    heap_y + 1.0,
                    ROW_PX - 2.0,
                    None,
                );
            }
            bars_and_labels(w, "zone-bar", parts);
            w.end();
        },
        axis,
        y,
    )
}

fn draw_pools(w: &mut XmlWriter, input: &BandInput<'_>, axis: &Axis, heap_y: f64, y: f64) -> f64 {
    draw_lanes(
        w,
        "pools",
        &input.pools,
        |w, part, placed| {
            let class = if part.home { "pool" } else { "pool-part" };
            w.start("g", &pool_attrs(part.pool, class));
            let bytes: u64 = part.spans.iter().map(|s| s.1 as u64).sum();
            w.text("title", &[], &pool_title(part.pool, bytes));
            for p in placed {
                rect(
                    w,
                    "pool-outline",
                    p.x0,
                    p.x1,
                    heap_y + 3.0,
                    ROW_PX - 6.0,
                    None,
                );
            }
            bars_and_labels(w, "pool-bar", placed);
            w.end();
        },
        axis,
        y,
    )
}

/// A pool's hover title; `here` is the bytes of its memory drawn where the title is.
pub fn pool_title(pool: &MempoolInfo, here: u64) -> String {
    let mut title = format!(
        "pool {}: {} objects of {} B ({} in use, {} available), cache {} per lcore, handler {}, {}; header in memzone {}, objects in {} chunks; {} of its memory here",
        pool.name,
        pool.size,
        pool.elt_size,
        pool.in_use,
        pool.avail,
        pool.cache_size,
        pool.handler,
        pool.socket,
        pool.memzone,
        pool.chunks.len(),
        approximate(here)
    );
    if let Some(b) = &pool.packet_buffers {
        title.push_str(&format!(
            "; packet buffers: data room {} B, private {} B{}",
            b.data_room,
            b.priv_size,
            if b.pinned { ", pinned external" } else { "" }
        ));
    }
    title
}

/// The attributes a pool's group carries, wherever it is drawn.
pub fn pool_attrs(pool: &MempoolInfo, class: &str) -> Vec<(&'static str, String)> {
    vec![
        ("class", class.to_owned()),
        ("data-name", pool.name.clone()),
        (
            "data-kind",
            if pool.packet_buffers.is_some() {
                "packet-buffers"
            } else {
                "mempool"
            }
            .to_owned(),
        ),
        ("data-size", pool.size.to_string()),
        ("data-elt-size", pool.elt_size.to_string()),
        ("data-in-use", pool.in_use.to_string()),
    ]
}
