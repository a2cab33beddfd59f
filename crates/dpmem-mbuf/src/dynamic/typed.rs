//! Typed handles on registered places: [`DynField<T>`] reads and writes a `T` in a buffer's
//! header, [`DynFlag`] tests, sets and clears a flag bit — what DPDK code does with
//! `RTE_MBUF_DYNFIELD(m, offset, T *)` and `1ULL << bitnum`, without a pointer cast.
//!
//! A handle holds only the place, checked when it is made to lie in the dynamic space with
//! the value's size, so reading and writing need no `unsafe` and cannot touch another field
//! of the header. The place is the same in every process of the EAL; a handle made in one
//! process may be rebuilt in another by name ([`DynField::lookup`]).

use core::fmt;
use core::marker::PhantomData;

use dpmem_eal::Eal;

use super::register::{
    lookup_field, lookup_flag, register_field, register_field_at, register_flag, register_flag_at,
    FieldSpec, FlagSpec,
};
use super::space::{Occupancy, FIELD_SPACE, FLAG_BITS};
use crate::error::MbufError;
use crate::header::{MbufHeader, OlFlags};

/// A value a dynamic field holds: plain bytes in the header, in the machine's byte order.
///
/// Implemented for the integers, `f32`, `f64`, `bool` and arrays of them; a program's own
/// `Copy` type implements it by saying how it is laid out in `SIZE` bytes.
pub trait DynFieldValue: Copy {
    /// Bytes the field reserves (1 to 36).
    const SIZE: usize;
    /// Alignment of the field's offset in the header (a power of two).
    const ALIGN: usize;
    /// The value stored in `bytes`, which has `SIZE` bytes.
    fn from_field_bytes(bytes: &[u8]) -> Self;
    /// Stores the value in `bytes`, which has `SIZE` bytes.
    fn write_field_bytes(self, bytes: &mut [u8]);
}

macro_rules! plain_number_values {
    ($($t:ty),*) => {$(
        impl DynFieldValue for $t {
            const SIZE: usize = core::mem::size_of::<$t>();
            const ALIGN: usize = core::mem::align_of::<$t>();
            fn from_field_bytes(bytes: &[u8]) -> Self {
                let mut raw = [0u8; core::mem::size_of::<$t>()];
                raw.copy_from_slice(bytes);
                <$t>::from_ne_bytes(raw)
            }
            fn write_field_bytes(self, bytes: &mut [u8]) {
                bytes.copy_from_slice(&self.to_ne_bytes());
            }
        }
    )*};
}

plain_number_values!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, f32, f64);

impl DynFieldValue for bool {
    const SIZE: usize = 1;
    const ALIGN: usize = 1;
    fn from_field_bytes(bytes: &[u8]) -> Self {
        bytes[0] != 0
    }
    fn write_field_bytes(self, bytes: &mut [u8]) {
        bytes[0] = u8::from(self);
    }
}

impl<T: DynFieldValue, const N: usize> DynFieldValue for [T; N] {
    const SIZE: usize = T::SIZE * N;
    const ALIGN: usize = T::ALIGN;
    fn from_field_bytes(bytes: &[u8]) -> Self {
        core::array::from_fn(|i| T::from_field_bytes(&bytes[i * T::SIZE..][..T::SIZE]))
    }
    fn write_field_bytes(self, bytes: &mut [u8]) {
        for (value, chunk) in self.into_iter().zip(bytes.chunks_exact_mut(T::SIZE)) {
            value.write_field_bytes(chunk);
        }
    }
}

/// A registered dynamic field holding a `T`.
///
/// ```no_run
/// use dpmem_mbuf::dynamic::DynField;
/// # let eal = dpmem_eal::Eal::init(["app", "--no-huge", "-m", "64"])?;
/// let pool = dpmem_mbuf::PktmbufPool::builder("rx", 63).create(&eal)?;
/// let sequence = DynField::<u64>::register(&eal, "app_sequence")?;
/// let packet = pool.alloc()?;
/// sequence.set(packet.header(), 7);
/// assert_eq!(sequence.get(packet.header()), 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct DynField<T> {
    /// Header offset of the field. Invariant: `offset..offset + T::SIZE` lies inside
    /// [`FIELD_SPACE`].
    offset: usize,
    _value: PhantomData<fn() -> T>,
}

impl<T> Clone for DynField<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for DynField<T> {}

impl<T> PartialEq for DynField<T> {
    fn eq(&self, other: &Self) -> bool {
        self.offset == other.offset
    }
}

impl<T> Eq for DynField<T> {}

impl<T> fmt::Debug for DynField<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynField")
            .field("type", &core::any::type_name::<T>())
            .field("offset", &self.offset)
            .finish()
    }
}

