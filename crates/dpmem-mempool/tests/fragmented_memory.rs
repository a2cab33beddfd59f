//! Pools on memory in pieces (issue 23): the default populate takes as many chunks as memory
//! has pieces, halving its request while no block that big is free, where it used to ask for
//! the whole pool in one block and fail.
//!
//! Memory is cut up deterministically: 2 MiB memzones reserved back to back, the leftovers
//! taken whole, and every other block (in address order) freed, so that no free block is
//! bigger than about 2 MiB and none touches another. That works where memory is preallocated
//! and cannot grow (`--no-huge`, `--legacy-mem`); a pool that needs several times the biggest
//! block then has to be built from pieces. The last test does the same on the machine's own
//! legacy hugepage memory, which is in pieces wherever its hugepages are physically
//! scattered (each IOVA run is a heap block of its own).

use std::sync::atomic::{AtomicU32, Ordering};

use dpmem_eal::{Eal, ErrorKind, Iova, IovaMode, Memzone, MemzoneFlags, Socket};
use dpmem_mempool::{calc_obj_size, MemChunk, Mempool, MempoolConfig, MempoolError, MempoolFlags};

mod common;

const MIB: usize = 1 << 20;

/// Free memory of every socket heap: (free bytes, free blocks, biggest free block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Free {
    bytes: u64,
    blocks: u64,
    largest: u64,
}

fn free_memory(eal: &Eal) -> Free {
    let stats: Vec<_> = eal
        .heaps()
        .all_stats()
        .into_iter()
        .filter(|s| !s.external)
        .collect();
    Free {
        bytes: stats.iter().map(|s| s.free_bytes).sum(),
        blocks: stats.iter().map(|s| s.free_count).sum(),
        largest: stats
            .iter()
            .map(|s| s.greatest_free_bytes)
            .max()
            .unwrap_or(0),
    }
}

fn eal_with(tag: &str, mode: &[&str]) -> Eal {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let prefix = format!(
        "mpfrag{}_{}_{tag}_",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut args = vec!["fragmented", "-l", "0", "--file-prefix", &prefix];
    args.extend_from_slice(mode);
    Eal::init(args).unwrap()
}

/// Cuts the heaps into blocks of at most about `piece` bytes: memzones of `piece` back to back
/// until none fits, then every leftover block taken whole, then every other block, in address
/// order, freed. Returns the blocks still held.
fn fragment(eal: &Eal, piece: usize) -> Vec<Memzone> {
    let memzones = eal.memzones();
    let mut held = Vec::new();
    loop {
        let name = format!("frag_{}", held.len());
        match memzones.reserve(&name, piece, Socket::Any, MemzoneFlags::empty()) {
            Ok(zone) => held.push(zone),
            Err(e) if e.kind() == ErrorKind::NoMem => break,
            Err(e) => panic!("reserving {name}: {e}"),
        }
    }
    // Length 0: the biggest free block, whatever its size.
    while let Ok(zone) = memzones.reserve(
        &format!("frag_{}", held.len()),
        0,
        Socket::Any,
        MemzoneFlags::empty(),
    ) {
        held.push(zone);
    }
    held.sort_by_key(|z| z.va);
    let mut kept = Vec::new();
    for (i, zone) in held.into_iter().enumerate() {
        if i % 2 == 0 {
            // SAFETY: the zone was reserved above and nothing has used its memory.
            unsafe { memzones.free(&zone) }.unwrap();
        } else {
            kept.push(zone);
        }
    }
    kept
}

fn config(name: &str, n: u32) -> MempoolConfig<'_> {
    MempoolConfig {
        name,
        n,
        elt_size: 2048,
        cache_size: 0,
        private_data_size: 0,
        socket: Socket::Any,
        flags: MempoolFlags::empty(),
    }
}

/// The IOVA the EAL gives `va` (`None` where it knows none).
fn iova_of(eal: &Eal, va: usize) -> Option<Iova> {
    if eal.iova_mode() == IovaMode::Va {
        Iova::new(va as u64)
    } else {
        eal.memory().virt_to_iova(va)
    }
}

