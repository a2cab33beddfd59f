//! The heap against a model: random malloc / zmalloc / realloc / free sequences, with the
//! heap's consistency check after every step, every live block's bytes verified, and the heap
//! back to one free block at the end.
//!
//! Statistics merge the small blocks the heap parks on its quick lists, so they are taken only
//! at some steps (`Observe`): between them parked blocks pile up, are handed out again, merged
//! by frees next to them, freed twice, and checked by the consistency check. The model runs on
//! pinned `--no-huge` memory and, where hugepages are available, on hugepages mapped on demand,
//! where a free must still give back every page it leaves without a busy block (the check
//! verifies that no parked block keeps such a page) and the heap ends with no memory at all.

mod common;

use std::ptr::NonNull;
use std::sync::OnceLock;

use common::{args, hugepages_available, unique_prefix};
use dpmem_eal::{Eal, ErrorKind, Socket};
use proptest::prelude::*;

fn eal() -> &'static Eal {
    static EAL: OnceLock<Eal> = OnceLock::new();
    EAL.get_or_init(|| {
        let prefix = unique_prefix("model");
        Eal::init(args(&["--no-huge", "-m", "8", "--file-prefix", &prefix])).unwrap()
    })
}

/// A dynamic-mode EAL on hugepages (no `-m`: every page is mapped on demand and may go back),
/// or `None` where hugepages are not available.
fn dynamic_eal() -> Option<&'static Eal> {
    static EAL: OnceLock<Option<Eal>> = OnceLock::new();
    EAL.get_or_init(|| {
        hugepages_available("heap_matches_the_model_on_pages_mapped_on_demand", 16).then(|| {
            let prefix = unique_prefix("modeldyn");
            Eal::init(args(&["--in-memory", "--file-prefix", &prefix])).unwrap()
        })
    })
    .as_ref()
}

#[derive(Debug, Clone)]
enum Op {
    Malloc { size: usize, align_shift: u32 },
    Zmalloc { size: usize },
    Realloc { pick: usize, size: usize },
    Free { pick: usize },
    DoubleFree { pick: usize },
    Observe,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1usize..70_000, 0u32..14).prop_map(|(size, align_shift)| Op::Malloc { size, align_shift }),
        1 => (1usize..20_000).prop_map(|size| Op::Zmalloc { size }),
        2 => (any::<usize>(), 1usize..90_000).prop_map(|(pick, size)| Op::Realloc { pick, size }),
        3 => any::<usize>().prop_map(|pick| Op::Free { pick }),
        1 => any::<usize>().prop_map(|pick| Op::DoubleFree { pick }),
        1 => Just(Op::Observe),
    ]
}

/// A live block as the model knows it: where, how long, and the byte it is filled with.
struct Block {
    ptr: NonNull<u8>,
    len: usize,
    byte: u8,
}

fn fill(b: &Block) {
    // SAFETY: the model's blocks are live heap blocks of at least `len` bytes.
    unsafe { std::ptr::write_bytes(b.ptr.as_ptr(), b.byte, b.len) }
}

fn intact(b: &Block) -> bool {
    // SAFETY: as in `fill`.
    unsafe { std::slice::from_raw_parts(b.ptr.as_ptr(), b.len) }
        .iter()
        .all(|&x| x == b.byte)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn heap_matches_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        run_model(eal(), ops)?;
    }

    #[test]
    fn heap_matches_the_model_on_pages_mapped_on_demand(
        ops in proptest::collection::vec(op(), 1..80)
    ) {
        if let Some(eal) = dynamic_eal() {
            run_model(eal, ops)?;
            // Everything freed: every page went back.
            prop_assert_eq!(eal.heaps().stats(Socket::Node(0)).unwrap().total_bytes, 0);
        }
    }
}

