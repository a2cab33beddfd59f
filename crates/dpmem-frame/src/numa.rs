//! [`NumaPlacement`]: which socket a session asked for its memory on, and how many of its
//! allocations had to come from another one — kept visible because, as MTL notes, a session
//! whose frames sit on another socket than its port's works silently at about half the
//! throughput.
//!
//! A session asks on its port's socket when the port knows one (the socket of the lcore
//! that opened it), else on the socket its builder names. When that socket has no memory —
//! no memory at all there (a node the EAL has no memseg list for, as every node but the
//! first of a `--no-huge` EAL), or none left — the allocation falls back to any socket, as
//! MTL's do, unless the builder forbids it; each fallback is counted, and where it landed
//! is read back from the memory itself (the memzone's or the memory segment's socket).

use dpmem_eal::{Eal, ErrorKind, Socket};
use dpmem_mbuf::PktmbufPool;

use crate::error::FrameError;

/// A port that knows the socket it runs on: the socket of the lcore (or thread) that opened
/// it, [`Socket::Any`] when that thread is not tied to one node. Sessions built for the port
/// (`port` on their builders) take their memory from there.
pub trait PortSocket {
    fn socket(&self) -> Socket;
}

/// Where a session's memory was asked for and where it landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumaPlacement {
    /// The socket asked for: the port's when it knows one, else the builder's.
    pub asked: Socket,
    /// Allocations the session made (frame buffers and pools).
    pub allocations: u32,
    /// Of those, the ones placed on another socket because `asked` had no memory for them.
    pub fallbacks: u32,
    /// Where the first fallback landed.
    pub fell_back_to: Option<Socket>,
}

impl NumaPlacement {
    /// Whether any of the session's memory is on another socket than the one asked for.
    pub fn fell_back(&self) -> bool {
        self.fallbacks > 0
    }
}

/// Makes a session's allocations on its socket, falling back (or refusing to) as the module
/// notes say, and keeps the count.
#[derive(Debug)]
pub(crate) struct Placer<'e> {
    eal: &'e Eal,
    allow_fallback: bool,
    placement: NumaPlacement,
}

/// Whether `e` says the memory asked for is not there.
fn out_of_memory(e: &FrameError) -> bool {
    match e {
        FrameError::Eal(e) => e.kind() == ErrorKind::NoMem,
        FrameError::Mbuf(e) => e.kind() == ErrorKind::NoMem,
        _ => false,
    }
}

impl<'e> Placer<'e> {
    /// Placement on `port` when the port knows its socket, else on `builder`.
    pub(crate) fn new(eal: &'e Eal, port: Socket, builder: Socket, allow_fallback: bool) -> Self {
        let asked = if port == Socket::Any { builder } else { port };
        Placer {
            eal,
            allow_fallback,
            placement: NumaPlacement {
                asked,
                allocations: 0,
                fallbacks: 0,
                fell_back_to: None,
            },
        }
    }

    pub(crate) fn placement(&self) -> NumaPlacement {
        self.placement
    }

    /// Makes `what` with `alloc` on the session's socket, or on any socket when that one has
    /// no memory for it and fallback is allowed. `landed` says where a made thing is;
    /// `release` undoes one that must not be kept (it landed elsewhere and fallback is
    /// forbidden).
    pub(crate) fn place<T>(
        &mut self,
        what: &str,
        mut alloc: impl FnMut(Socket) -> Result<T, FrameError>,
        landed: impl Fn(&T) -> Socket,
        release: impl FnOnce(T),
    ) -> Result<T, FrameError> {
        let asked = self.placement.asked;
        // Only a NUMA node can be missing: any socket is any, and an external heap is the
        // application's own choice of memory.
        if asked.node().is_none() {
            let made = alloc(asked)?;
            self.placement.allocations += 1;
            return Ok(made);
        }
        if self.eal.memory().sockets().contains(&asked) {
            match alloc(asked) {
                Ok(made) => {
                    let on = landed(&made);
                    if on == asked {
                        self.placement.allocations += 1;
                        return Ok(made);
                    }
                    // The EAL placed it elsewhere without failing (a `--no-huge` EAL takes
                    // any node's request from its one list).
                    if !self.allow_fallback {
                        release(made);
                        return Err(self.refused(what));
                    }
                    self.count_fallback(on);
                    return Ok(made);
                }
                Err(e) if out_of_memory(&e) => {}
                Err(e) => return Err(e),
            }
        }
        if !self.allow_fallback {
            return Err(self.refused(what));
        }
        let made = alloc(Socket::Any)?;
        self.count_fallback(landed(&made));
        Ok(made)
    }

    fn refused(&self, what: &str) -> FrameError {
        FrameError::NoMemoryOnSocket {
            socket: self.placement.asked,
            what: what.to_owned(),
        }
    }

    fn count_fallback(&mut self, on: Socket) {
        let p = &mut self.placement;
        p.allocations += 1;
        p.fallbacks += 1;
        p.fell_back_to.get_or_insert(on);
    }
}

/// The socket a pool's buffers landed on: that of the memory segment under its first chunk
/// of objects, else its header's memzone.
pub(crate) fn pool_socket(eal: &Eal, pool: &PktmbufPool<'_>) -> Socket {
    let mut first = None;
    pool.mempool().mem_iter(|_, chunk| {
        first.get_or_insert(chunk.addr);
    });
    first
        .and_then(|addr| eal.memory().virt_to_memseg(addr))
        .map_or(pool.mempool().memzone().socket, |seg| seg.socket())
}
