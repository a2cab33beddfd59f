//! Registering and looking up dynamic fields and flags by name (DPDK's
//! `rte_mbuf_dynfield_register`, `_register_offset`, `_lookup`, `rte_mbuf_dynflag_register`,
//! `_register_bitnum`, `_lookup` and `rte_mbuf_dyn_dump`).
//!
//! The checks run in this order, and an error changes nothing: the name (`ENAMETOOLONG`,
//! `EINVAL`), the other arguments (`EINVAL`), the name's existing entry (its place back when
//! the parameters are the same, else `EEXIST`), the process (`EPERM` in a secondary: only the
//! primary registers new names, as in DPDK, though a secondary may "register" a name the
//! primary registered, with the same parameters, to learn its place), then the place (`EBUSY`
//! when the one asked for is taken, `ENOENT` when no room is left).

use core::fmt;
use core::ops::Range;

use dpmem_eal::{Eal, EalError, ProcessRole};

use super::shared_registry::SharedRegistry;
use super::space::{free_flag_mask, FieldInfo, FlagInfo, Occupancy, FIELD_SPACE, NAME_SIZE};
use crate::error::MbufError;
use crate::header::DYNFIELD_LEN;

/// A dynamic field to register (DPDK's `struct rte_mbuf_dynfield`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldSpec<'n> {
    /// At most 63 bytes, no NUL. DPDK's advice on names: `rte_mbuf_dynfield_<name>` in the
    /// mbuf library, `rte_<library>_dynfield_<name>` in another one, and no `rte_` prefix
    /// in an application.
    pub name: &'n str,
    /// Bytes to reserve: 1 to 36 (the whole space; DPDK's own bound is under 128, the header
    /// size, and a field that cannot fit the space is refused here as a bad size).
    pub size: usize,
    /// Alignment of the field's offset in the header: a power of two.
    pub align: usize,
    /// Reserved: must be 0.
    pub flags: u32,
}

impl<'n> FieldSpec<'n> {
    /// A field of `size` bytes aligned to `align`, with no flags.
    pub fn new(name: &'n str, size: usize, align: usize) -> Self {
        FieldSpec {
            name,
            size,
            align,
            flags: 0,
        }
    }
}

/// A dynamic flag to register (DPDK's `struct rte_mbuf_dynflag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlagSpec<'n> {
    /// At most 63 bytes, no NUL (see [`FieldSpec::name`]).
    pub name: &'n str,
    /// Reserved: must be 0.
    pub flags: u32,
}

impl<'n> FlagSpec<'n> {
    /// A flag with no flags.
    pub fn new(name: &'n str) -> Self {
        FlagSpec { name, flags: 0 }
    }
}

fn check_name(name: &str) -> Result<(), MbufError> {
    if name.len() >= NAME_SIZE {
        return Err(MbufError::NameTooLong {
            name: name.into(),
            len: name.len(),
            max: NAME_SIZE - 1,
        });
    }
    if name.is_empty() || name.as_bytes().contains(&0) {
        return Err(MbufError::InvalidArgument(format!(
            "dynamic name {name:?} is empty or holds a NUL"
        )));
    }
    Ok(())
}

fn check_field_spec(spec: &FieldSpec<'_>) -> Result<(), MbufError> {
    let name = spec.name;
    let invalid = |why: String| {
        Err(MbufError::InvalidArgument(format!(
            "dynamic field {name:?}: {why}"
        )))
    };
    // DPDK refuses sizes from the header's 128 bytes up; anything past the 36 free bytes
    // could never be placed, so it is refused as a bad size too rather than found to have
    // no room.
    if spec.size == 0 || spec.size > DYNFIELD_LEN {
        return invalid(format!(
            "size {} is not 1 to {DYNFIELD_LEN} bytes (the dynamic space)",
            spec.size
        ));
    }
    if !spec.align.is_power_of_two() {
        return invalid(format!("alignment {} is not a power of two", spec.align));
    }
    if spec.flags != 0 {
        return invalid(format!("flags {:#x} must be 0", spec.flags));
    }
    Ok(())
}

