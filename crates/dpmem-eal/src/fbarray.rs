//! The occupancy array of a memseg list: one bit per slot, "used" or "free".
//!
//! This is dpmem's counterpart of DPDK's `rte_fbarray` (`eal_common_fbarray.c`), reduced to
//! the part a memseg list needs: the used-mask and its searches. The memseg records
//! themselves live next to it in the list; this module only answers "which slots are taken,
//! and where is the next run of `n` free ones".
//!
//! # Layout in shared memory
//!
//! The array lives in memory that several processes map at the same address, so it is a
//! *view* ([`FbArray`]) over caller-provided bytes, and those bytes hold nothing but plain
//! integers:
//!
//! ```text
//! offset 0   FbArrayHeader { len: u32, used: AtomicU32 }      (8 bytes, 8-aligned)
//! offset 8   AtomicU64 mask word 0    slots   0..63   (bit i = slot 64*w + i, 1 = used)
//! offset 16  AtomicU64 mask word 1    slots  64..127
//! ...        ceil(len / 64) words in all
//! ```
//!
//! Bits at or beyond `len` in the last word are kept zero and are masked out of every search,
//! so they never count as free (nor as used).
//!
//! # Concurrency
//!
//! Mutations ([`FbArray::set_used`], [`FbArray::set_free`]) are meant to be serialised by the
//! caller (the memory hotplug lock), while other threads and processes may read at any time.
//! Every word is therefore an atomic, and the orderings are chosen as follows:
//!
//! * a mutation is a single `fetch_or` / `fetch_and` with `AcqRel`: the *Release* half
//!   publishes whatever the writer prepared for the slot (the memseg record) before marking
//!   it used, and because the read-modify-write returns the previous word, the
//!   already-used / already-free check and the change are one atomic step — even a caller
//!   who forgot the lock cannot make the counter disagree with the bits;
//! * the counter `used` is changed after the bit with `Release`, and read with `Acquire`;
//! * [`FbArray::is_used`] loads with `Acquire`, so a reader who sees a slot used also sees
//!   the record published before it was marked;
//! * searches load with `Relaxed`: they run on every heap growth over up to 65536 slots, a
//!   lock-free search result is only ever a hint (the slot can change right after the
//!   search returns), and a caller who will read the slot's record without holding the lock
//!   confirms it with `is_used` (or an `Acquire` fence) first.
//!
//! Each word is read atomically, but a search over several words is not a snapshot of the
//! whole array while a writer is active; callers who need a consistent answer hold the lock.
//!
//! # Searches
//!
//! All searches work a 64-bit word at a time: a word is loaded, inverted when looking for
//! free slots, masked to the slots of interest, and then `trailing_zeros` / `leading_zeros`
//! (or `trailing_ones` / `leading_ones` for run lengths) find the answer inside the word.
//! Runs of `n` slots are found by carrying the length of the run touching a word's edge into
//! the next word, and, for `n <= 64`, by folding the word onto itself
//! (`m &= m >> s` with doubling `s`) so that bit `p` survives only if `p..p+n` are all set.
//!
//! # Differences from DPDK
//!
//! * Setting a slot that is already used (or freeing one already free) is an error
//!   ([`FbArrayError::AlreadyUsed`], [`FbArrayError::AlreadyFree`]) instead of a silent
//!   success, so double allocation and double free of a memseg show up at once.
//! * Where DPDK returns `-1` with `EINVAL` (start out of range, `n == 0`, `n > len`), the
//!   searches here return `None`, and the run-length searches return `0`.

use dpmem_sys::sync::{AtomicU32, AtomicU64, Ordering};
use std::fmt;
use std::ptr::NonNull;

/// Number of slots in one mask word.
const BITS: u32 = u64::BITS;

/// The fixed part of an occupancy array in shared memory; the mask words follow it.
///
/// It is `repr(C)` and holds only integers, so every process that maps the memory sees the
/// same bytes. It is not constructed directly: [`FbArray::init`] writes it.
#[repr(C, align(8))]
#[derive(Debug)]
pub(crate) struct FbArrayHeader {
    /// Number of slots. Written once by [`FbArray::init`] and never changed afterwards, so
    /// it needs no atomic; views cache it.
    len: u32,
    /// Number of used slots; always equals the number of set bits in the mask words once
    /// the current mutation (if any) has finished.
    used: AtomicU32,
}

/// Why a slot could not be read or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FbArrayError {
    /// The index is not below the array's length (DPDK: `EINVAL`).
    #[error("slot {idx} is out of range for an array of {len} slots")]
    OutOfRange {
        /// The index that was asked for.
        idx: u32,
        /// The array's length.
        len: u32,
    },
    /// The slot was already used (DPDK would silently succeed; here it is `EEXIST`).
    #[error("slot {0} is already used")]
    AlreadyUsed(u32),
    /// The slot was already free (DPDK would silently succeed; here it is `ENOENT`).
    #[error("slot {0} is already free")]
    AlreadyFree(u32),
}

