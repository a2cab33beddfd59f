//! Why a secondary found no primary to attach to.
//!
//! A secondary looks for its primary in its own user's runtime directory (see
//! [`crate::runtime_dir`]): a primary of another user keeps its directory under that user's
//! base, private to it, and a primary started `--in-memory` keeps none at all. Either way the
//! secondary finds nothing, and "no primary is running" would send its user looking in the
//! wrong place. The hugepage files tell the first case apart: page files of the prefix that
//! belong to another user (their names are visible to all in a hugetlbfs mount, their pages
//! are not) mean that user's primary runs with it. The secondary is then refused with that
//! reason; nothing is opened or created for it.
//!
//! `--proc-type=auto` asks for a secondary when a primary runs. Finding another user's page
//! files of the prefix, it is refused the same way rather than made a primary of its own: its
//! page files would take the same names as the other primary's.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::EalError;
use crate::runtime_dir;

/// The refusal of a secondary of `prefix` that found no runtime directory of its user,
/// looking for page files of the prefix in `huge_dirs`.
pub(crate) fn refusal(prefix: &str, huge_dirs: &[PathBuf]) -> EalError {
    let me = dpmem_sys::process::effective_uid();
    let mut reason = format!(
        "no primary process is running with file prefix {prefix:?} as user {me} (no runtime directory {})",
        runtime_dir::location(prefix).display()
    );
    match huge_dirs
        .iter()
        .find_map(|dir| foreign_page_file(dir, prefix, me))
    {
        Some((file, owner)) => reason.push_str(&format!(
            "; {} belongs to user {owner}: a primary of another user runs with this prefix, and \
             only processes of its user may attach to it (its runtime directory and memory are \
             private to that user)",
            file.display()
        )),
        None => reason.push_str(
            "; a primary started with --in-memory keeps no runtime directory and takes no secondaries",
        ),
    }
    EalError::Secondary(reason)
}

/// For `--proc-type=auto` finding no runtime directory of its user: the refusal when page
/// files of `prefix` in `huge_dirs` belong to another user, `None` when it may become the
/// primary.
pub(crate) fn auto_refusal(prefix: &str, huge_dirs: &[PathBuf]) -> Option<EalError> {
    let me = dpmem_sys::process::effective_uid();
    let (file, owner) = huge_dirs
        .iter()
        .find_map(|dir| foreign_page_file(dir, prefix, me))?;
    Some(EalError::Secondary(format!(
        "--proc-type=auto as user {me}: {} belongs to user {owner}, so a primary of another \
         user runs (or ran) with file prefix {prefix:?}; a process of another user can neither \
         attach to it (its runtime directory and memory are private to that user) nor start a \
         primary of its own with the same prefix (their page files would have the same names): \
         use another --file-prefix",
        file.display()
    )))
}

/// A page file of `prefix` in `dir` that user `me` does not own, and its owner.
fn foreign_page_file(dir: &Path, prefix: &str, me: u32) -> Option<(PathBuf, u32)> {
    let page_files = format!("{prefix}map_");
    std::fs::read_dir(dir).ok()?.flatten().find_map(|entry| {
        if !entry.file_name().to_string_lossy().starts_with(&page_files) {
            return None;
        }
        // Not followed: a link planted there says nothing of who runs a primary.
        let owner = entry.metadata().ok()?.uid();
        (owner != me).then(|| (entry.path(), owner))
    })
}
