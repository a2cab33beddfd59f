//! `dpmem map` against a real primary: this test binary re-run as a child process that brings
//! up an EAL on hugepages in dynamic memory (pages mapped as the heap grows), reserves
//! memzones, a ring, a mempool and a packet-buffer pool, makes a few hundred heap allocations
//! and frees a third of them, adds an external heap over memory of its own, reports what it
//! holds, and waits. The SVG `dpmem map` writes must
//! parse as XML and name every memseg list, memzone and pool once, with its label; its heap
//! counts must be the primary's own; and the primary must carry on unharmed afterwards.
//!
//! Then the no-argument form, which runs for any user (hugepages when usable, `--no-huge`
//! otherwise), and `--no-huge` given outright, to standard output and as HTML.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::ptr::NonNull;
use std::time::Duration;

use dpmem::eal::heap::HeapElementState;
use dpmem::eal::Eal;
use dpmem::mbuf::PktmbufPool;
use dpmem::mempool::{Mempool, MempoolFlags};
use dpmem::ring::{named, RingFlags};
use dpmem::Socket;
use dpmem_testkit::ChildTest;
use roxmltree::{Document, Node};
use serde_json::{json, Value};

/// Memzones of the primary, one with markup in its name (it must come out escaped).
const ZONES: [(&str, usize); 3] = [
    ("map_descriptors", 64 << 10),
    ("map_table", 1 << 20),
    ("map_<frames>&co", 5 << 20),
];
const RING: &str = "map_ring";
/// An external heap over memory the primary maps itself.
const EXTERNAL: &str = "map_frames";
const EXTERNAL_LEN: usize = 4 << 20;
const POOL: &str = "map_pool";
const PACKETS: &str = "map_pkts";
const LIMIT: Duration = Duration::from_secs(60);

