//! A secondary process attaching to the primary's memory: the same windows, at the same
//! addresses, backed by the same files.

use dpmem_sys::backing_file::BackingFile;
use dpmem_sys::mapping;

use std::sync::atomic::Ordering;

use super::backing::{list_file_path, page_file_path, ListBacking};
use super::secondary_sync::SecondaryView;
use super::{Memory, MemoryMode, MemorySettings, ProcessRole};
use crate::error::EalError;
use crate::iova::IovaMode;
use crate::options::HugeUnlink;
use crate::shared_config::{mode_flags, ConfigMapping};
use crate::shared_name::decode_str;

impl Memory {
    pub(crate) fn attach_secondary(config: ConfigMapping) -> Result<Memory, EalError> {
        let header = config.header();
        let flags = header.mode_flags;
        let settings = MemorySettings {
            mode: if flags & mode_flags::LEGACY != 0 {
                MemoryMode::Legacy
            } else {
                MemoryMode::Dynamic
            },
            in_memory: false,
            single_file_segments: flags & mode_flags::SINGLE_FILE_SEGMENTS != 0,
            huge_unlink: HugeUnlink::Existing,
            match_allocations: flags & mode_flags::MATCH_ALLOCATIONS != 0,
            iova_mode: if header.iova_mode == 1 {
                IovaMode::Va
            } else {
                IovaMode::Pa
            },
            file_prefix: decode_str(&header.file_prefix),
            huge_dirs: config.huge_dirs(),
            numa_policy: false,
            role: ProcessRole::Secondary,
        };
        let views = config.list_views();
        let mut reserved: Vec<(usize, usize)> = Vec::new();
        let undo = |reserved: &[(usize, usize)]| {
            for &(base, len) in reserved {
                // SAFETY: windows reserved by this function; their mappings die with them.
                let _ = unsafe { mapping::release(base, len) };
            }
        };
        let mut backings = Vec::with_capacity(views.len());
        let mut mapped: Vec<Vec<Option<u32>>> = Vec::with_capacity(views.len());
        let _lock = header.hotplug_lock.lock();
        // What this process maps below is the primary's state as of this count.
        let generation = header.hotplug_generation.load(Ordering::Acquire);
        for view in &views {
            let h = *view.header();
            if let Err(e) = mapping::reserve(
                h.len as usize,
                h.page_size as usize,
                Some(h.base_va as usize),
            ) {
                undo(&reserved);
                return Err(EalError::Secondary(format!(
                    "memseg list {} at {:#x}+{:#x} cannot be mapped at the primary's address: {e}",
                    h.index, h.base_va, h.len
                )));
            }
            reserved.push((h.base_va as usize, h.len as usize));
            let result = (|| -> Result<(ListBacking, Vec<Option<u32>>), EalError> {
                let dir = settings
                    .huge_dirs
                    .iter()
                    .find(|(ps, _)| *ps == h.page_size)
                    .map(|(_, d)| d.clone())
                    .ok_or_else(|| {
                        EalError::Secondary(format!(
                            "no hugepage directory recorded for {} byte pages",
                            h.page_size
                        ))
                    })?;
                let mut backing = if settings.single_file_segments {
                    let file = BackingFile::open_existing(&list_file_path(
                        &dir,
                        &settings.file_prefix,
                        h.index,
                    ))
                    .map_err(|e| EalError::sys("open list file", e))?;
                    ListBacking::SingleFile {
                        file,
                        initial_len: 0,
                    }
                } else {
                    ListBacking::FilePerPage {
                        dir: dir.clone(),
                        files: (0..h.n_segs).map(|_| None).collect(),
                    }
                };
                let mut mapped_here = vec![None; h.n_segs as usize];
                for idx in view.occupancy.iter_used() {
                    let seg = view.segment(idx);
                    mapped_here[idx as usize] = Some(seg.map_seq);
                    let page_file = match &backing {
                        ListBacking::SingleFile { .. } => None,
                        _ => {
                            let path = page_file_path(&dir, &settings.file_prefix, h.index, idx);
                            let file = BackingFile::open_existing(&path)
                                .map_err(|e| EalError::sys("open primary page file", e))?;
                            file.lock_shared()
                                .map_err(|e| EalError::sys("lock page file", e))?;
                            Some(file)
                        }
                    };
                    let fd = match (&backing, &page_file) {
                        (ListBacking::SingleFile { file, .. }, _) | (_, Some(file)) => file.fd(),
                        _ => unreachable!("a file-per-page segment has its file"),
                    };
                    // SAFETY: `seg.va` is inside the window this process reserved at the
                    // primary's address just above, and nothing of this process uses it yet.
                    unsafe {
                        mapping::map_file_fixed(
                            fd,
                            seg.file_offset,
                            seg.va as usize,
                            seg.len as usize,
                            true,
                        )
                    }
                    .map_err(|e| EalError::sys("map primary page", e))?;
                    backing.adopt(idx, page_file);
                }
                Ok((backing, mapped_here))
            })();
            match result {
                Ok((b, m)) => {
                    backings.push(b);
                    mapped.push(m);
                }
                Err(e) => {
                    undo(&reserved);
                    return Err(e);
                }
            }
        }
        drop(_lock);
        drop(views);
        let memory = Memory::new(config, backings, settings);
        *memory
            .secondary_view
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = SecondaryView { generation, mapped };
        memory
            .synced_generation
            .store(generation, Ordering::Release);
        Ok(memory)
    }
}