fn check_requested_offset(spec: &FieldSpec<'_>, offset: usize) -> Result<(), MbufError> {
    if !Occupancy::within_space(offset, spec.size) || !offset.is_multiple_of(spec.align) {
        return Err(MbufError::InvalidArgument(format!(
            "dynamic field {:?}: offset {offset} with {} bytes aligned to {} is not an aligned \
             place inside the dynamic space {}..{}",
            spec.name, spec.size, spec.align, FIELD_SPACE.start, FIELD_SPACE.end
        )));
    }
    Ok(())
}

fn secondary_refused(what: &str, name: &str) -> MbufError {
    MbufError::Eal(EalError::NotPermitted(format!(
        "dynamic {what} {name:?} is not registered, and only the primary process registers new ones"
    )))
}

/// The registry to register in: created by the primary on first use; a secondary's is the
/// primary's, or none yet.
fn registry_for_registering<'e>(
    eal: &'e Eal,
    what: &str,
    name: &str,
) -> Result<SharedRegistry<'e>, MbufError> {
    match eal.process_role() {
        ProcessRole::Primary => SharedRegistry::find_or_create(eal),
        ProcessRole::Secondary => {
            SharedRegistry::find(eal)?.ok_or_else(|| secondary_refused(what, name))
        }
    }
}

/// Registers a dynamic field where the registry finds room, and returns its offset in the
/// header (DPDK's `rte_mbuf_dynfield_register`). The same name with the same parameters
/// gives the same offset back, in every process of the EAL.
///
/// Errors: `EINVAL` (a bad size, alignment or flags), `ENAMETOOLONG`, `EEXIST` (the name has
/// other parameters), `EPERM` (a new name in a secondary process), `ENOENT` (no aligned room
/// left); nothing changes on error.
pub fn register_field(eal: &Eal, spec: &FieldSpec<'_>) -> Result<usize, MbufError> {
    register_field_where(eal, spec, None)
}

/// Registers a dynamic field at header offset `offset` (DPDK's
/// `rte_mbuf_dynfield_register_offset`).
///
/// Errors as [`register_field`], and: `EINVAL` when `offset` is not a multiple of the
/// alignment or the field would not lie inside the dynamic space
/// ([`FIELD_SPACE`]); `EBUSY` when a byte of it is taken; `EEXIST` when the name is
/// registered at another offset.
pub fn register_field_at(
    eal: &Eal,
    spec: &FieldSpec<'_>,
    offset: usize,
) -> Result<usize, MbufError> {
    register_field_where(eal, spec, Some(offset))
}

fn register_field_where(
    eal: &Eal,
    spec: &FieldSpec<'_>,
    requested: Option<usize>,
) -> Result<usize, MbufError> {
    check_name(spec.name)?;
    check_field_spec(spec)?;
    if let Some(offset) = requested {
        check_requested_offset(spec, offset)?;
    }
    let name = spec.name;
    let registry = registry_for_registering(eal, "field", name)?;
    let primary = eal.process_role() == ProcessRole::Primary;
    // The primary's writers hold the lock from the name check to the publication, so two
    // threads registering one name get one place. A secondary only reads.
    let writer = primary.then(|| registry.lock_writers());
    let fields = registry.fields();
    if let Some(existing) = fields.iter().find(|f| f.name == name) {
        let same = existing.size == spec.size
            && existing.align == spec.align
            && requested.is_none_or(|offset| offset == existing.offset);
        return if same {
            Ok(existing.offset)
        } else {
            Err(MbufError::DynamicExists {
                what: "field",
                name: name.into(),
            })
        };
    }
    let Some(writer) = writer else {
        return Err(secondary_refused("field", name));
    };
    let occupancy = Occupancy::of(&fields);
    let offset = match requested {
        Some(offset) if occupancy.is_free(offset, spec.size) => offset,
        Some(offset) => {
            return Err(MbufError::DynamicBusy {
                what: "field",
                name: name.into(),
                reason: format!("bytes {offset}..{} hold another field", offset + spec.size),
            })
        }
        None => occupancy
            .place(spec.size, spec.align)
            .ok_or_else(|| MbufError::DynamicNoRoom {
                what: "field",
                name: name.into(),
                reason: format!(
                    "no free run of {} bytes aligned to {} ({} of {DYNFIELD_LEN} bytes free)",
                    spec.size,
                    spec.align,
                    occupancy.free_bytes()
                ),
            })?,
    };
    let field = FieldInfo {
        name: name.into(),
        offset,
        size: spec.size,
        align: spec.align,
    };
    if !registry.push_field(&writer, &field) {
        return Err(MbufError::DynamicNoRoom {
            what: "field",
            name: name.into(),
            reason: "the registry's field table is full".into(),
        });
    }
    Ok(offset)
}

