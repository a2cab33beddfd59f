//! Dynamic fields and flags: DPDK's registration rules (same parameters, same place; every
//! error kind, with nothing changed), typed access on real buffers (clones carry the fields),
//! a real secondary process seeing the primary's places, and random sequences against a
//! model.

use std::collections::HashMap;

use dpmem_eal::{Eal, ErrorKind, ProcessRole};
use dpmem_mbuf::dynamic::{
    self, lookup_field, lookup_flag, register_field, register_field_at, register_flag,
    register_flag_at, registered, DynField, DynFlag, FieldSpec, FlagSpec, Registered, FIELD_SPACE,
    FLAG_BITS, REGISTRY_MEMZONE,
};
use dpmem_mbuf::{MbufError, OlFlags, PktmbufPool};
use proptest::prelude::*;

mod common;

fn kind<T: std::fmt::Debug>(result: Result<T, MbufError>) -> ErrorKind {
    result.expect_err("an error").kind()
}

/// Runs `op`, which must fail with `want`, and checks that the registry is as before.
fn refused<T: std::fmt::Debug>(
    eal: &Eal,
    want: ErrorKind,
    op: impl FnOnce() -> Result<T, MbufError>,
) {
    let before = registered(eal).unwrap();
    let result = op();
    assert_eq!(kind(result), want);
    assert_eq!(
        registered(eal).unwrap(),
        before,
        "an error changed the registry"
    );
}

#[test]
fn nothing_is_created_until_the_first_registration() {
    let eal = common::no_huge_eal("dyn_lazy");
    assert_eq!(kind(lookup_field(&eal, "none")), ErrorKind::NoEnt);
    assert_eq!(kind(lookup_flag(&eal, "none")), ErrorKind::NoEnt);
    assert_eq!(
        kind(DynField::<u32>::lookup(&eal, "none")),
        ErrorKind::NoEnt
    );
    assert_eq!(registered(&eal).unwrap(), Registered::default());
    // Bad arguments are refused before the registry is made.
    assert_eq!(
        kind(register_field(&eal, &FieldSpec::new("x", 0, 1))),
        ErrorKind::Inval
    );
    assert!(eal.memzones().lookup(REGISTRY_MEMZONE).is_none());
    register_field(&eal, &FieldSpec::new("x", 1, 1)).unwrap();
    assert!(eal.memzones().lookup(REGISTRY_MEMZONE).is_some());
}

#[test]
fn field_errors_change_nothing() {
    let eal = common::no_huge_eal("dyn_ferr");
    let a = register_field(&eal, &FieldSpec::new("a", 4, 4)).unwrap();
    assert_eq!(a, 92);
    let bad = |name, size, align| FieldSpec::new(name, size, align);
    for spec in [
        bad("b", 0, 1),
        bad("b", 128, 1),
        bad("b", 200, 1),
        bad("b", 37, 1), // never fits the 36-byte space
        bad("b", 4, 0),
        bad("b", 4, 3),
        bad("b", 4, 12),
        FieldSpec {
            flags: 1,
            ..bad("b", 4, 4)
        },
        bad("", 4, 4),
        bad("nul\0inside", 4, 4),
    ] {
        refused(&eal, ErrorKind::Inval, || register_field(&eal, &spec));
    }
    let long = "n".repeat(64);
    refused(&eal, ErrorKind::NameTooLong, || {
        register_field(&eal, &FieldSpec::new(&long, 4, 4))
    });
    // 63 bytes is the longest name.
    let longest = "n".repeat(63);
    register_field(&eal, &FieldSpec::new(&longest, 1, 1)).unwrap();
    assert_eq!(lookup_field(&eal, &longest).unwrap().size, 1);
    // Requested offsets: misaligned, before the space, past its end.
    let spec = FieldSpec::new("c", 8, 8);
    for offset in [100, 88, 91, 124, 128, usize::MAX - 7, usize::MAX] {
        refused(&eal, ErrorKind::Inval, || {
            register_field_at(&eal, &spec, offset)
        });
    }
    refused(&eal, ErrorKind::Inval, || {
        register_field_at(&eal, &FieldSpec::new("c", 4, 1), 125)
    });
    // Taken names with other parameters or another offset.
    for other in [bad("a", 8, 4), bad("a", 4, 2), bad("a", 2, 4)] {
        refused(&eal, ErrorKind::Exist, || register_field(&eal, &other));
    }
    refused(&eal, ErrorKind::Exist, || {
        register_field_at(&eal, &FieldSpec::new("a", 4, 4), 96)
    });
    // A requested offset that overlaps a field (a is 92..96; the 63-byte name took 96).
    refused(&eal, ErrorKind::Busy, || {
        register_field_at(&eal, &FieldSpec::new("d", 2, 2), 94)
    });
    refused(&eal, ErrorKind::Busy, || {
        register_field_at(&eal, &FieldSpec::new("d", 1, 1), 96)
    });
    refused(&eal, ErrorKind::NoEnt, || lookup_field(&eal, "unknown"));
    // The typed lookup refuses a field of another size.
    refused(&eal, ErrorKind::Inval, || {
        DynField::<u64>::lookup(&eal, "a")
    });
    assert_eq!(DynField::<u32>::lookup(&eal, "a").unwrap().offset(), 92);
    assert_eq!(DynField::<[u8; 4]>::lookup(&eal, "a").unwrap().offset(), 92);
}