/// A process-local view of an occupancy array that lives in (possibly shared) memory.
///
/// The view holds only the address of the header and a copy of the length; all state is
/// in the memory it points to, so any number of views — in this process or in others that
/// map the memory at any address — see the same slots.
#[derive(Clone)]
pub struct FbArray {
    /// Start of the header; the mask words follow it. Valid for
    /// `bytes_needed(len)` bytes for as long as the view is used (the contract of
    /// [`FbArray::init`] / [`FbArray::attach`]).
    header: NonNull<FbArrayHeader>,
    /// Copy of the header's `len`, which never changes after init.
    len: u32,
}

// SAFETY: the view owns no thread-local state; the memory it points to is only accessed
// through atomics (mask words, `used`) or read as the immutable `len`, so moving the view to
// another thread is sound for as long as the memory outlives it (the init/attach contract).
unsafe impl Send for FbArray {}
// SAFETY: every method takes `&self` and touches the shared memory only through atomic
// operations, so concurrent use from several threads is data-race free.
unsafe impl Sync for FbArray {}

impl fmt::Debug for FbArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FbArray")
            .field("addr", &self.header)
            .field("len", &self.len)
            .field("used", &self.count_used())
            .finish()
    }
}

/// Number of mask words for `len` slots.
const fn word_count(len: u32) -> usize {
    (len as usize).div_ceil(BITS as usize)
}

/// Word index and bit position of slot `idx`.
const fn split(idx: u32) -> (usize, u32) {
    ((idx / BITS) as usize, idx % BITS)
}

/// Bits `0..=bit` set.
const fn mask_upto(bit: u32) -> u64 {
    u64::MAX >> (BITS - 1 - bit)
}

/// Keep only the bits `p` of `w` for which bits `p..p + n` are all set (bits above 63
/// count as clear). `n` must be in `1..=64`.
fn runs_starting_at(mut w: u64, n: u32) -> u64 {
    let mut have = 1;
    while have < n && w != 0 {
        let s = have.min(n - have);
        w &= w >> s;
        have += s;
    }
    w
}

/// Keep only the bits `p` of `w` for which bits `p + 1 - n..=p` are all set (bits below 0
/// count as clear). `n` must be in `1..=64`.
fn runs_ending_at(mut w: u64, n: u32) -> u64 {
    let mut have = 1;
    while have < n && w != 0 {
        let s = have.min(n - have);
        w &= w << s;
        have += s;
    }
    w
}

impl FbArray {
    /// Bytes of memory an array of `len` slots occupies: the header and `ceil(len / 64)`
    /// mask words. Always a multiple of 8.
    pub const fn bytes_needed(len: u32) -> usize {
        size_of::<FbArrayHeader>() + word_count(len) * size_of::<AtomicU64>()
    }

    /// Lay out a new, all-free array of `len` slots in `mem` and return a view of it.
    ///
    /// `len` may be 0 (an array with no slots, whose searches all fail).
    ///
    /// # Panics
    ///
    /// If `mem` is null or not 8-byte aligned.
    ///
    /// # Safety
    ///
    /// * `mem` must be valid for reads and writes of [`FbArray::bytes_needed`]`(len)` bytes,
    ///   and must stay valid (mapped, not freed, not reused for anything else) for as long
    ///   as the returned view or any clone of it is used;
    /// * while `init` runs, nothing else (no other view, thread or process) may access
    ///   those bytes, since they are overwritten with plain stores.
    pub unsafe fn init(mem: *mut u8, len: u32) -> FbArray {
        let header = Self::checked_header(mem);
        // SAFETY: the caller guarantees `mem` is valid for `bytes_needed(len)` bytes and is
        // not accessed by anyone else during init; `checked_header` checked it is non-null.
        unsafe { mem.write_bytes(0, Self::bytes_needed(len)) };
        // SAFETY: `header` is aligned (checked) and the first `size_of::<FbArrayHeader>()`
        // bytes are part of the region the caller guarantees is valid and unshared.
        unsafe {
            header.as_ptr().write(FbArrayHeader {
                len,
                used: AtomicU32::new(0),
            })
        };
        FbArray { header, len }
    }

