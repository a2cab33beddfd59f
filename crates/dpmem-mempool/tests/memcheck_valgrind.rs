//! Feature `debug`: under valgrind, an object in the pool is no-access, so memcheck reports
//! a read of an object after it was put back; correct use (create with obj_init, get, write,
//! put, audit, free) reports nothing.
//!
//! No test harness: run plainly, this binary re-executes itself under
//! `valgrind --tool=memcheck` per scenario and asserts on valgrind's exit code and report.
//! Without valgrind it prints why and passes, unless `DPMEM_REQUIRE_VALGRIND=1` (CI).

use std::process::Command;

use dpmem_eal::{memcheck, Eal, Socket};
use dpmem_mempool::{Mempool, MempoolConfig, MempoolFlags};

const SCENARIO_ENV: &str = "DPMEM_MEMPOOL_MEMCHECK_SCENARIO";
const ERROR_EXIT: i32 = 97;

fn main() {
    match std::env::var(SCENARIO_ENV) {
        Ok(scenario) => child(&scenario),
        Err(_) => driver(),
    }
}

fn child(scenario: &str) {
    println!("running_on_valgrind={}", memcheck::running_on_valgrind());
    let prefix = format!("mpvg{}_", std::process::id());
    let eal = Eal::init(["vg", "--no-huge", "-m", "32", "--file-prefix", &prefix]).unwrap();
    let config = MempoolConfig {
        name: "vg",
        n: 64,
        elt_size: 200,
        cache_size: 8,
        private_data_size: 0,
        socket: Socket::Any,
        flags: MempoolFlags::empty(),
    };
    let pool = Mempool::create_with(
        &eal,
        &config,
        |_| {},
        |_, obj, i| {
            // SAFETY: a fresh object of 200 bytes.
            unsafe { obj.cast::<u32>().write(i) };
        },
    )
    .unwrap();
    let obj = pool.get().unwrap();
    // SAFETY: the object is ours; obj_init wrote its first word.
    let first = unsafe { obj.as_ptr().cast::<u32>().read() };
    assert!(first < 64);
    // SAFETY: as above; 200 bytes.
    unsafe { obj.as_ptr().write_bytes(7, 200) };
    // SAFETY: the object came from this pool.
    unsafe { pool.put(obj) };
    match scenario {
        "clean" => {
            pool.audit().unwrap();
            pool.obj_iter(|_, _, _| {});
            pool.free().unwrap();
            println!("clean use done");
        }
        "use-after-put" => {
            let at = obj.as_ptr().wrapping_add(16);
            println!("access={at:p}");
            // SAFETY: deliberately wrong (the object is back in the pool) but mapped memory.
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
    for scenario in ["clean", "use-after-put"] {
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
            println!("memcheck reported the read of {access} after put");
        }
    }
    println!("memcheck_valgrind: 2 scenarios checked");
}
