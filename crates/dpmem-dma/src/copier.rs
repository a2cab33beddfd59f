//! The software engine's hands: carries out one operation with the CPU, after checking that
//! both ends are dpmem memory ([`crate::address_map`]).
//!
//! A source or destination that does not lead into dpmem memory fails the operation with
//! `INVALID_SRC_ADDR` / `INVALID_DST_ADDR`, one that starts there and runs out of it with
//! `INVALID_LENGTH`, and nothing is written: both ends are checked whole before the first
//! byte moves. A range that is contiguous in IOVA but not in virtual memory (IOVA-as-PA
//! pages that happen to be adjacent) is copied piece by piece, as a device would do it.

use std::ptr::NonNull;

use dpmem_eal::Memory;

use crate::address_map::{AddressMap, Hint, IovaRange};
use crate::engine::Executor;
use crate::ring::descriptor::{Descriptor, OpKind};
use crate::status::Status;

/// The EAL's memory as the worker thread reaches it.
///
/// The worker is a control thread, which must be `'static`, while the EAL is borrowed: this
/// is the pointer it holds instead of the borrow. It is dereferenced only while an operation
/// is being carried out (to see whether the memory changed, and to rebuild the address map),
/// and an operation exists only through
/// the `unsafe` [`Vchan::copy`](crate::Vchan::copy) or [`Vchan::fill`](crate::Vchan::fill),
/// whose contract keeps the memory it names — and so the EAL that maps it — alive until the
/// operation is reported or the device stopped; the device joins the worker in `stop` and in
/// its drop, before its borrow of the EAL ends.
#[derive(Debug, Clone, Copy)]
struct MemoryRef(NonNull<Memory>);

// SAFETY: `Memory` is `Sync` (its lookups take the process-shared hotplug lock), and the
// pointer is dereferenced only as the type's notes say.
unsafe impl Send for MemoryRef {}

impl MemoryRef {
    /// # Safety
    /// The EAL that owns the memory is alive (see the type's notes).
    unsafe fn get(&self) -> &Memory {
        // SAFETY: alive, by the caller's contract.
        unsafe { self.0.as_ref() }
    }
}

/// The software copier: the worker's executor.
#[derive(Debug)]
pub(crate) struct SoftwareCopier {
    map: AddressMap,
    memory: MemoryRef,
    /// The memory's [`layout_generation`](Memory::layout_generation) read before `map` was
    /// built: while it has not moved, the map is current.
    built_at: u64,
    /// Where lookups of sources, and of destinations, start.
    src_hint: Hint,
    dst_hint: Hint,
}

impl SoftwareCopier {
    /// A copier over `memory` as it is now.
    pub(crate) fn new(memory: &Memory) -> SoftwareCopier {
        SoftwareCopier {
            built_at: memory.layout_generation(),
            map: AddressMap::build(memory),
            memory: MemoryRef(NonNull::from(memory)),
            src_hint: 0,
            dst_hint: 0,
        }
    }

    /// Builds the map again when the memory changed since it was built.
    #[inline]
    fn catch_up(&mut self) {
        // SAFETY: called while an operation is carried out (see `MemoryRef`).
        if unsafe { self.memory.get() }.layout_generation() != self.built_at {
            self.rebuild();
        }
    }

    #[cold]
    #[inline(never)]
    fn rebuild(&mut self) {
        // SAFETY: called while an operation is carried out (see `MemoryRef`).
        let memory = unsafe { self.memory.get() };
        // Read before the walk: a change during it moves the count again, and the next
        // operation rebuilds once more.
        self.built_at = memory.layout_generation();
        self.map = AddressMap::build(memory);
        self.src_hint = 0;
        self.dst_hint = 0;
    }

    /// Where `len` bytes at `iova` lead; on a miss the map is rebuilt once (memory may have
    /// been registered since), and the answer is final.
    fn resolve(&mut self, iova: u64, len: u64, dst: bool) -> IovaRange {
        let hint = if dst {
            &mut self.dst_hint
        } else {
            &mut self.src_hint
        };
        match self.map.resolve_iova(iova, len, hint) {
            IovaRange::Outside | IovaRange::PastEnd => {
                self.rebuild();
                let hint = if dst {
                    &mut self.dst_hint
                } else {
                    &mut self.src_hint
                };
                self.map.resolve_iova(iova, len, hint)
            }
            found => found,
        }
    }