    /// Return a view of an array that [`FbArray::init`] laid out earlier in `mem` (possibly
    /// in another process, at another address); the length is read from the header.
    ///
    /// # Panics
    ///
    /// If `mem` is null or not 8-byte aligned.
    ///
    /// # Safety
    ///
    /// * `mem` must point to an array initialised by [`FbArray::init`], and that init must
    ///   happen-before this call (for another process: the header was written before the
    ///   memory was handed over);
    /// * `mem` must be valid for reads and writes of `bytes_needed(len)` bytes and stay
    ///   valid for as long as the returned view or any clone of it is used;
    /// * nobody may re-`init` the memory while views of it are in use.
    pub unsafe fn attach(mem: *mut u8) -> FbArray {
        let header = Self::checked_header(mem);
        // SAFETY: the caller guarantees `mem` holds an initialised header, which is
        // aligned (checked) and whose `len` field is never written after init.
        let len = unsafe { (*header.as_ptr()).len };
        FbArray { header, len }
    }

    fn checked_header(mem: *mut u8) -> NonNull<FbArrayHeader> {
        let header = NonNull::new(mem.cast::<FbArrayHeader>()).expect("fbarray memory is null");
        assert!(
            header.as_ptr().is_aligned(),
            "fbarray memory {mem:p} is not 8-byte aligned"
        );
        header
    }

    #[inline]
    fn header(&self) -> &FbArrayHeader {
        // SAFETY: `header` points to an initialised header that stays valid while the view
        // is used (init/attach contract); its only mutable field is atomic.
        unsafe { self.header.as_ref() }
    }

    #[inline]
    fn words(&self) -> &[AtomicU64] {
        // The mask words start right after the header (`wrapping_add` stays inside the
        // region, so it computes the same address as `add` without needing `unsafe`).
        let first = self.header.as_ptr().wrapping_add(1).cast::<AtomicU64>();
        // SAFETY: the header starts a region of `bytes_needed(len)` bytes valid for the
        // view's lifetime (init/attach contract), so the `word_count(len)` words after it
        // are in bounds; they are 8-aligned because the 8-byte header is, were initialised
        // by `init`, and are only ever accessed atomically, so shared references are sound
        // even while other threads or processes change them.
        unsafe { std::slice::from_raw_parts(first, word_count(self.len)) }
    }

    /// Number of slots.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the array has no slots at all (`len() == 0`). To ask whether no slot is in
    /// use, compare [`FbArray::count_used`] with 0.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of used slots.
    pub fn count_used(&self) -> u32 {
        self.header().used.load(Ordering::Acquire)
    }

    #[inline]
    fn check(&self, idx: u32) -> Result<(usize, u64), FbArrayError> {
        if idx >= self.len {
            return Err(FbArrayError::OutOfRange { idx, len: self.len });
        }
        let (w, b) = split(idx);
        Ok((w, 1u64 << b))
    }

    /// Whether slot `idx` is used.
    #[inline]
    pub fn is_used(&self, idx: u32) -> Result<bool, FbArrayError> {
        let (w, bit) = self.check(idx)?;
        Ok(self.words()[w].load(Ordering::Acquire) & bit != 0)
    }

