//! Growing the process's descriptor table ahead of a burst of opens.
//!
//! The kernel keeps a process's open files in a table that starts with 64 slots and doubles
//! whenever an open needs a slot beyond its end. When threads share the table, each growth
//! waits for an RCU grace period before the old table may go (`expand_files` calls
//! `synchronize_rcu`), and on a loaded VM one grace period costs 10–15 ms. File-per-page
//! start-up opens one file per hugepage from worker threads: 512 pages grow the table four
//! times (64 to 1024), about 50 ms of workers asleep, more than a third of the start-up.
//! Growing the table once, to its final size, before the workers start — while the process is
//! often still single-threaded, so no grace period is needed at all — removes that wait.

use rustix::fd::AsFd;

/// Makes room for `count` more descriptors above the lowest free one, so that opening them
/// does not grow the table again. Best effort: capped by the soft open-file limit, and a
/// failure (no descriptor to copy, limit reached) only means the table grows on demand as
/// before.
pub fn reserve(count: usize) {
    if count == 0 {
        return;
    }
    let Ok(probe) = rustix::fs::open(
        "/",
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) else {
        return;
    };
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    // `probe` took the lowest free slot, so the burst's descriptors start about there.
    let lowest_free = rustix::fd::AsRawFd::as_raw_fd(&probe) as u64;
    let highest = (lowest_free + count as u64).min(limit.saturating_sub(1));
    if highest <= lowest_free {
        return;
    }
    // F_DUPFD takes the lowest free slot at or above `highest`, growing the table to hold it,
    // and never replaces an open descriptor (unlike dup2). The copy is closed at once; the
    // table keeps its size.
    let Ok(highest) = i32::try_from(highest) else {
        return;
    };
    let _ = rustix::io::fcntl_dupfd_cloexec(probe.as_fd(), highest);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Descriptors numbered `min` or above (other tests, running alongside, open only a few,
    /// low-numbered ones).
    fn open_at_or_above(min: usize) -> Vec<usize> {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|&fd: &usize| fd >= min)
            .collect()
    }

    #[test]
    fn reserving_leaves_no_descriptor_open() {
        reserve(600);
        reserve(0);
        reserve(usize::MAX / 2);
        // The copy that grew the table sat near 600 and is closed again.
        assert_eq!(open_at_or_above(400), Vec::<usize>::new());
    }

    #[test]
    fn reserved_table_holds_the_burst() {
        reserve(300);
        // The table's size shows as the "FDSize" of /proc/self/status.
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let size: usize = status
            .lines()
            .find_map(|l| l.strip_prefix("FDSize:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(size >= 300, "descriptor table holds {size} slots");
    }
}