    fn copy(&mut self, src: u64, dst: u64, len: u64) -> Status {
        let from = match self.resolve(src, len, false) {
            IovaRange::Outside => return Status::InvalidSrcAddr,
            IovaRange::PastEnd => return Status::InvalidLength,
            found => found,
        };
        let to = match self.resolve(dst, len, true) {
            IovaRange::Outside => return Status::InvalidDstAddr,
            IovaRange::PastEnd => return Status::InvalidLength,
            found => found,
        };
        if let (IovaRange::Contiguous(from), IovaRange::Contiguous(to)) = (from, to) {
            // SAFETY: both ranges are mapped dpmem memory (just resolved); the caller of
            // `Vchan::copy` owns them until the operation is reported. `copy` allows overlap.
            unsafe { core::ptr::copy(from as *const u8, to as *mut u8, len as usize) };
            return Status::Successful;
        }
        let (mut src_hint, mut dst_hint) = (self.src_hint, self.dst_hint);
        let mut done = 0;
        while done < len {
            // Both ranges resolved whole above, so every piece is found.
            let (Some((from, src_room)), Some((to, dst_room))) = (
                self.map.iova_piece(src + done, &mut src_hint),
                self.map.iova_piece(dst + done, &mut dst_hint),
            ) else {
                return Status::ErrorUnknown;
            };
            let n = (len - done).min(src_room as u64).min(dst_room as u64);
            // SAFETY: as above, for this piece of both ranges.
            unsafe { core::ptr::copy(from as *const u8, to as *mut u8, n as usize) };
            done += n;
        }
        Status::Successful
    }

    fn fill(&mut self, pattern: u64, dst: u64, len: u64) -> Status {
        let to = match self.resolve(dst, len, true) {
            IovaRange::Outside => return Status::InvalidDstAddr,
            IovaRange::PastEnd => return Status::InvalidLength,
            found => found,
        };
        if let IovaRange::Contiguous(to) = to {
            // SAFETY: mapped dpmem memory the caller of `Vchan::fill` owns (as in `copy`).
            unsafe { fill_bytes(to as *mut u8, len as usize, pattern, 0) };
            return Status::Successful;
        }
        let mut hint = self.dst_hint;
        let mut done = 0;
        while done < len {
            let Some((to, room)) = self.map.iova_piece(dst + done, &mut hint) else {
                return Status::ErrorUnknown;
            };
            let n = (len - done).min(room as u64);
            // SAFETY: as above, for this piece; the pattern goes on where the last one ended.
            unsafe { fill_bytes(to as *mut u8, n as usize, pattern, (done % 8) as usize) };
            done += n;
        }
        Status::Successful
    }
}

/// Writes `len` bytes at `to`: the bytes of `pattern` in memory order, starting with byte
/// `phase` of it (DPDK's fill puts byte `j % 8` of the pattern at offset `j`).
///
/// # Safety
/// `to..to + len` is writable memory nobody else accesses meanwhile.
unsafe fn fill_bytes(to: *mut u8, len: usize, pattern: u64, phase: usize) {
    let bytes = pattern.to_ne_bytes();
    let word = u64::from_ne_bytes(core::array::from_fn(|k| bytes[(k + phase) % 8]));
    let mut at = 0;
    while at + 8 <= len {
        // SAFETY: `at + 8 <= len`, inside the range (the caller's contract); unaligned is
        // fine for `write_unaligned`.
        unsafe { to.wrapping_add(at).cast::<u64>().write_unaligned(word) };
        at += 8;
    }
    let tail = word.to_ne_bytes();
    for (k, &b) in tail.iter().enumerate().take(len - at) {
        // SAFETY: `at + k < len`.
        unsafe { to.wrapping_add(at + k).write(b) };
    }
}

impl Executor for SoftwareCopier {
    #[inline]
    fn execute(&mut self, op: &Descriptor) -> Status {
        // Per operation: one submitted after the memory changed must not be carried out with
        // the old map (an IOVA the memory had before could lead to another address now).
        self.catch_up();
        let len = u64::from(op.len);
        match op.kind {
            OpKind::Copy => self.copy(op.src, op.dst, len),
            OpKind::Fill => self.fill(op.src, op.dst, len),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn fill_repeats_the_pattern_from_any_phase() {
        let pattern = 0x0807_0605_0403_0201u64.to_le();
        let mut buf = [0u8; 21];
        // SAFETY: the buffer is ours and 21 bytes long.
        unsafe { fill_bytes(buf.as_mut_ptr(), 19, pattern, 0) };
        let want: Vec<u8> = (0..19).map(|j| (j % 8) as u8 + 1).chain([0, 0]).collect();
        assert_eq!(buf.to_vec(), want);
        let mut buf = [0u8; 5];
        // SAFETY: as above.
        unsafe { fill_bytes(buf.as_mut_ptr(), 5, pattern, 6) };
        assert_eq!(buf, [7, 8, 1, 2, 3]);
    }
}
