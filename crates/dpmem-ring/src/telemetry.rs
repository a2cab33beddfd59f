//! The rings' telemetry commands, `/ring/list` (the names of the EAL's named rings) and
//! `/ring/info,<name>` (one ring: sizes, modes, how many elements it holds, its memzone),
//! answered by every EAL's telemetry server ([`dpmem_eal::telemetry`]) for the rings of that
//! EAL. DPDK 22.11 has no ring commands; later DPDK has these two, and `/ring/info` answers
//! with its field names.
//!
//! A named ring is a memzone whose name is the rings' prefix and the ring's name, so the list
//! is read from the memzone table, without touching any ring. The info of a ring is read from
//! its header: sizes and modes, which nothing writes after the ring is built, and the two
//! tails for the count, loaded and never stored, so a ring at work in any process is not
//! disturbed (no claim, no head moved). As with DPDK, a ring must not be freed while a request
//! reads it.
//!
//! The commands are registered the first time the process creates or looks up a named ring,
//! or calls [`named::register_telemetry`](crate::named::register_telemetry): the EAL below
//! cannot know this library, and Rust runs nothing before `main`.

use std::sync::Once;

use dpmem_eal::telemetry::{register_command, TelemetryDict, TelemetryError, TelemetryValue};
use dpmem_eal::Eal;

use crate::header::RING_NAME_MAX;
use crate::memzone_memory::{MemzoneMemory, MEMZONE_PREFIX};
use crate::raw::RawRing;

/// Registers `/ring/list` and `/ring/info`, once per process. A command of either name
/// registered before (by the application) is left in place.
pub(crate) fn register_commands() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = register_command(
            "/ring/list",
            "Names of the named rings. No parameter.",
            |eal, _| Ok(list(eal)),
        );
        let _ = register_command(
            "/ring/info",
            "One ring: sizes, modes, count, memzone. Parameter: a name from /ring/list.",
            info,
        );
    });
}

fn list(eal: &Eal) -> TelemetryValue {
    let names: Vec<String> = eal
        .memzones()
        .list()
        .into_iter()
        .filter_map(|zone| zone.name.strip_prefix(MEMZONE_PREFIX).map(str::to_owned))
        .collect();
    names.into()
}

/// The ring called `param`: an empty dictionary when no ring has that name (DPDK's answer),
/// also for a memzone of the rings' prefix whose bytes hold no ring (one being built, say);
/// `null` without a name or with one longer than a ring's, as DPDK refuses those.
fn info(eal: &Eal, param: Option<&str>) -> Result<TelemetryValue, TelemetryError> {
    let name =
        param.ok_or_else(|| TelemetryError::InvalidParameter("a ring name is needed".into()))?;
    if name.len() > RING_NAME_MAX {
        return Err(TelemetryError::InvalidParameter(format!(
            "a ring name has at most {RING_NAME_MAX} bytes"
        )));
    }
    let mut info = TelemetryDict::new();
    // Attaching checks the header (magic, sizes, positions) and writes nothing.
    let Some(ring) = MemzoneMemory::find(eal, name)
        .ok()
        .flatten()
        .and_then(|memory| RawRing::attach(memory).ok())
    else {
        return Ok(info.into());
    };
    let zone = ring.memory().memzone();
    // Later DPDK writes the mask and the memzone's flags in hexadecimal, as strings.
    info.insert("name", ring.name())?
        .insert("socket", i64::from(zone.socket.to_raw()))?
        .insert("flags", ring.flags().bits())?
        .insert("producer_type", ring.producer_mode().name())?
        .insert("consumer_type", ring.consumer_mode().name())?
        .insert("size", ring.size())?
        .insert("mask", format!("{:#x}", ring.size() - 1))?
        .insert("capacity", ring.capacity())?
        .insert("used_count", ring.count())?
        .insert("mz_name", zone.name.as_str())?
        .insert("mz_len", zone.len)?
        .insert("mz_hugepage_sz", zone.page_size)?
        .insert("mz_socket_id", i64::from(zone.socket.to_raw()))?
        .insert("mz_flags", format!("{:#x}", zone.flags.bits()))?
        // dpmem's own: bytes per element, which DPDK's info leaves out.
        .insert("esize", ring.esize())?;
    Ok(info.into())
}
