//! Where memory lives or is asked for: any socket, one NUMA node, or a named heap of memory the
//! user brought (DPDK's `int socket_id`, with `SOCKET_ID_ANY` and external heaps' ids from 256).
//!
//! Shared memory keeps DPDK's integer ([`Socket::to_raw`]), so a secondary built from the same
//! layout reads the same number; everything public speaks [`Socket`].

use std::fmt;

/// DPDK's `SOCKET_ID_ANY`, as shared memory records it.
pub const SOCKET_ID_ANY: i32 = -1;

/// The first socket id of external heaps (DPDK's `RTE_MAX_NUMA_NODES`): no real NUMA node has
/// an id this high, so a socket id alone says which kind of heap it names.
pub const EXTERNAL_SOCKET_BASE: i32 = 256;

/// A place memory comes from.
///
/// ```
/// use dpmem_eal::Socket;
/// assert_eq!(Socket::from_raw(-1), Some(Socket::Any));
/// assert_eq!(Socket::from_raw(1), Some(Socket::Node(1)));
/// assert_eq!(Socket::Node(1).to_raw(), 1);
/// assert_eq!(Socket::from_raw(257).unwrap().to_string(), "external heap 1 (socket id 257)");
/// assert_eq!(Socket::from_raw(-2), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Socket {
    /// Any socket: the calling thread's first, then the others (never an external heap).
    #[default]
    Any,
    /// A NUMA node, by its id.
    Node(u32),
    /// A named heap of user memory, by its index: socket id `256 + index` in DPDK's numbering
    /// (the value [`Heaps::heap_create`](crate::Heaps::heap_create) returns).
    External(u32),
}

impl Socket {
    /// The socket DPDK's integer names; `None` for negative ids other than `SOCKET_ID_ANY`.
    pub const fn from_raw(id: i32) -> Option<Socket> {
        if id == SOCKET_ID_ANY {
            Some(Socket::Any)
        } else if id < 0 {
            None
        } else if id >= EXTERNAL_SOCKET_BASE {
            Some(Socket::External((id - EXTERNAL_SOCKET_BASE) as u32))
        } else {
            Some(Socket::Node(id as u32))
        }
    }

    /// DPDK's integer for this socket (`-1` for any, `256 + index` for external heaps).
    /// Node ids past 255 and external indices past `i32::MAX - 256` do not exist; they saturate
    /// (the heaps and memzones refuse them before they get this far).
    pub const fn to_raw(self) -> i32 {
        match self {
            Socket::Any => SOCKET_ID_ANY,
            Socket::Node(n) if n < EXTERNAL_SOCKET_BASE as u32 => n as i32,
            Socket::Node(_) => i32::MAX,
            Socket::External(i) if i <= (i32::MAX - EXTERNAL_SOCKET_BASE) as u32 => {
                EXTERNAL_SOCKET_BASE + i as i32
            }
            Socket::External(_) => i32::MAX,
        }
    }

    /// [`Socket::to_raw`] for the sockets DPDK's integer can name; `None` for node ids past 255
    /// and external indices past `i32::MAX - 256`, which no heap can have.
    pub(crate) const fn to_raw_checked(self) -> Option<i32> {
        match self {
            Socket::Node(n) if n >= EXTERNAL_SOCKET_BASE as u32 => None,
            Socket::External(i) if i > (i32::MAX - EXTERNAL_SOCKET_BASE) as u32 => None,
            _ => Some(self.to_raw()),
        }
    }

    /// The NUMA node, for [`Socket::Node`].
    pub const fn node(self) -> Option<u32> {
        match self {
            Socket::Node(n) => Some(n),
            _ => None,
        }
    }

    pub const fn is_external(self) -> bool {
        matches!(self, Socket::External(_))
    }

    /// The socket shared memory recorded: known to be `Any`, a node or an external heap, since
    /// only [`Socket::to_raw`] writes it; an id nothing writes reads as `Any`.
    pub(crate) const fn from_recorded(id: i32) -> Socket {
        match Socket::from_raw(id) {
            Some(s) => s,
            None => Socket::Any,
        }
    }
}

impl From<u32> for Socket {
    /// A NUMA node.
    fn from(node: u32) -> Socket {
        Socket::Node(node)
    }
}

impl fmt::Display for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Socket::Any => f.write_str("any socket"),
            Socket::Node(n) => write!(f, "socket {n}"),
            Socket::External(i) => write!(f, "external heap {i} (socket id {})", self.to_raw()),
        }
    }
}

/// As DPDK's integer, so JSON output reads as DPDK's tools print it.
#[cfg(feature = "serde")]
impl serde::Serialize for Socket {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(self.to_raw())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_ids_round_trip() {
        for id in [-1, 0, 1, 7, 255, 256, 257, 4096, i32::MAX] {
            let socket = Socket::from_raw(id).unwrap();
            assert_eq!(socket.to_raw(), id, "{socket}");
        }
        assert_eq!(Socket::from_raw(i32::MIN), None);
        assert_eq!(Socket::Node(300).to_raw(), i32::MAX);
    }
}
