//! What the memory hotplug lock protects, checked after a process died holding it: the
//! configuration's list table (see [`crate::shared_config`]'s `HotplugLock`).
//!
//! Internal lists change only in the primary, and publish each page in order — its segment
//! record first, then its occupancy bit; the bit cleared before the page goes — so a primary
//! killed while mapping or unmapping leaves every list consistent (at worst a page mapped and
//! never published, which the next primary's start removes with the dead one's files).
//!
//! External lists are created, changed and destroyed by any process: a registration writes the
//! occupancy array and segment records in the arena, then publishes the header; an arena
//! compaction slides other lists' arrays down and rewrites their offsets; attaching and
//! detaching rewrite the set of processes using a list. A process killed in the middle can leave
//! a header half written or pointing at arrays that were half moved. So each external slot whose
//! header says it is in use is checked — geometry, arena offsets, occupancy length, every segment
//! record at its place — and one that fails is dropped (its memory is the user's, and lookups of
//! addresses in it fail from then on rather than read a torn description). The dead process's
//! own entries among the lists' users are given back. The lock is never given up: afterwards the
//! table is consistent whatever the dead process was doing.

use crate::memseg::Memseg;
use crate::memseg_list::{ListSlot, MemsegListHeader};

/// The part of the configuration the repair needs: where it is mapped, which slots are
/// external, where the arena lies, and the arena bytes a list of `n` segments takes
/// (occupancy array, segment array).
#[derive(Clone, Copy)]
pub(crate) struct ListTable<'a> {
    pub slots: &'a [ListSlot],
    pub first_external: usize,
    pub mapping: usize,
    pub arena: (u64, u64),
    pub list_bytes: fn(u32) -> (u64, u64),
}

/// Checks every external list of `table` after process `dead_pid` died holding the hotplug
/// lock, dropping torn ones and the dead process's attachments. Returns what it did.
pub(crate) fn repair_after(table: ListTable<'_>, dead_pid: u32) -> String {
    let mut dropped = Vec::new();
    let mut detached = Vec::new();
    for slot in table.first_external..table.slots.len() {
        let mut h = table.slots[slot].read();
        if !h.is_external() {
            continue;
        }
        if let Err(reason) = check_external(&table, slot, &h) {
            table.slots[slot].write(MemsegListHeader::default());
            dropped.push(format!("list {slot} ({reason})"));
            continue;
        }
        if h.attached_pids.contains(&dead_pid) {
            for pid in h.attached_pids.iter_mut().filter(|p| **p == dead_pid) {
                *pid = 0;
            }
            table.slots[slot].write(h);
            detached.push(slot);
        }
    }
    let mut report = vec!["internal lists are published in order and need nothing".to_owned()];
    report.push(if dropped.is_empty() {
        "every external list checked whole".to_owned()
    } else {
        format!("torn external lists dropped: {}", dropped.join(", "))
    });
    if !detached.is_empty() {
        report.push(format!(
            "the dead process's attachments to lists {detached:?} given back"
        ));
    }
    report.join("; ")
}