/// Checks a full pool from end to end: its chunks hold every object, each IOVA-contiguous as
/// recorded; every object lies in one chunk and one page of `page` bytes, apart from every
/// other, and is usable (each written, then each read back); the pool audits whole. Returns
/// the chunks.
fn check_pool(eal: &Eal, pool: &Mempool<'_>, page: usize) -> Vec<MemChunk> {
    let n = pool.size() as usize;
    let elt = pool.elt_size() as usize;
    let mut chunks = Vec::new();
    pool.mem_iter(|_, c| chunks.push(*c));
    assert_eq!(chunks.len() as u32, pool.nb_mem_chunks());
    assert_eq!(
        chunks.iter().map(|c| c.objects as usize).sum::<usize>(),
        n,
        "{}",
        pool.dump()
    );
    for c in &chunks {
        if let Some(iova) = c.iova {
            assert_eq!(Some(iova), iova_of(eal, c.addr), "chunk {c:?}");
            let last = c.addr + c.len - 1;
            assert_eq!(
                iova_of(eal, last),
                iova.checked_add((c.len - 1) as u64),
                "chunk {c:?}"
            );
        }
    }
    let mut objs = vec![core::ptr::null_mut(); n];
    pool.get_bulk(&mut objs).unwrap();
    assert!(pool.is_empty());
    let mut sorted: Vec<usize> = objs.iter().map(|&o| o as usize).collect();
    sorted.sort_unstable();
    for pair in sorted.windows(2) {
        assert!(pair[1] - pair[0] >= elt, "objects overlap: {pair:x?}");
    }
    for &obj in &objs {
        let a = obj as usize;
        assert!(
            chunks
                .iter()
                .any(|c| a >= c.addr && a + elt <= c.addr + c.len),
            "object {a:#x} outside every chunk"
        );
        assert_eq!(
            a / page,
            (a + elt - 1) / page,
            "object {a:#x} crosses a page"
        );
        // SAFETY: an object of this pool.
        let iova = unsafe { Mempool::obj_iova(obj) };
        if iova.is_some() {
            assert_eq!(iova, iova_of(eal, a), "object {a:#x}");
        }
    }
    for (i, &obj) in objs.iter().enumerate() {
        // SAFETY: the object is out of the pool, `elt` bytes, and used by nothing else.
        let bytes = unsafe { core::slice::from_raw_parts_mut(obj, elt) };
        for (j, b) in bytes.iter_mut().enumerate() {
            *b = (i * 31 + j) as u8;
        }
    }
    for (i, &obj) in objs.iter().enumerate() {
        // SAFETY: as above.
        let bytes = unsafe { core::slice::from_raw_parts(obj, elt) };
        let wrong = bytes
            .iter()
            .enumerate()
            .position(|(j, b)| *b != (i * 31 + j) as u8);
        assert_eq!(wrong, None, "object {i} at {obj:p} lost what was written");
    }
    // SAFETY: every object came from this pool and goes back once.
    unsafe { pool.put_bulk(&objs) };
    assert!(pool.is_full());
    pool.audit().unwrap();
    chunks
}

/// The whole story on one EAL whose memory cannot grow, with pages of `page` bytes.
fn pool_from_pieces(eal: &Eal, page: usize) {
    let total = calc_obj_size(2048, MempoolFlags::empty())
        .unwrap()
        .total_size as usize;
    let n = 4000u32;
    // At least the bytes the objects span: slots back to back, or a page apart where only
    // one fits a page.
    let need = if total * 2 > page {
        (n as usize - 1) * page + total
    } else {
        n as usize * total
    };
    let whole = free_memory(eal);

    // Memory in one piece: one chunk, as before.
    if whole.largest as usize >= need + 4 * page {
        let pool = Mempool::create_with(eal, &config("whole", n), |_| {}, |_, _, _| {}).unwrap();
        assert_eq!(pool.nb_mem_chunks(), 1, "{}", pool.dump());
        check_pool(eal, &pool, page);
        pool.free().unwrap();
        assert_eq!(free_memory(eal), whole);
    }

    let kept = fragment(eal, 2 * MIB);
    let cut = free_memory(eal);
    eprintln!(
        "memory cut up: {whole:?} -> {cut:?} ({} blocks held)",
        kept.len()
    );
    assert!(
        cut.largest as usize <= 2 * MIB + 64 * 1024,
        "a free block bigger than the pieces: {cut:?}"
    );
    assert!(
        need >= 3 * cut.largest as usize,
        "the pool ({need} bytes) must need several of the biggest free blocks ({cut:?})"
    );
    // The old populate asked for `need` bytes in one block and failed here.
    let pool = Mempool::create_with(eal, &config("pieces", n), |_| {}, |_, _, _| {}).unwrap();
    let chunks = check_pool(eal, &pool, page);
    let biggest_chunk = chunks.iter().map(|c| c.len).max().unwrap();
    assert!(biggest_chunk <= cut.largest as usize, "{chunks:?}");
    assert!(
        chunks.len() >= need.div_ceil(cut.largest as usize),
        "{} chunks for {need} bytes in blocks of at most {}",
        chunks.len(),
        cut.largest
    );
    eprintln!(
        "pool of {n} objects ({need} bytes): {} chunks, the biggest {biggest_chunk} bytes",
        chunks.len()
    );
    pool.free().unwrap();
    assert_eq!(
        free_memory(eal),
        cut,
        "freeing the pool gives every chunk back"
    );

    // More than is free: refused, naming what was free, and nothing is left behind.
    let zones = eal.memzones().count();
    // Twice as many objects as all free memory could hold back to back.
    let too_many = (2 * cut.bytes as usize / total) as u32;
    let err =
        Mempool::create_with(eal, &config("toobig", too_many), |_| {}, |_, _, _| {}).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoMem, "{err}");
    let MempoolError::NoMemory {
        objects,
        smallest,
        free_bytes,
        free_blocks,
        largest_free,
        ..
    } = err
    else {
        panic!("not the no-memory error: {err}");
    };
    assert_eq!(objects, too_many);
    assert!(
        smallest < 2 * total,
        "it tried down to one object: {smallest}"
    );
    // What was free besides the pool's header and ring, which are still there.
    assert!(
        largest_free <= cut.largest && free_bytes <= cut.bytes,
        "{err}"
    );
    assert!(free_bytes + (MIB as u64) > cut.bytes, "{err}");
    let text = err.to_string();
    for figure in [free_bytes, free_blocks, largest_free] {
        assert!(text.contains(&figure.to_string()), "{text}");
    }
    eprintln!("{text}");
    assert_eq!(
        free_memory(eal),
        cut,
        "a refused pool leaves nothing behind"
    );
    assert_eq!(eal.memzones().count(), zones);

    // Exact figures: on a pool whose ring exists, a second refusal names today's memory.
    let mut pool = Mempool::create_empty(eal, &config("toobig", too_many)).unwrap();
    assert!(pool.populate_default().is_err());
    let now = free_memory(eal);
    match pool.populate_default().unwrap_err() {
        MempoolError::NoMemory {
            free_bytes,
            free_blocks,
            largest_free,
            ..
        } => assert_eq!(
            (free_bytes, free_blocks, largest_free),
            (now.bytes, now.blocks, now.largest)
        ),
        e => panic!("not the no-memory error: {e}"),
    }
    assert_eq!(pool.nb_mem_chunks(), 0);
    assert_eq!(free_memory(eal), now);

    // One region is still one region: refused rather than split.
    let mut one = Mempool::create_empty(eal, &config("oneregion", n)).unwrap();
    let err = one.populate_single_region().unwrap_err();
    assert!(
        matches!(err, MempoolError::NoMemory { smallest, .. } if smallest >= need),
        "{err}"
    );
    assert_eq!(one.nb_mem_chunks(), 0);
    one.free().unwrap();
    pool.free().unwrap();
    assert_eq!(free_memory(eal), cut);

    for zone in kept {
        // SAFETY: the zone was reserved by `fragment` and nothing has used its memory.
        unsafe { eal.memzones().free(&zone) }.unwrap();
    }
    assert_eq!(free_memory(eal), whole, "the heaps are whole again");
}