    /// Mark slot `idx` used. Fails, changing nothing, if it is out of range or already used.
    pub fn set_used(&self, idx: u32) -> Result<(), FbArrayError> {
        let (w, bit) = self.check(idx)?;
        let prev = self.words()[w].fetch_or(bit, Ordering::AcqRel);
        if prev & bit != 0 {
            return Err(FbArrayError::AlreadyUsed(idx));
        }
        self.header().used.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Mark slot `idx` free. Fails, changing nothing, if it is out of range or already free.
    pub fn set_free(&self, idx: u32) -> Result<(), FbArrayError> {
        let (w, bit) = self.check(idx)?;
        let prev = self.words()[w].fetch_and(!bit, Ordering::AcqRel);
        if prev & bit == 0 {
            return Err(FbArrayError::AlreadyFree(idx));
        }
        self.header().used.fetch_sub(1, Ordering::Release);
        Ok(())
    }

    /// Word `w` as a mask of the slots of the wanted kind: set bits are used slots if
    /// `used`, free slots otherwise; bits at or beyond `len` are always clear.
    fn kind_word(&self, w: usize, used: bool) -> u64 {
        let raw = self.words()[w].load(Ordering::Relaxed);
        let mut kind = if used { raw } else { !raw };
        let (last, tail) = split(self.len);
        if w == last && tail != 0 {
            kind &= mask_upto(tail - 1);
        }
        kind
    }

    fn find_next(&self, start: u32, used: bool) -> Option<u32> {
        if start >= self.len {
            return None;
        }
        let (mut w, b) = split(start);
        // Ignore the slots below `start` in the first word.
        let mut kind = self.kind_word(w, used) & (u64::MAX << b);
        let n_words = word_count(self.len);
        loop {
            if kind != 0 {
                return Some(w as u32 * BITS + kind.trailing_zeros());
            }
            w += 1;
            if w >= n_words {
                return None;
            }
            kind = self.kind_word(w, used);
        }
    }

    fn find_prev(&self, start: u32, used: bool) -> Option<u32> {
        if start >= self.len {
            return None;
        }
        let (mut w, b) = split(start);
        // Ignore the slots above `start` in the first word.
        let mut kind = self.kind_word(w, used) & mask_upto(b);
        loop {
            if kind != 0 {
                return Some(w as u32 * BITS + (BITS - 1 - kind.leading_zeros()));
            }
            if w == 0 {
                return None;
            }
            w -= 1;
            kind = self.kind_word(w, used);
        }
    }

    fn find_contig(&self, start: u32, used: bool) -> u32 {
        if start >= self.len {
            return 0;
        }
        let (first, b) = split(start);
        // Shifting drops the slots below `start`; zeros shifted in at the top end the run
        // there, so a run reaching the word's end is recognised by its length.
        let head = (self.kind_word(first, used) >> b).trailing_ones();
        if head < BITS - b {
            return head;
        }
        let mut run = head;
        // Bits beyond `len` are clear in `kind_word`, so the run cannot pass the end.
        for w in first + 1..word_count(self.len) {
            let ones = self.kind_word(w, used).trailing_ones();
            run += ones;
            if ones < BITS {
                break;
            }
        }
        run
    }

    fn find_rev_contig(&self, start: u32, used: bool) -> u32 {
        if start >= self.len {
            return 0;
        }
        let (first, b) = split(start);
        // Shift slot `start` to the top bit; zeros shifted in at the bottom end the run.
        let head = (self.kind_word(first, used) << (BITS - 1 - b)).leading_ones();
        if head < b + 1 {
            return head;
        }
        let mut run = head;
        for w in (0..first).rev() {
            let ones = self.kind_word(w, used).leading_ones();
            run += ones;
            if ones < BITS {
                break;
            }
        }
        run
    }

    fn find_next_n(&self, start: u32, n: u32, used: bool) -> Option<u32> {
        if start >= self.len || n == 0 || n > self.len - start {
            return None;
        }
        let (first, b) = split(start);
        // The run of wanted slots that reaches the top of the previous word.
        let mut carry_start = 0;
        let mut carry_len = 0;
        for w in first..word_count(self.len) {
            let mut kind = self.kind_word(w, used);
            if w == first {
                kind &= u64::MAX << b;
            }
            let base = w as u32 * BITS;
            if carry_len > 0 {
                let ones = kind.trailing_ones();
                if carry_len + ones >= n {
                    return Some(carry_start);
                }
                if ones == BITS {
                    carry_len += BITS;
                    continue;
                }
            }
            // A run that fits entirely in this word; a run starting at bit 0 here was
            // already measured as the continuation of the carried run, and was too short.
            if n <= BITS {
                let starts = runs_starting_at(kind, n);
                if starts != 0 {
                    return Some(base + starts.trailing_zeros());
                }
            }
            // Carry the run touching the top of the word (all of it, if the word is full
            // and no run was being carried) into the next word.
            carry_len = kind.leading_ones();
            carry_start = base + BITS - carry_len;
        }
        None
    }

    fn find_prev_n(&self, start: u32, n: u32, used: bool) -> Option<u32> {
        if start >= self.len || n == 0 || n > start + 1 {
            return None;
        }
        let (first, b) = split(start);
        // The run of wanted slots that reaches the bottom of the previous (higher) word,
        // and the index of its highest slot.
        let mut carry_end = 0;
        let mut carry_len = 0;
        for w in (0..=first).rev() {
            let mut kind = self.kind_word(w, used);
            if w == first {
                kind &= mask_upto(b);
            }
            let base = w as u32 * BITS;
            if carry_len > 0 {
                let ones = kind.leading_ones();
                if carry_len + ones >= n {
                    return Some(carry_end + 1 - n);
                }
                if ones == BITS {
                    carry_len += BITS;
                    continue;
                }
            }
            if n <= BITS {
                let ends = runs_ending_at(kind, n);
                if ends != 0 {
                    let end = base + (BITS - 1 - ends.leading_zeros());
                    return Some(end + 1 - n);
                }
            }
            carry_len = kind.trailing_ones();
            carry_end = (base + carry_len).wrapping_sub(1);
        }
        None
    }

    fn find_biggest(&self, start: u32, used: bool) -> Option<(u32, u32)> {
        let mut best: Option<(u32, u32)> = None;
        let mut pos = start;
        while pos < self.len {
            // Nothing left can beat the best run already found.
            if best.is_some_and(|(_, len)| len >= self.len - pos) {
                break;
            }
            let Some(first) = self.find_next(pos, used) else {
                break;
            };
            let run = self.find_contig(first, used);
            if run > best.map_or(0, |(_, len)| len) {
                best = Some((first, run));
            }
            // A concurrent writer may have changed the slot between the two searches; step
            // past it anyway so the scan always progresses.
            pos = first + run.max(1);
        }
        best
    }

    fn find_rev_biggest(&self, start: u32, used: bool) -> Option<(u32, u32)> {
        if start >= self.len {
            return None;
        }
        let mut best: Option<(u32, u32)> = None;
        let mut pos = start;
        loop {
            if best.is_some_and(|(_, len)| len > pos) {
                break;
            }
            let Some(last) = self.find_prev(pos, used) else {
                break;
            };
            let run = self.find_rev_contig(last, used).max(1);
            let first = last + 1 - run;
            if run > best.map_or(0, |(_, len)| len) {
                best = Some((first, run));
            }
            if first == 0 {
                break;
            }
            pos = first - 1;
        }
        best
    }

    /// Lowest free slot at or above `start`; `None` if there is none or `start >= len`.
    pub fn find_next_free(&self, start: u32) -> Option<u32> {
        self.find_next(start, false)
    }

    /// Lowest used slot at or above `start`; `None` if there is none or `start >= len`.
    pub fn find_next_used(&self, start: u32) -> Option<u32> {
        self.find_next(start, true)
    }

    /// Highest free slot at or below `start`; `None` if there is none or `start >= len`.
    pub fn find_prev_free(&self, start: u32) -> Option<u32> {
        self.find_prev(start, false)
    }

    /// Highest used slot at or below `start`; `None` if there is none or `start >= len`.
    pub fn find_prev_used(&self, start: u32) -> Option<u32> {
        self.find_prev(start, true)
    }

    /// First index of the lowest run of `n` free slots lying entirely at or above `start`.
    ///
    /// `None` if there is no such run, or (DPDK's `EINVAL` cases) if `start >= len`,
    /// `n == 0` or `n > len`.
    pub fn find_next_n_free(&self, start: u32, n: u32) -> Option<u32> {
        self.find_next_n(start, n, false)
    }

    /// First index of the lowest run of `n` used slots lying entirely at or above `start`;
    /// `None` as for [`FbArray::find_next_n_free`].
    pub fn find_next_n_used(&self, start: u32, n: u32) -> Option<u32> {
        self.find_next_n(start, n, true)
    }

    /// Searching downward from `start`: the first (lowest) index of the highest run of `n`
    /// free slots that ends at or below `start`, i.e. the largest `i` with `i + n - 1 <=
    /// start` and slots `i..i + n` all free.
    ///
    /// `None` if there is no such run, or (DPDK's `EINVAL` cases) if `start >= len`,
    /// `n == 0` or `n > len`.
    pub fn find_prev_n_free(&self, start: u32, n: u32) -> Option<u32> {
        self.find_prev_n(start, n, false)
    }

    /// As [`FbArray::find_prev_n_free`], for used slots.
    pub fn find_prev_n_used(&self, start: u32, n: u32) -> Option<u32> {
        self.find_prev_n(start, n, true)
    }

    /// Length of the run of free slots beginning at `start` and going up; 0 if `start` is
    /// used or `start >= len`.
    pub fn find_contig_free(&self, start: u32) -> u32 {
        self.find_contig(start, false)
    }

    /// Length of the run of used slots beginning at `start` and going up; 0 if `start` is
    /// free or `start >= len`.
    pub fn find_contig_used(&self, start: u32) -> u32 {
        self.find_contig(start, true)
    }

    /// Length of the run of free slots ending at `start` and going down; 0 if `start` is
    /// used or `start >= len`.
    pub fn find_rev_contig_free(&self, start: u32) -> u32 {
        self.find_rev_contig(start, false)
    }

    /// Length of the run of used slots ending at `start` and going down; 0 if `start` is
    /// free or `start >= len`.
    pub fn find_rev_contig_used(&self, start: u32) -> u32 {
        self.find_rev_contig(start, true)
    }

    /// The longest run of free slots within `start..len`, as `(first index, length)`; a run
    /// that begins below `start` counts only from `start`. Ties go to the lowest run.
    /// `None` if there is no free slot there or `start >= len`.
    pub fn find_biggest_free(&self, start: u32) -> Option<(u32, u32)> {
        self.find_biggest(start, false)
    }

    /// As [`FbArray::find_biggest_free`], for used slots.
    pub fn find_biggest_used(&self, start: u32) -> Option<(u32, u32)> {
        self.find_biggest(start, true)
    }

    /// The longest run of free slots within `0..=start`, as `(first index, length)`; a run
    /// that continues above `start` counts only up to `start`. Ties go to the highest run
    /// (the first one met going down, as in DPDK). `None` if there is no free slot there or
    /// `start >= len`.
    pub fn find_rev_biggest_free(&self, start: u32) -> Option<(u32, u32)> {
        self.find_rev_biggest(start, false)
    }

    /// As [`FbArray::find_rev_biggest_free`], for used slots.
    pub fn find_rev_biggest_used(&self, start: u32) -> Option<(u32, u32)> {
        self.find_rev_biggest(start, true)
    }

    /// The used slots, in ascending order. Each word is read once, so a concurrent writer
    /// may or may not be seen, but no index is reported twice.
    pub fn iter_used(&self) -> impl Iterator<Item = u32> + '_ {
        UsedSlots {
            array: self,
            word: 0,
            bits: 0,
        }
    }