/// One sequence of `ops` on `eal`'s socket-0 heap, which it leaves as it found it (cases run
/// one after another on one EAL).
fn run_model(eal: &Eal, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let heaps = eal.heaps();
    let initial = heaps.stats(Socket::Node(0)).unwrap();
    let mut live: Vec<Block> = Vec::new();
    let mut freed: Vec<NonNull<u8>> = Vec::new();
    let mut next_byte = 1u8;
    for op in ops {
        next_byte = next_byte.wrapping_add(1).max(1);
        match op {
            Op::Malloc { size, align_shift } => {
                let align = 1usize << align_shift;
                match heaps.malloc(size, align) {
                    Ok(ptr) => {
                        prop_assert_eq!(ptr.as_ptr() as usize % align.max(64), 0);
                        // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
                        let usable = unsafe { heaps.validate(ptr.as_ptr()) }.unwrap();
                        prop_assert!(usable >= size);
                        let b = Block {
                            ptr,
                            len: size,
                            byte: next_byte,
                        };
                        fill(&b);
                        live.push(b);
                    }
                    Err(e) => prop_assert_eq!(e.kind(), ErrorKind::NoMem),
                }
            }
            Op::Zmalloc { size } => match heaps.zmalloc(size, 0) {
                Ok(ptr) => {
                    let b = Block {
                        ptr,
                        len: size,
                        byte: 0,
                    };
                    prop_assert!(intact(&b), "zmalloc returned non-zero bytes");
                    let b = Block {
                        byte: next_byte,
                        ..b
                    };
                    fill(&b);
                    live.push(b);
                }
                Err(e) => prop_assert_eq!(e.kind(), ErrorKind::NoMem),
            },
            Op::Realloc { pick, size } if !live.is_empty() => {
                let i = pick % live.len();
                let old = &live[i];
                // SAFETY: the model owns the block; it is replaced on success.
                match unsafe { heaps.realloc(Some(old.ptr), size, 0) } {
                    Ok(ptr) => {
                        let kept = Block {
                            ptr,
                            len: old.len.min(size),
                            byte: old.byte,
                        };
                        prop_assert!(intact(&kept), "realloc lost data");
                        if ptr != old.ptr {
                            freed.push(old.ptr);
                        }
                        let b = Block {
                            ptr,
                            len: size,
                            byte: next_byte,
                        };
                        fill(&b);
                        live[i] = b;
                    }
                    Err(e) => {
                        prop_assert_eq!(e.kind(), ErrorKind::NoMem);
                        prop_assert!(intact(old), "failed realloc touched the block");
                    }
                }
            }
            Op::Free { pick } if !live.is_empty() => {
                let b = live.swap_remove(pick % live.len());
                prop_assert!(intact(&b));
                // SAFETY: the model's own block, dropped from the model.
                unsafe { heaps.free(b.ptr) }.unwrap();
                freed.push(b.ptr);
            }
            Op::DoubleFree { pick } if !freed.is_empty() => {
                let p = freed[pick % freed.len()];
                // A freed address may have been handed out again; only free it if not. It may
                // be parked, merged or inside another free element: refused all the same.
                if !live.iter().any(|b| b.ptr == p) {
                    // Half the time against a merged heap, compared whole before and after
                    // (statistics merge parked blocks); else as it is, parked blocks and all,
                    // which the consistency check below then walks.
                    let before = (pick % 2 == 0)
                        .then(|| (heaps.stats(Socket::Node(0)).unwrap(), heaps.dump()));
                    // SAFETY: the pointer is this test's own block (or memory nothing writes meanwhile).
                    let refused = unsafe { heaps.validate(p.as_ptr()) }.is_err();
                    prop_assert!(refused);
                    // SAFETY: a deliberate double free, which the heap must refuse.
                    let err = unsafe { heaps.free(p) }.unwrap_err();
                    prop_assert_eq!(err.kind(), ErrorKind::Inval);
                    if let Some((stats, dump)) = before {
                        prop_assert_eq!(heaps.stats(Socket::Node(0)).unwrap(), stats);
                        prop_assert_eq!(heaps.dump(), dump);
                    }
                }
            }
            Op::Observe => {
                let stats = heaps.stats(Socket::Node(0)).unwrap();
                prop_assert_eq!(stats.alloc_count, live.len() as u64);
                // Statistics merged every parked block: none is left in the element walk.
                let dump = heaps.dump();
                prop_assert!(
                    !dump.contains(" parked "),
                    "parked blocks after stats:\n{}",
                    dump
                );
            }
            _ => {}
        }
        heaps.check().unwrap();
        let mut ranges: Vec<(usize, usize)> = live
            .iter()
            .map(|b| (b.ptr.as_ptr() as usize, b.ptr.as_ptr() as usize + b.len))
            .collect();
        ranges.sort();
        prop_assert!(
            ranges.windows(2).all(|w| w[0].1 <= w[1].0),
            "live blocks overlap"
        );
    }
    for b in live.drain(..) {
        prop_assert!(intact(&b));
        // SAFETY: the model's own block.
        unsafe { heaps.free(b.ptr) }.unwrap();
    }
    heaps.check().unwrap();
    let end = heaps.stats(Socket::Node(0)).unwrap();
    prop_assert_eq!(end.alloc_count, 0);
    prop_assert_eq!(end.free_count, initial.free_count);
    prop_assert_eq!(end.greatest_free_bytes, initial.greatest_free_bytes);
    heaps.check().unwrap();
    Ok(())
}
