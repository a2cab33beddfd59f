//! What a request gathered: every reply, and for each peer that gave none, why.
//!
//! DPDK's `struct rte_mp_reply` says how many requests went out and how many replies came
//! back; this says which peer is behind each number, so a caller can name the process that
//! did not answer.

use super::message::IpcMessage;

/// One peer's reply.
#[derive(Debug)]
pub struct Reply {
    /// The peer's socket name (`mp_socket`, `mp_socket_<pid>_<n>`).
    pub peer: String,
    pub message: IpcMessage,
}

/// The outcome of a request. `sent` counts the peers the request reached; each of them is in
/// exactly one of `replies`, `no_action`, `declined`, `died` and `timed_out`.
#[derive(Debug, Default)]
pub struct Replies {
    /// Peers the request was delivered to (DPDK's `nb_sent`).
    pub sent: usize,
    /// The replies, in the order they came.
    pub replies: Vec<Reply>,
    /// Peers with no action for the request's name: they said so at once, so the request did
    /// not wait for them.
    pub no_action: Vec<String>,
    /// Peers whose action returned without replying.
    pub declined: Vec<String>,
    /// Peers that died before answering (the primary removes their sockets).
    pub died: Vec<String>,
    /// Peers still silent when the time ran out.
    pub timed_out: Vec<String>,
    /// Peers found dead before the request went out: not counted in `sent` (as in DPDK);
    /// the primary removes their sockets.
    pub skipped: Vec<String>,
}

impl Replies {
    /// How many peers replied (DPDK's `nb_received`).
    pub fn received(&self) -> usize {
        self.replies.len()
    }

    /// Every peer the request reached replied.
    pub fn all_replied(&self) -> bool {
        self.received() == self.sent
    }

    /// The peers that reached but did not reply, for a person.
    pub fn unanswered(&self) -> Vec<String> {
        let label = |list: &[String], why: &str| {
            list.iter()
                .map(|peer| format!("{peer} ({why})"))
                .collect::<Vec<_>>()
        };
        let mut all = label(&self.no_action, "no action");
        all.extend(label(&self.declined, "did not reply"));
        all.extend(label(&self.died, "died"));
        all.extend(label(&self.timed_out, "timed out"));
        all
    }
}
