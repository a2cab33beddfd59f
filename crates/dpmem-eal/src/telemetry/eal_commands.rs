//! The EAL's commands: DPDK's `/eal/...` (command line, heaps, memzones) with DPDK's names
//! and shapes, and dpmem's `/dpmem/...` (lcores, memseg lists) in the same style, a list of
//! ids and an info command for one id.
//!
//! Each reads the EAL through the calls `dpmem info` uses, so an answer is what the process
//! sees itself. Where DPDK 22.11 reads past its tables for an id that names nothing (a heap
//! id past the table, a free memzone slot), these answer `null`, as for any refused request.

use std::sync::Arc;

use super::command::Builtin;
use super::error::TelemetryError;
use super::value::{TelemetryDict, TelemetryValue};
use crate::Eal;

pub(crate) fn commands() -> Vec<Builtin> {
    vec![
        (
            "/eal/params",
            "The EAL's command line: the program, then its EAL options. No parameter.",
            Arc::new(|eal, _| Ok(eal.eal_args().to_vec().into())),
        ),
        (
            "/eal/app_params",
            "The application's own arguments, those after '--'. No parameter.",
            Arc::new(|eal, _| Ok(eal.app_args().to_vec().into())),
        ),
        (
            "/eal/heap_list",
            "Ids of the heaps that hold memory. No parameter.",
            Arc::new(|eal, _| heap_list(eal)),
        ),
        (
            "/eal/heap_info",
            "Statistics of one heap. Parameter: a heap id from /eal/heap_list.",
            Arc::new(heap_info),
        ),
        (
            "/eal/memzone_list",
            "Indices of the memzones. No parameter.",
            Arc::new(|eal, _| memzone_list(eal)),
        ),
        (
            "/eal/memzone_info",
            "One memzone and the pages under it. Parameter: an index from /eal/memzone_list.",
            Arc::new(memzone_info),
        ),
        (
            "/dpmem/lcores",
            "Ids of the EAL's lcores. No parameter.",
            Arc::new(|eal, _| lcores(eal)),
        ),
        (
            "/dpmem/lcore_info",
            "One lcore: role, CPUs, socket. Parameter: an id from /dpmem/lcores.",
            Arc::new(lcore_info),
        ),
        (
            "/dpmem/memseg_lists",
            "Indices of the memseg lists. No parameter.",
            Arc::new(|eal, _| memseg_lists(eal)),
        ),
        (
            "/dpmem/memseg_list_info",
            "One memseg list: addresses, page size, socket, pages. Parameter: an index from /dpmem/memseg_lists.",
            Arc::new(memseg_list_info),
        ),
    ]
}

/// The parameter as an id or index: decimal digits only (DPDK's `strtoul` would read `1x` as
/// 1 and an empty one as 0; here both are refused).
pub(crate) fn id_param(param: Option<&str>) -> Result<u32, TelemetryError> {
    let text = param.ok_or_else(|| TelemetryError::InvalidParameter("an id is needed".into()))?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TelemetryError::InvalidParameter(format!(
            "{text:?} is not a decimal id"
        )));
    }
    text.parse()
        .map_err(|_| TelemetryError::InvalidParameter(format!("{text:?} is too large")))
}

/// An address as DPDK's `%p` prints it.
fn address(va: u64) -> String {
    format!("{va:#x}")
}

fn heap_list(eal: &Eal) -> Result<TelemetryValue, TelemetryError> {
    let heaps = eal.heaps();
    // As DPDK: only heaps that hold memory.
    let ids: Vec<u32> = heaps
        .heap_ids()
        .into_iter()
        .filter(|&(_, socket)| heaps.stats(socket).is_ok_and(|s| s.total_bytes != 0))
        .map(|(id, _)| id)
        .collect();
    Ok(ids.into())
}

fn heap_info(eal: &Eal, param: Option<&str>) -> Result<TelemetryValue, TelemetryError> {
    let id = id_param(param)?;
    let heaps = eal.heaps();
    let (_, socket) = heaps
        .heap_ids()
        .into_iter()
        .find(|&(slot, _)| slot == id)
        .ok_or_else(|| TelemetryError::NotFound(format!("heap {id}")))?;
    let stats = heaps.stats(socket)?;
    let mut info = TelemetryDict::new();
    // DPDK 22.11 names the first entry "Head id", which its own name check then drops;
    // later DPDK calls it "Heap_id".
    info.insert("Heap_id", id)?
        .insert("Name", stats.name)?
        .insert("Heap_size", stats.total_bytes)?
        .insert("Free_size", stats.free_bytes)?
        .insert("Alloc_size", stats.alloc_bytes)?
        .insert("Greatest_free_size", stats.greatest_free_bytes)?
        .insert("Alloc_count", stats.alloc_count)?
        .insert("Free_count", stats.free_count)?;
    Ok(info.into())
}