#[test]
fn flag_errors_change_nothing() {
    let eal = common::no_huge_eal("dyn_flerr");
    assert_eq!(register_flag(&eal, &FlagSpec::new("f")).unwrap(), 23);
    refused(&eal, ErrorKind::Inval, || {
        register_flag(
            &eal,
            &FlagSpec {
                name: "g",
                flags: 2,
            },
        )
    });
    for bit in [64, 65, u32::MAX] {
        refused(&eal, ErrorKind::Inval, || {
            register_flag_at(&eal, &FlagSpec::new("g"), bit)
        });
    }
    refused(&eal, ErrorKind::Inval, || {
        register_flag(&eal, &FlagSpec::new(""))
    });
    let long = "f".repeat(64);
    refused(&eal, ErrorKind::NameTooLong, || {
        register_flag(&eal, &FlagSpec::new(&long))
    });
    // Static flags (receive 0..=22, transmit 41..=60, EXTERNAL, INDIRECT, the reserved ones)
    // and the taken bit 23.
    for bit in [0, 11, 17, 22, 23, 41, 61, 62, 63] {
        refused(&eal, ErrorKind::Busy, || {
            register_flag_at(&eal, &FlagSpec::new("g"), bit)
        });
    }
    refused(&eal, ErrorKind::Exist, || {
        register_flag_at(&eal, &FlagSpec::new("f"), 30)
    });
    refused(&eal, ErrorKind::NoEnt, || lookup_flag(&eal, "unknown"));
    refused(&eal, ErrorKind::NoEnt, || DynFlag::lookup(&eal, "unknown"));
}

#[test]
fn the_same_parameters_give_the_same_place() {
    let eal = common::no_huge_eal("dyn_same");
    let spec = FieldSpec::new("app_mark", 8, 8);
    let offset = register_field(&eal, &spec).unwrap();
    assert_eq!(offset, 96, "the first 8-aligned offset of the space");
    assert_eq!(register_field(&eal, &spec).unwrap(), offset);
    assert_eq!(register_field_at(&eal, &spec, offset).unwrap(), offset);
    let typed = DynField::<u64>::register(&eal, "app_mark").unwrap();
    assert_eq!(typed.offset(), offset);
    assert_eq!(DynField::<u64>::lookup(&eal, "app_mark").unwrap(), typed);
    let info = lookup_field(&eal, "app_mark").unwrap();
    assert_eq!((info.offset, info.size, info.align), (96, 8, 8));

    let bit = register_flag(&eal, &FlagSpec::new("app_marked")).unwrap();
    assert_eq!(
        register_flag(&eal, &FlagSpec::new("app_marked")).unwrap(),
        bit
    );
    assert_eq!(
        register_flag_at(&eal, &FlagSpec::new("app_marked"), bit).unwrap(),
        bit
    );
    assert_eq!(DynFlag::register(&eal, "app_marked").unwrap().bit(), bit);
    assert_eq!(lookup_flag(&eal, "app_marked").unwrap().bit, bit);

    let all = registered(&eal).unwrap();
    assert_eq!(all.fields.len(), 1);
    assert_eq!(all.flags.len(), 1);
}

