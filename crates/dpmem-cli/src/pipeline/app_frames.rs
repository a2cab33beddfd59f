//! `--external`: frames the application brings, as MTL's external-frame mode has it. Each
//! stream maps memory of its own (2 MiB hugepages when the kernel has them free, else
//! ordinary pages faulted in at once), registers it for I/O with `DmaMapping`, and lends its
//! frames to the TX session one at a time; the session hands each back through its external
//! "done" and never frees it. The stream writes a frame only when the session does not hold
//! it (`TxSession::is_lent`).

use dpmem::eal::Eal;
use dpmem::frame::{DmaMapping, ExternalFrame, TxSession};

/// Frames each stream lends, in turn.
pub const APP_FRAMES: usize = 2;
const HUGEPAGE: usize = 2 << 20;

/// Memory from `mmap`, unmapped when dropped.
struct AppMemory {
    va: usize,
    len: usize,
    page_size: usize,
}

impl AppMemory {
    fn map(len: usize) -> Result<AppMemory, String> {
        let attempt = |len: usize, extra: libc::c_int| {
            // SAFETY: a new anonymous private mapping at an address of the kernel's choosing
            // touches no memory of ours.
            let va = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE | extra,
                    -1,
                    0,
                )
            };
            (va != libc::MAP_FAILED).then_some(va as usize)
        };
        let huge_len = len.div_ceil(HUGEPAGE) * HUGEPAGE;
        if let Some(va) = attempt(huge_len, libc::MAP_HUGETLB) {
            return Ok(AppMemory {
                va,
                len: huge_len,
                page_size: HUGEPAGE,
            });
        }
        let page = dpmem_sys::mapping::system_page_size();
        let len = len.div_ceil(page) * page;
        attempt(len, 0)
            .map(|va| AppMemory {
                va,
                len,
                page_size: page,
            })
            .ok_or_else(|| {
                format!(
                    "mapping {len} bytes for external frames: {}",
                    std::io::Error::last_os_error()
                )
            })
    }
}

impl Drop for AppMemory {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours and nothing refers to it any more: `AppFrames` drops
        // its `DmaMapping` (and the session its lent frames) first.
        unsafe { libc::munmap(self.va as *mut libc::c_void, self.len) };
    }
}

/// A stream's lent frames: the registration first, so it goes before the memory.
pub struct AppFrames<'eal> {
    mapping: DmaMapping<'eal>,
    /// Held for its drop: unmapped after `mapping` is unregistered.
    _memory: AppMemory,
    frame_len: usize,
    stride: usize,
    next: usize,
}

impl<'eal> AppFrames<'eal> {
    pub fn new(eal: &'eal Eal, frame_len: usize) -> Result<AppFrames<'eal>, String> {
        let stride = frame_len.div_ceil(64) * 64;
        let memory = AppMemory::map(stride * APP_FRAMES)?;
        // SAFETY: the memory is this process's, mapped and resident (MAP_POPULATE) until
        // `memory` drops, after the mapping (field order); its pages do not move (hugepages,
        // or anonymous pages nobody migrates here); and the stream writes a frame only while
        // the session does not hold it (`write`).
        let mapping =
            unsafe { DmaMapping::map_in_pages(eal, memory.va, memory.len, memory.page_size) }
                .map_err(|e| format!("registering external frames: {e}"))?;
        Ok(AppFrames {
            mapping,
            _memory: memory,
            frame_len,
            stride,
            next: 0,
        })
    }

    pub fn mapping(&self) -> &DmaMapping<'eal> {
        &self.mapping
    }

    fn frame(&self, k: usize) -> ExternalFrame {
        self.mapping
            .frame(k * self.stride, self.frame_len, k as u64)
            .expect("APP_FRAMES frames of `stride` bytes were mapped")
    }

    /// The next frame `tx` does not hold, written by `write`; `None` while both are out.
    pub fn next_free(
        &mut self,
        tx: &TxSession<'_>,
        write: impl FnOnce(&mut [u8]),
    ) -> Option<ExternalFrame> {
        let k = (0..APP_FRAMES)
            .map(|i| (self.next + i) % APP_FRAMES)
            .find(|&k| !tx.is_lent(&self.frame(k)))?;
        self.next = (k + 1) % APP_FRAMES;
        let frame = self.frame(k);
        // SAFETY: the frame lies inside our mapping, and the session holds none of its bytes
        // (checked just above, on this thread, which alone lends them), so nothing reads
        // them while they are written.
        let bytes = unsafe { std::slice::from_raw_parts_mut(frame.va as *mut u8, frame.len) };
        write(bytes);
        Some(frame)
    }
}
