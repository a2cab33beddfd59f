//! Threads: CPU affinity, the CPU a thread is running on, and threads started on a stack the
//! caller provides (hugepage memory, for `--huge-worker-stack`).
//!
//! Affinity and `getcpu` go through rustix. `std::thread` cannot run a thread on memory the
//! caller owns, so [`NativeThread`] calls `pthread_create` with `pthread_attr_setstack`
//! through libc, which is the one thing here rustix lacks.

use std::collections::BTreeSet;
use std::ffi::{c_void, CString};
use std::panic::AssertUnwindSafe;

use rustix::io::Errno;
use rustix::thread::CpuSet;

use crate::error::{SysError, SysResult};

/// Number of CPU ids an affinity mask holds here (`CPU_SETSIZE`).
pub const MAX_AFFINITY_CPU: u32 = CpuSet::MAX_CPU as u32;

fn set_text(cpus: &BTreeSet<u32>) -> String {
    let ids: Vec<String> = cpus.iter().map(u32::to_string).collect();
    format!("cpus {}", ids.join(","))
}

fn to_cpu_set(cpus: &BTreeSet<u32>) -> SysResult<CpuSet> {
    let mut set = CpuSet::new();
    for &cpu in cpus {
        if cpu >= MAX_AFFINITY_CPU {
            return Err(SysError::new(
                "sched_setaffinity",
                set_text(cpus),
                Errno::INVAL,
            ));
        }
        set.set(cpu as usize);
    }
    Ok(set)
}

fn from_cpu_set(set: &CpuSet) -> BTreeSet<u32> {
    (0..MAX_AFFINITY_CPU)
        .filter(|&cpu| set.is_set(cpu as usize))
        .collect()
}

/// The CPUs the calling thread may run on.
pub fn current_affinity() -> SysResult<BTreeSet<u32>> {
    rustix::thread::sched_getaffinity(None)
        .map(|set| from_cpu_set(&set))
        .map_err(|e| SysError::new("sched_getaffinity", "calling thread", e))
}

/// Restricts the calling thread to `cpus`. The kernel refuses (`EINVAL`) a set with no CPU
/// that is online and allowed by the thread's cpuset cgroup.
pub fn set_current_affinity(cpus: &BTreeSet<u32>) -> SysResult<()> {
    let set = to_cpu_set(cpus)?;
    rustix::thread::sched_setaffinity(None, &set)
        .map_err(|e| SysError::new("sched_setaffinity", set_text(cpus), e))
}

/// The CPU the calling thread is running on at this instant (`getcpu`).
pub fn current_cpu() -> u32 {
    rustix::thread::sched_getcpu() as u32
}

/// The kernel's id of the calling thread.
pub fn current_tid() -> u32 {
    rustix::thread::gettid().as_raw_nonzero().get() as u32
}

/// Names the calling thread as `ps` and `top` show it (at most 15 bytes are kept).
pub fn set_current_name(name: &str) {
    let short: String = name.chars().take(15).collect();
    if let Ok(c_name) = CString::new(short) {
        // Naming is a convenience for people looking at the process; failure changes nothing.
        let _ = rustix::thread::set_name(&c_name);
    }
}

/// The stack size a thread gets when nobody asks for one (glibc derives it from
/// `RLIMIT_STACK`, typically 8 MiB).
pub fn default_stack_size() -> usize {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    // SAFETY: `attr` is writable storage for one attribute object, which init fills.
    let rc = unsafe { libc::pthread_attr_init(attr.as_mut_ptr()) };
    if rc != 0 {
        return FALLBACK_STACK_SIZE;
    }
    let mut size: libc::size_t = 0;
    // SAFETY: `attr` was initialised by the successful pthread_attr_init above.
    let rc = unsafe { libc::pthread_attr_getstacksize(attr.as_ptr(), &mut size) };
    // SAFETY: `attr` is initialised and destroyed exactly once, here.
    unsafe { libc::pthread_attr_destroy(attr.as_mut_ptr()) };
    if rc != 0 || size == 0 {
        FALLBACK_STACK_SIZE
    } else {
        size
    }
}

/// glibc's default when `RLIMIT_STACK` is unlimited.
const FALLBACK_STACK_SIZE: usize = 8 << 20;

/// The work a native thread runs, boxed so it crosses `pthread_create` as one pointer.
struct StartPacket {
    work: Box<dyn FnOnce() + Send + 'static>,
}