#[test]
fn requested_offsets_and_bits_are_honoured() {
    let eal = common::no_huge_eal("dyn_req");
    assert_eq!(
        register_field_at(&eal, &FieldSpec::new("at_100", 4, 4), 100).unwrap(),
        100
    );
    assert_eq!(
        register_field_at(&eal, &FieldSpec::new("at_127", 1, 1), 127).unwrap(),
        127
    );
    assert_eq!(
        DynField::<u16>::register_at(&eal, "at_92", 92)
            .unwrap()
            .offset(),
        92
    );
    // Automatic placement works around them: the smallest gap first (94..100), then the
    // lowest aligned offset of the next.
    assert_eq!(
        register_field(&eal, &FieldSpec::new("two", 2, 2)).unwrap(),
        94
    );
    assert_eq!(
        register_field(&eal, &FieldSpec::new("eight", 8, 8)).unwrap(),
        104
    );
    assert_eq!(
        register_flag_at(&eal, &FlagSpec::new("b40"), 40).unwrap(),
        40
    );
    assert_eq!(
        register_flag_at(&eal, &FlagSpec::new("b30"), 30).unwrap(),
        30
    );
    assert_eq!(DynFlag::register(&eal, "first").unwrap().bit(), 23);
    assert_eq!(DynFlag::register_at(&eal, "b24", 24).unwrap().bit(), 24);
    assert_eq!(register_flag(&eal, &FlagSpec::new("next")).unwrap(), 25);
    let all = registered(&eal).unwrap();
    assert_eq!(all.free_field_runs(), vec![96..100, 112..127]);
    assert_eq!(all.free_field_bytes(), 36 - 4 - 1 - 2 - 2 - 8);
    let text = dynamic::dump(&eal).unwrap();
    assert!(
        text.contains("offset 100  size  4  align  4  at_100"),
        "{text}"
    );
    assert!(text.contains("bit 40  b40"), "{text}");
    assert!(text.contains("free: 96..100 112..127"), "{text}");
}

#[test]
fn the_space_fills_up_to_enoent() {
    let eal = common::no_huge_eal("dyn_fill");
    // Four 8-byte fields take 96..128; one more has no room, a 4-byte one still does.
    let big: Vec<usize> = (0..4)
        .map(|i| register_field(&eal, &FieldSpec::new(&format!("u64_{i}"), 8, 8)).unwrap())
        .collect();
    assert_eq!(big, [96, 104, 112, 120]);
    refused(&eal, ErrorKind::NoEnt, || {
        register_field(&eal, &FieldSpec::new("u64_4", 8, 8))
    });
    refused(&eal, ErrorKind::NoEnt, || {
        register_field(&eal, &FieldSpec::new("wide", 5, 1))
    });
    // The last four bytes, one at a time; then nothing at all fits.
    for i in 0..4 {
        assert_eq!(
            register_field(&eal, &FieldSpec::new(&format!("u8_{i}"), 1, 1)).unwrap(),
            92 + i
        );
    }
    assert_eq!(registered(&eal).unwrap().free_field_bytes(), 0);
    refused(&eal, ErrorKind::NoEnt, || {
        register_field(&eal, &FieldSpec::new("u8_4", 1, 1))
    });
    // A name already there still gives its place.
    assert_eq!(
        register_field(&eal, &FieldSpec::new("u8_2", 1, 1)).unwrap(),
        94
    );

    // The 18 flag bits.
    let bits: Vec<u32> = (0..18)
        .map(|i| register_flag(&eal, &FlagSpec::new(&format!("flag_{i}"))).unwrap())
        .collect();
    assert_eq!(bits, FLAG_BITS.collect::<Vec<_>>());
    refused(&eal, ErrorKind::NoEnt, || {
        register_flag(&eal, &FlagSpec::new("flag_18"))
    });
    assert!(registered(&eal).unwrap().free_flag_bits().is_empty());
}

