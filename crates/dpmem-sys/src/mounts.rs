//! hugetlbfs mount points, from `/proc/mounts`.
//!
//! Hugepage files can only be created on a hugetlbfs mount, and each mount serves exactly
//! one page size (its `pagesize=` option, or the kernel's default hugepage size when the
//! option is absent). dpmem uses this to find a directory for each page size and to refuse
//! a `--huge-dir` that is not on hugetlbfs, before any `mmap` fails less clearly.

use std::path::{Component, Path, PathBuf};

use crate::error::SysResult;
use crate::meminfo;
use crate::root::SysRoot;

/// One mounted hugetlbfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HugetlbfsMount {
    /// Where it is mounted, with `/proc/mounts` escapes decoded.
    pub mount_point: PathBuf,
    /// The hugepage size, in bytes, of every file created under it.
    pub page_size: u64,
}

/// Every hugetlbfs mount, in `/proc/mounts` order.
///
/// A mount without a `pagesize=` option uses the default hugepage size from
/// `/proc/meminfo`; when that is unknown too, or the option does not parse, the mount is
/// left out, because a mount whose page size cannot be determined cannot be used safely.
pub fn hugetlbfs_mounts(root: &SysRoot) -> SysResult<Vec<HugetlbfsMount>> {
    let text = root.read_string("/proc/mounts")?;
    let default_page_size = meminfo::default_page_size(root)?;
    Ok(parse_hugetlbfs_mounts(&text, default_page_size))
}

/// Parses text in `/proc/mounts` format, keeping the hugetlbfs entries.
pub fn parse_hugetlbfs_mounts(text: &str, default_page_size: Option<u64>) -> Vec<HugetlbfsMount> {
    let mut mounts = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let (Some(_source), Some(mount_point), Some(fs_type), options) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if fs_type != "hugetlbfs" {
            continue;
        }
        let explicit = options
            .unwrap_or("")
            .split(',')
            .find_map(|opt| opt.strip_prefix("pagesize="));
        let page_size = match explicit {
            Some(size) => parse_size_suffix(size),
            None => default_page_size,
        };
        if let Some(page_size) = page_size {
            mounts.push(HugetlbfsMount {
                mount_point: PathBuf::from(decode_mount_escapes(mount_point)),
                page_size,
            });
        }
    }
    mounts
}

/// The hugetlbfs mount that `path` lies on: the mount whose mount point is `path` itself or
/// its nearest ancestor.
///
/// On the real host an existing `path` is canonicalised first, so symlinks and `..` are
/// resolved the way the kernel will resolve them. Under a fake root the paths do not exist
/// on disk, so they are compared lexically. When several mounts share the winning mount
/// point, the last one listed is the one on top and is returned.
///
/// Note that this only looks at hugetlbfs mounts: a non-hugetlbfs filesystem mounted
/// below a hugetlbfs mount point is not detected.
pub fn hugetlbfs_mount_containing(
    root: &SysRoot,
    path: &Path,
) -> SysResult<Option<HugetlbfsMount>> {
    let mounts = hugetlbfs_mounts(root)?;
    let resolve = |p: &Path| resolve_mount_path(root, p);
    let target = resolve(path);
    let mut best: Option<(usize, HugetlbfsMount)> = None;
    for mount in mounts {
        let mount_point = resolve(&mount.mount_point);
        // `Path::starts_with` compares whole components, so `/dev/hugepages2` is not
        // inside `/dev/hugepages`.
        if target.starts_with(&mount_point) {
            let depth = mount_point.components().count();
            let deeper = match &best {
                Some((best_depth, _)) => depth >= *best_depth,
                None => true,
            };
            if deeper {
                best = Some((depth, mount));
            }
        }
    }
    Ok(best.map(|(_, m)| m))
}

/// Parses a size with an optional binary suffix, as the kernel's `memparse` and DPDK's
/// `rte_str_to_size` read it: the number in C's notation (`strtoull` with base 0: `0x20` is
/// hexadecimal, a leading `0` octal, anything else decimal), then an optional unit `K`, `M`,
/// `G` or `T` (case-insensitive; a trailing `B` or `iB` after the unit is tolerated, so `2MB`
/// and `2MiB` work too): `4096`, `2048k`, `2M`, `0x20g`, `050m`. Returns `None` for anything
/// else — a sign, blanks inside, an octal number with an 8 or 9 — and on overflow.
pub fn parse_size_suffix(text: &str) -> Option<u64> {
    let text = text.trim();
    let (radix, body) =
        if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            (16, hex)
        } else if text.len() > 1 && text.starts_with('0') && text.as_bytes()[1].is_ascii_digit() {
            // Every decimal digit belongs to the number, so `08` is refused rather than read
            // as 0 followed by a unit `8`.
            (8, &text[1..])
        } else {
            (10, text)
        };
    let in_number = |c: char| match radix {
        16 => c.is_ascii_hexdigit(),
        _ => c.is_ascii_digit(),
    };
    let digits_end = body.find(|c: char| !in_number(c)).unwrap_or(body.len());
    if digits_end == 0 {
        return None;
    }
    let number = u64::from_str_radix(&body[..digits_end], radix).ok()?;
    let suffix = body[digits_end..].to_ascii_lowercase();
    let unit = suffix
        .strip_suffix("ib")
        .or_else(|| suffix.strip_suffix('b'))
        .unwrap_or(&suffix);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return None,
    };
    // A bare "B"/"iB" with no unit letter is not a size anyone writes; reject it.
    if unit.is_empty() && !suffix.is_empty() {
        return None;
    }
    number.checked_mul(1u64 << shift)
}