extern "C" fn native_thread_start(arg: *mut c_void) -> *mut c_void {
    // SAFETY: `arg` is the `Box<StartPacket>` leaked by `NativeThread::spawn_on_stack`, which
    // hands it to exactly this thread and never touches it again.
    let packet = unsafe { Box::from_raw(arg.cast::<StartPacket>()) };
    // A panic must not unwind across this `extern "C"` frame (that aborts the process); the
    // work reports its own panics, this only keeps the boundary sound.
    let _ = std::panic::catch_unwind(AssertUnwindSafe(packet.work));
    std::ptr::null_mut()
}

/// A thread started with `pthread_create`, joined explicitly.
#[derive(Debug)]
pub struct NativeThread {
    handle: libc::pthread_t,
    joined: bool,
}

impl NativeThread {
    /// Starts `work` on a new thread whose stack is `[stack, stack + len)`.
    ///
    /// glibc also places the thread's control block and static TLS at the top of that range,
    /// so `len` must comfortably exceed what the work needs (at least `PTHREAD_STACK_MIN`).
    ///
    /// # Safety
    ///
    /// `[stack, stack + len)` must be readable and writable memory, aligned to 16 bytes,
    /// used by nothing else, and it must stay mapped until [`NativeThread::join`] returns.
    pub unsafe fn spawn_on_stack(
        stack: *mut u8,
        len: usize,
        work: Box<dyn FnOnce() + Send + 'static>,
    ) -> SysResult<NativeThread> {
        let target = || format!("stack {:#x}+{len:#x}", stack as usize);
        if len < libc::PTHREAD_STACK_MIN || !(stack as usize).is_multiple_of(16) {
            return Err(SysError::new(
                "pthread_attr_setstack",
                target(),
                Errno::INVAL,
            ));
        }
        let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
        // SAFETY: `attr` is writable storage for one attribute object, which init fills.
        let rc = unsafe { libc::pthread_attr_init(attr.as_mut_ptr()) };
        if rc != 0 {
            return Err(SysError::new(
                "pthread_attr_init",
                target(),
                Errno::from_raw_os_error(rc),
            ));
        }
        // SAFETY: `attr` is initialised; the caller guarantees the stack range is valid,
        // exclusive and outlives the thread.
        let rc = unsafe { libc::pthread_attr_setstack(attr.as_mut_ptr(), stack.cast(), len) };
        let rc = if rc != 0 {
            rc
        } else {
            let packet = Box::into_raw(Box::new(StartPacket { work }));
            let mut handle: libc::pthread_t = 0;
            // SAFETY: `attr` is initialised, `native_thread_start` has the signature pthread
            // expects, and `packet` is a valid leaked box that the new thread takes over.
            let rc = unsafe {
                libc::pthread_create(
                    &mut handle,
                    attr.as_ptr(),
                    native_thread_start,
                    packet.cast(),
                )
            };
            if rc != 0 {
                // SAFETY: the thread was not created, so `packet` is still ours to free.
                drop(unsafe { Box::from_raw(packet) });
            } else {
                // SAFETY: `attr` is initialised and destroyed exactly once.
                unsafe { libc::pthread_attr_destroy(attr.as_mut_ptr()) };
                return Ok(NativeThread {
                    handle,
                    joined: false,
                });
            }
            rc
        };
        // SAFETY: `attr` is initialised and destroyed exactly once.
        unsafe { libc::pthread_attr_destroy(attr.as_mut_ptr()) };
        Err(SysError::new(
            "pthread_create",
            target(),
            Errno::from_raw_os_error(rc),
        ))
    }

    /// Waits for the thread to end. Afterwards its stack may be unmapped.
    pub fn join(mut self) {
        self.join_now();
    }

    fn join_now(&mut self) {
        if !self.joined {
            // SAFETY: `handle` names a thread created by this value and joined at most once
            // (`joined` guards it); the thread's return value is ignored.
            unsafe { libc::pthread_join(self.handle, std::ptr::null_mut()) };
            self.joined = true;
        }
    }
}

impl Drop for NativeThread {
    /// Joining on drop keeps the safety contract of `spawn_on_stack`: the stack's owner drops
    /// the thread before unmapping the stack, so the thread is gone by then.
    fn drop(&mut self) {
        self.join_now();
    }
}
