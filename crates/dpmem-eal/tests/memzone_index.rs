//! The memzone table's name index (hash chains kept in the shared slots): random reserves,
//! frees and lookups against a model, on a table small enough that chains collide and slots
//! are reused many times, and lowest-free slot reuse (secondaries reading the same index: see
//! memzone_secondary.rs).

mod common;

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use common::*;
use dpmem_eal::{Eal, EalOptions, EalSettings, ErrorKind, Iova, Memzone, MemzoneFlags, Socket};
use proptest::prelude::*;

const CAPACITY: u32 = 16;

fn small_table() -> Eal {
    let (options, _) = EalOptions::parse(args(&[
        "--no-huge",
        "-m",
        "16",
        "--file-prefix",
        &unique_prefix("mzindex"),
    ]))
    .unwrap();
    Eal::init_with(
        options,
        EalSettings {
            max_memzones: CAPACITY,
            ..EalSettings::default()
        },
    )
    .unwrap()
}

#[derive(Debug, Clone)]
enum Op {
    Reserve(u8),
    Free(u8),
    Lookup(u8),
}

fn op() -> impl Strategy<Value = Op> {
    // 40 names over 16 slots: full tables, duplicates and misses all happen.
    prop_oneof![
        (0u8..40).prop_map(Op::Reserve),
        (0u8..40).prop_map(Op::Free),
        (0u8..40).prop_map(Op::Lookup),
    ]
}

fn name(n: u8) -> String {
    // Names of several lengths, some sharing long prefixes.
    match n % 3 {
        0 => format!("mz{n}"),
        1 => format!("memzone_with_a_longer_name_{n}"),
        _ => format!("q{}", "x".repeat(usize::from(n % 20))),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn reserve_free_and_lookup_agree_with_a_model(ops in prop::collection::vec(op(), 1..200)) {
        let eal = small_table();
        let mz = eal.memzones();
        let mut model: BTreeMap<String, Memzone> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Reserve(n) => {
                    let got = mz.reserve(&name(n), 64, Socket::Node(0), MemzoneFlags::empty());
                    let full = model.len() as u32 == CAPACITY;
                    match model.entry(name(n)) {
                        _ if full => {
                            prop_assert_eq!(got.unwrap_err().kind(), ErrorKind::NoSpc);
                        }
                        Entry::Occupied(_) => {
                            prop_assert_eq!(got.unwrap_err().kind(), ErrorKind::Exist);
                        }
                        Entry::Vacant(slot) => {
                            let zone = got.unwrap();
                            prop_assert_eq!(&zone.name, slot.key());
                            slot.insert(zone);
                        }
                    }
                }
                Op::Free(n) => match model.remove(&name(n)) {
                    // SAFETY: the model's memzone, which nothing uses.
                    Some(zone) => unsafe { mz.free(&zone) }.unwrap(),
                    None => {
                        // A memzone never reserved (or already freed) under this name.
                        let ghost = Memzone {
                            name: name(n),
                            va: 0x1000,
                            iova: Iova::new(0),
                            len: 64,
                            page_size: 4096,
                            socket: Socket::Node(0),
                            flags: MemzoneFlags::empty(),
                        };
                        // SAFETY: the ghost names no memory; the table must refuse it.
                        let err = unsafe { mz.free(&ghost) }.unwrap_err();
                        prop_assert_eq!(err.kind(), ErrorKind::NoEnt);
                    }
                },
                Op::Lookup(n) => {
                    prop_assert_eq!(mz.lookup(&name(n)), model.get(&name(n)).cloned());
                }
            }
            prop_assert_eq!(mz.count() as usize, model.len());
        }
        // Every live memzone is found, and the table lists exactly the model's.
        for (n, zone) in &model {
            prop_assert_eq!(mz.lookup(n), Some(zone.clone()));
        }
        let mut listed: Vec<String> = mz.list().into_iter().map(|z| z.name).collect();
        listed.sort();
        prop_assert_eq!(listed, model.keys().cloned().collect::<Vec<_>>());
        for zone in model.values() {
            // SAFETY: the model's memzones, which nothing uses.
            unsafe { mz.free(zone) }.unwrap();
        }
        prop_assert_eq!(mz.count(), 0);
        eal.heaps().check().unwrap();
    }
}

#[test]
fn freed_slots_are_reused_lowest_first_and_names_stay_found() {
    let eal = small_table();
    let mz = eal.memzones();
    let zones: Vec<Memzone> = (0..CAPACITY)
        .map(|i| {
            mz.reserve(
                &format!("slot{i}"),
                64,
                Socket::Node(0),
                MemzoneFlags::empty(),
            )
            .unwrap()
        })
        .collect();
    // Free 9, 2 and 5: the next three reserves take slots 2, 5 and 9, in that order.
    for i in [9, 2, 5] {
        // SAFETY: the test's memzone, which nothing uses.
        unsafe { mz.free(&zones[i]) }.unwrap();
    }
    for name in ["new_a", "new_b", "new_c"] {
        mz.reserve(name, 64, Socket::Node(0), MemzoneFlags::empty())
            .unwrap();
    }
    let names: Vec<String> = mz.list().into_iter().map(|z| z.name).collect();
    assert_eq!(names[2], "new_a");
    assert_eq!(names[5], "new_b");
    assert_eq!(names[9], "new_c");
    for (i, zone) in zones.iter().enumerate() {
        let found = mz.lookup(&zone.name);
        if [2, 5, 9].contains(&i) {
            assert_eq!(found, None, "{} was freed", zone.name);
        } else {
            assert_eq!(found.as_ref(), Some(zone));
        }
    }
    // A name too long for the table is simply not there.
    assert_eq!(mz.lookup(&"n".repeat(40)), None);
    assert_eq!(mz.lookup(""), None);
}
