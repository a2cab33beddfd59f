//! The DPDK 22.11 side of the `mp` workload: DPDK's inter-process channel (`rte_mp_*`)
//! between a primary and secondaries that are all `dpmem-bench-dpdk` processes, driven by
//! the rows [`crate::mp`] runs on dpmem's channel. The program implements it in C, with the
//! rest of [`crate::DpdkLoops`].

/// The channel loops of DPDK's side. A process is a primary or a secondary: it calls one of
/// the two inits, once (DPDK allows one `rte_eal_init` per process).
pub trait DpdkMpLoops {
    /// `rte_eal_init(args)` as the primary, then the action that answers a secondary's pong
    /// by sending the next ping (the message row).
    fn mp_primary_init(&self, args: &[String]) -> Result<(), String>;

    /// `rte_eal_init(args)` as a secondary, then its two actions: the request row's, which
    /// replies with the request's parameters, and the message row's, which answers a ping
    /// with a pong carrying the same parameters.
    fn mp_secondary_init(&self, args: &[String]) -> Result<(), String>;

    /// `round_ns.len()` rounds of `rte_mp_request_sync` to every secondary, each of which must
    /// reach exactly `secondaries` of them and get every reply back, with the round's number
    /// as its parameters; each round's nanoseconds in `round_ns`.
    fn mp_request_rounds(&self, secondaries: u32, round_ns: &mut [u64]) -> Result<(), String>;

    /// `round_ns.len()` rounds of message ping-pong with the one secondary: a ping from the
    /// primary, a pong from the secondary's action, the next ping from the primary's action;
    /// in `round_ns` the nanoseconds between two pongs' arrivals.
    fn mp_message_rounds(&self, round_ns: &mut [u64]) -> Result<(), String>;

    /// In a secondary, `round_ns.len()` rounds of the growth row: `rte_memzone_reserve` of
    /// `zone_len` bytes (timed; it must grow the heap, i.e. need a new page), then
    /// `rte_memzone_free` (not timed, giving the page back); each reservation's nanoseconds in
    /// `round_ns`.
    fn mp_grow_rounds(&self, zone_len: usize, round_ns: &mut [u64]) -> Result<(), String>;

    /// `rte_eal_cleanup()`, primary or secondary.
    fn mp_cleanup(&self) -> Result<(), String>;
}