#[test]
fn typed_fields_and_flags_on_real_buffers_and_their_clones() {
    let eal = common::no_huge_eal("dyn_typed");
    let pool = PktmbufPool::builder("dyn_typed", 63).create(&eal).unwrap();
    let stamp = DynField::<u64>::register(&eal, "test_timestamp").unwrap();
    let queue = DynField::<u16>::register(&eal, "test_queue").unwrap();
    let tag = DynField::<[u8; 3]>::register(&eal, "test_tag").unwrap();
    let on = DynField::<bool>::register(&eal, "test_on").unwrap();
    let ratio = DynField::<f32>::register(&eal, "test_ratio").unwrap();
    let stamped = DynFlag::register(&eal, "test_stamped").unwrap();
    let other = DynFlag::register(&eal, "test_other").unwrap();

    let mut packet = pool.alloc().unwrap();
    packet.extend_from_slice(b"data").unwrap();
    let h = packet.header();
    let flags_before = h.ol_flags();
    stamp.set(h, 0x0123_4567_89ab_cdef);
    queue.set(h, 0xbeef);
    tag.set(h, *b"abc");
    on.set(h, true);
    ratio.set(h, 0.25);
    assert_eq!(stamp.get(h), 0x0123_4567_89ab_cdef);
    assert_eq!(queue.get(h), 0xbeef);
    assert_eq!(tag.get(h), *b"abc");
    assert!(on.get(h));
    assert_eq!(ratio.get(h), 0.25);
    // The bytes are where the registry says, in the machine's order.
    let space = h.dynfield_bytes();
    let at = stamp.offset() - FIELD_SPACE.start;
    assert_eq!(space[at..at + 8], 0x0123_4567_89ab_cdef_u64.to_ne_bytes());
    // Writing one field leaves its neighbours.
    queue.set(h, 7);
    assert_eq!(stamp.get(h), 0x0123_4567_89ab_cdef);
    assert_eq!(tag.get(h), *b"abc");

    assert!(!stamped.is_set(h));
    stamped.set(h);
    assert!(stamped.is_set(h));
    assert!(!other.is_set(h));
    assert_eq!(h.ol_flags(), flags_before | stamped.mask());
    assert_eq!(
        h.ol_flags().bits() & (1 << stamped.bit()),
        1 << stamped.bit()
    );

    // A clone is a new header attached to the data: the dynamic fields and flags come along.
    let clone = packet.clone_in(&pool).unwrap();
    let c = clone.header();
    assert!(c.is_indirect());
    assert_eq!(stamp.get(c), 0x0123_4567_89ab_cdef);
    assert_eq!(queue.get(c), 7);
    assert_eq!(tag.get(c), *b"abc");
    assert!(stamped.is_set(c));
    // ... and are the clone's own from then on.
    stamp.set(c, 1);
    stamped.clear(c);
    assert!(!stamped.is_set(c));
    assert!(c.is_indirect(), "clearing a dynamic flag keeps INDIRECT");
    assert!(c.ol_flags().contains(OlFlags::INDIRECT));
    assert_eq!(stamp.get(packet.header()), 0x0123_4567_89ab_cdef);
    assert!(stamped.is_set(packet.header()));
    drop((packet, clone));
    assert_eq!(pool.avail_count(), 63);
}

