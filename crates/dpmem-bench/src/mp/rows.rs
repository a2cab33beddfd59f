//! The rows of the `mp` workload and the names both sides' actions answer to
//! (`dpdk/csrc/dpdk_mp_shim.c` uses the same names, the same 8-byte round numbers and the
//! same checks).

/// The request rows' name: every secondary replies with the request's parameters.
pub(crate) const REQUEST: &str = "dpmem_bench_rt";
/// The message row's names: the primary pings, the secondary pongs back.
pub(crate) const PING: &str = "dpmem_bench_ping";
pub(crate) const PONG: &str = "dpmem_bench_pong";
/// The growth row's memzone, reserved and freed by the secondary round after round. Before
/// the rounds, the secondary takes every free block the zone would fit in with an allocation
/// of its own (a filler, freed after the rounds): memory the EAL mapped at start, part of it
/// in use, would otherwise serve the first zones without a new page.
pub(crate) const GROW_ZONE: &str = "dpmem_bench_grow";
/// Its length: three quarters of a 2 MiB page, so that with the page freed between rounds
/// every reservation needs a page of its own and no more than one.
pub(crate) const GROW_ZONE_LEN: usize = 3 << 19;
/// What a filler leaves of the free block it takes: room for its element header and
/// alignment, far less than a zone.
pub(crate) const FILLER_SLACK: usize = 4096;
/// The most fillers the growth row takes (see [`GROW_ZONE`]); more means the heap keeps
/// finding room, and the row fails.
pub(crate) const MAX_FILLERS: usize = 64;
/// The growth row's rounds: each maps and unmaps a hugepage in every process, milliseconds
/// rather than microseconds, so fewer than the channel rows'.
pub(crate) const GROW_ROUNDS: usize = 512;
pub(crate) const GROW_WARMUP_ROUNDS: usize = 32;

/// One row of the table, in table order: the rows with one secondary first, so the second
/// secondary is started only once they are done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MpRow {
    RequestOne,
    MessageOne,
    GrowOne,
    RequestTwo,
}

impl MpRow {
    /// Every row, in table order.
    pub(crate) const ALL: [MpRow; 4] = [
        MpRow::RequestOne,
        MpRow::MessageOne,
        MpRow::GrowOne,
        MpRow::RequestTwo,
    ];

    /// The secondaries the row runs with.
    pub(crate) fn secondaries(self) -> usize {
        match self {
            MpRow::RequestOne | MpRow::MessageOne | MpRow::GrowOne => 1,
            MpRow::RequestTwo => 2,
        }
    }

    /// How many messages one round is: a ping-pong round is two one-way messages, and the
    /// row reports one.
    pub(crate) fn messages_per_round(self) -> u64 {
        match self {
            MpRow::MessageOne => 2,
            MpRow::RequestOne | MpRow::RequestTwo | MpRow::GrowOne => 1,
        }
    }

    /// Timed rounds and the warm-up rounds before them.
    pub(crate) fn rounds(self) -> (usize, usize) {
        match self {
            MpRow::GrowOne => (GROW_ROUNDS, GROW_WARMUP_ROUNDS),
            _ => (super::ROUNDS, super::WARMUP_ROUNDS),
        }
    }

    /// Its name in the table (and for `--filter`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            MpRow::RequestOne => "request_sync round trip, 1 secondary",
            MpRow::MessageOne => "message one way (ping-pong / 2), 1 secondary",
            MpRow::GrowOne => "secondary's allocation that needs a new page, 1 secondary",
            MpRow::RequestTwo => "request_sync round trip, 2 secondaries",
        }
    }

    /// What one round is, and which calls each side makes.
    pub(crate) fn note(self) -> String {
        match self {
            MpRow::RequestOne | MpRow::RequestTwo => format!(
                "the primary's main thread sends a synchronous request {REQUEST:?} (8 bytes: \
                 the round's number) to every secondary ({}); each secondary's action replies \
                 with the same bytes; the round ends when the caller holds every reply, checked; \
                 dpmem: Ipc::request_sync, Incoming::reply; DPDK: rte_mp_request_sync (5 s \
                 timeout), rte_mp_reply, free(reply.msgs)",
                self.secondaries()
            ),
            MpRow::MessageOne => format!(
                "half of one ping-pong: the primary sends {PING:?} one way, the secondary's \
                 action sends {PONG:?} back one way, the primary's action records the time \
                 since the previous pong and sends the next ping (the main thread only starts \
                 the chain and waits for its end); each time is until the receiver's action \
                 ran; dpmem: Ipc::send from the actions; DPDK: rte_mp_sendmsg from the actions"
            ),
            MpRow::GrowOne => format!(
                "one memzone reservation of {} KiB by the secondary's main thread, timed by \
                 it, in a heap with no free block it fits in (the primary has no -m; what the \
                 EAL mapped at start is taken by untimed allocations before the rounds; the \
                 zone of the round before was freed, untimed, and its page given back \
                 everywhere): the secondary \
                 asks the primary, which maps a 2 MiB hugepage file, has every process map it \
                 (the secondary itself included) and answers; the reservation then completes \
                 in the secondary; each round checked to have grown the heap by a page; \
                 dpmem: Memzones::reserve / free; DPDK: rte_memzone_reserve / \
                 rte_memzone_free ({GROW_ZONE:?}, SOCKET_ID_ANY, no flags)",
                GROW_ZONE_LEN >> 10
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_need_no_more_secondaries_than_the_row_after_them() {
        let counts: Vec<usize> = MpRow::ALL.iter().map(|r| r.secondaries()).collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
        let mut names: Vec<&str> = MpRow::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), MpRow::ALL.len());
        // DPDK's limit on a name, with its NUL.
        for name in [REQUEST, PING, PONG, GROW_ZONE] {
            assert!(name.len() < 64);
        }
    }
}