/// The dynamic field called `name` (DPDK's `rte_mbuf_dynfield_lookup`): `ENOENT` when no
/// process registered it. Never creates the registry.
pub fn lookup_field(eal: &Eal, name: &str) -> Result<FieldInfo, MbufError> {
    SharedRegistry::find(eal)?
        .and_then(|registry| registry.fields().into_iter().find(|f| f.name == name))
        .ok_or_else(|| MbufError::DynamicNotFound {
            what: "field",
            name: name.into(),
        })
}

/// Registers a dynamic flag on the lowest free bit and returns the bit's number (DPDK's
/// `rte_mbuf_dynflag_register`); the flag's mask is `1 << bit`.
///
/// Errors: `EINVAL` (flags not 0), `ENAMETOOLONG`, `EEXIST`, `EPERM` (a new name in a
/// secondary process), `ENOENT` (all of bits 23 to 40 taken); nothing changes on error.
pub fn register_flag(eal: &Eal, spec: &FlagSpec<'_>) -> Result<u32, MbufError> {
    register_flag_where(eal, spec, None)
}

/// Registers a dynamic flag on bit `bit` of `ol_flags` (DPDK's
/// `rte_mbuf_dynflag_register_bitnum`).
///
/// Errors as [`register_flag`], and: `EINVAL` for a bit past 63; `EBUSY` for a bit that is
/// taken, by another dynamic flag or by a static one (only bits 23 to 40 are dynamic);
/// `EEXIST` when the name holds another bit.
pub fn register_flag_at(eal: &Eal, spec: &FlagSpec<'_>, bit: u32) -> Result<u32, MbufError> {
    register_flag_where(eal, spec, Some(bit))
}

fn register_flag_where(
    eal: &Eal,
    spec: &FlagSpec<'_>,
    requested: Option<u32>,
) -> Result<u32, MbufError> {
    let name = spec.name;
    check_name(name)?;
    if spec.flags != 0 {
        return Err(MbufError::InvalidArgument(format!(
            "dynamic flag {name:?}: flags {:#x} must be 0",
            spec.flags
        )));
    }
    if let Some(bit) = requested.filter(|&bit| bit >= u64::BITS) {
        return Err(MbufError::InvalidArgument(format!(
            "dynamic flag {name:?}: bit {bit} is past the 64 bits of ol_flags"
        )));
    }
    let registry = registry_for_registering(eal, "flag", name)?;
    let primary = eal.process_role() == ProcessRole::Primary;
    // As for fields: the primary's writers hold the lock; a secondary only reads.
    let writer = primary.then(|| registry.lock_writers());
    let flags = registry.flags();
    if let Some(existing) = flags.iter().find(|f| f.name == name) {
        return if requested.is_none_or(|bit| bit == existing.bit) {
            Ok(existing.bit)
        } else {
            Err(MbufError::DynamicExists {
                what: "flag",
                name: name.into(),
            })
        };
    }
    let Some(writer) = writer else {
        return Err(secondary_refused("flag", name));
    };
    let free = free_flag_mask(&flags);
    let bit = match requested {
        Some(bit) if free & 1 << bit != 0 => bit,
        Some(bit) => {
            return Err(MbufError::DynamicBusy {
                what: "flag",
                name: name.into(),
                reason: format!("bit {bit} is a static flag or another dynamic flag's"),
            })
        }
        None if free != 0 => free.trailing_zeros(),
        None => {
            return Err(MbufError::DynamicNoRoom {
                what: "flag",
                name: name.into(),
                reason: "every dynamic bit (23 to 40) is taken".into(),
            })
        }
    };
    let flag = FlagInfo {
        name: name.into(),
        bit,
    };
    if !registry.push_flag(&writer, &flag) {
        return Err(MbufError::DynamicNoRoom {
            what: "flag",
            name: name.into(),
            reason: "the registry's flag table is full".into(),
        });
    }
    Ok(bit)
}

