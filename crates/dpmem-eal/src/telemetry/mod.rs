//! Telemetry: each EAL answers DPDK 22.11's telemetry protocol (v2) on a unix socket, so
//! DPDK's own client, `dpdk-telemetry.py`, reads a running dpmem process unchanged.
//!
//! - **Where**: `dpdk_telemetry.v2` in DPDK's runtime directory of the file prefix,
//!   `/var/run/dpdk/<prefix>` for root, `$XDG_RUNTIME_DIR/dpdk/<prefix>` (or
//!   `/tmp/dpdk/<prefix>`) for other users — where `dpdk-telemetry.py -f <prefix>` looks
//!   ([`dpdk_runtime_dir`]). A second process on the prefix (a secondary, an `--in-memory`
//!   one) takes `dpdk_telemetry.v2:1`, the next `:2`, ... (`dpdk-telemetry.py -i 1`).
//!   [`Eal::telemetry_socket`](crate::Eal::telemetry_socket) says which. The directory is
//!   private (0700) and the socket mode 0600: only the process's user can connect.
//! - **When**: started by [`Eal::init`](crate::Eal::init), on a control thread (the CPUs of
//!   no lcore); `--no-telemetry` starts nothing. Dropping the EAL stops the thread and removes
//!   the socket (and the prefix directory, when nothing else is in it); an EAL never dropped
//!   has its socket removed at exit. One that cannot be set up fails `Eal::init` with the
//!   reason, as in DPDK.
//! - **Protocol**: a `SOCK_SEQPACKET` socket; on connecting, a client gets the greeting
//!   `{"version":"dpmem …","pid":…,"max_output_len":16384}`; each request is one message,
//!   `/command` or `/command,parameter`, and each answer one message `{"/command":…}`, at
//!   most `max_output_len` bytes (what does not fit is left out). An unknown command, a
//!   refused parameter or a request over 1023 bytes is answered `null`. Ten clients at a time.
//! - **Commands**: `/` lists them, `/help,<command>` explains one, `/info` repeats the
//!   greeting. The EAL answers DPDK's `/eal/params`, `/eal/app_params`, `/eal/heap_list`,
//!   `/eal/heap_info,<id>`, `/eal/memzone_list`, `/eal/memzone_info,<index>` with DPDK's
//!   field names, and dpmem's `/dpmem/lcores`, `/dpmem/lcore_info,<id>`,
//!   `/dpmem/memseg_lists`, `/dpmem/memseg_list_info,<index>`. Libraries and applications add
//!   theirs with [`register_command`]: dpmem-mempool its `/mempool/list` and
//!   `/mempool/info,<name>`, dpmem-ring `/ring/list` and `/ring/info,<name>`, dpmem-mbuf
//!   `/dpmem/mbuf_pools` and `/dpmem/mbuf_pool_info,<name>`.
//!
//! ```text
//! $ dpdk-telemetry.py -f myapp
//! --> /eal/heap_list
//! {"/eal/heap_list": [0]}
//! --> /eal/heap_info,0
//! {"/eal/heap_info": {"Heap_id": 0, "Name": "socket_0", "Heap_size": 67108864, ...}}
//! ```
//!
//! The server runs beside the data path and touches nothing of it: answers come from the same
//! calls as `dpmem info` (heap statistics, the memzone table, the lcore table), under the
//! locks those take.

mod answer;
mod builtin_commands;
mod command;
mod eal_commands;
mod error;
mod location;
mod registry;
mod server;
mod value;

use crate::lcore::LcoreThreads;
use crate::Eal;

pub use answer::{MAX_COMMAND_LEN, MAX_OUTPUT_LEN};
pub use command::CommandHandler;
pub use error::TelemetryError;
pub use location::{dpdk_runtime_dir, SOCKET_NAME};
pub use server::{MAX_CLIENTS, MAX_REQUEST_LEN};
pub use value::{check_name, TelemetryDict, TelemetryValue, MAX_NAME_LEN};

pub(crate) use server::TelemetryServer;

/// The table of commands, with the server's own and the EAL's entered first.
fn seeded() {
    registry::seed(|| {
        let mut builtins = builtin_commands::commands();
        builtins.extend(eal_commands::commands());
        builtins
    });
}

/// Registers `name` with its help text and handler, for the servers of every EAL in the
/// process, those running now and those started later.
///
/// The name follows DPDK's rules (a `/`, then letters, digits, `_` and `/`, shorter than 56
/// bytes), and the help text is shorter than 128 bytes; a name already registered, the
/// server's and the EAL's own included, is refused (`EEXIST`), with the registered command
/// left as it was.
///
/// Libraries register when they are first used in a process: dpmem-mempool when a pool is
/// first created, looked up or walked (or by its `register_telemetry`), dpmem-ring when a
/// named ring is first created or looked up (or by its `register_telemetry`), dpmem-mbuf when
/// a packet buffer pool is first created, looked up or described (or by its
/// `register_telemetry`).
///
/// ```no_run
/// use dpmem_eal::telemetry::{register_command, TelemetryDict, TelemetryError};
/// register_command("/app/stats", "Packets seen. No parameter.", |_eal, _param| {
///     let mut stats = TelemetryDict::new();
///     stats.insert("rx_packets", 42u64)?;
///     Ok(stats.into())
/// })?;
/// # Ok::<(), TelemetryError>(())
/// ```
pub fn register_command<F>(name: &str, help: &str, handler: F) -> Result<(), TelemetryError>
where
    F: Fn(&Eal, Option<&str>) -> Result<TelemetryValue, TelemetryError> + Send + Sync + 'static,
{
    seeded();
    registry::register_command(name, help, handler)
}

/// Every registered command, in byte order (what `/` answers).
pub fn commands() -> Vec<String> {
    seeded();
    registry::commands()
}

/// The help text of `name`, if it is registered (what `/help,<name>` answers).
pub fn help(name: &str) -> Option<String> {
    seeded();
    registry::help(name)
}

/// Starts the server of `eal` (the handle lent to handlers), for the EAL whose threads are
/// `threads` and file prefix `prefix`.
pub(crate) fn start_server(
    threads: &LcoreThreads,
    eal: Eal,
    prefix: &str,
) -> Result<TelemetryServer, TelemetryError> {
    seeded();
    TelemetryServer::start(threads, eal, prefix)
}
