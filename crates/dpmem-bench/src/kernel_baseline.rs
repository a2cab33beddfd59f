//! The floor under every `init` figure: what the kernel itself spends to hand out 1 GiB of
//! 2 MiB hugepages, zeroed and mapped.
//!
//! Whatever an EAL does, it cannot map hugepage memory faster than the kernel allocates and
//! clears it, so `init` rows are read against this: create a file on hugetlbfs, `fallocate`
//! the whole size (the kernel allocates and zeroes every page here), `mmap` it
//! `MAP_SHARED | MAP_POPULATE` (page tables filled, no faults later). The two-thread variant
//! splits the size over two files, one per thread, since hugetlbfs serializes `fallocate`
//! on one inode; it shows how much a parallel page-zeroing EAL could gain.
//!
//! Only allocation and mapping are timed; unmapping and unlinking happen after the clock
//! stops, as an EAL's init does not include giving memory back.

use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use rustix::fs::{FallocateFlags, Mode, OFlags};
use rustix::mm::{MapFlags, ProtFlags};

/// A hugetlbfs file that is created, filled and mapped, and torn down on drop.
struct MappedHugeFile {
    path: PathBuf,
    addr: *mut c_void,
    len: usize,
}

impl MappedHugeFile {
    /// Create `path`, allocate `len` bytes of hugepages in it and map them populated.
    fn create(path: PathBuf, len: u64) -> Result<Self, String> {
        let map_len = usize::try_from(len).map_err(|_| "size does not fit usize")?;
        let fd = rustix::fs::open(
            &path,
            OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
        // From here on the file exists: dropping `file` unlinks it on every error path.
        let mut file = MappedHugeFile {
            path,
            addr: std::ptr::null_mut(),
            len: map_len,
        };
        rustix::fs::fallocate(&fd, FallocateFlags::empty(), 0, len).map_err(|e| {
            format!(
                "fallocate {} MiB on {}: {e}",
                len >> 20,
                file.path.display()
            )
        })?;
        // SAFETY: a fresh mapping at a kernel-chosen address (null hint, no MAP_FIXED), so no
        // existing Rust memory is replaced; the fd covers `len` bytes after fallocate.
        let addr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                map_len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED | MapFlags::POPULATE,
                &fd,
                0,
            )
        }
        .map_err(|e| format!("mmap {} MiB populated: {e}", len >> 20))?;
        file.addr = addr;
        // The mapping keeps the pages; the fd is not needed any more.
        drop(fd);
        Ok(file)
    }
}

impl Drop for MappedHugeFile {
    fn drop(&mut self) {
        if !self.addr.is_null() {
            // SAFETY: addr/len is exactly the mapping made in `create`, and no reference into
            // it was ever handed out, so nothing can observe it going away.
            let _ = unsafe { rustix::mm::munmap(self.addr, self.len) };
        }
        let _ = rustix::fs::unlink(&self.path);
    }
}

/// Time to allocate, zero and map `total` bytes of hugepages on `mount` with `threads`
/// threads, each doing `total / threads` in its own file.
pub fn measure(mount: &Path, prefix: &str, total: u64, threads: usize) -> Result<Duration, String> {
    let threads = threads.max(1);
    let share = total / threads as u64;
    // All workers and the timing thread start together, and meet again once every worker
    // has its memory mapped: the clock covers exactly the parallel part.
    let start = Barrier::new(threads + 1);
    let done = Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let path = mount.join(format!("{prefix}kernel-{}-{t}", std::process::id()));
                let (start, done) = (&start, &done);
                scope.spawn(move || {
                    start.wait();
                    let mapped = MappedHugeFile::create(path, share);
                    done.wait();
                    // Teardown (drop of `mapped`) happens here, after the clock stopped.
                    mapped.map(|_| ())
                })
            })
            .collect();
        start.wait();
        let t0 = Instant::now();
        done.wait();
        let elapsed = t0.elapsed();
        for w in workers {
            w.join().map_err(|_| "kernel baseline thread panicked")??;
        }
        Ok(elapsed)
    })
}
