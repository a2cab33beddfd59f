//! `dpmem hugepages show`: the figures of every hugepage pool, globally and per node.

use std::path::PathBuf;

use dpmem_sys::hugepage_info::{self, HugepageInfo};
use dpmem_sys::root::SysRoot;
use serde::Serialize;

use crate::byte_size::{approximate, ByteSize};

/// The JSON form: sysfs counters as the kernel publishes them, sizes in bytes.
#[derive(Debug, Serialize)]
struct ShowJson {
    default_page_size: Option<u64>,
    numa_nodes: Vec<u32>,
    sizes: Vec<SizeJson>,
}

#[derive(Debug, Serialize)]
struct SizeJson {
    page_size: u64,
    /// `2M`, `1G`: the spelling `--page-size` accepts.
    page_size_text: String,
    total: u64,
    free: u64,
    reserved: u64,
    surplus: u64,
    mounts: Vec<PathBuf>,
    nodes: Vec<NodeJson>,
}

#[derive(Debug, Serialize)]
struct NodeJson {
    node: u32,
    total: u64,
    free: u64,
    surplus: u64,
}

pub fn run(root: &SysRoot, json: bool) -> Result<(), String> {
    let info = hugepage_info::discover(root).map_err(|e| e.to_string())?;
    if json {
        let text = serde_json::to_string_pretty(&to_json(&info)).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{}", render_text(&info));
    }
    Ok(())
}

fn to_json(info: &HugepageInfo) -> ShowJson {
    ShowJson {
        default_page_size: info.default_page_size,
        numa_nodes: info.numa_nodes.clone(),
        sizes: info
            .sizes
            .iter()
            .map(|s| SizeJson {
                page_size: s.page_size,
                page_size_text: ByteSize(s.page_size).to_string(),
                total: s.total,
                free: s.free,
                reserved: s.reserved,
                surplus: s.surplus,
                mounts: s.mounts.clone(),
                nodes: info
                    .numa_nodes
                    .iter()
                    .map(|&n| {
                        let c = s.on_node(n);
                        NodeJson {
                            node: n,
                            total: c.total,
                            free: c.free,
                            surplus: c.surplus,
                        }
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// One block per page size: the global line, then one line per node. The kernel keeps
/// `resv_hugepages` only globally, so node lines show `-` there.
pub fn render_text(info: &HugepageInfo) -> String {
    let mut out = String::new();
    if info.sizes.is_empty() {
        out.push_str("no hugepage support in this kernel (no /sys/kernel/mm/hugepages)\n");
        return out;
    }
    for s in &info.sizes {
        let size = ByteSize(s.page_size);
        let default = if info.default_page_size == Some(s.page_size) {
            " (default)"
        } else {
            ""
        };
        let mounts = if s.mounts.is_empty() {
            "not mounted".to_owned()
        } else {
            let list: Vec<String> = s.mounts.iter().map(|m| m.display().to_string()).collect();
            format!("mounted on {}", list.join(", "))
        };
        out.push_str(&format!("{size} pages{default}: {mounts}\n"));
        out.push_str(&format!(
            "  {:<6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}\n",
            "node", "total", "free", "reserved", "surplus", "size", "free size"
        ));
        let line = |label: String, total: u64, free: u64, reserved: Option<u64>, surplus: u64| {
            format!(
                "  {label:<6} {total:>8} {free:>8} {:>8} {surplus:>8} {:>8} {:>8}\n",
                reserved.map_or_else(|| "-".to_owned(), |r| r.to_string()),
                approximate(total * s.page_size),
                approximate(free * s.page_size),
            )
        };
        out.push_str(&line(
            "all".to_owned(),
            s.total,
            s.free,
            Some(s.reserved),
            s.surplus,
        ));
        for &node in &info.numa_nodes {
            let c = s.on_node(node);
            out.push_str(&line(node.to_string(), c.total, c.free, None, c.surplus));
        }
    }
    out
}
