//! The rings part of `dpmem info` and `dpmem proc-info`: every named ring, found as the
//! memzones named with the rings' prefix and looked at through their headers only.

use std::fmt::Write;

use dpmem::eal::Eal;
use dpmem::ring::named;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct RingInfo {
    pub name: String,
    /// Elements in the ring now (a snapshot while other threads work on it).
    pub count: u32,
    /// Elements the ring can hold.
    pub capacity: u32,
    /// Bytes per element.
    pub elt_size: u32,
    /// `SP`, `MP`, `MP_RTS`, `MP_HTS`.
    pub producer_mode: String,
    /// `SC`, `MC`, `MC_RTS`, `MC_HTS`.
    pub consumer_mode: String,
    pub memzone: String,
    /// A memzone of the rings' prefix whose bytes are no ring this build recognises: why.
    pub error: Option<String>,
}

pub fn collect(eal: &Eal) -> Vec<RingInfo> {
    eal.memzones()
        .list()
        .into_iter()
        .filter_map(|zone| {
            let name = zone.name.strip_prefix(named::MEMZONE_PREFIX)?.to_owned();
            Some(match named::lookup_raw(eal, &name) {
                Ok(ring) => RingInfo {
                    count: ring.count(),
                    capacity: ring.capacity(),
                    elt_size: ring.esize(),
                    producer_mode: mode_name(&format!("{:?}", ring.producer_mode())),
                    consumer_mode: mode_name(&format!("{:?}", ring.consumer_mode())),
                    memzone: zone.name.clone(),
                    error: None,
                    name,
                },
                Err(e) => RingInfo {
                    count: 0,
                    capacity: 0,
                    elt_size: 0,
                    producer_mode: String::new(),
                    consumer_mode: String::new(),
                    memzone: zone.name.clone(),
                    error: Some(e.to_string()),
                    name,
                },
            })
        })
        .collect()
}

/// `MpRts` as DPDK writes it: `MP_RTS`.
fn mode_name(debug: &str) -> String {
    let mut out = String::new();
    for (i, c) in debug.chars().enumerate() {
        if i > 0 && c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

pub fn render(rings: &[RingInfo]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "rings: {}", rings.len());
    for r in rings {
        match &r.error {
            Some(e) => {
                let _ = writeln!(out, "  {}: not readable: {e}", r.name);
            }
            None => {
                let _ = writeln!(
                    out,
                    "  {}: count {} capacity {} elt {} {}/{}",
                    r.name, r.count, r.capacity, r.elt_size, r.producer_mode, r.consumer_mode
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpmem::ring::RingFlags;

    #[test]
    fn mode_names_are_dpdks() {
        assert_eq!(mode_name("Sp"), "SP");
        assert_eq!(mode_name("MpRts"), "MP_RTS");
        assert_eq!(mode_name("McHts"), "MC_HTS");
    }

    #[test]
    fn lists_a_named_ring_with_its_count_and_modes() {
        let prefix = format!("cli_rg{}_", std::process::id());
        let eal = Eal::init(["t", "--no-huge", "-m", "32", "--file-prefix", &prefix]).unwrap();
        let ring = named::create::<u64>(
            &eal,
            "cli_ring",
            64,
            dpmem::Socket::Any,
            RingFlags::SP_ENQ | RingFlags::SC_DEQ,
        )
        .unwrap();
        let mut producer = ring.producer().unwrap();
        producer.enqueue(7).unwrap();
        producer.enqueue(8).unwrap();
        drop(producer);
        let text = render(&collect(&eal));
        assert!(text.contains("rings: 1"), "{text}");
        assert!(
            text.contains("cli_ring: count 2 capacity 63 elt 8 SP/SC"),
            "{text}"
        );
        named::free(&eal, ring).unwrap();
    }
}
