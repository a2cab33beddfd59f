//! A secondary process (this test binary re-executed) finds the primary's memzones by name,
//! reads their bytes, and reserves a memzone of its own in the shared heap.

mod common;

use std::process::Command;

use common::*;
use dpmem_eal::{Eal, ProcessRole};

const ENV_PREFIX: &str = "DPMEM_TEST_MZ_PREFIX";
const ZONE_LEN: usize = 1 << 20;

#[test]
fn a_secondary_finds_the_primarys_memzones_and_reads_their_bytes() {
    let _serial = hugepage_lock();
    if !hugepages_available(
        "a_secondary_finds_the_primarys_memzones_and_reads_their_bytes",
        8,
    ) {
        return;
    }
    let prefix = unique_prefix("mzsec");
    let eal = Eal::init(args(&["-m", "8", "--file-prefix", &prefix])).unwrap();
    let zone = eal
        .memzones()
        .reserve("shared_zone", ZONE_LEN, 0, 0)
        .unwrap();
    // SAFETY: the memzone's bytes are ours until it is freed.
    let bytes = unsafe { std::slice::from_raw_parts_mut(zone.as_ptr(), ZONE_LEN) };
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "memzone_secondary_body",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV_PREFIX, &prefix)
        .env("DPMEM_TEST_MZ_VA", zone.va.to_string())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "secondary failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "secondary body did not run:\n{text}"
    );
    // The secondary's answer, written into the primary's memzone.
    assert_eq!(bytes[ZONE_LEN - 1], 0xEE);
    // The memzone the secondary reserved is in the shared table and the shared heap.
    let theirs = eal
        .memzones()
        .lookup("from_secondary")
        .expect("reserved by the secondary");
    // SAFETY: the secondary wrote 4096 bytes there and has exited.
    let written = unsafe { std::slice::from_raw_parts(theirs.as_ptr(), 4096) };
    assert!(written.iter().all(|&b| b == 0x5A));
    eal.heaps().check().unwrap();
    eal.memzones().free(&theirs).unwrap();
    eal.memzones().free(&zone).unwrap();
    assert_eq!(eal.heaps().stats(0).unwrap().free_count, 1);
}

#[test]
#[ignore = "run by a_secondary_finds_the_primarys_memzones_and_reads_their_bytes in a child process"]
fn memzone_secondary_body() {
    let prefix = std::env::var(ENV_PREFIX).expect("run by the memzone multi-process test");
    let va: u64 = std::env::var("DPMEM_TEST_MZ_VA").unwrap().parse().unwrap();
    let eal = Eal::init(args(&[
        "--proc-type",
        "secondary",
        "--file-prefix",
        &prefix,
    ]))
    .unwrap();
    assert_eq!(eal.process_role(), ProcessRole::Secondary);
    let zone = eal
        .memzones()
        .lookup("shared_zone")
        .expect("the primary's memzone");
    assert_eq!(zone.va, va, "same address in both processes");
    assert_eq!(zone.len, ZONE_LEN as u64);
    // SAFETY: the primary's memzone, mapped at the same address here.
    let bytes = unsafe { std::slice::from_raw_parts_mut(zone.as_ptr(), ZONE_LEN) };
    for (i, b) in bytes.iter().enumerate() {
        assert_eq!(*b, (i % 251) as u8, "byte {i}");
    }
    bytes[ZONE_LEN - 1] = 0xEE;
    // The heap is shared: the secondary reserves from the primary's free memory.
    let mine = eal
        .memzones()
        .reserve("from_secondary", 4096, 0, 0)
        .unwrap();
    // SAFETY: the new memzone's bytes are ours.
    unsafe { std::ptr::write_bytes(mine.as_ptr(), 0x5A, 4096) };
    eal.heaps().check().unwrap();
}