fn dpmem_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dpmem"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run dpmem")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The JSON after `marker` on a line of the child's transcript.
fn reported(transcript: &str, marker: &str) -> Value {
    let line = transcript
        .lines()
        .find_map(|l| l.split_once(marker).map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no {marker:?} line in:\n{transcript}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

fn has_class(node: &Node<'_, '_>, class: &str) -> bool {
    node.attribute("class")
        .is_some_and(|c| c.split_whitespace().any(|w| w == class))
}

/// The groups of class `class`.
fn groups<'a, 'i>(doc: &'a Document<'i>, class: &str) -> Vec<Node<'a, 'i>> {
    doc.descendants()
        .filter(|n| n.has_tag_name("g") && has_class(n, class))
        .collect()
}

/// The group of class `class` named `name`; there must be exactly one.
fn the_group<'a, 'i>(doc: &'a Document<'i>, class: &str, name: &str) -> Node<'a, 'i> {
    let found: Vec<_> = groups(doc, class)
        .into_iter()
        .filter(|g| g.attribute("data-name") == Some(name))
        .collect();
    assert_eq!(found.len(), 1, "{class} {name:?}: {} groups", found.len());
    found[0]
}

/// The visible label of a group: its `text` child of class `label`.
fn label_of(group: &Node<'_, '_>) -> String {
    group
        .descendants()
        .find(|n| n.has_tag_name("text") && has_class(n, "label"))
        .and_then(|n| n.text())
        .unwrap_or_else(|| panic!("no label in {group:?}"))
        .to_owned()
}

fn hover_of(group: &Node<'_, '_>) -> String {
    group
        .children()
        .find(|n| n.has_tag_name("title"))
        .and_then(|n| n.text())
        .unwrap_or_default()
        .to_owned()
}

/// Rectangles with all of `classes` in the bands (the legend uses the same classes).
fn rects_of(doc: &Document<'_>, classes: &[&str]) -> usize {
    groups(doc, "memseg-list")
        .iter()
        .flat_map(|band| band.descendants())
        .filter(|n| n.has_tag_name("rect") && classes.iter().all(|c| has_class(n, c)))
        .count()
}

#[test]
fn map_of_a_running_primary_names_everything_and_leaves_it_working() {
    if !dpmem_testkit::hugepages_available("map_of_a_running_primary", 48) {
        return;
    }
    let prefix = format!("dpmem-cli-map-{}", std::process::id());
    let mut primary =
        ChildTest::spawn(&std::env::current_exe().unwrap(), "map_primary_body", |c| {
            c.env("DPMEM_MAP_TEST_PREFIX", &prefix);
        });
    primary.wait_for_line("primary ready", LIMIT);
    let own = reported(primary.transcript(), "self: ");

    let dir = tempfile::tempdir().unwrap();
    let out = dpmem_in(
        dir.path(),
        &["map", "--file-prefix", &prefix, "-o", "primary.svg"],
    );
    assert!(out.status.success(), "dpmem map failed: {}", stderr(&out));
    let svg = std::fs::read_to_string(dir.path().join("primary.svg")).unwrap();
    let doc = Document::parse(&svg).unwrap_or_else(|e| panic!("not XML: {e}"));
    let root = doc.root_element();
    assert!(root.has_tag_name(("http://www.w3.org/2000/svg", "svg")));
    assert_eq!(root.attribute("data-file-prefix"), Some(prefix.as_str()));

    // One band per memseg list, each list once.
    let bands = groups(&doc, "memseg-list");
    let mut seen: Vec<u64> = bands
        .iter()
        .map(|b| b.attribute("data-list").unwrap().parse().unwrap())
        .collect();
    seen.sort_unstable();
    let lists: Vec<u64> = own["lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["index"].as_u64().unwrap())
        .collect();
    assert_eq!(seen, lists);
    for band in &bands {
        let index: u64 = band.attribute("data-list").unwrap().parse().unwrap();
        let list = own["lists"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["index"] == index)
            .unwrap();
        assert_eq!(
            band.attribute("data-mapped").unwrap(),
            list["mapped"].to_string(),
            "list {index}"
        );
    }

    // Every memzone once, in the band of its list, labelled with its name and size.
    let zones = own["memzones"].as_object().unwrap();
    assert_eq!(groups(&doc, "memzone").len(), zones.len());
    for (name, zone) in zones {
        let group = the_group(&doc, "memzone", name);
        assert_eq!(
            group.attribute("data-len").unwrap(),
            zone["len"].to_string()
        );
        let label = label_of(&group);
        assert!(label.starts_with(&format!("{name} ")), "{label}");
        let band = group
            .ancestors()
            .find(|a| has_class(a, "memseg-list"))
            .expect("a memzone is drawn in its list's band");
        assert_eq!(
            band.attribute("data-list").unwrap(),
            zone["list"].to_string()
        );
    }
    assert_eq!(
        label_of(&the_group(&doc, "memzone", "map_table")),
        "map_table 1M"
    );
    assert!(hover_of(&the_group(&doc, "memzone", &format!("RG_{RING}")))
        .contains(&format!("ring {RING}: 7 of 511 elements")));

    // Every pool once, with its kind and counts.
    let pools = own["pools"].as_object().unwrap();
    assert_eq!(groups(&doc, "pool").len(), pools.len());
    for (name, pool) in pools {
        let group = the_group(&doc, "pool", name);
        assert_eq!(
            group.attribute("data-in-use").unwrap(),
            pool["in_use"].to_string()
        );
        assert_eq!(
            group.attribute("data-size").unwrap(),
            pool["size"].to_string()
        );
        let kind = if name == PACKETS {
            "packet-buffers"
        } else {
            "mempool"
        };
        assert_eq!(group.attribute("data-kind"), Some(kind));
        let label = label_of(&group);
        assert!(
            label.starts_with(&format!("{name} {} × ", pool["size"])),
            "{label}"
        );
    }

    // The heap as it lies: the map's counts per socket are the primary's, parked blocks too.
    let sockets = groups(&doc, "socket");
    for (socket, counts) in own["elements"].as_object().unwrap() {
        let group = sockets
            .iter()
            .find(|g| g.attribute("data-socket") == Some(socket.as_str()))
            .unwrap_or_else(|| panic!("no section for socket {socket}"));
        for state in ["busy", "free", "parked"] {
            assert_eq!(
                group.attribute(format!("data-{state}").as_str()).unwrap(),
                counts[state].to_string(),
                "socket {socket} {state}"
            );
        }
    }
    assert!(own["elements"]["0"]["parked"].as_u64().unwrap() > 0);
    assert!(rects_of(&doc, &["elem", "busy"]) > 0);
    assert!(rects_of(&doc, &["elem", "parked"]) > 0);
    // Dynamic memory: pages mapped as the heap grew may go back.
    assert!(rects_of(&doc, &["page", "may-go-back"]) > 0);
    // The external heap's memory is a list of its own; its elements cannot be walked from a
    // process that has not attached that memory, and the picture says so.
    let external: Vec<_> = bands
        .iter()
        .filter(|b| b.attribute("data-external") == Some("true"))
        .collect();
    assert_eq!(external.len(), 1);
    assert_eq!(
        external[0].attribute("data-mapped").unwrap(),
        (EXTERNAL_LEN / 4096).to_string()
    );
    assert!(rects_of(&doc, &["page", "external"]) > 0);
    let notes: Vec<&str> = doc
        .descendants()
        .filter(|n| has_class(n, "note"))
        .filter_map(|n| n.text())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains(EXTERNAL) && n.contains("not attached")),
        "{notes:?}"
    );

    // The primary carries on: checks its heap, ring and pools, frees all, exits cleanly.
    primary.send("check");
    primary.wait_for_line("primary unharmed", LIMIT);
    primary.assert_passed(LIMIT);

    let gone = dpmem_in(dir.path(), &["map", "--file-prefix", &prefix]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(
        stderr(&gone).contains("cannot attach") && stderr(&gone).contains("no primary"),
        "{}",
        stderr(&gone)
    );
    assert!(!dir.path().join("dpmem-map.svg").exists());
}

/// A runtime directory an EAL with `prefix` may have made (root's, then a user's).
fn runtime_dirs(prefix: &str) -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("/var/run/dpmem").join(prefix)];
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR") {
        dirs.push(PathBuf::from(xdg).join("dpmem").join(prefix));
    }
    dirs
}

