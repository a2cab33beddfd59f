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

#[cfg(test)]
mod tests {
    use crate::heap::recovery::tests::{crashed_at, dead_token, Rng};
    use crate::{lock_recovery, Eal, MemzoneFlags, Socket};

    /// Reservations and frees of memzones, each stopped at a random write now and then (of the
    /// table, its journal, or the heap under it) as if its process had died there: the next
    /// locker of the table and of the heap repairs both, every memzone is found by its name
    /// with its block still allocated, and nothing is given up.
    #[test]
    fn a_memzone_table_stopped_at_any_write_is_repaired_by_the_next_locker() {
        let prefix = format!("mzcrash{}_", std::process::id());
        let eal = Eal::init(["t", "--no-huge", "-m", "32", "--file-prefix", &prefix]).unwrap();
        let (memzones, heaps) = (eal.memzones(), eal.heaps());
        let dead = dead_token();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut names: Vec<String> = Vec::new();
        let before = lock_recovery::stats();
        let (mut crashes, mut serial) = (0u64, 0u64);
        while crashes < 150 {
            let arm = if rng.below(2) == 0 {
                1 + rng.below(10) as u32
            } else {
                0
            };
            let free = !names.is_empty() && (names.len() > 30 || rng.below(2) == 0);
            // The memzone of an operation that crashed: there or not, known after the repair.
            let mut limbo = None;
            let crashed = if free {
                let name = names.swap_remove(rng.below(names.len() as u64) as usize);
                let zone = memzones.lookup(&name).expect("a live memzone is found");
                // SAFETY: nothing uses the memzone's memory.
                let crashed = crashed_at(arm, || unsafe { memzones.free(&zone) }.unwrap());
                limbo = Some(name);
                crashed
            } else {
                serial += 1;
                let name = format!("mz{serial}");
                let len = [64usize, 4000, 70_000][rng.below(3) as usize];
                let crashed = crashed_at(arm, || {
                    memzones
                        .reserve(&name, len, Socket::Any, MemzoneFlags::empty())
                        .map(drop)
                        .unwrap()
                });
                if crashed {
                    limbo = Some(name);
                } else {
                    names.push(name);
                }
                crashed
            };
            if !crashed {
                continue;
            }
            crashes += 1;
            eal.memory().shared().memzones.mutex().hold_for(dead);
            eal.memory().shared().heaps[0].mutex().hold_for(dead);
            let listed = memzones.list();
            if let Some(name) = limbo.filter(|n| listed.iter().any(|mz| &mz.name == n)) {
                names.push(name);
            }
            assert_eq!(listed.len(), names.len(), "after crash {crashes}");
            for name in &names {
                let zone = memzones.lookup(name).expect("found by its name");
                // SAFETY: the zone's block header is written by no one during the call.
                let usable = unsafe { heaps.validate(zone.as_ptr()) }
                    .unwrap_or_else(|e| panic!("after crash {crashes}: {name}: {e}"));
                assert!(usable >= zone.len);
            }
            heaps.check().unwrap();
        }
        let after = lock_recovery::stats();
        assert!(after.taken_over - before.taken_over >= crashes);
        assert_eq!(after.retired, before.retired, "nothing was given up");
    }
}