fn memzone_list(eal: &Eal) -> Result<TelemetryValue, TelemetryError> {
    let indices: Vec<u32> = eal
        .memzones()
        .list_indexed()
        .into_iter()
        .map(|(idx, _)| idx)
        .collect();
    Ok(indices.into())
}

fn memzone_info(eal: &Eal, param: Option<&str>) -> Result<TelemetryValue, TelemetryError> {
    let idx = id_param(param)?;
    let (_, mz) = eal
        .memzones()
        .list_indexed()
        .into_iter()
        .find(|&(i, _)| i == idx)
        .ok_or_else(|| TelemetryError::NotFound(format!("memzone {idx}")))?;
    let page = mz.page_size.max(1);
    let start = mz.va as u64;
    let first_page = start - start % page;
    // The pages the zone touches, from the one it starts in to the one it ends in. (DPDK
    // counts from the first page's start for the zone's length, one short when a zone that
    // does not start on a page boundary crosses one more.)
    let end = start + (mz.len as u64).max(1);
    let pages = end.div_ceil(page) - first_page / page;
    let mut info = TelemetryDict::new();
    info.insert("Zone", idx)?
        .insert("Name", mz.name.as_str())?
        .insert("Length", mz.len)?
        .insert("Address", address(start))?
        .insert("Socket", i64::from(mz.socket.to_raw()))?
        .insert("Flags", mz.flags.bits())?
        .insert("Hugepage_size", mz.page_size)?
        .insert("Hugepage_base", address(first_page))?
        .insert("Hugepage_used", pages)?;
    Ok(info.into())
}

fn lcores(eal: &Eal) -> Result<TelemetryValue, TelemetryError> {
    let ids: Vec<u32> = eal
        .lcore_threads()
        .table()
        .into_iter()
        .map(|l| l.lcore_id)
        .collect();
    Ok(ids.into())
}

fn lcore_info(eal: &Eal, param: Option<&str>) -> Result<TelemetryValue, TelemetryError> {
    let id = id_param(param)?;
    let lcore = eal
        .lcore_threads()
        .table()
        .into_iter()
        .find(|l| l.lcore_id == id)
        .ok_or_else(|| TelemetryError::NotFound(format!("lcore {id}")))?;
    let mut info = TelemetryDict::new();
    info.insert("lcore_id", lcore.lcore_id)?
        .insert("role", lcore.role.as_str())?
        .insert("cpus", lcore.cpus.into_iter().collect::<Vec<u32>>())?
        .insert("cpu_id", lcore.cpu_id)?
        .insert("socket", i64::from(lcore.socket.to_raw()))?;
    Ok(info.into())
}

fn memseg_lists(eal: &Eal) -> Result<TelemetryValue, TelemetryError> {
    let indices: Vec<u32> = eal.memory().lists().into_iter().map(|l| l.index).collect();
    Ok(indices.into())
}

fn memseg_list_info(eal: &Eal, param: Option<&str>) -> Result<TelemetryValue, TelemetryError> {
    let idx = id_param(param)?;
    let list = eal
        .memory()
        .lists()
        .into_iter()
        .find(|l| l.index == idx)
        .ok_or_else(|| TelemetryError::NotFound(format!("memseg list {idx}")))?;
    let mut info = TelemetryDict::new();
    info.insert("index", list.index)?
        .insert("base_va", address(list.base_va as u64))?
        .insert("len", list.len)?
        .insert("page_size", list.page_size)?
        .insert("socket", i64::from(list.socket.to_raw()))?
        .insert("n_segs", list.n_segs)?
        .insert("n_used", list.n_used)?
        .insert("external", u32::from(list.external))?
        .insert("heap", u32::from(list.heap))?;
    Ok(info.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_decimal_numbers() {
        assert_eq!(id_param(Some("0")).unwrap(), 0);
        assert_eq!(id_param(Some("4294967295")).unwrap(), u32::MAX);
        for bad in [
            None,
            Some(""),
            Some("1x"),
            Some("-1"),
            Some("+1"),
            Some(" 1"),
            Some("4294967296"),
        ] {
            assert!(id_param(bad).is_err(), "{bad:?}");
        }
    }
}
