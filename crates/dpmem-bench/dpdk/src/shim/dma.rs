//! The copy-engine loops of the C shim (`csrc/dpdk_dma_shim.c`) behind [`DpdkDmaLoops`].

use std::ffi::{c_char, c_int, c_uint, CString};

use dpmem_bench::{CopyCount, DpdkDmaLoops};

use super::{error_text, leaked_argv, Shim};

mod ffi {
    use std::ffi::{c_char, c_int, c_uint};

    extern "C" {
        pub fn dpmem_bench_dpdk_dma_init(
            argc: c_int,
            argv: *mut *mut c_char,
            dev_name: *const c_char,
            nb_desc: c_uint,
            slots: c_uint,
            slot_len: c_uint,
        ) -> c_int;
        pub fn dpmem_bench_dpdk_dma_run(
            len: c_uint,
            burst: c_uint,
            max_reap: c_uint,
            duration_ns: u64,
            copies: *mut u64,
            elapsed_ns: *mut u64,
        ) -> c_int;
    }
}

impl DpdkDmaLoops for Shim {
    fn dma_eal_init(
        &self,
        args: &[String],
        device: &str,
        nb_desc: u32,
        slots: u32,
        slot_len: u32,
    ) -> Result<(), String> {
        let (argc, argv) = leaked_argv(args)?;
        let name = CString::new(device).map_err(|_| format!("device {device:?} contains NUL"))?;
        // SAFETY: argv holds argc leaked NUL-terminated strings and a null terminator; the
        // name is a NUL-terminated string that outlives the call.
        let rc = unsafe {
            ffi::dpmem_bench_dpdk_dma_init(
                argc,
                argv,
                name.as_ptr() as *const c_char,
                nb_desc as c_uint,
                slots as c_uint,
                slot_len as c_uint,
            )
        };
        match rc {
            0 => Ok(()),
            rc if rc == rustix::io::Errno::NODEV.raw_os_error() => Err(format!(
                "DPDK: no dmadev called {device:?} (is the dma_skeleton driver installed?)"
            )),
            rc => Err(format!(
                "rte_eal_init/dmadev set-up failed: {}",
                error_text(rc as c_int)
            )),
        }
    }

    fn dma_run(
        &self,
        len: u32,
        burst: u32,
        max_reap: u32,
        duration_ns: u64,
    ) -> Result<CopyCount, String> {
        let mut count = CopyCount {
            copies: 0,
            elapsed_ns: 0,
        };
        // SAFETY: plain values and live out-pointers; the device exists (dma_eal_init).
        let rc = unsafe {
            ffi::dpmem_bench_dpdk_dma_run(
                len,
                burst,
                max_reap,
                duration_ns,
                &mut count.copies,
                &mut count.elapsed_ns,
            )
        };
        if rc != 0 {
            return Err(format!("DPDK dmadev loop failed: {}", error_text(rc)));
        }
        Ok(count)
    }
}
