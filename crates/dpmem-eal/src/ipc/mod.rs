//! The inter-process channel (DPDK's `rte_mp_*`): processes of one file prefix send each
//! other named messages with a few bytes and file descriptors, and ask each other questions.
//!
//! - **Where**: a unix datagram socket per process in the runtime directory, named as DPDK
//!   names them: `mp_socket` for the primary, `mp_socket_<pid>_<n>` for a secondary. The
//!   directory is private (0700) and each socket mode 0600: only the prefix's user takes part.
//! - **When**: [`Eal::init`](crate::Eal::init) starts it, primary and secondary alike, on a
//!   control thread (the CPUs of no lcore: messages are never handled on a data-plane lcore);
//!   dropping the EAL stops the thread and removes the socket. With `--in-memory` there is no
//!   runtime directory and no channel ([`Eal::ipc`](crate::Eal::ipc) says so), as in DPDK.
//! - **Messages**: a name (1 to 63 bytes), at most 256 bytes of parameters, at most 8
//!   descriptors ([`IpcMessage`]); over a limit, the message is refused when built and
//!   nothing is sent. [`TypedMessage`] puts a Rust value on top.
//! - **Calls**: [`Ipc::register_action`] / [`Ipc::unregister_action`]; [`Ipc::send`], one
//!   way, from a secondary to the primary or from the primary to every secondary;
//!   [`Ipc::request_sync`] and [`Ipc::request_async`], whose [`Replies`] say how many peers
//!   the request reached and, for each, its reply or why there is none; [`Incoming::reply`]
//!   from within an action.
//!
//! Beyond DPDK: a peer without an action for a request's name, or whose action returns
//! without replying, says so at once, and a peer that dies mid-request is noticed within
//! [`PROBE_INTERVAL`]; DPDK's requester waits out its whole timeout for either. A dead
//! peer's socket is removed when the primary finds it dead, and a starting primary removes those
//! left by earlier runs.
//!
//! ```no_run
//! use std::time::Duration;
//! use dpmem_eal::ipc::IpcMessage;
//! let eal = dpmem_eal::Eal::init(["app", "--proc-type=secondary"])?;
//! let ipc = eal.ipc()?;
//! let replies = ipc.request_sync(&IpcMessage::new("app_ping", b"hello")?, Duration::from_secs(1))?;
//! println!("{} of {} answered", replies.received(), replies.sent);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod action;
mod channel;
mod error;
mod links;
mod message;
mod peers;
mod pending;
mod replies;
mod service;
mod typed;
mod wire;

pub use channel::{Action, Incoming, Ipc, LaterReply};
pub use error::IpcError;
pub use message::{check_name, IpcMessage, MAX_FDS, MAX_NAME_LEN, MAX_PARAM_LEN};
pub use peers::{remove_dead_sockets, PRIMARY_SOCKET};
pub use replies::{Replies, Reply};
pub use service::PROBE_INTERVAL;
pub use typed::{TypedMessage, TypedReplies};

pub(crate) use service::IpcService;
