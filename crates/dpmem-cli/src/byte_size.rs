//! Byte counts as people write them on a command line (`512M`, `2G`) and read them back.
//!
//! Parsing follows the kernel's `memparse` through `dpmem_sys::mounts::parse_size_suffix`,
//! so `dpmem hugepages reserve 2G` and `pagesize=2M` in `/proc/mounts` mean the same thing, and
//! numbers are read in C's notation as DPDK reads them (`0x20G` hexadecimal, `050M` octal).

use std::fmt;
use std::str::FromStr;

use dpmem_sys::mounts::parse_size_suffix;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;
// Every unit is a power of two, so `bytes & (unit - 1) == 0` tests divisibility.

/// A number of bytes; displays in the largest binary unit that divides it exactly, so a
/// page size prints as `2M` or `1G`, never as a rounded `1.9G`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_size_suffix(text).map(ByteSize).ok_or_else(|| {
            format!("{text:?} is not a size: expected a number (decimal, 0x hexadecimal or 0 octal) with an optional K, M, G or T suffix (e.g. 512M, 2G, 0x20G)")
        })
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0;
        if bytes == 0 {
            return f.pad("0");
        }
        // Exact units first; a total such as 3 pages of 1G stays "3G".
        for (unit, suffix) in [(TIB, "T"), (GIB, "G"), (MIB, "M"), (KIB, "K")] {
            if bytes & (unit - 1) == 0 {
                return f.pad(&format!("{}{suffix}", bytes / unit));
            }
        }
        f.pad(&format!("{bytes}B"))
    }
}

/// A byte count for totals, which need not be a whole unit: exact in the largest unit that
/// divides it while the number stays short (`2032M`), else one decimal (`1.9G`).
pub fn approximate(bytes: u64) -> String {
    if bytes == 0 {
        return "0".to_owned();
    }
    for (unit, suffix) in [(TIB, "T"), (GIB, "G"), (MIB, "M"), (KIB, "K")] {
        if bytes & (unit - 1) == 0 && bytes / unit < 10_000 {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    for (unit, suffix) in [(TIB, "T"), (GIB, "G"), (MIB, "M"), (KIB, "K")] {
        if bytes >= unit {
            return format!("{:.1}{suffix}", bytes as f64 / unit as f64);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_suffixes() {
        assert_eq!("2G".parse(), Ok(ByteSize(2 * GIB)));
        assert_eq!("512M".parse(), Ok(ByteSize(512 * MIB)));
        assert_eq!("4096".parse(), Ok(ByteSize(4096)));
        assert!("2X".parse::<ByteSize>().unwrap_err().contains("\"2X\""));
        assert!("".parse::<ByteSize>().is_err());
    }

    #[test]
    fn parses_c_notation_as_dpdk_does() {
        assert_eq!("0x20g".parse(), Ok(ByteSize(32 * GIB)));
        assert_eq!("0x103".parse(), Ok(ByteSize(0x103)));
        // A leading 0 is octal: 050m is 40 MiB, 0200 is 128 bytes.
        assert_eq!("050m".parse(), Ok(ByteSize(40 * MIB)));
        assert_eq!("0200".parse(), Ok(ByteSize(128)));
        assert!("09"
            .parse::<ByteSize>()
            .unwrap_err()
            .contains("0x hexadecimal"));
    }

    #[test]
    fn displays_exact_units() {
        assert_eq!(ByteSize(2 * MIB).to_string(), "2M");
        assert_eq!(ByteSize(GIB).to_string(), "1G");
        assert_eq!(ByteSize(4096).to_string(), "4K");
        assert_eq!(ByteSize(1536 * MIB).to_string(), "1536M");
        assert_eq!(ByteSize(100).to_string(), "100B");
        assert_eq!(format!("{:>4}", ByteSize(2 * MIB)), "  2M");
    }

    #[test]
    fn approximates_totals() {
        assert_eq!(approximate(1016 * 2 * MIB), "2032M");
        assert_eq!(approximate(2 * GIB), "2G");
        assert_eq!(approximate(GIB + 1), "1.0G");
        assert_eq!(approximate(100), "100B");
        assert_eq!(approximate(0), "0");
    }
}
