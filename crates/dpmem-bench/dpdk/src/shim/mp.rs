//! The inter-process channel loops of the C shim (`csrc/dpdk_mp_shim.c`) behind
//! [`DpdkMpLoops`].

use std::ffi::{c_char, c_int};

use dpmem_bench::DpdkMpLoops;

use super::{error_text, leaked_argv, Shim};

mod ffi {
    use std::ffi::{c_char, c_int, c_uint};

    extern "C" {
        pub fn dpmem_bench_dpdk_mp_primary_init(argc: c_int, argv: *mut *mut c_char) -> c_int;
        pub fn dpmem_bench_dpdk_mp_secondary_init(argc: c_int, argv: *mut *mut c_char) -> c_int;
        pub fn dpmem_bench_dpdk_mp_request_rounds(
            secondaries: c_uint,
            rounds: u64,
            round_ns: *mut u64,
        ) -> c_int;
        pub fn dpmem_bench_dpdk_mp_message_rounds(rounds: u64, round_ns: *mut u64) -> c_int;
        pub fn dpmem_bench_dpdk_mp_grow_rounds(
            zone_len: u64,
            rounds: u64,
            round_ns: *mut u64,
        ) -> c_int;
        pub fn dpmem_bench_dpdk_mp_cleanup() -> c_int;
    }
}

/// What a failed round's code means, in the row's words.
fn round_error(row: &str, rc: c_int) -> String {
    use rustix::io::Errno;
    let why = match Errno::from_raw_os_error(rc) {
        Errno::NOTCONN => "a request did not reach every secondary".to_owned(),
        Errno::TIMEDOUT => "a secondary did not answer in time".to_owned(),
        Errno::BADMSG => "an answer did not carry its round's number".to_owned(),
        Errno::NOTRECOVERABLE => {
            "a reservation did not grow the heap: it did not need a new page".to_owned()
        }
        _ => error_text(rc),
    };
    format!("DPDK {row}: {why}")
}

fn init(
    what: &str,
    args: &[String],
    call: unsafe extern "C" fn(c_int, *mut *mut c_char) -> c_int,
) -> Result<(), String> {
    let (argc, argv) = leaked_argv(args)?;
    // SAFETY: argv holds argc leaked NUL-terminated strings and a null terminator, which
    // outlive DPDK's use of them; `call` is one of the shim's two init functions.
    let rc = unsafe { call(argc, argv) };
    match rc {
        0 => Ok(()),
        rc if rc == rustix::io::Errno::PROTO.raw_os_error() => Err(format!(
            "rte_eal_init started a process of the wrong type for a {what}"
        )),
        rc => Err(format!(
            "rte_eal_init/rte_mp_action_register ({what}) failed: {}",
            error_text(rc)
        )),
    }
}

impl DpdkMpLoops for Shim {
    fn mp_primary_init(&self, args: &[String]) -> Result<(), String> {
        init("primary", args, ffi::dpmem_bench_dpdk_mp_primary_init)
    }

    fn mp_secondary_init(&self, args: &[String]) -> Result<(), String> {
        init("secondary", args, ffi::dpmem_bench_dpdk_mp_secondary_init)
    }

    fn mp_request_rounds(&self, secondaries: u32, round_ns: &mut [u64]) -> Result<(), String> {
        // SAFETY: round_ns has exactly the rounds the shim writes, and lives across the call;
        // the channel is up (mp_primary_init).
        let rc = unsafe {
            ffi::dpmem_bench_dpdk_mp_request_rounds(
                secondaries,
                round_ns.len() as u64,
                round_ns.as_mut_ptr(),
            )
        };
        match rc {
            0 => Ok(()),
            rc => Err(round_error("request", rc)),
        }
    }

    fn mp_message_rounds(&self, round_ns: &mut [u64]) -> Result<(), String> {
        // SAFETY: round_ns has exactly the rounds the shim's pong action writes; the shim
        // returns only once that action has stopped touching it (it clears its pointer under
        // the ping-pong's lock), so the borrow covers every write.
        let rc = unsafe {
            ffi::dpmem_bench_dpdk_mp_message_rounds(round_ns.len() as u64, round_ns.as_mut_ptr())
        };
        match rc {
            0 => Ok(()),
            rc => Err(round_error("ping-pong", rc)),
        }
    }

    fn mp_grow_rounds(&self, zone_len: usize, round_ns: &mut [u64]) -> Result<(), String> {
        // SAFETY: round_ns has exactly the rounds the shim writes, and lives across the call;
        // the EAL is up (mp_secondary_init).
        let rc = unsafe {
            ffi::dpmem_bench_dpdk_mp_grow_rounds(
                zone_len as u64,
                round_ns.len() as u64,
                round_ns.as_mut_ptr(),
            )
        };
        match rc {
            0 => Ok(()),
            rc => Err(round_error("memzone growth", rc)),
        }
    }

    fn mp_cleanup(&self) -> Result<(), String> {
        // SAFETY: no argument; DPDK refuses a cleanup without an init by itself.
        let rc = unsafe { ffi::dpmem_bench_dpdk_mp_cleanup() };
        match rc {
            0 => Ok(()),
            rc => Err(format!("rte_eal_cleanup failed: {}", error_text(rc))),
        }
    }
}
