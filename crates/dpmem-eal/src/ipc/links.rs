//! The way out of one process's channel: a datagram socket connected once per peer and kept
//! ([`DatagramLink`]), and, for the primary, the list of its secondaries, read again only when
//! the runtime directory's entries changed ([`DirWatch`]).
//!
//! Without them every datagram named its peer through `/proc/self/fd/<dir>/<name>` (a path
//! walk through procfs) and every send of the primary listed the directory: most of a one-way
//! message's cost. Both still reach the directory only through its checked descriptor. A link
//! whose peer died says so on the next send; it is dropped then, and the name connected anew
//! once, in case a new process is bound to it (a primary started again); a peer still gone is
//! skipped as before. A secondary that appears or goes shows in the directory within its
//! `bind` or `unlink`, so the primary's next send after those calls returned sees it.

use std::collections::HashMap;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex, MutexGuard};

use dpmem_sys::datagram::{DatagramLink, DatagramSocket, Delivery};
use dpmem_sys::dir_handle::DirHandle;
use dpmem_sys::dir_watch::DirWatch;
use dpmem_sys::error::Errno;
use dpmem_sys::SysResult;

use super::error::IpcError;
use super::peers;
use crate::memory::ProcessRole;

/// The links of one channel, and the primary's list of secondaries.
#[derive(Debug)]
pub(crate) struct PeerLinks {
    state: Mutex<LinksState>,
}

#[derive(Debug, Default)]
struct LinksState {
    /// A connected socket per peer sent to; shared out so that sending holds no lock.
    links: HashMap<String, Arc<DatagramLink>>,
    /// The primary's secondaries as last listed; `None` when they must be listed again.
    listed: Option<Vec<String>>,
    /// Tells when the listing may be stale; `None` (no inotify left for this user) lists on
    /// every call, as before.
    watch: Option<DirWatch>,
}

impl PeerLinks {
    /// The links of a channel in `dir` of a process of `role`. A secondary connects to the
    /// primary at once, its only peer: the descriptor is taken while the process starts, not
    /// at its first message, which may come when it has none to spare (a hotplug round's
    /// answer that it could not map a page for want of descriptors).
    pub(crate) fn new(dir: &DirHandle, role: ProcessRole) -> PeerLinks {
        let mut state = LinksState::default();
        match role {
            ProcessRole::Primary => state.watch = DirWatch::new(dir).ok(),
            ProcessRole::Secondary => {
                if let Ok(Some(link)) = DatagramLink::connect_in(dir, peers::PRIMARY_SOCKET) {
                    state
                        .links
                        .insert(peers::PRIMARY_SOCKET.to_owned(), Arc::new(link));
                }
            }
        }
        PeerLinks {
            state: Mutex::new(state),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LinksState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The primary's peers, every secondary socket in `dir` but `own`, listed again only when
    /// the directory's entries changed since the last listing.
    pub(crate) fn secondaries(&self, dir: &DirHandle, own: &str) -> Result<Vec<String>, IpcError> {
        let mut state = self.lock();
        let stale = match &state.watch {
            Some(watch) => watch.changed(),
            None => true,
        };
        if stale || state.listed.is_none() {
            state.listed = None;
            let names = peers::peers_of(dir, ProcessRole::Primary, own)?;
            // Links to sockets no longer there (secondaries that ended) go with them.
            state.links.retain(|name, _| names.contains(name));
            state.listed = Some(names);
        }
        Ok(state.listed.clone().unwrap_or_default())
    }

    /// Sends `bytes` and `fds` to `peer` in `dir` on its link, connecting one when there is
    /// none; a link whose peer went is dropped and the name connected anew once. When no link
    /// can be made (the process is out of descriptors), the datagram goes from `own`, the
    /// channel's bound socket, addressed through the directory as before links: a process at
    /// its descriptor limit still answers (a hotplug round's refusal, say).
    pub(crate) fn send(
        &self,
        dir: &DirHandle,
        own: &DatagramSocket,
        peer: &str,
        bytes: &[u8],
        fds: &[BorrowedFd<'_>],
    ) -> SysResult<Delivery> {
        let kept = self.lock().links.get(peer).cloned();
        if let Some(link) = kept {
            match link.send(bytes, fds)? {
                Delivery::Sent => return Ok(Delivery::Sent),
                Delivery::PeerGone => self.forget(peer),
            }
        }
        let link = match DatagramLink::connect_in(dir, peer) {
            Ok(Some(link)) => link,
            Ok(None) => return Ok(Delivery::PeerGone),
            Err(e) if matches!(e.errno, Errno::MFILE | Errno::NFILE | Errno::NOBUFS) => {
                return own.send_to(dir, peer, bytes, fds)
            }
            Err(e) => return Err(e),
        };
        let link = Arc::new(link);
        let delivery = link.send(bytes, fds)?;
        if delivery == Delivery::Sent {
            self.lock().links.insert(peer.to_owned(), link);
        }
        Ok(delivery)
    }

    /// Drops the link to `peer`, found gone.
    pub(crate) fn forget(&self, peer: &str) {
        self.lock().links.remove(peer);
    }
}