impl<T: DynFieldValue> DynField<T> {
    fn spec(name: &str) -> FieldSpec<'_> {
        FieldSpec::new(name, T::SIZE, T::ALIGN)
    }

    /// The handle of a field at `offset`, which must hold a `T` inside the dynamic space.
    fn at(name: &str, offset: usize) -> Result<Self, MbufError> {
        if !Occupancy::within_space(offset, T::SIZE) {
            return Err(MbufError::InvalidArgument(format!(
                "dynamic field {name:?} at offset {offset} cannot hold a {} of {} bytes inside \
                 {}..{}",
                core::any::type_name::<T>(),
                T::SIZE,
                FIELD_SPACE.start,
                FIELD_SPACE.end
            )));
        }
        Ok(DynField {
            offset,
            _value: PhantomData,
        })
    }

    /// Registers `name` as a field of `T`'s size and alignment (see
    /// [`register_field`](super::register_field) for the errors).
    pub fn register(eal: &Eal, name: &str) -> Result<Self, MbufError> {
        Self::at(name, register_field(eal, &Self::spec(name))?)
    }

    /// Registers `name` at header offset `offset` (see
    /// [`register_field_at`](super::register_field_at)).
    pub fn register_at(eal: &Eal, name: &str, offset: usize) -> Result<Self, MbufError> {
        Self::at(name, register_field_at(eal, &Self::spec(name), offset)?)
    }

    /// The field `name` registered by any process of the EAL: `ENOENT` when there is none,
    /// `EINVAL` when it was registered with another size than `T`'s.
    pub fn lookup(eal: &Eal, name: &str) -> Result<Self, MbufError> {
        let field = lookup_field(eal, name)?;
        if field.size != T::SIZE {
            return Err(MbufError::InvalidArgument(format!(
                "dynamic field {name:?} has {} bytes; a {} has {}",
                field.size,
                core::any::type_name::<T>(),
                T::SIZE
            )));
        }
        Self::at(name, field.offset)
    }

    /// The field's offset in the header.
    pub fn offset(&self) -> usize {
        self.offset
    }

    fn bytes(&self) -> core::ops::Range<usize> {
        let start = self.offset - FIELD_SPACE.start;
        start..start + T::SIZE
    }

    /// The value in `m`'s field.
    #[inline]
    pub fn get(&self, m: &MbufHeader) -> T {
        T::from_field_bytes(&m.dynfield_bytes()[self.bytes()])
    }

    /// Stores `value` in `m`'s field; the rest of the dynamic space is left as it was.
    #[inline]
    pub fn set(&self, m: &MbufHeader, value: T) {
        let mut space = m.dynfield_bytes();
        value.write_field_bytes(&mut space[self.bytes()]);
        m.set_dynfield_bytes(space);
    }
}

/// A registered dynamic flag: one bit of `ol_flags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DynFlag {
    /// Invariant: inside [`FLAG_BITS`], so never `EXTERNAL` or `INDIRECT`.
    bit: u32,
}

impl DynFlag {
    fn at(name: &str, bit: u32) -> Result<Self, MbufError> {
        if !FLAG_BITS.contains(&bit) {
            return Err(MbufError::InvalidArgument(format!(
                "dynamic flag {name:?} holds bit {bit}, outside the dynamic bits"
            )));
        }
        Ok(DynFlag { bit })
    }

    /// Registers the flag `name` on the lowest free bit (see
    /// [`register_flag`](super::register_flag)).
    pub fn register(eal: &Eal, name: &str) -> Result<Self, MbufError> {
        Self::at(name, register_flag(eal, &FlagSpec::new(name))?)
    }

    /// Registers the flag `name` on `bit` (see [`register_flag_at`](super::register_flag_at)).
    pub fn register_at(eal: &Eal, name: &str, bit: u32) -> Result<Self, MbufError> {
        Self::at(name, register_flag_at(eal, &FlagSpec::new(name), bit)?)
    }

    /// The flag `name` registered by any process of the EAL (`ENOENT` when none).
    pub fn lookup(eal: &Eal, name: &str) -> Result<Self, MbufError> {
        Self::at(name, lookup_flag(eal, name)?.bit)
    }

    /// The flag's bit number.
    pub fn bit(&self) -> u32 {
        self.bit
    }

    /// The flag as offload flags.
    pub fn mask(&self) -> OlFlags {
        OlFlags::from_bits_retain(1 << self.bit)
    }

    /// Whether the flag is set in `m`.
    #[inline]
    pub fn is_set(&self, m: &MbufHeader) -> bool {
        m.ol_flags().contains(self.mask())
    }

    /// Sets the flag in `m`.
    #[inline]
    pub fn set(&self, m: &MbufHeader) {
        m.insert_ol_flags(self.mask());
    }

    /// Clears the flag in `m`.
    #[inline]
    pub fn clear(&self, m: &MbufHeader) {
        m.remove_ol_flags(self.mask());
    }
}