    /// The runs of used slots, in ascending order, as `(first index, length)`.
    pub fn runs_used(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let mut pos = 0;
        std::iter::from_fn(move || loop {
            let first = self.find_next_used(pos)?;
            let run = self.find_contig_used(first);
            // A concurrent writer may have freed `first` between the two searches.
            pos = first + run.max(1);
            if run > 0 {
                return Some((first, run));
            }
        })
    }
}

/// Iterator behind [`FbArray::iter_used`]: walks the mask a word at a time, clearing the
/// lowest set bit of a private copy of the current word.
#[derive(Debug)]
struct UsedSlots<'a> {
    array: &'a FbArray,
    /// Index of the next word to load.
    word: usize,
    /// Used slots of word `word - 1` not yet reported.
    bits: u64,
}

impl Iterator for UsedSlots<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let n_words = word_count(self.array.len);
        while self.bits == 0 {
            if self.word >= n_words {
                return None;
            }
            self.bits = self.array.kind_word(self.word, true);
            self.word += 1;
        }
        let bit = self.bits.trailing_zeros();
        self.bits &= self.bits - 1;
        Some((self.word as u32 - 1) * BITS + bit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Heap memory for an array of `len` slots, 8-aligned because it is made of `u64`s.
    fn buffer(len: u32) -> Vec<u64> {
        vec![u64::MAX; FbArray::bytes_needed(len) / 8]
    }

    fn array(buf: &mut [u64], len: u32) -> FbArray {
        assert!(buf.len() * 8 >= FbArray::bytes_needed(len));
        // SAFETY: `buf` is 8-aligned, large enough (asserted), outlives the view in every
        // test, and nothing else touches it during init.
        unsafe { FbArray::init(buf.as_mut_ptr().cast(), len) }
    }

    fn set_range(a: &FbArray, range: std::ops::Range<u32>) {
        for i in range {
            a.set_used(i).unwrap();
        }
    }

    #[test]
    fn layout() {
        assert_eq!(size_of::<FbArrayHeader>(), 8);
        assert_eq!(align_of::<FbArrayHeader>(), 8);
        assert_eq!(FbArray::bytes_needed(0), 8);
        assert_eq!(FbArray::bytes_needed(1), 16);
        assert_eq!(FbArray::bytes_needed(64), 16);
        assert_eq!(FbArray::bytes_needed(65), 24);
        assert_eq!(FbArray::bytes_needed(8192), 8 + 8192 / 8);
        assert_eq!(FbArray::bytes_needed(u32::MAX), 8 + (1usize << 26) * 8);
    }

    #[test]
    fn init_zeroes_dirty_memory() {
        for len in [1, 63, 64, 65, 8192] {
            let mut buf = buffer(len);
            let a = array(&mut buf, len);
            assert_eq!(a.len(), len);
            assert_eq!(a.count_used(), 0);
            assert_eq!(a.find_next_used(0), None);
            assert_eq!(a.find_next_free(0), Some(0));
            assert_eq!(a.find_prev_free(len - 1), Some(len - 1));
            assert_eq!(a.find_contig_free(0), len);
            assert_eq!(a.find_rev_contig_free(len - 1), len);
            assert_eq!(a.find_biggest_free(0), Some((0, len)));
            assert_eq!(a.find_rev_biggest_free(len - 1), Some((0, len)));
            assert_eq!(a.find_next_n_free(0, len), Some(0));
            assert_eq!(a.find_prev_n_free(len - 1, len), Some(0));
            assert_eq!(a.iter_used().count(), 0);
        }
    }

    #[test]
    fn debug_output_names_the_length_and_the_slots_in_use() {
        let mut buf = buffer(100);
        let a = array(&mut buf, 100);
        set_range(&a, 10..13);
        let shown = format!("{a:?}");
        assert!(shown.starts_with("FbArray {"), "{shown}");
        assert!(shown.contains("len: 100"), "{shown}");
        assert!(shown.contains("used: 3"), "{shown}");
    }

    #[test]
    fn empty_array() {
        let mut buf = buffer(0);
        let a = array(&mut buf, 0);
        assert!(a.is_empty());
        assert_eq!(a.find_next_free(0), None);
        assert_eq!(a.find_prev_free(0), None);
        assert_eq!(a.find_contig_free(0), 0);
        assert_eq!(a.find_biggest_free(0), None);
        assert_eq!(a.find_rev_biggest_free(0), None);
        assert_eq!(a.find_next_n_free(0, 1), None);
        assert_eq!(
            a.set_used(0),
            Err(FbArrayError::OutOfRange { idx: 0, len: 0 })
        );
        assert_eq!(a.runs_used().count(), 0);
    }

    #[test]
    fn len_one() {
        let mut buf = buffer(1);
        let a = array(&mut buf, 1);
        assert!(!a.is_empty());
        assert_eq!(a.is_used(0), Ok(false));
        assert_eq!(
            a.is_used(1),
            Err(FbArrayError::OutOfRange { idx: 1, len: 1 })
        );
        a.set_used(0).unwrap();
        assert_eq!(a.set_used(0), Err(FbArrayError::AlreadyUsed(0)));
        assert_eq!(a.count_used(), 1);
        assert_eq!(a.find_next_free(0), None);
        assert_eq!(a.find_prev_free(0), None);
        assert_eq!(a.find_next_used(0), Some(0));
        assert_eq!(a.find_next_n_used(0, 1), Some(0));
        assert_eq!(a.find_next_n_used(0, 2), None);
        assert_eq!(a.find_biggest_used(0), Some((0, 1)));
        assert_eq!(a.find_biggest_free(0), None);
        a.set_free(0).unwrap();
        assert_eq!(a.set_free(0), Err(FbArrayError::AlreadyFree(0)));
        assert_eq!(a.count_used(), 0);
    }

    #[test]
    fn tail_bits_never_count_as_free() {
        for len in [63, 65, 100, 127] {
            let mut buf = buffer(len);
            let a = array(&mut buf, len);
            set_range(&a, 0..len);
            assert_eq!(a.count_used(), len);
            assert_eq!(a.find_next_free(0), None);
            assert_eq!(a.find_prev_free(len - 1), None);
            assert_eq!(a.find_biggest_free(0), None);
            assert_eq!(a.find_contig_used(0), len);
            assert_eq!(a.find_contig_used(len - 1), 1);
            assert_eq!(a.find_rev_contig_used(len - 1), len);
            a.set_free(len - 1).unwrap();
            assert_eq!(a.find_next_free(0), Some(len - 1));
            assert_eq!(a.find_next_n_free(0, 2), None);
            assert_eq!(a.find_contig_free(len - 1), 1);
            assert_eq!(a.find_biggest_free(0), Some((len - 1, 1)));
        }
    }

    #[test]
    fn runs_across_word_boundaries() {
        let len = 300;
        let mut buf = buffer(len);
        let a = array(&mut buf, len);
        // Used: 60..70 (crosses 64), 120..260 (covers word 2 entirely), 299.
        set_range(&a, 60..70);
        set_range(&a, 120..260);
        a.set_used(299).unwrap();
        assert_eq!(
            a.runs_used().collect::<Vec<_>>(),
            [(60, 10), (120, 140), (299, 1)]
        );
        assert_eq!(a.find_contig_used(60), 10);
        assert_eq!(a.find_contig_used(63), 7);
        assert_eq!(a.find_rev_contig_used(69), 10);
        assert_eq!(a.find_rev_contig_used(64), 5);
        assert_eq!(a.find_contig_used(120), 140);
        assert_eq!(a.find_rev_contig_used(259), 140);
        assert_eq!(a.find_next_n_used(0, 10), Some(60));
        assert_eq!(a.find_next_n_used(0, 11), Some(120));
        assert_eq!(a.find_next_n_used(61, 10), Some(120));
        assert_eq!(a.find_next_n_used(0, 140), Some(120));
        assert_eq!(a.find_next_n_used(0, 141), None);
        assert_eq!(a.find_prev_n_used(299, 140), Some(120));
        assert_eq!(a.find_prev_n_used(299, 2), Some(258));
        assert_eq!(a.find_prev_n_used(119, 5), Some(65));
        assert_eq!(a.find_prev_n_used(68, 10), None);
        assert_eq!(a.find_next_n_free(0, 60), Some(0));
        assert_eq!(a.find_next_n_free(1, 60), None);
        assert_eq!(a.find_next_n_free(0, 50), Some(0));
        assert_eq!(a.find_next_n_free(11, 50), Some(70));
        assert_eq!(a.find_prev_n_free(298, 39), Some(260));
        assert_eq!(a.find_prev_n_free(298, 40), Some(80));
        assert_eq!(a.find_biggest_used(0), Some((120, 140)));
        assert_eq!(a.find_biggest_free(0), Some((0, 60)));
        assert_eq!(a.find_biggest_free(30), Some((70, 50)));
        assert_eq!(a.find_rev_biggest_free(299), Some((0, 60)));
        assert_eq!(a.find_rev_biggest_free(100), Some((0, 60)));
        assert_eq!(a.find_rev_biggest_free(50), Some((0, 51)));
        assert_eq!(a.find_rev_biggest_used(200), Some((120, 81)));
        assert_eq!(a.iter_used().count(), 151);
    }

    #[test]
    fn biggest_keeps_its_answer_when_the_kind_runs_out() {
        let len = 10;
        let mut buf = buffer(len);
        let a = array(&mut buf, len);
        set_range(&a, 3..len);
        // After the free run 0..3 the forward scan meets no more free slots.
        assert_eq!(a.find_biggest_free(0), Some((0, 3)));
        assert_eq!(a.find_rev_biggest_used(9), Some((3, 7)));
        a.set_free(9).unwrap();
        assert_eq!(a.find_biggest_used(0), Some((3, 6)));
        // Ties: forward keeps the lowest run, reverse the highest.
        // Used: 0..2, 3..5, 6..8.
        a.set_free(5).unwrap();
        a.set_free(8).unwrap();
        a.set_used(0).unwrap();
        a.set_used(1).unwrap();
        assert_eq!(a.find_biggest_used(0), Some((0, 2)));
        assert_eq!(a.find_rev_biggest_used(9), Some((6, 2)));
    }

    #[test]
    fn start_at_last_slot() {
        let len = 65;
        let mut buf = buffer(len);
        let a = array(&mut buf, len);
        assert_eq!(a.find_next_free(len - 1), Some(len - 1));
        assert_eq!(a.find_next_n_free(len - 1, 1), Some(len - 1));
        assert_eq!(a.find_next_n_free(len - 1, 2), None);
        assert_eq!(a.find_prev_n_free(len - 1, 2), Some(len - 2));
        assert_eq!(a.find_contig_free(len - 1), 1);
        assert_eq!(a.find_biggest_free(len - 1), Some((len - 1, 1)));
        assert_eq!(a.find_next_free(len), None);
        assert_eq!(a.find_prev_free(len), None);
        assert_eq!(a.find_contig_free(len), 0);
        assert_eq!(a.find_rev_contig_free(len), 0);
        assert_eq!(a.find_biggest_free(len), None);
        assert_eq!(a.find_rev_biggest_free(len), None);
    }

    #[test]
    fn n_zero_or_too_big_is_none() {
        let mut buf = buffer(64);
        let a = array(&mut buf, 64);
        assert_eq!(a.find_next_n_free(0, 0), None);
        assert_eq!(a.find_prev_n_free(63, 0), None);
        assert_eq!(a.find_next_n_free(0, 65), None);
        assert_eq!(a.find_prev_n_free(63, 65), None);
        assert_eq!(a.find_next_n_free(0, 64), Some(0));
        assert_eq!(a.find_prev_n_free(63, 64), Some(0));
        assert_eq!(a.find_prev_n_free(62, 64), None);
    }

    #[test]
    fn large_array() {
        let len = 8192;
        let mut buf = buffer(len);
        let a = array(&mut buf, len);
        // Every other slot used: no free run longer than 1.
        for i in (0..len).step_by(2) {
            a.set_used(i).unwrap();
        }
        assert_eq!(a.count_used(), len / 2);
        assert_eq!(a.find_next_n_free(0, 2), None);
        assert_eq!(a.find_next_n_free(0, 1), Some(1));
        assert_eq!(a.find_prev_n_free(len - 1, 1), Some(len - 1));
        assert_eq!(a.find_biggest_free(0), Some((1, 1)));
        assert_eq!(a.find_rev_biggest_free(len - 1), Some((len - 1, 1)));
        a.set_free(4000).unwrap();
        assert_eq!(a.find_next_n_free(0, 3), Some(3999));
        assert_eq!(a.find_prev_n_free(len - 1, 3), Some(3999));
        assert_eq!(a.find_biggest_free(0), Some((3999, 3)));
        assert_eq!(a.iter_used().nth(2000), Some(4002));
    }

    #[test]
    fn two_views_share_state() {
        let len = 130;
        let mut buf = buffer(len);
        let a = array(&mut buf, len);
        // SAFETY: `buf` holds an array initialised just above and outlives both views.
        let b = unsafe { FbArray::attach(buf.as_mut_ptr().cast()) };
        assert_eq!(b.len(), len);
        a.set_used(5).unwrap();
        b.set_used(129).unwrap();
        assert_eq!(b.is_used(5), Ok(true));
        assert_eq!(a.is_used(129), Ok(true));
        assert_eq!(a.count_used(), 2);
        assert_eq!(b.count_used(), 2);
        assert_eq!(b.set_used(5), Err(FbArrayError::AlreadyUsed(5)));
        a.set_free(129).unwrap();
        assert_eq!(b.iter_used().collect::<Vec<_>>(), [5]);
    }
}
