//! The pools' telemetry commands: DPDK's `/mempool/list` (the pools' names) and
//! `/mempool/info,<name>` (one pool, with DPDK 22.11's field names), answered by every EAL's
//! telemetry server ([`dpmem_eal::telemetry`]) for the pools of that EAL.
//!
//! DPDK registers them from a constructor that runs before `main`. The EAL cannot register
//! them (it does not know the library above it), and Rust runs nothing before `main`, so this
//! library registers them itself the first time the process creates, looks up or walks a
//! pool; [`register_telemetry`] does it sooner, for a program (a monitor attached as a
//! secondary, say) that wants the commands before it touches a pool.
//!
//! Reading a pool opens a handle on it for the length of the request, as [`Mempool::walk`]
//! does: a [`Mempool::free`] of the same pool in this process that comes at that moment is
//! refused (`EBUSY`) and can be tried again.

use std::sync::Once;

use dpmem_eal::telemetry::{register_command, TelemetryDict, TelemetryError, TelemetryValue};
use dpmem_eal::Eal;

use crate::handler::handler_names;
use crate::pool::Mempool;

/// Registers `/mempool/list` and `/mempool/info` with the EAL's telemetry, once per process.
/// A command of the same name registered before (by the application) is left in place.
pub fn register_telemetry() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = register_command(
            "/mempool/list",
            "Names of the mempools. No parameter.",
            |eal, _| Ok(list(eal)),
        );
        let _ = register_command(
            "/mempool/info",
            "One mempool: sizes, caches, memzone. Parameter: a name from /mempool/list.",
            info,
        );
    });
}

fn list(eal: &Eal) -> TelemetryValue {
    let mut names: Vec<String> = Vec::new();
    Mempool::walk(eal, |pool| names.push(pool.name().to_owned()));
    names.into()
}

/// The pool called `param`; an empty dictionary when there is none (DPDK's answer), `null`
/// without a name.
fn info(eal: &Eal, param: Option<&str>) -> Result<TelemetryValue, TelemetryError> {
    let name =
        param.ok_or_else(|| TelemetryError::InvalidParameter("a pool name is needed".into()))?;
    let mut info = TelemetryDict::new();
    let Ok(pool) = Mempool::lookup(eal, name) else {
        return Ok(info.into());
    };
    let obj = pool.obj_size();
    let handler = pool.handler_name();
    // DPDK's ops_index: the handler's place in the process's table of handlers.
    let ops_index = handler_names().iter().position(|h| *h == handler);
    let zone = pool.memzone();
    info.insert("name", pool.name())?
        .insert("flags", pool.flags().bits())?
        .insert("socket_id", i64::from(pool.socket().to_raw()))?
        .insert("size", pool.size())?
        .insert("cache_size", pool.cache_size())?
        .insert("elt_size", obj.elt_size)?
        .insert("header_size", obj.header_size)?
        .insert("trailer_size", obj.trailer_size)?
        .insert("private_data_size", pool.private_data_size())?;
    if let Some(index) = ops_index {
        info.insert("ops_index", index)?;
    }
    info.insert("populated_size", pool.populated_size())?
        .insert("mz_name", zone.name.as_str())?
        .insert("mz_len", zone.len)?
        .insert("mz_hugepage_sz", zone.page_size)?
        .insert("mz_socket_id", i64::from(zone.socket.to_raw()))?
        .insert("mz_flags", zone.flags.bits())?
        // dpmem's own: the handler by name, and what the pool holds now.
        .insert("handler", handler.as_str())?
        .insert("avail_count", pool.avail_count())?
        .insert("in_use_count", pool.in_use_count())?;
    Ok(info.into())
}
