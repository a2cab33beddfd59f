//! What a memzone reservation asks of its memory: page sizes, IOVA contiguity (DPDK's
//! `RTE_MEMZONE_*` flags, with DPDK's values). The heap reads the page-size flags too, so they
//! sit here, below both.

bitflags::bitflags! {
    /// Reservation flags of a memzone.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct MemzoneFlags: u32 {
        const PAGE_2MB = 0x0000_0001;
        const PAGE_1GB = 0x0000_0002;
        /// The page-size flags are a preference: any page size will do when none of them can.
        const SIZE_HINT_ONLY = 0x0000_0004;
        const PAGE_16MB = 0x0000_0100;
        const PAGE_16GB = 0x0000_0200;
        const PAGE_256KB = 0x0001_0000;
        const PAGE_256MB = 0x0002_0000;
        const PAGE_512MB = 0x0004_0000;
        const PAGE_4GB = 0x0008_0000;
        /// The memzone must be contiguous in IOVA space too.
        const IOVA_CONTIG = 0x0010_0000;
    }
}

impl MemzoneFlags {
    /// Every page-size flag.
    pub const PAGE_SIZES: MemzoneFlags = MemzoneFlags::PAGE_2MB
        .union(MemzoneFlags::PAGE_1GB)
        .union(MemzoneFlags::PAGE_16MB)
        .union(MemzoneFlags::PAGE_16GB)
        .union(MemzoneFlags::PAGE_256KB)
        .union(MemzoneFlags::PAGE_256MB)
        .union(MemzoneFlags::PAGE_512MB)
        .union(MemzoneFlags::PAGE_4GB);

    /// The flag naming pages of `page_size` bytes (empty for sizes DPDK has no flag for).
    pub const fn for_page_size(page_size: u64) -> MemzoneFlags {
        match page_size {
            0x4_0000 => MemzoneFlags::PAGE_256KB,
            0x20_0000 => MemzoneFlags::PAGE_2MB,
            0x100_0000 => MemzoneFlags::PAGE_16MB,
            0x1000_0000 => MemzoneFlags::PAGE_256MB,
            0x2000_0000 => MemzoneFlags::PAGE_512MB,
            0x4000_0000 => MemzoneFlags::PAGE_1GB,
            0x1_0000_0000 => MemzoneFlags::PAGE_4GB,
            0x4_0000_0000 => MemzoneFlags::PAGE_16GB,
            _ => MemzoneFlags::empty(),
        }
    }

    /// Whether memory on pages of `page_size` bytes meets these flags' page sizes (any does
    /// when no page-size flag is set).
    pub const fn allows_page_size(self, page_size: u64) -> bool {
        let sizes = self.intersection(MemzoneFlags::PAGE_SIZES);
        sizes.is_empty() || sizes.intersects(MemzoneFlags::for_page_size(page_size))
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for MemzoneFlags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.bits())
    }
}