/// Whether external list `h` in `slot` is whole: a geometry a list can have, arrays inside the
/// arena where its size puts them, an occupancy array of its length, and each segment record
/// describing its own page.
fn check_external(table: &ListTable<'_>, slot: usize, h: &MemsegListHeader) -> Result<(), String> {
    let page = h.page_size;
    if !page.is_power_of_two() || page < 64 || h.n_segs == 0 || h.index as usize != slot {
        return Err("no list has that geometry".into());
    }
    if u64::from(h.n_segs).checked_mul(page) != Some(h.len) || !h.base_va.is_multiple_of(page) {
        return Err("its length disagrees with its pages".into());
    }
    let (fb_bytes, segs_bytes) = (table.list_bytes)(h.n_segs);
    let (arena_start, arena_len) = table.arena;
    let arena_end = arena_start + arena_len;
    let in_arena = h.fbarray_offset >= arena_start
        && h.fbarray_offset.is_multiple_of(64)
        && h.segs_offset == h.fbarray_offset + fb_bytes
        && h.segs_offset
            .checked_add(segs_bytes)
            .is_some_and(|end| end <= arena_end);
    if !in_arena {
        return Err("its arrays lie outside the arena".into());
    }
    // SAFETY: the occupancy array's first word lies in the arena (checked just above), which is
    // mapped for the configuration's life, 64-byte aligned; the hotplug lock is held.
    let fb_len = unsafe { ((table.mapping + h.fbarray_offset as usize) as *const u32).read() };
    if fb_len != h.n_segs {
        return Err("its occupancy array is of another length".into());
    }
    let segs = (table.mapping + h.segs_offset as usize) as *const Memseg;
    for i in 0..h.n_segs {
        // SAFETY: i < n_segs, and the array of n_segs records lies in the arena (checked above).
        let seg = unsafe { segs.wrapping_add(i as usize).read() };
        if seg.va != h.base_va + u64::from(i) * page || seg.len != page {
            return Err(format!("its segment {i} describes another page"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::heap::recovery::tests::dead_token;
    use crate::{lock_recovery, Eal};

    /// An EAL with an external heap over 64 KiB of memory this test maps; returns the memory's
    /// address (the mapping stays for the process's life: the test ends first).
    fn eal_with_external_memory(tag: &str) -> (Eal, usize) {
        let prefix = format!("{tag}{}_", std::process::id());
        let eal = Eal::init(["t", "--no-huge", "-m", "8", "--file-prefix", &prefix]).unwrap();
        let len = 64 << 10;
        let addr = dpmem_sys::mapping::reserve(len, 4096, None).unwrap();
        // SAFETY: the reservation made just above holds nothing yet.
        unsafe { dpmem_sys::mapping::map_anonymous_fixed(addr, len, None, false) }.unwrap();
        eal.heaps().heap_create("user").unwrap();
        // SAFETY: the memory is mapped read-write, used by nothing else, and never unmapped.
        unsafe {
            eal.heaps()
                .heap_memory_add("user", addr as *mut u8, len, None, 4096)
        }
        .unwrap();
        (eal, addr)
    }

    fn external_slot(eal: &Eal) -> usize {
        let header = eal.memory().shared();
        (header.n_lists as usize..header.lists.len())
            .find(|&slot| header.lists[slot].read().is_external())
            .expect("the external heap's list")
    }

    #[test]
    fn a_whole_list_stays_and_the_dead_process_attachment_goes() {
        let (eal, addr) = eal_with_external_memory("listwhole");
        let header = eal.memory().shared();
        let slot = external_slot(&eal);
        let dead = dead_token();
        {
            let _lock = header.hotplug_lock.lock();
            let mut h = header.lists[slot].read();
            h.attached_pids[1] = dead.pid();
            header.lists[slot].write(h);
        }
        header.hotplug_lock.mutex().hold_for(dead);
        let before = lock_recovery::stats();
        assert!(eal.memory().virt_to_memseg(addr).is_some());
        // Other tests of this process take locks over too: at least this one counted.
        assert!(lock_recovery::stats().taken_over > before.taken_over);
        let h = header.lists[slot].read();
        assert!(h.is_external());
        assert!(!h.attached_pids.contains(&dead.pid()), "given back");
        eal.heaps().check().unwrap();
    }

    #[test]
    fn a_torn_list_is_dropped_and_its_addresses_no_longer_resolve() {
        let (eal, addr) = eal_with_external_memory("listtorn");
        let header = eal.memory().shared();
        let slot = external_slot(&eal);
        {
            // A registration stopped halfway through writing the header: its length written,
            // its segment count not.
            let _lock = header.hotplug_lock.lock();
            let mut h = header.lists[slot].read();
            h.n_segs += 1;
            header.lists[slot].write(h);
        }
        header.hotplug_lock.mutex().hold_for(dead_token());
        assert!(eal.memory().virt_to_memseg(addr).is_none());
        assert!(!header.lists[slot].read().is_external(), "dropped");
        // Everything else goes on: the lock is in ordinary use again.
        assert!(!eal.memory().lists().is_empty());
    }
}
