//! Valgrind client requests: telling memcheck which bytes of hugepage memory a program may touch.
//!
//! Memcheck watches every load and store of a program running under valgrind, but it only knows
//! about blocks that the C library's `malloc` hands out. dpmem's heaps and pools carve their
//! blocks out of memory they mapped themselves, which memcheck sees as one big defined mapping:
//! a read of a freed heap block or a write past the end of a pool object goes unnoticed. Client
//! requests fix that. A program announces, for example, "these 256 bytes are a new block, not
//! yet written" or "this block is gone, nobody may touch it", and memcheck then reports
//! accesses that break the announcement, with the stack of the access and of the allocation or
//! free that the address belongs to.
//!
//! # How a request reaches valgrind
//!
//! Valgrind runs the program on a synthetic CPU. A request is an instruction sequence that
//! does nothing on real hardware and that valgrind's translator recognises: on x86-64, four
//! rotations of `rdi` whose amounts add up to 128 (a multiple of 64, so `rdi` ends where it
//! started) followed by `xchg rbx, rbx` (which exchanges a register with itself). `rax` carries
//! the address of a six-word block — the request code and up to five arguments — and `rdx`
//! carries a default result in and the answer out. Natively the sequence costs a handful of
//! cycles and the default comes back unchanged, so every function here may be called on a hot
//! path; on other architectures they are no-ops that return the default.
//!
//! The request codes are part of valgrind's stable client ABI (`valgrind.h`, `memcheck.h`);
//! they are restated below from those headers' enumerations.
//!
//! # What memcheck tracks
//!
//! For every byte memcheck keeps an *A bit* (may the program touch it?) and *V bits* (are its
//! contents known?). No-access bytes report any read or write; undefined bytes may be written and
//! copied, but a branch, an address or a system call that depends on them is reported; defined
//! bytes are ordinary memory. Marking memory only changes these bits, never the bytes, so none of
//! the functions here can break the program's memory safety: they are safe to call with any
//! address and length.

/// Core request codes (`valgrind.h`).
mod core_request {
    pub const RUNNING_ON_VALGRIND: usize = 0x1001;
    pub const MALLOCLIKE_BLOCK: usize = 0x1301;
    pub const FREELIKE_BLOCK: usize = 0x1302;
    pub const RESIZEINPLACE_BLOCK: usize = 0x130b;
    pub const CHANGE_ERR_DISABLEMENT: usize = 0x1801;
}

/// Memcheck's request codes (`memcheck.h`): the tool base `'M' << 24 | 'C' << 16` plus the
/// request's position in memcheck's list.
mod memcheck_request {
    const BASE: usize = (b'M' as usize) << 24 | (b'C' as usize) << 16;
    pub const MAKE_MEM_NOACCESS: usize = BASE;
    pub const MAKE_MEM_UNDEFINED: usize = BASE + 1;
    pub const MAKE_MEM_DEFINED: usize = BASE + 2;
}

/// Sends one request; returns `default` when not running under valgrind.
#[inline(always)]
fn client_request(default: usize, request: usize, args: [usize; 5]) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let block: [usize; 6] = [request, args[0], args[1], args[2], args[3], args[4]];
        let mut result = default;
        // SAFETY: natively the sequence only rotates `rdi` by a full 128 bits (declared clobbered
        // anyway) and exchanges `rbx` with itself, touching no memory and no stack. Under
        // valgrind the request is served by the tool, which reads the six words `rax` points to
        // (a live local array) and writes only `rdx` and its own bookkeeping — no request sent
        // from this module writes program memory.
        unsafe {
            core::arch::asm!(
                "rol rdi, 3",
                "rol rdi, 13",
                "rol rdi, 61",
                "rol rdi, 51",
                "xchg rbx, rbx",
                in("rax") block.as_ptr(),
                inout("rdx") result,
                out("rdi") _,
                options(nostack),
            );
        }
        result
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (request, args);
        default
    }
}

/// Whether this process runs under valgrind (any tool). `false` natively.
pub fn running_on_valgrind() -> bool {
    client_request(0, core_request::RUNNING_ON_VALGRIND, [0; 5]) != 0
}

/// Marks `[addr, addr+len)` as memory the program must not touch: freed blocks, headers,
/// free space. Any read or write there is reported.
#[inline]
pub fn make_noaccess(addr: *const u8, len: usize) {
    client_request(
        0,
        memcheck_request::MAKE_MEM_NOACCESS,
        [addr as usize, len, 0, 0, 0],
    );
}

