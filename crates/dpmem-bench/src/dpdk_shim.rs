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

/// Run `rte_eal_init(args)` then `rte_eal_cleanup()` and time both.
///
/// `args[0]` is the program name, as in `argv`. DPDK allows this once per process: call it
/// only from a benchmark child process.
pub fn eal_init_and_cleanup(args: &[String]) -> Result<EalTimes, String> {
    #[cfg(dpdk_shim)]
    {
        use std::ffi::{c_char, CString};

        let owned = args
            .iter()
            .map(|a| CString::new(a.as_str()).map_err(|_| format!("argument {a:?} contains NUL")))
            .collect::<Result<Vec<_>, _>>()?;
        // DPDK's getopt permutes argv and keeps pointers into it for the life of the
        // process, so the strings are leaked on purpose: the child exits right after.
        let mut argv: Vec<*mut c_char> = owned.into_iter().map(CString::into_raw).collect();
        let argc = std::ffi::c_int::try_from(argv.len()).map_err(|_| "too many arguments")?;
        argv.push(std::ptr::null_mut());
        let mut times = EalTimes {
            init_ns: 0,
            cleanup_ns: 0,
        };
        // SAFETY: argv holds argc valid NUL-terminated strings plus a terminating null, all
        // leaked so they outlive DPDK's use; the out-pointers point at live u64s.
        let rc = unsafe {
            ffi::dpmem_bench_dpdk_eal_init(
                argc,
                argv.as_mut_ptr(),
                &mut times.init_ns,
                &mut times.cleanup_ns,
            )
        };
        std::mem::forget(argv);
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
