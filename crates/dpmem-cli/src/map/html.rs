//! `dpmem map --html`: one self-contained page (no script, nothing fetched) holding the map's
//! SVG inline — so its hover titles work in any browser — and, under it, the memzones, pools
//! and heaps as tables that can be searched and copied.

use super::gather::MapInput;
use super::xml::XmlWriter;
use crate::byte_size::approximate;

const PAGE_STYLE: &str = "
body { font-family: 'DejaVu Sans', Arial, sans-serif; margin: 16px; color: #222; }
svg { border: 1px solid #ddd; max-width: 100%; height: auto; }
table { border-collapse: collapse; margin: 8px 0 20px; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: left; }
td.n { text-align: right; font-family: 'DejaVu Sans Mono', monospace; }
h2 { font-size: 16px; margin-top: 24px; }
";

/// The page around `svg`, the map of `input`.
pub fn page(input: &MapInput, svg: &str) -> String {
    let s = &input.snapshot;
    let mut w = XmlWriter::new();
    w.verbatim("<!DOCTYPE html>\n");
    w.start("html", &[("lang", "en".to_owned())]);
    w.start("head", &[]);
    w.empty("meta", &[("charset", "utf-8".to_owned())]);
    w.text(
        "title",
        &[],
        &format!("dpmem memory map: {}", s.layout.file_prefix),
    );
    w.verbatim("<style>");
    w.verbatim(PAGE_STYLE);
    w.verbatim("</style>\n");
    w.end();
    w.start("body", &[]);
    w.text(
        "p",
        &[],
        "Hover over pages, heap elements, memzones and pools for their addresses and sizes.",
    );
    w.verbatim(svg);

    w.text("h2", &[], &format!("Memzones ({})", s.memzones.len()));
    table(
        &mut w,
        &["name", "va", "length", "IOVA", "page size", "socket"],
        s.memzones.iter().map(|z| {
            vec![
                z.name.clone(),
                format!("{:#x}", z.va),
                approximate(z.len as u64),
                z.iova
                    .map_or_else(|| "unknown".to_owned(), |i| format!("{:#x}", i.get())),
                approximate(z.page_size),
                z.socket.to_string(),
            ]
        }),
    );
    w.text("h2", &[], &format!("Pools ({})", s.mempools.len()));
    table(
        &mut w,
        &[
            "name",
            "objects",
            "element",
            "in use",
            "available",
            "cache",
            "handler",
            "memzone",
            "chunks",
        ],
        s.mempools.iter().map(|p| {
            vec![
                p.name.clone(),
                p.size.to_string(),
                format!("{} B", p.elt_size),
                p.in_use.to_string(),
                p.avail.to_string(),
                p.cache_size.to_string(),
                p.handler.clone(),
                p.memzone.clone(),
                p.chunks.len().to_string(),
            ]
        }),
    );
    w.text("h2", &[], &format!("Heaps ({})", s.heaps.len()));
    table(
        &mut w,
        &[
            "name",
            "socket",
            "total",
            "free",
            "greatest free",
            "busy elements",
            "free elements",
        ],
        s.heaps.iter().map(|h| {
            vec![
                h.name.clone(),
                h.socket.to_string(),
                approximate(h.total_bytes),
                approximate(h.free_bytes),
                approximate(h.greatest_free_bytes),
                h.alloc_count.to_string(),
                h.free_count.to_string(),
            ]
        }),
    );
    w.end();
    w.end();
    w.finish()
}

fn table(w: &mut XmlWriter, heads: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    w.start("table", &[]);
    w.start("tr", &[]);
    for head in heads {
        w.text("th", &[], head);
    }
    w.end();
    for row in rows {
        w.start("tr", &[]);
        for cell in row {
            let numeric = cell.starts_with(|c: char| c.is_ascii_digit());
            let attrs = if numeric {
                vec![("class", "n".to_owned())]
            } else {
                Vec::new()
            };
            w.text("td", &attrs, &cell);
        }
        w.end();
    }
    w.end();
}
