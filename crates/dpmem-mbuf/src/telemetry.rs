//! The packet buffer pools' telemetry commands, dpmem's own (DPDK has none for them):
//! `/dpmem/mbuf_pools`, the names of the mempools that hold packet buffers, and
//! `/dpmem/mbuf_pool_info,<name>`, one such pool's buffers (room and private sizes, pinned or
//! not), counts (in use, available, in each lcore's cache) and the dynamic fields and flags
//! its buffers carry. Every EAL's telemetry server ([`dpmem_eal::telemetry`]) answers them for
//! the pools of that EAL.
//!
//! A mempool is a packet buffer pool when its private area holds the pool info this library
//! writes there, magic included: what [`PktmbufPool::describe`](crate::PktmbufPool::describe)
//! and `dpmem info` go by, so the three agree. `/mempool/list` and `/mempool/info` show the
//! same pools as mempools.
//!
//! The EAL cannot register these (it does not know the libraries above it), and Rust runs
//! nothing before `main`, so this library registers them the first time the process creates,
//! looks up or describes a packet buffer pool; [`register_telemetry`] does it sooner. Reading a
//! pool opens a handle on its mempool for the length of the request, as `/mempool/info` does: a
//! free of that pool in this process that comes at that moment is refused (`EBUSY`) and can be
//! tried again.

use std::sync::Once;

use dpmem_eal::telemetry::{register_command, TelemetryDict, TelemetryError, TelemetryValue};
use dpmem_eal::Eal;
use dpmem_mempool::Mempool;

use crate::dynamic;
use crate::pool_info;

/// Registers `/dpmem/mbuf_pools` and `/dpmem/mbuf_pool_info` with the EAL's telemetry, once
/// per process. A command of either name registered before (by the application) is left in
/// place.
pub fn register_telemetry() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = register_command(
            "/dpmem/mbuf_pools",
            "Names of the packet buffer pools. No parameter.",
            |eal, _| Ok(list(eal)),
        );
        let _ = register_command(
            "/dpmem/mbuf_pool_info",
            "One packet buffer pool: buffer sizes, counts, caches. Parameter: a name from /dpmem/mbuf_pools.",
            info,
        );
    });
}

fn list(eal: &Eal) -> TelemetryValue {
    let mut names: Vec<String> = Vec::new();
    Mempool::walk(eal, |pool| {
        if pool_info::find(pool).is_some() {
            names.push(pool.name().to_owned());
        }
    });
    names.into()
}

/// The packet buffer pool called `param`: an empty dictionary when no pool has that name or
/// the pool holds no packet buffers (as DPDK answers for a name that names nothing), `null`
/// without a name.
fn info(eal: &Eal, param: Option<&str>) -> Result<TelemetryValue, TelemetryError> {
    let name =
        param.ok_or_else(|| TelemetryError::InvalidParameter("a pool name is needed".into()))?;
    let mut info = TelemetryDict::new();
    let Ok(pool) = Mempool::lookup(eal, name) else {
        return Ok(info.into());
    };
    let Some(packets) = pool_info::find(&pool) else {
        return Ok(info.into());
    };
    // SAFETY: `find` found the pool info in the private area of the pool held above, which
    // stays while the handle does; nothing writes it after the pool is published.
    let packets = unsafe { packets.as_ref() };
    // Counters alone, read as they are: nothing is flushed or taken from a cache.
    let caches = pool.lcore_cache_counts();
    let mut lcore_caches = TelemetryDict::new();
    for &(lcore, count) in &caches {
        lcore_caches.insert(&lcore.to_string(), count)?;
    }
    let total_cached: u32 = caches.iter().map(|&(_, count)| count).sum();
    info.insert("name", pool.name())?
        .insert("socket_id", i64::from(pool.socket().to_raw()))?
        .insert("size", pool.size())?
        .insert("elt_size", pool.elt_size())?
        .insert("data_room_size", u32::from(packets.data_room))?
        .insert("priv_size", u32::from(packets.priv_size))?
        .insert("flags", packets.flags)?
        .insert("pinned_ext_buf", u32::from(packets.is_pinned()))?
        .insert("cache_size", pool.cache_size())?
        .insert("avail_count", pool.avail_count())?
        .insert("in_use_count", pool.in_use_count())?
        .insert("total_cache_count", total_cached)?
        .insert("lcore_cache_counts", lcore_caches)?;
    // The EAL's dynamic fields and flags: one registry, so every pool's buffers carry them.
    match dynamic::registered(eal) {
        Ok(registered) => {
            let fields: Vec<String> = registered.fields.into_iter().map(|f| f.name).collect();
            let flags: Vec<String> = registered.flags.into_iter().map(|f| f.name).collect();
            info.insert("dynamic_fields", fields)?
                .insert("dynamic_flags", flags)?;
        }
        // The pool is still worth reporting when the registry cannot be read.
        Err(e) => {
            info.insert("dynamic_registry_error", e.to_string())?;
        }
    }
    Ok(info.into())
}
