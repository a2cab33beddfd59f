//! How each side of a ring synchronises its threads: the modes a ring is created with
//! ([`ProducerMode`], [`ConsumerMode`]) and the sync type each side records in the header
//! ([`SyncType`]).

/// How a side's head and tail are synchronised; stored in the header as a `u32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum SyncType {
    /// Classic multi-thread: CAS on the head, wait for earlier threads' tails in order.
    Mt = 0,
    /// One thread at a time: plain stores, no waiting.
    St = 1,
    /// Relaxed tail sync: the tail moves when the last of the overlapping threads is done.
    MtRts = 2,
    /// Head/tail sync: one operation in flight at a time, head and tail in one word.
    MtHts = 3,
}

impl SyncType {
    pub(crate) fn from_raw(raw: u32) -> SyncType {
        match raw {
            1 => SyncType::St,
            2 => SyncType::MtRts,
            3 => SyncType::MtHts,
            _ => SyncType::Mt,
        }
    }
}

/// How producers synchronise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProducerMode {
    /// One producer at a time.
    Sp,
    /// Any number of producers; each waits for the ones before it to publish.
    Mp,
    /// Any number of producers; relaxed tail sync (no in-order wait).
    MpRts,
    /// Any number of producers; one operation in flight at a time.
    MpHts,
}

/// How consumers synchronise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerMode {
    /// One consumer at a time.
    Sc,
    /// Any number of consumers; each waits for the ones before it to release.
    Mc,
    /// Any number of consumers; relaxed tail sync.
    McRts,
    /// Any number of consumers; one operation in flight at a time.
    McHts,
}

impl ProducerMode {
    pub(crate) fn sync_type(self) -> SyncType {
        match self {
            ProducerMode::Sp => SyncType::St,
            ProducerMode::Mp => SyncType::Mt,
            ProducerMode::MpRts => SyncType::MtRts,
            ProducerMode::MpHts => SyncType::MtHts,
        }
    }

    /// The mode as DPDK names it (`SP`, `MP`, `MP_RTS`, `MP_HTS`), in its ring dump and
    /// telemetry.
    pub fn name(self) -> &'static str {
        match self {
            ProducerMode::Sp => "SP",
            ProducerMode::Mp => "MP",
            ProducerMode::MpRts => "MP_RTS",
            ProducerMode::MpHts => "MP_HTS",
        }
    }

    pub(crate) fn from_sync(s: SyncType) -> Self {
        match s {
            SyncType::St => ProducerMode::Sp,
            SyncType::Mt => ProducerMode::Mp,
            SyncType::MtRts => ProducerMode::MpRts,
            SyncType::MtHts => ProducerMode::MpHts,
        }
    }
}

impl ConsumerMode {
    pub(crate) fn sync_type(self) -> SyncType {
        match self {
            ConsumerMode::Sc => SyncType::St,
            ConsumerMode::Mc => SyncType::Mt,
            ConsumerMode::McRts => SyncType::MtRts,
            ConsumerMode::McHts => SyncType::MtHts,
        }
    }

    /// The mode as DPDK names it (`SC`, `MC`, `MC_RTS`, `MC_HTS`), in its ring dump and
    /// telemetry.
    pub fn name(self) -> &'static str {
        match self {
            ConsumerMode::Sc => "SC",
            ConsumerMode::Mc => "MC",
            ConsumerMode::McRts => "MC_RTS",
            ConsumerMode::McHts => "MC_HTS",
        }
    }

    pub(crate) fn from_sync(s: SyncType) -> Self {
        match s {
            SyncType::St => ConsumerMode::Sc,
            SyncType::Mt => ConsumerMode::Mc,
            SyncType::MtRts => ConsumerMode::McRts,
            SyncType::MtHts => ConsumerMode::McHts,
        }
    }
}