/// Marks `[addr, addr+len)` as accessible with unknown contents: a block just handed out by a
/// non-zeroing allocation. Using its bytes before writing them is reported.
#[inline]
pub fn make_undefined(addr: *const u8, len: usize) {
    client_request(
        0,
        memcheck_request::MAKE_MEM_UNDEFINED,
        [addr as usize, len, 0, 0, 0],
    );
}

/// Marks `[addr, addr+len)` as accessible with known contents: a zeroed block, or a copy of a
/// value whose origin memcheck could not follow.
#[inline]
pub fn make_defined(addr: *const u8, len: usize) {
    client_request(
        0,
        memcheck_request::MAKE_MEM_DEFINED,
        [addr as usize, len, 0, 0, 0],
    );
}

/// Announces a block of `len` bytes at `addr` handed out by an allocator of its own: memcheck
/// marks it undefined (or defined when `zeroed`), records the allocating stack, and from then
/// on describes addresses near it as "N bytes inside/after a block of size `len` alloc'd" and
/// counts it in leak reports. `redzone` is how many bytes around the block the allocator keeps
/// no-access (used only to describe addresses). Announce each block once; end it with
/// [`freelike`] or [`resize_in_place`].
#[inline]
pub fn malloclike(addr: *const u8, len: usize, redzone: usize, zeroed: bool) {
    client_request(
        0,
        core_request::MALLOCLIKE_BLOCK,
        [addr as usize, len, redzone, usize::from(zeroed), 0],
    );
}

/// Ends the block [`malloclike`] announced at `addr`: memcheck marks it (and `redzone` bytes on
/// either side) no-access and keeps its free stack, so a later access is reported as "inside a
/// block free'd". A block that was never announced is reported as an invalid free.
#[inline]
pub fn freelike(addr: *const u8, redzone: usize) {
    client_request(
        0,
        core_request::FREELIKE_BLOCK,
        [addr as usize, redzone, 0, 0, 0],
    );
}

/// The block announced at `addr` with `old_len` bytes now has `new_len` (`> 0`): growth is
/// undefined, bytes cut off become no-access, the kept bytes keep their state. `old_len` must be
/// the length memcheck knows, else it reports an invalid free and changes nothing.
#[inline]
pub fn resize_in_place(addr: *const u8, old_len: usize, new_len: usize, redzone: usize) {
    client_request(
        0,
        core_request::RESIZEINPLACE_BLOCK,
        [addr as usize, old_len, new_len, redzone, 0],
    );
}

/// While alive, valgrind reports no errors raised by this thread (`VALGRIND_DISABLE_ERROR_REPORTING`
/// until dropped). Memory states are not changed, so an allocator can read and write its own
/// bookkeeping inside no-access memory — element headers, free-list links — while every access
/// the program makes there is still reported. Reads of no-access bytes yield values memcheck
/// treats as defined. Guards nest.
#[derive(Debug)]
#[must_use = "reporting is enabled again when the guard drops"]
pub struct ReportsPaused(());

impl ReportsPaused {
    #[inline]
    pub fn new() -> Self {
        client_request(0, core_request::CHANGE_ERR_DISABLEMENT, [1, 0, 0, 0, 0]);
        ReportsPaused(())
    }
}

impl Default for ReportsPaused {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ReportsPaused {
    #[inline]
    fn drop(&mut self) {
        client_request(
            0,
            core_request::CHANGE_ERR_DISABLEMENT,
            [usize::MAX, 0, 0, 0, 0],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Natively every request returns its default and changes nothing a program can see.
    #[test]
    fn requests_are_inert_outside_valgrind() {
        if running_on_valgrind() {
            eprintln!("skipped: this test checks native behaviour and runs under valgrind");
            return;
        }
        assert_eq!(
            client_request(42, core_request::RUNNING_ON_VALGRIND, [0; 5]),
            42
        );
        let mut bytes = [7u8; 64];
        make_noaccess(bytes.as_ptr(), bytes.len());
        make_undefined(bytes.as_ptr(), bytes.len());
        malloclike(bytes.as_ptr(), 32, 0, false);
        resize_in_place(bytes.as_ptr(), 32, 48, 0);
        freelike(bytes.as_ptr(), 0);
        make_defined(bytes.as_ptr(), bytes.len());
        {
            let _paused = ReportsPaused::new();
            bytes[3] = 9;
        }
        assert_eq!(bytes[3], 9);
        assert!(bytes
            .iter()
            .enumerate()
            .all(|(i, &b)| b == if i == 3 { 9 } else { 7 }));
    }
}