#[test]
fn threads_registering_the_same_names_agree() {
    let eal = common::no_huge_eal("dyn_threads");
    let names: Vec<String> = (0..9).map(|i| format!("shared_{i}")).collect();
    let offsets: Vec<Vec<(String, usize)>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|t| {
                let (eal, names) = (&eal, &names);
                s.spawn(move || {
                    // One thread goes forwards, the other backwards.
                    let order: Vec<&String> = if t == 0 {
                        names.iter().collect()
                    } else {
                        names.iter().rev().collect()
                    };
                    order
                        .into_iter()
                        .map(|n| {
                            (
                                n.clone(),
                                DynField::<u32>::register(eal, n).unwrap().offset(),
                            )
                        })
                        .collect()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let first: HashMap<_, _> = offsets[0].iter().cloned().collect();
    let second: HashMap<_, _> = offsets[1].iter().cloned().collect();
    assert_eq!(first, second);
    let mut places: Vec<usize> = first.values().copied().collect();
    places.sort_unstable();
    assert_eq!(places, (0..9).map(|i| 92 + 4 * i).collect::<Vec<_>>());
    assert_eq!(registered(&eal).unwrap().fields.len(), 9);
}

/// The places the primary registers, which the secondary must see.
const MP_FIELD: &str = "mp_sequence";
const MP_FLAG: &str = "mp_seen";

#[test]
fn a_secondary_sees_the_primarys_places() {
    if !common::hugepages_usable(16) {
        return;
    }
    let prefix = format!("mbdyn{}_", std::process::id());
    let eal = Eal::init(["primary", "-l", "0", "-m", "16", "--file-prefix", &prefix]).unwrap();
    // Something first, so the field under test is not at the first offset by chance.
    DynField::<u8>::register(&eal, "mp_first").unwrap();
    let field = DynField::<u64>::register(&eal, MP_FIELD).unwrap();
    DynFlag::register(&eal, "mp_first_flag").unwrap();
    let flag = DynFlag::register(&eal, MP_FLAG).unwrap();
    dpmem_testkit::run_ignored_test_in_child(
        &std::env::current_exe().unwrap(),
        "secondary_body",
        |c| {
            c.env("DPMEM_DYN_TEST_PREFIX", &prefix)
                .env("DPMEM_DYN_TEST_OFFSET", field.offset().to_string())
                .env("DPMEM_DYN_TEST_BIT", flag.bit().to_string());
        },
    );
    // The secondary's refused registrations left nothing behind.
    let all = registered(&eal).unwrap();
    assert_eq!(all.fields.len(), 2);
    assert_eq!(all.flags.len(), 2);
}

#[test]
#[ignore = "run by a_secondary_sees_the_primarys_places in a child process"]
fn secondary_body() {
    let var = |name| std::env::var(name).expect("run by the primary test");
    let prefix = var("DPMEM_DYN_TEST_PREFIX");
    let offset: usize = var("DPMEM_DYN_TEST_OFFSET").parse().unwrap();
    let bit: u32 = var("DPMEM_DYN_TEST_BIT").parse().unwrap();
    let eal = Eal::init([
        "secondary",
        "--proc-type=secondary",
        "--lcores",
        "1@0",
        "--file-prefix",
        &prefix,
    ])
    .unwrap();
    assert_eq!(eal.process_role(), ProcessRole::Secondary);
    assert_eq!(
        DynField::<u64>::lookup(&eal, MP_FIELD).unwrap().offset(),
        offset
    );
    assert_eq!(lookup_field(&eal, MP_FIELD).unwrap().size, 8);
    assert_eq!(DynFlag::lookup(&eal, MP_FLAG).unwrap().bit(), bit);
    // Registering what the primary registered, with the same parameters, gives its place.
    assert_eq!(
        DynField::<u64>::register(&eal, MP_FIELD).unwrap().offset(),
        offset
    );
    assert_eq!(DynFlag::register(&eal, MP_FLAG).unwrap().bit(), bit);
    // Anything new is the primary's to register (EPERM); other parameters still EEXIST.
    assert_eq!(
        kind(DynField::<u32>::register(&eal, "mp_new")),
        ErrorKind::Perm
    );
    assert_eq!(
        kind(DynFlag::register(&eal, "mp_new_flag")),
        ErrorKind::Perm
    );
    assert_eq!(
        kind(DynField::<u32>::register(&eal, MP_FIELD)),
        ErrorKind::Exist
    );
    let all = registered(&eal).unwrap();
    assert_eq!(all.fields.len(), 2);
    assert_eq!(all.flags.len(), 2);
}

/// One step of a random sequence.
#[derive(Debug, Clone)]
enum Step {
    Field {
        name: usize,
        size: usize,
        align: usize,
        at: Option<usize>,
    },
    Flag {
        name: usize,
        at: Option<u32>,
    },
    LookupField(usize),
    LookupFlag(usize),
}

/// Few names, so that names come back with the same or other parameters; name 6 is too long.
const NAMES: usize = 7;

fn name(i: usize) -> String {
    if i == NAMES - 1 {
        "x".repeat(64)
    } else {
        format!("name_{i}")
    }
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (
            0..NAMES,
            prop_oneof![4 => 1usize..=8, 1 => 0usize..=40],
            prop_oneof![4 => (0u32..4).prop_map(|s| 1usize << s), 1 => 0usize..=130],
            proptest::option::weighted(0.3, 86usize..=130),
        )
            .prop_map(|(name, size, align, at)| Step::Field { name, size, align, at }),
        2 => (0..NAMES, proptest::option::weighted(0.3, 20u32..=66))
            .prop_map(|(name, at)| Step::Flag { name, at }),
        1 => (0..NAMES).prop_map(Step::LookupField),
        1 => (0..NAMES).prop_map(Step::LookupFlag),
    ]
}

/// The model: which header bytes and flag bits are taken, and the name tables.
struct Model {
    taken_bytes: [bool; 128],
    fields: HashMap<String, (usize, usize, usize)>,
    taken_bits: u64,
    flags: HashMap<String, u32>,
}

impl Model {
    fn new() -> Self {
        Model {
            taken_bytes: core::array::from_fn(|offset| !FIELD_SPACE.contains(&offset)),
            fields: HashMap::new(),
            taken_bits: !FLAG_BITS.fold(0u64, |acc, bit| acc | 1 << bit),
            flags: HashMap::new(),
        }
    }

    fn free(&self, offset: usize, size: usize) -> bool {
        offset + size <= 128 && self.taken_bytes[offset..offset + size].iter().all(|t| !t)
    }

    /// Checks one field registration against the model and applies it.
    fn field(
        &mut self,
        got: Result<usize, MbufError>,
        name: &str,
        size: usize,
        align: usize,
        at: Option<usize>,
    ) {
        let bad = name.len() >= 64
            || size == 0
            || size > 36
            || !align.is_power_of_two()
            || at.is_some_and(|o| {
                o < FIELD_SPACE.start || o + size > FIELD_SPACE.end || o % align != 0
            });
        let want = if name.len() >= 64 {
            Err(ErrorKind::NameTooLong)
        } else if bad {
            Err(ErrorKind::Inval)
        } else if let Some(&(offset, s, a)) = self.fields.get(name) {
            if s == size && a == align && at.is_none_or(|o| o == offset) {
                Ok(Some(offset))
            } else {
                Err(ErrorKind::Exist)
            }
        } else if let Some(o) = at {
            if self.free(o, size) {
                Ok(Some(o))
            } else {
                Err(ErrorKind::Busy)
            }
        } else {
            let fits = FIELD_SPACE
                .clone()
                .any(|o| o % align == 0 && self.free(o, size));
            if fits {
                Ok(None) // somewhere valid, chosen by the registry
            } else {
                Err(ErrorKind::NoEnt)
            }
        };
        match (want, got) {
            (Err(kind), got) => assert_eq!(got.map_err(|e| e.kind()), Err(kind)),
            (Ok(expected), Ok(offset)) => {
                if let Some(expected) = expected {
                    assert_eq!(offset, expected);
                }
                if !self.fields.contains_key(name) {
                    assert!(
                        offset % align == 0 && self.free(offset, size),
                        "bad place {offset}"
                    );
                    self.taken_bytes[offset..offset + size].fill(true);
                    self.fields.insert(name.into(), (offset, size, align));
                }
            }
            (Ok(_), Err(e)) => panic!("model expected success, got {e}"),
        }
    }

    fn flag(&mut self, got: Result<u32, MbufError>, name: &str, at: Option<u32>) {
        let want = if name.len() >= 64 {
            Err(ErrorKind::NameTooLong)
        } else if at.is_some_and(|b| b >= 64) {
            Err(ErrorKind::Inval)
        } else if let Some(&bit) = self.flags.get(name) {
            if at.is_none_or(|b| b == bit) {
                Ok(bit)
            } else {
                Err(ErrorKind::Exist)
            }
        } else if let Some(b) = at {
            if self.taken_bits & 1 << b == 0 {
                Ok(b)
            } else {
                Err(ErrorKind::Busy)
            }
        } else if self.taken_bits != u64::MAX {
            Ok((!self.taken_bits).trailing_zeros())
        } else {
            Err(ErrorKind::NoEnt)
        };
        assert_eq!(
            got.as_ref().map_err(|e| e.kind()),
            want.as_ref().map_err(|k| *k)
        );
        if let Ok(bit) = want {
            self.taken_bits |= 1 << bit;
            self.flags.insert(name.into(), bit);
        }
    }

    /// The registry holds exactly the model's entries.
    fn matches(&self, all: &Registered) {
        let fields: HashMap<String, (usize, usize, usize)> = all
            .fields
            .iter()
            .map(|f| (f.name.clone(), (f.offset, f.size, f.align)))
            .collect();
        assert_eq!(fields, self.fields);
        let flags: HashMap<String, u32> =
            all.flags.iter().map(|f| (f.name.clone(), f.bit)).collect();
        assert_eq!(flags, self.flags);
        let free = self.taken_bytes.iter().filter(|t| !**t).count();
        assert_eq!(all.free_field_bytes(), free);
    }
}

proptest! {
    // Each case starts an EAL of its own (the registry cannot be emptied), so fewer, longer
    // cases.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_sequences_follow_the_model(steps in proptest::collection::vec(step(), 1..80)) {
        let eal = common::no_huge_eal("dyn_model");
        let mut model = Model::new();
        for step in steps {
            match step {
                Step::Field { name: i, size, align, at } => {
                    let name = name(i);
                    let spec = FieldSpec::new(&name, size, align);
                    let got = match at {
                        Some(offset) => register_field_at(&eal, &spec, offset),
                        None => register_field(&eal, &spec),
                    };
                    model.field(got, &name, size, align, at);
                }
                Step::Flag { name: i, at } => {
                    let name = name(i);
                    let spec = FlagSpec::new(&name);
                    let got = match at {
                        Some(bit) => register_flag_at(&eal, &spec, bit),
                        None => register_flag(&eal, &spec),
                    };
                    model.flag(got, &name, at);
                }
                Step::LookupField(i) => {
                    let got = lookup_field(&eal, &name(i)).map(|f| (f.offset, f.size, f.align));
                    let want = model.fields.get(&name(i)).copied().ok_or(ErrorKind::NoEnt);
                    prop_assert_eq!(got.map_err(|e| e.kind()), want);
                }
                Step::LookupFlag(i) => {
                    let got = lookup_flag(&eal, &name(i)).map(|f| f.bit);
                    let want = model.flags.get(&name(i)).copied().ok_or(ErrorKind::NoEnt);
                    prop_assert_eq!(got.map_err(|e| e.kind()), want);
                }
            }
            model.matches(&registered(&eal).unwrap());
        }
    }
}