/// One mounted file system, of any type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Where it is mounted, with `/proc/mounts` escapes decoded.
    pub mount_point: PathBuf,
    /// Its type: `hugetlbfs`, `tmpfs`, `ext4`, ...
    pub fs_type: String,
}

/// Parses text in `/proc/mounts` format, keeping every entry.
pub fn parse_mounts(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_ascii_whitespace();
            let (_source, mount_point, fs_type) = (fields.next()?, fields.next()?, fields.next()?);
            Some(MountEntry {
                mount_point: PathBuf::from(decode_mount_escapes(mount_point)),
                fs_type: fs_type.to_owned(),
            })
        })
        .collect()
}

/// The file system mounted on `path` itself (not merely containing it), if any: the last one
/// `/proc/mounts` lists there, which is the one on top. Paths are resolved as
/// [`hugetlbfs_mount_containing`] resolves them.
pub fn mount_at(root: &SysRoot, path: &Path) -> SysResult<Option<MountEntry>> {
    let text = root.read_string("/proc/mounts")?;
    let target = resolve_mount_path(root, path);
    Ok(parse_mounts(&text)
        .into_iter()
        .rev()
        .find(|m| resolve_mount_path(root, &m.mount_point) == target))
}

/// On the host an existing path is canonicalised (symlinks and `..` resolved as the kernel
/// will); under a fake root, or for a path that does not exist, it is normalised lexically.
fn resolve_mount_path(root: &SysRoot, p: &Path) -> PathBuf {
    if root.is_host() {
        if let Ok(canonical) = p.canonicalize() {
            return canonical;
        }
        if p.is_relative() {
            if let Ok(cwd) = std::env::current_dir() {
                return lexical_normalize(&cwd.join(p));
            }
        }
    }
    lexical_normalize(p)
}

/// Undoes the octal escapes (`\040` for space, `\011` tab, `\012` newline, `\134`
/// backslash) the kernel uses so that a mount point never contains a field separator.
fn decode_mount_escapes(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let octal = &bytes[i + 1..i + 4];
            if octal.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let value = octal
                    .iter()
                    .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Removes `.` components and applies `..` without touching the filesystem.
fn lexical_normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_decoded() {
        assert_eq!(
            decode_mount_escapes(r"/mnt/huge\040pages"),
            "/mnt/huge pages"
        );
        assert_eq!(decode_mount_escapes(r"/a\011b\012c\134d"), "/a\tb\nc\\d");
        // Not a full escape: left as is.
        assert_eq!(decode_mount_escapes(r"/a\04"), r"/a\04");
        assert_eq!(decode_mount_escapes(r"/a\9xx"), r"/a\9xx");
    }

    #[test]
    fn sizes_are_read_in_c_notation() {
        // strtoull with base 0, as DPDK and the kernel read them.
        assert_eq!(parse_size_suffix("0x20g"), Some(0x20 << 30));
        assert_eq!(parse_size_suffix("0x103"), Some(0x103));
        assert_eq!(parse_size_suffix("0X1000K"), Some(0x1000 << 10));
        assert_eq!(
            parse_size_suffix("0x2b"),
            Some(0x2b),
            "b is a hex digit here"
        );
        assert_eq!(parse_size_suffix("050m"), Some(0o50 << 20));
        assert_eq!(parse_size_suffix("0200"), Some(0o200));
        assert_eq!(parse_size_suffix("0"), Some(0));
        assert_eq!(parse_size_suffix("0k"), Some(0));
        assert_eq!(parse_size_suffix("10"), Some(10));
        for bad in [
            "0x",
            "0xg",
            "08",
            "019m",
            "0x-1",
            "0x1ffffffffffffffff",
            "0x10000000000T",
        ] {
            assert_eq!(parse_size_suffix(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn mount_entries_of_any_type() {
        let text = "proc /proc proc rw 0 0\nnodev /mnt/a\\040b tmpfs rw 0 0\nbad\n";
        assert_eq!(
            parse_mounts(text),
            vec![
                MountEntry {
                    mount_point: PathBuf::from("/proc"),
                    fs_type: "proc".into()
                },
                MountEntry {
                    mount_point: PathBuf::from("/mnt/a b"),
                    fs_type: "tmpfs".into()
                },
            ]
        );
    }

    #[test]
    fn lexical_normalize_handles_dots() {
        assert_eq!(
            lexical_normalize(Path::new("/a/./b/../c/")),
            PathBuf::from("/a/c")
        );
    }
}
