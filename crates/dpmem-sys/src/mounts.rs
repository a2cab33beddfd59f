//! hugetlbfs mount points, from `/proc/mounts`.
//!
//! Hugepage files can only be created on a hugetlbfs mount, and each mount serves exactly
//! one page size (its `pagesize=` option, or the kernel's default hugepage size when the
//! option is absent). dpmem uses this to find a directory for each page size and to refuse
//! a `--huge-dir` that is not on hugetlbfs, before any `mmap` fails less clearly.

use std::path::{Component, Path, PathBuf};

use crate::error::SysResult;
use crate::hugepage_info;
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
    let default_page_size = hugepage_info::default_page_size(root)?;
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
    let resolve = |p: &Path| -> PathBuf {
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
    };
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
/// size options accept it: `4096`, `2048k`, `2M`, `1G`, `1T` (case-insensitive; a trailing
/// `B` or `iB` is tolerated, so `2MB` and `2MiB` work too). Returns `None` for anything
/// else, including overflow.
pub fn parse_size_suffix(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits_end == 0 {
        return None;
    }
    let number: u64 = text[..digits_end].parse().ok()?;
    let suffix = text[digits_end..].to_ascii_lowercase();
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
    fn lexical_normalize_handles_dots() {
        assert_eq!(
            lexical_normalize(Path::new("/a/./b/../c/")),
            PathBuf::from("/a/c")
        );
    }
}
