//! The heap directory's lock, and putting the directory back in order after a process died
//! holding it.
//!
//! Creating an external heap writes the heap's slot (name, socket id, in use), then the
//! directory's entry, then the next socket id; destroying one clears the heap's slot, then the
//! entry. A process killed between those leaves an entry and a heap slot that disagree, or a
//! next socket id that an entry already has. The repair makes every entry and heap slot agree
//! again, finishing what can be finished and dropping what was being undone:
//!
//! - an external entry whose heap slot no longer holds that heap (a destruction half done): the
//!   entry is cleared;
//! - a heap slot in use with an external socket id and no entry (a creation half done, or an
//!   entry torn by the kill): the entry is written from the heap slot, finishing the creation;
//! - an entry of a kind that does not exist (torn): cleared, unless the heap slot says what it
//!   was (above);
//! - the next socket id is raised above every external heap's.
//!
//! Socket heaps' entries are written once, by the primary at start-up, and are left alone.

use super::directory::{HeapDirectory, HeapEntry, HeapKind, SharedHeapDirectory};
use super::recovery::lock_heap;
use super::state::MAX_HEAPS;
use crate::error::EalError;
use crate::memory::Memory;
use crate::socket::EXTERNAL_SOCKET_BASE;
use crate::sync::{Repair, SharedLockedGuard};

/// Locks the heap directory, putting it back in order first when a process died holding it.
/// Lock order: the directory, then a heap (the repair takes the heaps' locks).
#[inline]
pub(crate) fn lock_directory(
    memory: &Memory,
) -> Result<SharedLockedGuard<'_, HeapDirectory>, EalError> {
    let directory: &SharedHeapDirectory = &memory.shared().heap_directory;
    directory
        .lock(|dir, _| Repair {
            what: "the heap directory".to_owned(),
            outcome: repair(dir, memory),
        })
        .map_err(|died| EalError::owner_died("the heap directory", died))
}

fn repair(dir: &mut HeapDirectory, memory: &Memory) -> Result<String, String> {
    let mut done: Vec<String> = Vec::new();
    for slot in 0..MAX_HEAPS {
        let entry = dir.entries[slot];
        if entry.kind() == HeapKind::Socket {
            continue;
        }
        let shared = &memory.shared().heaps[slot];
        let st = lock_heap(memory, shared)
            .map_err(|e| format!("heap slot {slot} cannot be checked: {}", EalError::from(e)))?;
        let heap_external = st.in_use != 0 && st.socket_id >= EXTERNAL_SOCKET_BASE;
        let agrees = entry.kind() == HeapKind::External
            && heap_external
            && entry.socket_id == st.socket_id
            && entry.name == st.name;
        if agrees || (entry.kind == HeapKind::Unused as u32 && !heap_external) {
            continue;
        }
        if heap_external {
            dir.entries[slot] = HeapEntry {
                name: st.name,
                socket_id: st.socket_id,
                kind: HeapKind::External as u32,
            };
            done.push(format!(
                "entry {slot} written from its heap (a creation finished)"
            ));
        } else {
            dir.entries[slot] = HeapEntry::default();
            done.push(format!("entry {slot} cleared (its heap is gone)"));
        }
    }
    let above = dir
        .entries
        .iter()
        .filter(|e| e.kind() == HeapKind::External)
        .map(|e| e.socket_id.saturating_add(1))
        .max()
        .unwrap_or(EXTERNAL_SOCKET_BASE)
        .max(EXTERNAL_SOCKET_BASE);
    if dir.next_socket_id < above {
        dir.next_socket_id = above;
        done.push(format!("next external socket id raised to {above}"));
    }
    if done.is_empty() {
        Ok("every entry agrees with its heap".to_owned())
    } else {
        Ok(done.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heap::recovery::tests::dead_token;
    use crate::shared_name::encode_str;
    use crate::{Eal, ErrorKind, Socket};

    fn eal(tag: &str) -> Eal {
        let prefix = format!("{tag}{}_", std::process::id());
        Eal::init(["t", "--no-huge", "-m", "8", "--file-prefix", &prefix]).unwrap()
    }

    #[test]
    fn a_half_done_destruction_is_finished() {
        let eal = eal("dirdestroy");
        let heaps = eal.heaps();
        heaps.heap_create("a").unwrap();
        let b = heaps.heap_create("b").unwrap();
        let memory = eal.memory();
        let slot = lock_directory(memory)
            .unwrap()
            .find_name(&encode_str("a").unwrap())
            .unwrap();
        {
            // Stopped after the heap's slot was cleared, before its entry.
            let mut st = lock_heap(memory, &memory.shared().heaps[slot]).unwrap();
            st.name = [0; crate::heap::state::HEAP_NAME_LEN];
            st.socket_id = 0;
            st.in_use = 0;
        }
        memory
            .shared()
            .heap_directory
            .mutex()
            .hold_for(dead_token());
        assert_eq!(
            heaps.heap_get_socket("a").unwrap_err().kind(),
            ErrorKind::NoEnt
        );
        assert_eq!(heaps.heap_get_socket("b").unwrap(), b);
        heaps.heap_create("a").unwrap();
    }

    #[test]
    fn a_half_done_creation_is_finished_and_no_socket_id_comes_back() {
        let eal = eal("dircreate");
        let heaps = eal.heaps();
        let memory = eal.memory();
        let (slot, socket_id) = {
            let dir = lock_directory(memory).unwrap();
            (dir.free_slot().unwrap(), dir.next_socket_id)
        };
        {
            // Stopped after the heap's slot was set, before its entry and the next id.
            let mut st = lock_heap(memory, &memory.shared().heaps[slot]).unwrap();
            st.name = encode_str("c").unwrap();
            st.socket_id = socket_id;
            st.in_use = 1;
        }
        memory
            .shared()
            .heap_directory
            .mutex()
            .hold_for(dead_token());
        let c = heaps.heap_get_socket("c").unwrap();
        assert_eq!(c, Socket::from_recorded(socket_id));
        let d = heaps.heap_create("d").unwrap();
        assert_ne!(
            d, c,
            "the finished creation's socket id is not handed out again"
        );
        heaps.heap_destroy("c").unwrap();
    }
}
