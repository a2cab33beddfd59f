//! [`FrameBuffers`]: a receive session's frame buffers — memzones in the EAL's memory with
//! their device addresses known ([`FrameMemory`], shared with the transmit side) — and their
//! states ([`FrameStates`]), which the session and the application's frame handles share.

use dpmem_eal::{Eal, Socket};

use crate::error::FrameError;
use crate::format::St20Format;
use crate::frame_id::FrameId;
use crate::memory::{free_frame, FrameMemory};
use crate::numa::Placer;
use crate::rx::frame_states::FrameStates;

#[derive(Debug)]
pub(crate) struct FrameBuffers<'eal> {
    eal: &'eal Eal,
    memory: Vec<FrameMemory>,
    states: FrameStates,
    /// Bytes of one frame of the session's format (what a handle shows).
    frame_size: usize,
}

impl<'eal> FrameBuffers<'eal> {
    /// `n` buffers of one frame of `format` each, named `name.f0`, `name.f1`, ... on the
    /// placer's socket (or as it allows); none when one cannot be had.
    pub(crate) fn reserve(
        eal: &'eal Eal,
        placer: &mut Placer<'_>,
        name: &str,
        n: u16,
        format: &St20Format,
    ) -> Result<FrameBuffers<'eal>, FrameError> {
        let frame_size = format.frame_size();
        let mut memory = Vec::with_capacity(usize::from(n));
        for i in 0..n {
            let name = format!("{name}.f{i}");
            let reserved = placer.place(
                &format!("frame buffer {name:?} of {frame_size} bytes"),
                |socket| FrameMemory::reserve(eal, &name, frame_size, socket, format),
                |m| m.zone().map_or(Socket::Any, |z| z.socket),
                // SAFETY: just reserved; nothing points into it.
                |m| unsafe { free_frame(eal, &m) },
            );
            match reserved {
                Ok(m) => memory.push(m),
                Err(e) => {
                    for m in &memory {
                        // SAFETY: just reserved; nothing points into it.
                        unsafe { free_frame(eal, m) };
                    }
                    return Err(e);
                }
            }
        }
        Ok(FrameBuffers {
            eal,
            memory,
            states: FrameStates::new(n),
            frame_size,
        })
    }

    pub(crate) fn count(&self) -> u16 {
        self.states.count()
    }

    pub(crate) fn frame_size(&self) -> usize {
        self.frame_size
    }

    /// The first byte of buffer `id`.
    #[inline]
    pub(crate) fn base(&self, id: FrameId) -> *mut u8 {
        self.memory[usize::from(id)].as_ptr()
    }

    pub(crate) fn states(&self) -> &FrameStates {
        &self.states
    }
}

impl Drop for FrameBuffers<'_> {
    fn drop(&mut self) {
        // The session keeps the buffers alive while any device copy into them is in flight
        // (it leaks its share when it goes with copies outstanding), and each handle holds a
        // share: so nothing reads or writes them now.
        for m in &self.memory {
            // SAFETY: as above: no copy, no handle, no session points into the buffers.
            unsafe { free_frame(self.eal, m) };
        }
    }
}
