//! The rings' telemetry command, `/ring/list`: the names of the EAL's named rings, answered by
//! every EAL's telemetry server ([`dpmem_eal::telemetry`]) for the rings of that EAL. (DPDK
//! 22.11 has no ring commands; later DPDK lists its rings under this name.)
//!
//! A named ring is a memzone whose name is the rings' prefix and the ring's name, so the list
//! is read from the memzone table, without touching any ring. It is registered the first time
//! the process creates or looks up a named ring, or calls
//! [`named::register_telemetry`](crate::named::register_telemetry): the EAL below cannot know
//! this library, and Rust runs nothing before `main`.

use std::sync::Once;

use dpmem_eal::telemetry::{register_command, TelemetryValue};
use dpmem_eal::Eal;

/// Registers `/ring/list`, listing the memzones named `<prefix><ring name>`, once per process.
/// A command of that name registered before (by the application) is left in place.
pub(crate) fn register_ring_list(prefix: &'static str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = register_command(
            "/ring/list",
            "Names of the named rings. No parameter.",
            move |eal, _| Ok(list(eal, prefix)),
        );
    });
}

fn list(eal: &Eal, prefix: &str) -> TelemetryValue {
    let names: Vec<String> = eal
        .memzones()
        .list()
        .into_iter()
        .filter_map(|zone| zone.name.strip_prefix(prefix).map(str::to_owned))
        .collect();
    names.into()
}
