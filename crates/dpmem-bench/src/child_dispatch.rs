//! The entry points of benchmark children: which workload's child a child process runs, in
//! the `dpmem` program ([`child_main`]) or in `dpmem-bench-dpdk` ([`dpdk_child_main`]). Above
//! the workloads, which reach down to [`crate::child`] for the child protocol.

use std::ffi::OsString;
use std::time::Duration;

use crate::child::{
    child_args, parse, print_init_result, ChildKind, InitCleanup, CHILD_FLAG, EXIT_MISUSE,
    VERSION_MARKER,
};
use crate::dpdk_loops::DpdkLoops;

/// Run as a benchmark child of the `dpmem` program if `args` (as from
/// `std::env::args_os()`, program name first) asks for it, returning the process exit
/// code; `None` for an ordinary invocation.
///
/// The `dpmem` program calls this first thing in `main`, so that the child does nothing
/// else that could allocate or spawn before the EAL under test starts.
pub fn child_main(args: &[OsString]) -> Option<i32> {
    if let Some(code) = crate::repeat::child_main(args) {
        return Some(code);
    }
    let (kind, args) = match parse(args)? {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("{CHILD_FLAG}: {e}");
            return Some(EXIT_MISUSE);
        }
    };
    if kind.is_dpdk() {
        eprintln!(
            "{CHILD_FLAG}: {} runs in the dpmem-bench-dpdk program, not this one",
            kind.name()
        );
        return Some(EXIT_MISUSE);
    }
    let child = child_args(&args);
    Some(match kind {
        ChildKind::DpmemMempool => crate::mempool::dpmem_child(&child),
        ChildKind::DpmemMbuf => crate::mbuf::dpmem_child(&child),
        ChildKind::DpmemDma => crate::dma::dpmem_child(&child),
        ChildKind::DpmemFrame => crate::frame::dpmem_child(&child),
        ChildKind::DpmemMp => crate::mp::dpmem_child(&child),
        ChildKind::DpmemMpSecondary => crate::mp::dpmem_secondary_child(&child),
        _ => print_init_result(crate::init::dpmem_eal_init_and_cleanup(&child.eal_args)),
    })
}

/// The `dpmem-bench-dpdk` program's `main`: runs the DPDK child `args` asks for, through
/// `dpdk`, and returns the exit code.
pub fn dpdk_child_main(args: &[OsString], dpdk: &dyn DpdkLoops) -> i32 {
    let (kind, args) = match parse(args) {
        Some(Ok(parsed)) => parsed,
        Some(Err(e)) => {
            eprintln!("{CHILD_FLAG}: {e}");
            return EXIT_MISUSE;
        }
        None => {
            eprintln!(
                "dpmem-bench-dpdk: the DPDK 22.11 side of `dpmem bench`, which runs it; \
                 it is not meant to be run by hand"
            );
            return EXIT_MISUSE;
        }
    };
    if !kind.is_dpdk() {
        eprintln!("{CHILD_FLAG}: {} runs in the dpmem program", kind.name());
        return EXIT_MISUSE;
    }
    let child = child_args(&args);
    match kind {
        ChildKind::DpdkVersion => {
            println!("{VERSION_MARKER} {}", dpdk.version());
            0
        }
        ChildKind::DpdkRing => crate::ring::dpdk_child(&child, dpdk),
        ChildKind::DpdkMempool => crate::mempool::dpdk_child(&child, dpdk),
        ChildKind::DpdkMalloc => crate::malloc::dpdk_child(&child, dpdk),
        ChildKind::DpdkMbuf => crate::mbuf::dpdk_child(&child, dpdk),
        ChildKind::DpdkDma => crate::dma::dpdk_child(&child, dpdk),
        ChildKind::DpdkFrame => crate::frame::dpdk_child(&child, dpdk),
        ChildKind::DpdkMp => crate::mp::dpdk_child(&child, dpdk),
        ChildKind::DpdkMpSecondary => crate::mp::dpdk_secondary_child(&child, dpdk),
        _ => print_init_result(
            dpdk.eal_init_and_cleanup(&child.eal_args)
                .map(|t| InitCleanup {
                    init: Duration::from_nanos(t.init_ns),
                    cleanup: Duration::from_nanos(t.cleanup_ns),
                }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::child::utf8_args;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn ordinary_invocations_are_not_children() {
        assert_eq!(child_main(&os(&["dpmem", "bench"])), None);
        assert_eq!(child_main(&os(&["dpmem"])), None);
        assert_eq!(
            child_main(&os(&["dpmem", CHILD_FLAG, "nonsense"])),
            Some(EXIT_MISUSE)
        );
    }

    #[test]
    fn each_program_refuses_the_others_kinds() {
        assert_eq!(
            child_main(&os(&["dpmem", CHILD_FLAG, "dpdk-version"])),
            Some(EXIT_MISUSE)
        );
    }

    #[test]
    fn a_non_utf8_child_argument_is_an_error_not_a_panic() {
        use std::os::unix::ffi::OsStringExt;
        let mut args = os(&["dpmem", CHILD_FLAG, "dpmem-init", ""]);
        args.push(OsString::from_vec(vec![0xff, b'x']));
        assert_eq!(child_main(&args), Some(EXIT_MISUSE));
        assert!(utf8_args(&args).unwrap_err().contains("UTF-8"));
    }
}
