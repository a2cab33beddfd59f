//! The 128-byte block an index written by one side of a ring is kept alone on.

/// Keeps `T` alone on a 128-byte block: Intel's spatial prefetcher pulls cache lines in
/// adjacent pairs, so two hot indices 64 bytes apart would still bounce together between the
/// user's core and the worker's.
#[derive(Debug)]
#[repr(C, align(128))]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> core::ops::Deref for CachePadded<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        &self.0
    }
}
