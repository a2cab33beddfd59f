//! The C shim (`csrc/dpdk_shim.c`, `csrc/dpdk_mempool_shim.c`, `csrc/dpdk_mbuf_shim.c`, and
//! the copy-engine, media frame and inter-process channel loops of [`dma`], [`frame`] and
//! [`mp`]) behind [`DpdkLoops`].
//!
//! Only built when build.rs found libdpdk (`cfg(dpdk_shim)`). Every C function returns 0 or
//! a positive errno / rte_errno and hands its figures back through out-pointers; the
//! wrappers turn the code into words with `rte_strerror`.

use std::ffi::{c_char, c_int, c_uint, CStr, CString};

use dpmem_bench::{DpdkLoops, EalTimes, Elapsed, LcoreCount, MallocPlan, MallocTimes, MbufShape};

mod dma;
mod frame;
mod mp;

mod ffi {
    use std::ffi::{c_char, c_int, c_uint};

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
        pub fn dpmem_bench_dpdk_malloc(
            argc: c_int,
            argv: *mut *mut c_char,
            sizes: *const u64,
            malloc_counts: *const u64,
            zmalloc_counts: *const u64,
            n_sizes: c_uint,
            mz_len: u64,
            mz_count: c_uint,
            churn_slots: c_uint,
            churn_ops: c_uint,
            malloc_ns: *mut u64,
            zmalloc_ns: *mut u64,
            memzone_ns: *mut u64,
            churn_ns: *mut u64,
            greatest_free_after_churn: *mut u64,
        ) -> c_int;
        pub fn dpmem_bench_dpdk_mbuf_init(
            argc: c_int,
            argv: *mut *mut c_char,
            buffers: c_uint,
            cache: c_uint,
            data_room: u16,
            hdr_room: u16,
            burst: c_uint,
            hdr_len: c_uint,
            ext_len: c_uint,
            copy_len: c_uint,
        ) -> c_int;
        pub fn dpmem_bench_dpdk_mbuf_run(
            row: c_uint,
            ops: u64,
            ns: *mut u64,
            cycles: *mut u64,
        ) -> c_int;
    }
}

/// Lcores a mempool row can run on (the shim's `MEMPOOL_BENCH_MAX_CORES`).
const MEMPOOL_MAX_CORES: usize = 2;

/// DPDK 22.11 through the C shim.
#[derive(Debug)]
pub struct Shim;

fn error_text(code: c_int) -> String {
    // SAFETY: rte_strerror() returns a pointer to a static or thread-local buffer that
    // stays valid until the next call on this thread; it is copied out right away.
    let ptr = unsafe { ffi::dpmem_bench_dpdk_strerror(code) };
    if ptr.is_null() {
        return format!("error {code}");
    }
    // SAFETY: non-null and NUL-terminated, valid until the next rte_strerror call (above).
    let text = unsafe { CStr::from_ptr(ptr) };
    format!("{} (rte_errno {code})", text.to_string_lossy())
}

