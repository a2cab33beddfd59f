//! Safe wrappers over `csrc/dpdk_shim.c`, the DPDK 22.11 side of every workload.
//!
//! The shim exists only when build.rs found libdpdk (`cfg(dpdk_shim)`); otherwise every
//! wrapper returns the reason build.rs recorded, so callers fill the DPDK column with that
//! reason instead of a number.

/// Why the DPDK side is absent from this build, or `None` when the shim is linked in.
pub fn missing_reason() -> Option<&'static str> {
    #[cfg(dpdk_shim)]
    {
        None
    }
    #[cfg(not(dpdk_shim))]
    {
        Some(env!("DPMEM_BENCH_DPDK_MISSING"))
    }
}

/// Times of one `rte_eal_init` and the `rte_eal_cleanup` that follows it.
#[derive(Debug, Clone, Copy)]
pub struct EalTimes {
    /// Nanoseconds spent in `rte_eal_init`.
    pub init_ns: u64,
    /// Nanoseconds spent in `rte_eal_cleanup`.
    pub cleanup_ns: u64,
}

#[cfg(dpdk_shim)]
mod ffi {
    use std::ffi::{c_char, c_int};

    extern "C" {
        pub fn dpmem_bench_dpdk_eal_init(
            argc: c_int,
            argv: *mut *mut c_char,
            init_ns: *mut u64,
            cleanup_ns: *mut u64,
        ) -> c_int;
        pub fn dpmem_bench_dpdk_strerror(code: c_int) -> *const c_char;
        pub fn dpmem_bench_dpdk_version() -> *const c_char;
        pub fn dpmem_bench_dpdk_ring_eal_init(argc: c_int, argv: *mut *mut c_char) -> c_int;
        pub fn dpmem_bench_dpdk_ring_one_core(
            esize: u32,
            single_thread: c_int,
            op: c_int,
            n: u32,
            iters: u64,
            cycles: *mut u64,
        ) -> c_int;
        pub fn dpmem_bench_dpdk_ring_two_cores(
            esize: u32,
            single_thread: c_int,
            n: u32,
            iters: u64,
            enq_cycles: *mut u64,
            deq_cycles: *mut u64,
        ) -> c_int;
    }
}

/// The DPDK version string, e.g. `DPDK 22.11.4`.
pub fn version() -> Result<String, String> {
    #[cfg(dpdk_shim)]
    {
        // SAFETY: rte_version() only returns a pointer to a static string; it needs no EAL.
        let ptr = unsafe { ffi::dpmem_bench_dpdk_version() };
        // SAFETY: the pointer is non-null, NUL-terminated and 'static (see above).
        let text = unsafe { std::ffi::CStr::from_ptr(ptr) };
        Ok(text.to_string_lossy().into_owned())
    }
    #[cfg(not(dpdk_shim))]
    {
        Err(env!("DPMEM_BENCH_DPDK_MISSING").to_owned())
    }
}

#[cfg(dpdk_shim)]
fn error_text(code: std::ffi::c_int) -> String {
    // SAFETY: rte_strerror() returns a pointer to a static or thread-local buffer that
    // stays valid until the next call on this thread; it is copied out right away.
    let ptr = unsafe { ffi::dpmem_bench_dpdk_strerror(code) };
    if ptr.is_null() {
        return format!("error {code}");
    }
    // SAFETY: non-null and NUL-terminated, valid until the next rte_strerror call (above).
    let text = unsafe { std::ffi::CStr::from_ptr(ptr) };
    format!("{} (rte_errno {code})", text.to_string_lossy())
}

