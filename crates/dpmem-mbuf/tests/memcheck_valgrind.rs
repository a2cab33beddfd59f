//! Feature `debug`: under valgrind, a freed packet buffer (header, private area and room) is
//! no-access, so memcheck reports a read of a packet's data after the packet was freed;
//! correct use (alloc, write, clone, chain, copy, a burst, free, audit) reports nothing.
//!
//! No test harness: run plainly, this binary re-executes itself under
//! `valgrind --tool=memcheck` per scenario and asserts on valgrind's exit code and report.
//! Without valgrind it prints why and passes, unless `DPMEM_REQUIRE_VALGRIND=1` (CI).

use std::process::Command;

use dpmem_eal::{memcheck, Eal};
use dpmem_mbuf::{Burst, PktmbufPool};

const SCENARIO_ENV: &str = "DPMEM_MBUF_MEMCHECK_SCENARIO";
const ERROR_EXIT: i32 = 97;

fn main() {
    match std::env::var(SCENARIO_ENV) {
        Ok(scenario) => child(&scenario),
        Err(_) => driver(),
    }
}

fn child(scenario: &str) {
    println!("running_on_valgrind={}", memcheck::running_on_valgrind());
    let prefix = format!("mbvg{}_", std::process::id());
    let eal = Eal::init(["vg", "--no-huge", "-m", "32", "--file-prefix", &prefix]).unwrap();
    let pool = PktmbufPool::builder("vg", 63)
        .cache_size(8)
        .create(&eal)
        .unwrap();
    let mut packet = pool.alloc().unwrap();
    packet.extend_from_slice(&[7u8; 200]).unwrap();
    let data = packet.data().as_ptr();
    match scenario {
        "clean" => {
            let clone = packet.clone_in(&pool).unwrap();
            let mut tail = pool.alloc().unwrap();
            tail.extend_from_slice(b"tail").unwrap();
            let copy = clone.copy_in(&pool, 10, 100).unwrap();
            assert_eq!(copy.pkt_len(), 100);
            drop(clone);
            packet.chain(tail).unwrap();
            assert_eq!(packet.to_vec().len(), 204);
            // A burst reads only the slots it filled: fill, push, pop, truncate, drain, drop.
            let mut burst = Burst::<16>::new();
            pool.alloc_burst(&mut burst, 12).unwrap();
            burst.push(pool.alloc().unwrap()).unwrap();
            assert_eq!(burst.pop().unwrap().pkt_len(), 0);
            burst.truncate(5);
            assert!(pool.alloc_burst(&mut burst, 12).is_err());
            let first = burst.drain().next().unwrap();
            assert!(burst.is_empty());
            pool.alloc_burst(&mut burst, 3).unwrap();
            drop((first, burst));
            drop((packet, copy));
            pool.audit().unwrap();
            pool.free().unwrap();
            println!("clean use done");
        }
        "read-after-free" => {
            drop(packet);
            let at = data.wrapping_add(16);
            println!("access={at:p}");
            // SAFETY: deliberately wrong (the packet is back in its pool) but mapped memory.
            let v = unsafe { at.read_volatile() };
            println!("read {v}");
        }
        other => panic!("unknown scenario {other}"),
    }
}

fn driver() {
    if Command::new("valgrind").arg("--version").output().is_err() {
        assert_ne!(
            std::env::var("DPMEM_REQUIRE_VALGRIND").as_deref(),
            Ok("1"),
            "valgrind required (DPMEM_REQUIRE_VALGRIND=1) but not installed"
        );
        println!("skipped: valgrind is not installed");
        return;
    }
    for scenario in ["clean", "read-after-free"] {
        let out = Command::new("valgrind")
            .args(["--tool=memcheck", "--leak-check=no"])
            .arg(format!("--error-exitcode={ERROR_EXIT}"))
            .arg(std::env::current_exe().unwrap())
            .env(SCENARIO_ENV, scenario)
            .output()
            .expect("valgrind starts");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let context = format!("scenario {scenario}: {:?}\n{stdout}\n{stderr}", out.status);
        assert!(stdout.contains("running_on_valgrind=true"), "{context}");
        if scenario == "clean" {
            assert_eq!(out.status.code(), Some(0), "{context}");
            assert!(stdout.contains("clean use done"), "{context}");
            assert!(stderr.contains("ERROR SUMMARY: 0 errors"), "{context}");
        } else {
            assert_eq!(out.status.code(), Some(ERROR_EXIT), "{context}");
            let access = stdout
                .split_whitespace()
                .find_map(|w| w.strip_prefix("access="))
                .expect("the child printed the address");
            assert!(stderr.contains("Invalid read of size 1"), "{context}");
            assert!(stderr.contains(&format!("Address {access} ")), "{context}");
            println!("memcheck reported the read of {access} after the free");
        }
    }
    println!("memcheck_valgrind: 2 scenarios checked");
}