/// Leak `args` as a C `argv`: DPDK's getopt permutes argv and keeps pointers into it for the
/// life of the process, and benchmark children exit right after using it.
fn leaked_argv(args: &[String]) -> Result<(c_int, *mut *mut c_char), String> {
    let owned = args
        .iter()
        .map(|a| CString::new(a.as_str()).map_err(|_| format!("argument {a:?} contains NUL")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut argv: Vec<*mut c_char> = owned.into_iter().map(CString::into_raw).collect();
    let argc = c_int::try_from(argv.len()).map_err(|_| "too many arguments")?;
    argv.push(std::ptr::null_mut());
    Ok((argc, argv.leak().as_mut_ptr()))
}

impl DpdkLoops for Shim {
    fn version(&self) -> String {
        // SAFETY: rte_version() only returns a pointer to a static string; it needs no EAL.
        let ptr = unsafe { ffi::dpmem_bench_dpdk_version() };
        // SAFETY: the pointer is non-null, NUL-terminated and 'static (see above).
        let text = unsafe { CStr::from_ptr(ptr) };
        text.to_string_lossy().into_owned()
    }

    fn eal_init_and_cleanup(&self, args: &[String]) -> Result<EalTimes, String> {
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

    fn ring_eal_init(&self, args: &[String]) -> Result<(), String> {
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

    fn ring_one_core(
        &self,
        esize: u32,
        single_thread: bool,
        op: i32,
        n: u32,
        iters: u64,
    ) -> Result<u64, String> {
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

    fn ring_two_cores(
        &self,
        esize: u32,
        single_thread: bool,
        n: u32,
        iters: u64,
    ) -> Result<(u64, u64), String> {
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

    fn mempool_eal_init(&self, args: &[String], elt_size: u32) -> Result<u32, String> {
        let (argc, argv) = leaked_argv(args)?;
        let mut size = 0;
        // SAFETY: argv holds argc leaked NUL-terminated strings and a null terminator;
        // `size` is a live out-pointer.
        let rc = unsafe { ffi::dpmem_bench_dpdk_mempool_init(argc, argv, elt_size, &mut size) };
        if rc != 0 {
            return Err(format!(
                "rte_eal_init/rte_mempool_create failed: {}",
                error_text(rc)
            ));
        }
        Ok(size)
    }

    fn mempool_run(
        &self,
        cache_size: u32,
        cores: u32,
        bulk: u32,
        keep: u32,
        duration_ns: u64,
    ) -> Result<Vec<LcoreCount>, String> {
        let lcores = cores as usize;
        if lcores == 0 || lcores > MEMPOOL_MAX_CORES {
            return Err(format!("{cores} cores: the shim runs 1 or 2"));
        }
        let mut objects = [0u64; MEMPOOL_MAX_CORES];
        let mut elapsed_ns = [0u64; MEMPOOL_MAX_CORES];
        // SAFETY: plain values, and two out-arrays of MEMPOOL_MAX_CORES >= cores entries
        // that live across the call; the pools exist (mempool_eal_init).
        let rc = unsafe {
            ffi::dpmem_bench_dpdk_mempool_run(
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

    fn malloc(&self, args: &[String], plan: &MallocPlan) -> Result<MallocTimes, String> {
        let n_sizes = plan.sizes.len();
        if plan.malloc_counts.len() != n_sizes || plan.zmalloc_counts.len() != n_sizes {
            return Err("malloc plan: one count per size and batch kind".to_owned());
        }
        let (argc, argv) = leaked_argv(args)?;
        let mut times = MallocTimes {
            malloc_ns: vec![0; n_sizes],
            zmalloc_ns: vec![0; n_sizes],
            memzone_ns: 0,
            churn_ns: 0,
            greatest_free_after_churn: 0,
        };
        // SAFETY: argv holds argc leaked NUL-terminated strings and a null; the size and both
        // count arrays hold n_sizes entries (checked above), as do both output arrays; the
        // other out-pointers point at live u64s.
        let rc = unsafe {
            ffi::dpmem_bench_dpdk_malloc(
                argc,
                argv,
                plan.sizes.as_ptr(),
                plan.malloc_counts.as_ptr(),
                plan.zmalloc_counts.as_ptr(),
                c_uint::try_from(n_sizes).map_err(|_| "too many sizes")?,
                plan.memzone_len,
                plan.memzone_count,
                plan.churn_slots,
                plan.churn_ops,
                times.malloc_ns.as_mut_ptr(),
                times.zmalloc_ns.as_mut_ptr(),
                &mut times.memzone_ns,
                &mut times.churn_ns,
                &mut times.greatest_free_after_churn,
            )
        };
        if rc != 0 {
            return Err(format!("DPDK malloc loops failed: errno {rc}"));
        }
        Ok(times)
    }

    fn mbuf_eal_init(&self, args: &[String], shape: &MbufShape) -> Result<(), String> {
        let (argc, argv) = leaked_argv(args)?;
        // SAFETY: argv holds argc leaked NUL-terminated strings and a null terminator; the
        // rest are plain values.
        let rc = unsafe {
            ffi::dpmem_bench_dpdk_mbuf_init(
                argc,
                argv,
                shape.buffers,
                shape.cache,
                shape.data_room,
                shape.hdr_room,
                shape.burst,
                shape.hdr_len.into(),
                shape.ext_len.into(),
                shape.copy_len,
            )
        };
        if rc == rustix::io::Errno::INVAL.raw_os_error() {
            return Err(
                "rte_eal_init/rte_pktmbuf_pool_create failed, or the shim's burst and packet \
                 sizes are not the workload's: Invalid argument"
                    .to_owned(),
            );
        }
        if rc != 0 {
            return Err(format!(
                "rte_eal_init/rte_pktmbuf_pool_create failed: {}",
                error_text(rc)
            ));
        }
        Ok(())
    }

    fn mbuf_run(&self, row: u32, ops: u64) -> Result<Elapsed, String> {
        let mut elapsed = Elapsed { ns: 0, cycles: 0 };
        // SAFETY: plain values and live out-pointers; the pools exist (mbuf_eal_init).
        let rc = unsafe {
            ffi::dpmem_bench_dpdk_mbuf_run(row, ops, &mut elapsed.ns, &mut elapsed.cycles)
        };
        if rc == rustix::io::Errno::NOENT.raw_os_error() {
            return Err("DPDK: a pool ran out of buffers (ENOENT)".to_owned());
        }
        if rc == rustix::io::Errno::BUSY.raw_os_error() {
            return Err("DPDK: a pool was not full before or after the row".to_owned());
        }
        if rc != 0 {
            return Err(format!("DPDK mbuf row {row} failed: {}", error_text(rc)));
        }
        Ok(elapsed)
    }
}
