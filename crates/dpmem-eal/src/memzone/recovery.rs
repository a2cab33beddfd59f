//! Putting the memzone table back in order after a process died holding its lock.
//!
//! An insertion or removal that a kill cut short is undone from the table's journal
//! ([`super::table`]): the table is as it was before that reservation or free began. The whole
//! table is then checked (names, chains, count, search hint); a table that fails is given up.
//! Last, every memzone's block must still be a block its heap has handed out: a memzone whose
//! block is not (which a free can leave only if it was stopped in a way the journal does not
//! explain) is dropped from the table, and named in the message.
//!
//! What a dead reservation leaves besides: the heap block it took before its slot was written
//! stays allocated (leaked), as a dead DPDK secondary's allocations do. A dead free leaves its
//! block allocated (the slot is removed before the block is freed), so at worst the memzone is
//! still there, or its block is leaked.

use super::table::MemzoneTable;
use crate::error::EalError;
use crate::heap::Heaps;
use crate::memory::Memory;
use crate::shared_name::decode_str;
use crate::sync::Repair;

/// Repairs the table (its slots at `mapping + slots_offset`) after its lock was taken over
/// from dead process `dead_pid`.
pub(super) fn recover_table(
    table: &mut MemzoneTable,
    mapping: usize,
    memory: &Memory,
    dead_pid: u32,
) -> Repair {
    Repair {
        what: "the memzone table".to_owned(),
        outcome: repair(table, mapping, memory)
            .map_err(|reason| format!("{reason} (after process {dead_pid} died changing it)")),
    }
}

fn repair(table: &mut MemzoneTable, mapping: usize, memory: &Memory) -> Result<String, String> {
    let mut done = vec![match table.undo(mapping) {
        Some(n) => format!("a half-done change to {n} slots undone"),
        None => "no change was under way".to_owned(),
    }];
    table.check(mapping)?;
    let heaps = Heaps::new(memory);
    let mut dropped = Vec::new();
    let mut unchecked = None;
    for idx in 0..table.capacity {
        let slot = table.read_slot(mapping, idx);
        if !slot.in_use() {
            continue;
        }
        // SAFETY: a memzone's block header is written only by the free of that memzone, which
        // needs the table lock this repair holds (or by nothing, for a slot naming a block that
        // is no longer the memzone's, the case looked for here).
        match unsafe { heaps.validate(slot.va as *const u8) } {
            Ok(_) => {}
            // The heap itself was given up: the slot still describes the memory right.
            Err(e @ EalError::OwnerDied { .. }) => {
                unchecked.get_or_insert(e.to_string());
            }
            Err(_) => {
                table.remove(mapping, idx);
                dropped.push(decode_str(&slot.name));
            }
        }
    }
    if !dropped.is_empty() {
        done.push(format!(
            "memzones {dropped:?} dropped (their blocks are no longer allocated)"
        ));
    }
    if let Some(e) = unchecked {
        done.push(format!("some blocks could not be checked ({e})"));
    }
    table.check(mapping)?;
    done.push(format!("{} memzones checked", table.count));
    Ok(done.join("; "))
}
