//! `dpmem hugepages show`: the figures of every hugepage pool, globally and per node.

use std::collections::BTreeMap;
use std::path::PathBuf;

use dpmem_sys::hugepage_info::{self, HugepageInfo};
use dpmem_sys::root::SysRoot;
use serde::Serialize;

use super::page_files::{self, PageFile, RuntimeDirState};
use crate::byte_size::{approximate, ByteSize};

/// The JSON form: sysfs counters as the kernel publishes them, sizes in bytes.
#[derive(Debug, Serialize)]
struct ShowJson {
    default_page_size: Option<u64>,
    numa_nodes: Vec<u32>,
    sizes: Vec<SizeJson>,
    /// The page files in the mounts, by prefix and mount.
    page_files: Vec<PrefixFiles>,
    /// Mounts whose files could not be listed, with why.
    unreadable_mounts: Vec<String>,
    /// This user's runtime directories and their primaries.
    runtime_dirs: Vec<RuntimeDirState>,
}

/// The page files of one prefix in one mount.
#[derive(Debug, Serialize)]
struct PrefixFiles {
    prefix: String,
    mount: PathBuf,
    page_size: u64,
    /// Bytes of hugepages the files hold.
    bytes: u64,
    held_files: usize,
    /// Processes holding any of the files.
    held_by: Vec<i64>,
    files: Vec<PageFile>,
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
    let (files, unreadable) = page_files::scan(root, &size_mounts(&info), None);
    let prefixes = by_prefix(files);
    let dirs = page_files::runtime_dirs(root, None);
    if json {
        let report = to_json(&info, prefixes, unreadable, dirs);
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!(
            "{}{}",
            render_text(&info),
            render_files(&prefixes, &unreadable, &dirs)
        );
    }
    Ok(())
}

/// Every hugetlbfs mount with its page size.
pub fn mounts(root: &SysRoot) -> Result<Vec<(u64, PathBuf)>, String> {
    let info = hugepage_info::discover(root).map_err(|e| e.to_string())?;
    Ok(size_mounts(&info))
}

fn size_mounts(info: &HugepageInfo) -> Vec<(u64, PathBuf)> {
    info.sizes
        .iter()
        .flat_map(|s| s.mounts.iter().map(|m| (s.page_size, m.clone())))
        .collect()
}

fn by_prefix(files: Vec<PageFile>) -> Vec<PrefixFiles> {
    let mut groups: BTreeMap<(String, PathBuf), PrefixFiles> = BTreeMap::new();
    for file in files {
        let mount = file.path.parent().map(PathBuf::from).unwrap_or_default();
        let group = groups
            .entry((file.prefix.clone(), mount.clone()))
            .or_insert_with(|| PrefixFiles {
                prefix: file.prefix.clone(),
                mount,
                page_size: file.page_size,
                bytes: 0,
                held_files: 0,
                held_by: Vec::new(),
                files: Vec::new(),
            });
        group.bytes += file.bytes;
        if !file.held_by.is_empty() {
            group.held_files += 1;
            group.held_by.extend(&file.held_by);
            group.held_by.sort_unstable();
            group.held_by.dedup();
        }
        group.files.push(file);
    }
    groups.into_values().collect()
}

/// One line per prefix and mount, then the runtime directories.
fn render_files(
    prefixes: &[PrefixFiles],
    unreadable: &[String],
    dirs: &[RuntimeDirState],
) -> String {
    let mut out = String::from("page files:\n");
    if prefixes.is_empty() {
        out.push_str("  none\n");
    }
    for p in prefixes {
        let count = p.files.len();
        let held = if p.held_files == 0 {
            format!(
                "not held (a dead run's: `dpmem hugepages clean --file-prefix {}` removes them)",
                p.prefix
            )
        } else {
            let pids: Vec<String> = p.held_by.iter().map(i64::to_string).collect();
            format!(
                "{} held by pid {}",
                if p.held_files == count {
                    "all".to_owned()
                } else {
                    p.held_files.to_string()
                },
                pids.join(", ")
            )
        };
        out.push_str(&format!(
            "  prefix {} in {} ({} pages): {count} file{}, {}, {held}\n",
            p.prefix,
            p.mount.display(),
            ByteSize(p.page_size),
            if count == 1 { "" } else { "s" },
            approximate(p.bytes),
        ));
    }
    for mount in unreadable {
        out.push_str(&format!("  cannot list {mount}\n"));
    }
    if !dirs.is_empty() {
        out.push_str(&format!(
            "runtime directories ({}):\n",
            page_files::runtime_base().display()
        ));
        for d in dirs {
            let state = match d.primary {
                Some(pid) => format!("primary pid {pid}"),
                None => "no primary (`dpmem hugepages clean` removes it)".to_owned(),
            };
            out.push_str(&format!("  {}: {state}\n", d.prefix));
        }
    }
    out
}

fn to_json(
    info: &HugepageInfo,
    page_files: Vec<PrefixFiles>,
    unreadable_mounts: Vec<String>,
    runtime_dirs: Vec<RuntimeDirState>,
) -> ShowJson {
    ShowJson {
        page_files,
        unreadable_mounts,
        runtime_dirs,
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
