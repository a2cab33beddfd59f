//! Pages mapped and unmapped in every process at once (DPDK's synchronous hotplug round).
//!
//! Only the primary changes the memseg lists. When it maps pages — for its own heap, a
//! memzone, a pool, or on a secondary's request — it then asks every live secondary to catch
//! up at once (each runs [`Memory::sync_with_primary`] on its channel's control thread and
//! answers), and the call returns only when all have: a pointer to the new memory may be
//! handed to any process (through a ring, in a memzone) the moment the call returns. When one
//! secondary cannot map them, the primary unmaps them again, asks every secondary to catch up
//! once more (which unmaps what they had mapped), and the call fails with the reason. Pages
//! given back go the same way, but a secondary that cannot follow does not undo the free: it
//! is behind, and catches up at its next heap or memzone call.
//!
//! A secondary's growth asks the primary ([`HotplugPeers::ask_primary_to_map`]): the
//! primary maps, runs the round (the requester takes part like every other secondary, on its
//! control thread, while the asking thread waits), and answers with the pages or its error.
//! Shrinking asks the primary to unmap in the same way.
//!
//! Why the round rather than something cheaper for the data path: the data path does not pay
//! for it. A pointer handed over is to memory some call mapped; the round makes that call a
//! little slower (one request and reply per secondary, a few tens of microseconds, beside the
//! milliseconds of zeroing a hugepage) and leaves the reader with nothing to do. The other
//! way — a fault handler in every secondary that maps a missing page on first touch — would
//! take over `SIGSEGV` from the application and makes a stray pointer's crash look like a
//! page fault to serve.
//!
//! Who does not take part: a secondary that has no action for the round (it is still starting;
//! it catches up as the last step of its start, after which every round reaches it) and one
//! that died. A round cannot run from the primary's channel thread (its replies come to that
//! thread): a page mapped from within one of the application's channel actions reaches the
//! secondaries at their next catch-up, as before this round existed.

use super::{Memory, MemoryMode, PageRequest, PageRun, ProcessRole};
use crate::error::{EalError, ErrorKind};

/// How this process reaches the others for hotplug: the EAL's channel, plugged in once it runs
/// (the memory comes up first, so it cannot hold the channel itself).
pub(crate) trait HotplugPeers: Send + Sync {
    /// For the primary: asks every live secondary to catch up with the lists now. `Err` names
    /// the processes that could not, with their reasons.
    fn sync_secondaries(&self) -> Result<(), String>;

    /// For a secondary: asks the primary to map pages (it runs the round before answering).
    fn ask_primary_to_map(&self, req: PageRequest) -> Result<PageRun, EalError>;

    /// For a secondary: asks the primary to unmap `[va, va+len)` (and run the round).
    fn ask_primary_to_unmap(&self, va: usize, len: usize) -> Result<(), EalError>;
}

impl Memory {
    /// Plugs in the channel to the other processes; once only (later calls are ignored).
    pub(crate) fn set_hotplug_peers(&self, peers: Box<dyn HotplugPeers>) {
        let _ = self.peers.set(peers);
    }

    /// Maps `req.count` pages in every process (see the module documentation) and returns
    /// where they are: in the primary directly, in a secondary through the primary. The
    /// `Alloc` event fires in every process that maps them.
    pub(crate) fn map_pages(&self, req: PageRequest) -> Result<PageRun, EalError> {
        if self.settings.role == ProcessRole::Secondary {
            let peers = self.secondary_hotplug("map")?;
            let run = peers.ask_primary_to_map(req)?;
            // The round mapped them here already (this process answered it); a catch-up that
            // finds more to do maps it now, and one that fails gives the pages back.
            if let Err(e) = self.sync_with_primary() {
                let _ = peers.ask_primary_to_unmap(run.va, run.len);
                return Err(e);
            }
            return Ok(run);
        }
        let run = self.map_pages_here(req)?;
        let Err(failed) = self.sync_secondaries() else {
            return Ok(run);
        };
        let undone = self.unmap_pages_here(run.va, run.len, true);
        let left = self.sync_secondaries().err();
        // The outcome first: a reason crossing the channel may be cut short at its end.
        let outcome = match (undone, left) {
            (Ok(()), None) => "unmapped again everywhere".to_owned(),
            (Ok(()), Some(left)) => {
                format!("unmapped again here, and in the others at their next catch-up ({left})")
            }
            (Err(e), _) => format!("and could not be unmapped again: {e}"),
        };
        let reason = format!(
            "{} pages at {:#x} could not be mapped in every process, {outcome}: {failed}",
            run.n_pages, run.va
        );
        Err(EalError::Hotplug {
            kind: ErrorKind::NoMem,
            reason,
        })
    }

    /// Unmaps `[va, va+len)` in every process (see [`Memory::unmap_pages_here`] for what the
    /// range must be): in the primary directly, in a secondary through the primary. The `Free`
    /// event fires in every process, each before its own unmapping.
    pub(crate) fn unmap_pages(&self, va: usize, len: usize) -> Result<(), EalError> {
        if self.settings.role == ProcessRole::Secondary {
            self.secondary_hotplug("unmap")?
                .ask_primary_to_unmap(va, len)?;
            // Done here by the round already; a catch-up that finds more does it now.
            return self.sync_with_primary();
        }
        self.unmap_pages_here(va, len, false)?;
        if let Err(behind) = self.sync_secondaries() {
            // The pages are gone from the lists; a secondary that could not let go of them
            // yet does so at its next catch-up.
            eprintln!(
                "dpmem: pages at {va:#x}+{len:#x} were given back, but not yet by every process: {behind}"
            );
        }
        Ok(())
    }

    /// The primary's round with every live secondary (nothing before the channel runs).
    fn sync_secondaries(&self) -> Result<(), String> {
        self.peers.get().map_or(Ok(()), |p| p.sync_secondaries())
    }

    /// A secondary's way to the primary, or why it has none.
    fn secondary_hotplug(&self, what: &str) -> Result<&dyn HotplugPeers, EalError> {
        if self.settings.mode != MemoryMode::Dynamic {
            return Err(EalError::Unsupported(format!(
                "a secondary cannot {what} pages in {:?} mode: all memory was mapped at start-up",
                self.settings.mode
            )));
        }
        self.peers.get().map(|p| &**p).ok_or_else(|| {
            EalError::Unsupported(format!(
                "this secondary cannot {what} pages: its channel to the primary is not running"
            ))
        })
    }

    /// Whether a secondary reaches the primary for hotplug (dynamic mode, channel running).
    pub(super) fn secondary_can_change_pages(&self) -> bool {
        self.settings.mode == MemoryMode::Dynamic && self.peers.get().is_some()
    }
}