#[test]
fn map_without_arguments_draws_its_own_memory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dpmem_in(dir.path(), &["map"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("wrote dpmem-map.svg"),
        "{}",
        stderr(&out)
    );
    let svg = std::fs::read_to_string(dir.path().join("dpmem-map.svg")).unwrap();
    let doc = Document::parse(&svg).unwrap_or_else(|e| panic!("not XML: {e}"));
    let bands = groups(&doc, "memseg-list");
    assert!(!bands.is_empty());
    // The embedded default maps its 16 MiB up front: pinned pages and one heap of free memory.
    let mapped: u64 = bands
        .iter()
        .map(|b| b.attribute("data-mapped").unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(mapped > 0);
    assert!(rects_of(&doc, &["page", "pinned"]) > 0);
    assert!(rects_of(&doc, &["elem", "free"]) > 0);
    assert!(groups(&doc, "memzone").is_empty());
    let prefix = doc.root_element().attribute("data-file-prefix").unwrap();
    assert!(prefix.starts_with("dpmem-map-"), "{prefix}");
    for dir in runtime_dirs(prefix) {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn map_of_no_huge_memory_to_stdout_and_as_html() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("dpmem-cli-map-nohuge-{}", std::process::id());
    let eal = [
        "--",
        "--no-huge",
        "-m",
        "64",
        "--file-prefix",
        prefix.as_str(),
    ];
    let out = dpmem_in(dir.path(), &[&["map", "-o", "-"][..], &eal].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let svg = String::from_utf8(out.stdout).unwrap();
    let doc = Document::parse(&svg).unwrap_or_else(|e| panic!("not XML: {e}"));
    let bands = groups(&doc, "memseg-list");
    assert_eq!(bands.len(), 1);
    // 16384 pages of 4 KiB, pinned, drawn as one run: pages are merged, not drawn one by one.
    assert_eq!(bands[0].attribute("data-mapped"), Some("16384"));
    assert_eq!(rects_of(&doc, &["page", "pinned"]), 1);
    assert!(svg.len() < 64 << 10, "{} bytes", svg.len());
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());

    let out = dpmem_in(dir.path(), &[&["map", "--html"][..], &eal].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let html = std::fs::read_to_string(dir.path().join("dpmem-map.html")).unwrap();
    let body = html
        .strip_prefix("<!DOCTYPE html>\n")
        .expect("an HTML5 page");
    let page = Document::parse(body).unwrap_or_else(|e| panic!("not XHTML-clean: {e}"));
    let svg = page
        .descendants()
        .find(|n| n.tag_name().name() == "svg")
        .expect("the SVG is inline");
    assert!(svg
        .descendants()
        .any(|n| n.has_tag_name(("http://www.w3.org/2000/svg", "title"))));
    assert!(!html.contains("<script"), "self-contained and static");
    for dir in runtime_dirs(&prefix) {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn map_refuses_a_prefix_with_eal_options() {
    let dir = tempfile::tempdir().unwrap();
    let out = dpmem_in(
        dir.path(),
        &["map", "--file-prefix", "x", "--", "--no-huge"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot be used with"),
        "{}",
        stderr(&out)
    );
    let out = dpmem_in(
        dir.path(),
        &[
            "map",
            "-o",
            "/nonexistent-dir/map.svg",
            "--",
            "--no-huge",
            "-m",
            "8",
            "--file-prefix",
            "dpmem-cli-map-badout",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("writing the map to /nonexistent-dir/map.svg"),
        "{}",
        stderr(&out)
    );
}

/// Anonymous memory of the primary's own, for its external heap.
struct ExternalMemory {
    va: *mut u8,
    len: usize,
}

impl ExternalMemory {
    fn map(len: usize) -> ExternalMemory {
        // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
        let va = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(va, libc::MAP_FAILED, "{}", std::io::Error::last_os_error());
        ExternalMemory { va: va.cast(), len }
    }
}

impl Drop for ExternalMemory {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, which the heap no longer holds.
        unsafe { libc::munmap(self.va.cast(), self.len) };
    }
}

/// Per socket (as DPDK's integer), the primary's heap elements by state, walked as they lie.
fn element_counts(eal: &Eal) -> Value {
    let mut out = BTreeMap::new();
    for socket in eal.heaps().sockets() {
        let elements = eal.heaps().elements(socket).unwrap();
        let count = |state| elements.iter().filter(|e| e.state == state).count();
        out.insert(
            socket.to_raw().to_string(),
            json!({
                "busy": count(HeapElementState::Busy),
                "free": count(HeapElementState::Free),
                "parked": count(HeapElementState::Parked),
            }),
        );
    }
    json!(out)
}

#[test]
#[ignore = "run by map_of_a_running_primary_names_everything_and_leaves_it_working in a child"]
fn map_primary_body() {
    let prefix = std::env::var("DPMEM_MAP_TEST_PREFIX").expect("run by the parent test");
    // No -m: dynamic memory maps pages as the heap needs them.
    let eal = Eal::init([
        "primary",
        "-l",
        "0",
        "--no-telemetry",
        "--file-prefix",
        &prefix,
    ])
    .unwrap();
    let zones: Vec<_> = ZONES
        .iter()
        .map(|&(name, len)| {
            eal.memzones()
                .reserve(name, len, Socket::Any, dpmem::MemzoneFlags::empty())
                .unwrap()
        })
        .collect();
    let ring = named::create::<u64>(&eal, RING, 512, Socket::Any, RingFlags::SP_ENQ).unwrap();
    let mut producer = ring.producer().unwrap();
    for v in 0..7u64 {
        producer.enqueue(v).unwrap();
    }
    drop(producer);
    let pool = Mempool::create(
        &eal,
        POOL,
        1023,
        128,
        32,
        0,
        Socket::Any,
        MempoolFlags::empty(),
    )
    .unwrap();
    let taken: Vec<_> = (0..40).map(|_| pool.get().unwrap()).collect();
    let packets = PktmbufPool::builder(PACKETS, 511).create(&eal).unwrap();
    let held: Vec<_> = (0..9).map(|_| packets.alloc().unwrap()).collect();

    // A few hundred blocks of mixed sizes, a few of them large enough to make the heap map
    // more pages; every third freed again, so the heap has busy, free and parked elements.
    let heaps = eal.heaps();
    let sizes = [64, 200, 1000, 3000, 9000, 70_000];
    let mut blocks: Vec<Option<NonNull<u8>>> = (0..300)
        .map(|i| {
            let size = if i % 60 == 59 {
                3 << 20
            } else {
                sizes[i % sizes.len()]
            };
            Some(heaps.malloc(size, 0).unwrap())
        })
        .collect();
    for block in blocks.iter_mut().step_by(3) {
        // SAFETY: each block came from this heap, is freed once and not used after.
        unsafe { heaps.free(block.take().unwrap()) }.unwrap();
    }
    let external = ExternalMemory::map(EXTERNAL_LEN);
    let external_socket = heaps.heap_create(EXTERNAL).unwrap();
    // SAFETY: the mapping is this process's, used by nothing else, and stays mapped until the
    // heap lets it go below.
    unsafe { heaps.heap_memory_add(EXTERNAL, external.va, EXTERNAL_LEN, None, 4096) }.unwrap();
    let frames: Vec<_> = (0..5)
        .map(|_| heaps.malloc_socket(300 << 10, 0, external_socket).unwrap())
        .collect();

    let layout = eal.layout();
    let list_of = |va: usize| {
        layout
            .memseg_lists
            .iter()
            .find(|l| va >= l.info.base_va && va < l.info.base_va + l.info.len)
            .map(|l| l.info.index)
    };
    let memzones: BTreeMap<String, Value> = eal
        .memzones()
        .list()
        .into_iter()
        .map(|z| (z.name.clone(), json!({"len": z.len, "list": list_of(z.va)})))
        .collect();
    let mut pools = BTreeMap::new();
    Mempool::walk(&eal, |p| {
        pools.insert(
            p.name().to_owned(),
            json!({"size": p.size(), "in_use": p.in_use_count()}),
        );
    });
    let lists: Vec<Value> = layout
        .memseg_lists
        .iter()
        .map(|l| json!({"index": l.info.index, "mapped": l.segments.len()}))
        .collect();
    // No heap statistics here: they merge parked blocks, which the map is to show.
    let own = json!({
        "lists": lists,
        "memzones": memzones,
        "pools": pools,
        "elements": element_counts(&eal),
    });
    println!("self: {own}");
    println!("primary ready");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "check");

    // Everything still works as before the visit.
    heaps.check().unwrap();
    let mut consumer = ring.consumer().unwrap();
    let values: Vec<u64> = std::iter::from_fn(|| consumer.dequeue()).collect();
    assert_eq!(values, (0..7).collect::<Vec<u64>>());
    drop(consumer);
    for obj in taken {
        // SAFETY: each object came from this pool and is given back once.
        unsafe { pool.put(obj) };
    }
    drop(held);
    pool.audit().unwrap();
    packets.mempool().audit().unwrap();
    for block in blocks.into_iter().flatten().chain(frames) {
        // SAFETY: each block came from a heap, is freed once and not used after.
        unsafe { heaps.free(block) }.unwrap();
    }
    heaps
        .heap_memory_remove(EXTERNAL, external.va, EXTERNAL_LEN)
        .unwrap();
    heaps.heap_destroy(EXTERNAL).unwrap();
    drop(external);
    named::free(&eal, ring).unwrap();
    for zone in &zones {
        // SAFETY: nothing uses the memzones any more.
        unsafe { eal.memzones().free(zone) }.unwrap();
    }
    packets.free().unwrap();
    pool.free().unwrap();
    heaps.check().unwrap();
    println!("primary unharmed");
    drop(eal);
}