/// The dynamic flag called `name` (DPDK's `rte_mbuf_dynflag_lookup`): `ENOENT` when no
/// process registered it. Never creates the registry.
pub fn lookup_flag(eal: &Eal, name: &str) -> Result<FlagInfo, MbufError> {
    SharedRegistry::find(eal)?
        .and_then(|registry| registry.flags().into_iter().find(|f| f.name == name))
        .ok_or_else(|| MbufError::DynamicNotFound {
            what: "flag",
            name: name.into(),
        })
}

/// Everything registered in an EAL, at one moment (what DPDK's `rte_mbuf_dyn_dump` prints;
/// its `Display` is the text form).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Registered {
    /// In registration order.
    pub fields: Vec<FieldInfo>,
    /// In registration order.
    pub flags: Vec<FlagInfo>,
}

impl Registered {
    /// Bytes of the dynamic space no field holds.
    pub fn free_field_bytes(&self) -> usize {
        Occupancy::of(&self.fields).free_bytes()
    }

    /// The free runs of the dynamic space, as header offset ranges.
    pub fn free_field_runs(&self) -> Vec<Range<usize>> {
        Occupancy::of(&self.fields).free_runs()
    }

    /// The dynamic bits no flag holds, lowest first.
    pub fn free_flag_bits(&self) -> Vec<u32> {
        let free = free_flag_mask(&self.flags);
        (0..u64::BITS).filter(|bit| free & 1 << bit != 0).collect()
    }
}

/// The dynamic fields and flags registered in `eal`'s processes (empty when none was).
/// Never creates the registry.
pub fn registered(eal: &Eal) -> Result<Registered, MbufError> {
    Ok(SharedRegistry::find(eal)?
        .map(|registry| Registered {
            fields: registry.fields(),
            flags: registry.flags(),
        })
        .unwrap_or_default())
}

/// [`registered`] as text (DPDK's `rte_mbuf_dyn_dump`).
pub fn dump(eal: &Eal) -> Result<String, MbufError> {
    registered(eal).map(|r| r.to_string())
}

impl fmt::Display for Registered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "dynamic fields: {} registered, {} of {DYNFIELD_LEN} bytes free",
            self.fields.len(),
            self.free_field_bytes()
        )?;
        for field in &self.fields {
            writeln!(
                f,
                "  offset {:3}  size {:2}  align {:2}  {}",
                field.offset, field.size, field.align, field.name
            )?;
        }
        let runs: Vec<String> = self
            .free_field_runs()
            .iter()
            .map(|run| format!("{}..{}", run.start, run.end))
            .collect();
        writeln!(f, "  free: {}", display_list(&runs))?;
        let free_bits = self.free_flag_bits();
        writeln!(
            f,
            "dynamic flags: {} registered, {} bits free",
            self.flags.len(),
            free_bits.len()
        )?;
        for flag in &self.flags {
            writeln!(f, "  bit {:2}  {}", flag.bit, flag.name)?;
        }
        let bits: Vec<String> = free_bits.iter().map(u32::to_string).collect();
        writeln!(f, "  free: {}", display_list(&bits))
    }
}

fn display_list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(" ")
    }
}