#[test]
fn a_pool_is_built_from_pieces_of_ordinary_memory() {
    let eal = eal_with("nohuge", &["--no-huge", "-m", "64"]);
    pool_from_pieces(&eal, dpmem_sys::mapping::system_page_size());
}

#[test]
fn a_pool_is_built_from_pieces_of_legacy_hugepage_memory() {
    if !common::hugepages_usable(32) {
        return;
    }
    let eal = eal_with(
        "legacy",
        &["--legacy-mem", "--huge-unlink=always", "-m", "64"],
    );
    pool_from_pieces(&eal, 2 * MIB);
}

/// The machine's own legacy memory: where its hugepages are physically scattered, each IOVA
/// run is a heap block of its own. DPDK's `mempool_autotest` pool (2047 objects of 2 KiB, as
/// for two lcores) and one needing three times the biggest block are built from them.
#[test]
fn pools_fit_scattered_legacy_hugepages() {
    if !common::hugepages_usable(32) {
        return;
    }
    let eal = eal_with(
        "scattered",
        &["--legacy-mem", "--huge-unlink=always", "-m", "64"],
    );
    let whole = free_memory(&eal);
    eprintln!("legacy memory of this machine: {whole:?}");

    let pool = Mempool::create_with(&eal, &config("autotest", 2047), |_| {}, |_, _, _| {})
        .unwrap_or_else(|e| panic!("the autotest's pool on legacy memory: {e}"));
    let chunks = check_pool(&eal, &pool, 2 * MIB);
    eprintln!("2047 objects of 2 KiB: {} chunk(s)", chunks.len());
    pool.free().unwrap();
    assert_eq!(free_memory(&eal), whole);

    let total = calc_obj_size(2048, MempoolFlags::empty())
        .unwrap()
        .total_size as usize;
    let need = 3 * whole.largest as usize;
    if need > whole.bytes as usize / 2 {
        eprintln!(
            "this machine's legacy memory is nearly contiguous (biggest free block {} of {} \
             bytes): a pool of three such blocks would not fit, so the scattered case is not \
             exercised here",
            whole.largest, whole.bytes
        );
        return;
    }
    let n = (need / total) as u32;
    let pool = Mempool::create_with(&eal, &config("scattered", n), |_| {}, |_, _, _| {})
        .unwrap_or_else(|e| panic!("{n} objects on legacy memory: {e}"));
    let chunks = check_pool(&eal, &pool, 2 * MIB);
    assert!(chunks.len() >= 3, "{}", pool.dump());
    eprintln!(
        "{n} objects ({need} bytes) on scattered pages: {} chunks",
        chunks.len()
    );
    pool.free().unwrap();
    assert_eq!(free_memory(&eal), whole);
}
