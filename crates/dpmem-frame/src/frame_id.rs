//! [`FrameId`]: a frame's place in its session, the name "done" reports it by.

/// A frame's place in its session (0 to the number of frame buffers - 1).
pub type FrameId = u16;
