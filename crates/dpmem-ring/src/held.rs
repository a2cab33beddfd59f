//! One element carried from its source to its destination in registers.
//!
//! Rust moves a value such as `[u64; 2]` as a block of bytes. Copied from the caller into
//! a slot, or from a slot into the result, each hop of such a block goes through the
//! stack, and around the ring's atomics — which the compiler must assume may change any
//! memory — none of those hops can be folded away. A single-element call then spends more
//! on stack round trips than on the ring itself (16-byte elements took half again the
//! cycles of DPDK's, which copies them as one 128-bit unit). Loaded as one unit of its
//! size, the element is a plain value that stays in a register from one end to the other.

use core::marker::PhantomData;
use core::mem::{size_of, MaybeUninit};

use crate::view::{RingView, SlotCopy};

/// The 16-byte unit: a vector register where there is one, so that the element moves
/// with one load and one store (as an integer pair it would take two of each, and stores
/// are what a single-element loop runs out of first).
#[cfg(target_arch = "x86_64")]
type Unit16 = core::arch::x86_64::__m128i;
#[cfg(not(target_arch = "x86_64"))]
type Unit16 = u128;

/// An element of type `T` in transit: in one 4, 8 or 16-byte unit when `T` has one of
/// those sizes, else as a `MaybeUninit<T>`. `MaybeUninit` carries padding bytes as they are.
#[derive(Clone, Copy)]
pub(crate) struct Held<T: Copy> {
    w4: MaybeUninit<u32>,
    w8: MaybeUninit<u64>,
    w16: MaybeUninit<Unit16>,
    other: MaybeUninit<T>,
    _elem: PhantomData<T>,
}

impl<T: Copy> Held<T> {
    /// Read the `T` at `src`.
    ///
    /// # Safety
    /// `src` is valid for reading a `T` (any alignment) and holds a valid `T`.
    #[inline(always)]
    pub(crate) unsafe fn load(src: *const T) -> Self {
        let mut held = Held {
            w4: MaybeUninit::uninit(),
            w8: MaybeUninit::uninit(),
            w16: MaybeUninit::uninit(),
            other: MaybeUninit::uninit(),
            _elem: PhantomData,
        };
        // Only the field of T's size is ever read back; the others stay uninitialised.
        match size_of::<T>() {
            // SAFETY: the T at src is 4 bytes.
            4 => held.w4 = unsafe { src.cast::<MaybeUninit<u32>>().read_unaligned() },
            // SAFETY: the T at src is 8 bytes.
            8 => held.w8 = unsafe { src.cast::<MaybeUninit<u64>>().read_unaligned() },
            // SAFETY: the T at src is 16 bytes.
            16 => held.w16 = unsafe { src.cast::<MaybeUninit<Unit16>>().read_unaligned() },
            // SAFETY: a T at src.
            _ => held.other = unsafe { src.cast::<MaybeUninit<T>>().read_unaligned() },
        }
        held
    }

    /// Write the element to `dst`.
    ///
    /// # Safety
    /// `dst` is valid for writing a `T` (any alignment).
    #[inline(always)]
    pub(crate) unsafe fn store(self, dst: *mut T) {
        match size_of::<T>() {
            // SAFETY: a T at dst is 4 bytes; w4 holds one that `load` read.
            4 => unsafe { dst.cast::<MaybeUninit<u32>>().write_unaligned(self.w4) },
            // SAFETY: a T at dst is 8 bytes, held in w8.
            8 => unsafe { dst.cast::<MaybeUninit<u64>>().write_unaligned(self.w8) },
            // SAFETY: a T at dst is 16 bytes, held in w16.
            16 => unsafe { dst.cast::<MaybeUninit<Unit16>>().write_unaligned(self.w16) },
            // SAFETY: a T at dst, held in other.
            _ => unsafe { dst.cast::<MaybeUninit<T>>().write_unaligned(self.other) },
        }
    }

    /// The element as a value.
    #[inline(always)]
    pub(crate) fn into_value(self) -> T {
        let mut value = MaybeUninit::<T>::uninit();
        // SAFETY: value has room for a T.
        unsafe { self.store(value.as_mut_ptr()) };
        // SAFETY: `load` read a valid T (its contract) and `store` wrote all of its bytes.
        unsafe { value.assume_init() }
    }
}

/// An enqueue of one held element: written into the claimed slot.
impl<T: Copy> SlotCopy for Held<T> {
    #[inline(always)]
    unsafe fn copy(self, view: &RingView<'_>, start: u32, _n: u32) {
        view.track_slot(start, true);
        let slot = view.slot(start, size_of::<T>()).cast::<T>();
        // SAFETY: a claimed slot (the trait's contract) of a ring of T (the typed handle
        // that holds the element only exists for one).
        unsafe { self.store(slot) }
    }
}

/// A dequeue of one element, held once it is read from the claimed slot.
pub(crate) struct TakeOne<'a, T: Copy>(pub(crate) &'a mut Option<Held<T>>);

impl<T: Copy> SlotCopy for TakeOne<'_, T> {
    #[inline(always)]
    unsafe fn copy(self, view: &RingView<'_>, start: u32, _n: u32) {
        view.track_slot(start, false);
        let slot = view.slot(start, size_of::<T>()).cast::<T>();
        // SAFETY: a claimed, published slot (the trait's contract) of a ring of T, which
        // holds a T (only T values go in through the typed handles, or the attacher
        // promised so).
        *self.0 = Some(unsafe { Held::load(slot) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Copy + PartialEq + core::fmt::Debug>(value: T) {
        // SAFETY: value is a valid T.
        let held = unsafe { Held::load(&value) };
        assert_eq!(held.into_value(), value);
        // Through an unaligned place, as a slot of a byte ring may be.
        let mut bytes = [0u8; 80];
        // SAFETY: bytes has room for a T from offset 1 (every T here is at most 72 bytes).
        let place = unsafe { bytes.as_mut_ptr().add(1) }.cast::<T>();
        // SAFETY: as above; any alignment is allowed.
        unsafe { held.store(place) };
        // SAFETY: a valid T was just stored there.
        assert_eq!(unsafe { Held::load(place) }.into_value(), value);
    }

    #[test]
    fn every_size_keeps_every_byte() {
        round_trip(0xdead_beef_u32);
        round_trip(0x0123_4567_89ab_cdef_u64);
        round_trip([1u32, 2, 3, 4]);
        round_trip([0x1122_3344_5566_7788_u64, 0x99aa_bbcc_ddee_ff00]);
        round_trip([7u32, 8, 9]);
        round_trip(core::array::from_fn::<u64, 9, _>(|i| {
            (i as u64) << 56 | 0xabc
        }));
    }
}