/// Leak `args` as a C `argv`: DPDK's getopt permutes argv and keeps pointers into it for the
/// life of the process, and benchmark children exit right after using it.
#[cfg(dpdk_shim)]
pub(crate) fn leaked_argv(
    args: &[String],
) -> Result<(std::ffi::c_int, *mut *mut std::ffi::c_char), String> {
    use std::ffi::{c_char, CString};

    let owned = args
        .iter()
        .map(|a| CString::new(a.as_str()).map_err(|_| format!("argument {a:?} contains NUL")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut argv: Vec<*mut c_char> = owned.into_iter().map(CString::into_raw).collect();
    let argc = std::ffi::c_int::try_from(argv.len()).map_err(|_| "too many arguments")?;
    argv.push(std::ptr::null_mut());
    Ok((argc, argv.leak().as_mut_ptr()))
}

/// `rte_eal_init(args)` and the four rings the ring workload uses (pointer and 16-byte
/// elements, SP/SC and MP/MC, 4096 slots). Once per process: ring children only.
pub fn ring_eal_init(args: &[String]) -> Result<(), String> {
    #[cfg(dpdk_shim)]
    {
        let (argc, argv) = leaked_argv(args)?;
        // SAFETY: argv holds argc leaked NUL-terminated strings and a null terminator.
        let rc = unsafe { ffi::dpmem_bench_dpdk_ring_eal_init(argc, argv) };
        if rc != 0 {
            return Err(format!(
                "rte_eal_init/rte_ring_create failed: {}",
                error_text(rc)
            ));
        }
        Ok(())
    }
    #[cfg(not(dpdk_shim))]
    {
        let _ = args;
        Err(env!("DPMEM_BENCH_DPDK_MISSING").to_owned())
    }
}

/// One core: `iters` times enqueue then dequeue `n` elements (`op` 0 single, 1 burst,
/// 2 bulk) of `esize` (8 or 16) bytes; TSC cycles for the loop. After [`ring_eal_init`].
pub fn ring_one_core(
    esize: u32,
    single_thread: bool,
    op: i32,
    n: u32,
    iters: u64,
) -> Result<u64, String> {
    #[cfg(dpdk_shim)]
    {
        let mut cycles = 0;
        // SAFETY: plain values and a live out-pointer; the rings exist (ring_eal_init).
        let rc = unsafe {
            ffi::dpmem_bench_dpdk_ring_one_core(
                esize,
                single_thread.into(),
                op,
                n,
                iters,
                &mut cycles,
            )
        };
        if rc != 0 {
            return Err(format!("ring one-core loop failed: {}", error_text(rc)));
        }
        Ok(cycles)
    }
    #[cfg(not(dpdk_shim))]
    {
        let _ = (esize, single_thread, op, n, iters);
        Err(env!("DPMEM_BENCH_DPDK_MISSING").to_owned())
    }
}

/// Two cores: the main lcore enqueues `iters` bulks of `n`, the next lcore dequeues them;
/// TSC cycles of (enqueuer, dequeuer). After [`ring_eal_init`] with two lcores.
pub fn ring_two_cores(
    esize: u32,
    single_thread: bool,
    n: u32,
    iters: u64,
) -> Result<(u64, u64), String> {
    #[cfg(dpdk_shim)]
    {
        let (mut enq, mut deq) = (0, 0);
        // SAFETY: plain values and live out-pointers; the rings exist (ring_eal_init).
        let rc = unsafe {
            ffi::dpmem_bench_dpdk_ring_two_cores(
                esize,
                single_thread.into(),
                n,
                iters,
                &mut enq,
                &mut deq,
            )
        };
        if rc != 0 {
            return Err(format!("ring two-core loop failed: {}", error_text(rc)));
        }
        Ok((enq, deq))
    }
    #[cfg(not(dpdk_shim))]
    {
        let _ = (esize, single_thread, n, iters);
        Err(env!("DPMEM_BENCH_DPDK_MISSING").to_owned())
    }
}

/// Run `rte_eal_init(args)` then `rte_eal_cleanup()` and time both.
///
/// `args[0]` is the program name, as in `argv`. DPDK allows this once per process: call it
/// only from a benchmark child process.
pub fn eal_init_and_cleanup(args: &[String]) -> Result<EalTimes, String> {
    #[cfg(dpdk_shim)]
    {
        let (argc, argv) = leaked_argv(args)?;
        let mut times = EalTimes {
            init_ns: 0,
            cleanup_ns: 0,
        };
        // SAFETY: argv holds argc valid NUL-terminated strings plus a terminating null, all
        // leaked so they outlive DPDK's use; the out-pointers point at live u64s.
        let rc = unsafe {
            ffi::dpmem_bench_dpdk_eal_init(argc, argv, &mut times.init_ns, &mut times.cleanup_ns)
        };
        if rc != 0 {
            return Err(format!("rte_eal_init/cleanup failed: {}", error_text(rc)));
        }
        Ok(times)
    }
    #[cfg(not(dpdk_shim))]
    {
        let _ = args;
        Err(env!("DPMEM_BENCH_DPDK_MISSING").to_owned())
    }
}

// ---- mempool (csrc/dpdk_mempool_shim.c) ------------------------------------------------

#[cfg(dpdk_shim)]
mod mempool_ffi {
    use std::ffi::{c_char, c_int, c_uint};

    extern "C" {
        pub fn dpmem_bench_dpdk_mempool_init(
            argc: c_int,
            argv: *mut *mut c_char,
            elt_size: c_uint,
            size: *mut c_uint,
        ) -> c_int;
        pub fn dpmem_bench_dpdk_mempool_run(
            cache_size: c_uint,
            cores: c_uint,
            bulk: c_uint,
            keep: c_uint,
            duration_ns: u64,
            objects: *mut u64,
            elapsed_ns: *mut u64,
        ) -> c_int;
    }
}

/// What one lcore did in a mempool row: objects taken and handed back, and in what time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LcoreCount {
    /// Objects got and put back (each counts once).
    pub objects: u64,
    /// Nanoseconds the lcore's timed loop ran.
    pub elapsed_ns: u64,
}

/// `rte_eal_init(args)`, then the mempool workload's two pools of `elt_size`-byte objects
/// (no cache; a cache of 512); returns their object count. Once per process: mempool
/// children only.
pub fn mempool_eal_init(args: &[String], elt_size: u32) -> Result<u32, String> {
    #[cfg(dpdk_shim)]
    {
        let (argc, argv) = leaked_argv(args)?;
        let mut size = 0;
        // SAFETY: argv holds argc leaked NUL-terminated strings and a null terminator;
        // `size` is a live out-pointer.
        let rc =
            unsafe { mempool_ffi::dpmem_bench_dpdk_mempool_init(argc, argv, elt_size, &mut size) };
        if rc != 0 {
            return Err(format!(
                "rte_eal_init/rte_mempool_create failed: {}",
                error_text(rc)
            ));
        }
        Ok(size)
    }
    #[cfg(not(dpdk_shim))]
    {
        let _ = (args, elt_size);
        Err(env!("DPMEM_BENCH_DPDK_MISSING").to_owned())
    }
}

/// One mempool row on DPDK: `cores` lcores (1 or 2) each take `keep` objects in gets of
/// `bulk` and put them back in puts of `bulk`, over and over for `duration_ns`, on the pool
/// with cache `cache_size` (0 or 512). After [`mempool_eal_init`].
pub fn mempool_run(
    cache_size: u32,
    cores: u32,
    bulk: u32,
    keep: u32,
    duration_ns: u64,
) -> Result<Vec<LcoreCount>, String> {
    #[cfg(dpdk_shim)]
    {
        /// Lcores a row can run on (the shim's `MEMPOOL_BENCH_MAX_CORES`).
        const MEMPOOL_MAX_CORES: usize = 2;
        let lcores = cores as usize;
        if lcores == 0 || lcores > MEMPOOL_MAX_CORES {
            return Err(format!("{cores} cores: the shim runs 1 or 2"));
        }
        let mut objects = [0u64; MEMPOOL_MAX_CORES];
        let mut elapsed_ns = [0u64; MEMPOOL_MAX_CORES];
        // SAFETY: plain values, and two out-arrays of MEMPOOL_MAX_CORES >= cores entries
        // that live across the call; the pools exist (mempool_eal_init).
        let rc = unsafe {
            mempool_ffi::dpmem_bench_dpdk_mempool_run(
                cache_size,
                cores,
                bulk,
                keep,
                duration_ns,
                objects.as_mut_ptr(),
                elapsed_ns.as_mut_ptr(),
            )
        };
        if rc == rustix::io::Errno::NOENT.raw_os_error() {
            return Err("DPDK: a get found pool and cache empty (-ENOENT)".to_owned());
        }
        if rc == rustix::io::Errno::BUSY.raw_os_error() {
            return Err("DPDK: the pool was not full when the row started".to_owned());
        }
        if rc != 0 {
            return Err(format!("DPDK mempool loop failed: {}", error_text(rc)));
        }
        Ok(objects[..lcores]
            .iter()
            .zip(&elapsed_ns[..lcores])
            .map(|(&objects, &elapsed_ns)| LcoreCount {
                objects,
                elapsed_ns,
            })
            .collect())
    }
    #[cfg(not(dpdk_shim))]
    {
        let _ = (cache_size, cores, bulk, keep, duration_ns);
        Err(env!("DPMEM_BENCH_DPDK_MISSING").to_owned())
    }
}
