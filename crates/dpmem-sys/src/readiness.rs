//! Waiting until any of several descriptors can be read, and a wake-up that another thread
//! raises to end such a wait (an eventfd): how a control thread serving sockets is told to
//! stop without a timeout to poll on.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::{EventfdFlags, PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use crate::error::{SysError, SysResult};

/// A flag another thread raises to wake a [`wait_readable`] that includes it.
#[derive(Debug)]
pub struct Wakeup {
    fd: OwnedFd,
}

impl Wakeup {
    pub fn new() -> SysResult<Wakeup> {
        rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .map(|fd| Wakeup { fd })
            .map_err(|e| SysError::new("eventfd", "", e))
    }

    /// Makes the descriptor readable until [`Wakeup::clear`].
    pub fn raise(&self) {
        // The counter cannot overflow from raises of 1 in any realistic run, and a failed
        // write (EAGAIN at the counter's top) leaves it readable, which is what is wanted.
        let _ = rustix::io::write(&self.fd, &1u64.to_ne_bytes());
    }

    /// Makes the descriptor unreadable again.
    pub fn clear(&self) {
        let mut count = [0u8; 8];
        let _ = rustix::io::read(&self.fd, &mut count);
    }
}

impl AsFd for Wakeup {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Blocks until at least one of `fds` can be read, or its peer hung up, or it failed (a read
/// will then say how); returns which of them.
pub fn wait_readable(fds: &[BorrowedFd<'_>]) -> SysResult<Vec<bool>> {
    wait_readable_for(fds, None)
}

/// [`wait_readable`], giving up after `limit` (rounded up to a millisecond) when it is given:
/// then every entry is `false`.
pub fn wait_readable_for(fds: &[BorrowedFd<'_>], limit: Option<Duration>) -> SysResult<Vec<bool>> {
    let mut polled: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::new(fd, PollFlags::IN))
        .collect();
    let deadline = limit.map(|limit| Instant::now() + limit);
    loop {
        let left = deadline.map(|d| {
            let left = d.saturating_duration_since(Instant::now());
            // poll's clock counts whole milliseconds: never round a wait down to a busy loop.
            Timespec::try_from(left.max(Duration::from_millis(1))).unwrap_or(Timespec {
                tv_sec: i64::MAX,
                tv_nsec: 0,
            })
        });
        match rustix::event::poll(&mut polled, left.as_ref()) {
            Ok(_) => break,
            Err(Errno::INTR) => continue,
            Err(e) => {
                return Err(SysError::new(
                    "poll",
                    format!("{} descriptors", fds.len()),
                    e,
                ))
            }
        }
    }
    Ok(polled
        .iter()
        .map(|p| {
            p.revents()
                .intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raised_wakeup_ends_a_wait_until_cleared() {
        let wakeup = Wakeup::new().unwrap();
        let other = Wakeup::new().unwrap();
        std::thread::scope(|s| {
            s.spawn(|| wakeup.raise());
            let ready = wait_readable(&[other.as_fd(), wakeup.as_fd()]).unwrap();
            assert_eq!(ready, vec![false, true]);
        });
        wakeup.clear();
        other.raise();
        assert_eq!(
            wait_readable(&[other.as_fd(), wakeup.as_fd()]).unwrap(),
            vec![true, false]
        );
        other.clear();
        let start = Instant::now();
        let ready = wait_readable_for(&[other.as_fd()], Some(Duration::from_millis(20))).unwrap();
        assert_eq!(ready, vec![false]);
        assert!(start.elapsed() >= Duration::from_millis(20));
    }
}
