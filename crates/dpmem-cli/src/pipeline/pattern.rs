//! The bytes of a generated frame: a function of the stream, the frame's number and the
//! position, so the receiving side checks every byte without keeping a copy of what was sent
//! (the sender's frame is free for its next picture by the time the receiver has it).
//!
//! Each 8-byte word is the stream's and frame's seed mixed with the word's index; a frame
//! whose length is not a multiple of 8 ends with the low bytes of the next word. Two frames
//! (or two streams) differ in every word, so a payload placed at the wrong offset, in the
//! wrong frame or from the wrong stream fails the check.

/// Seed of frame `frame` of stream `stream`.
pub fn seed(stream: u32, frame: u64) -> u64 {
    // Odd multipliers keep the map from (stream, frame) to seeds one to one per stream.
    (stream as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ frame.wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
}

#[inline(always)]
fn word(seed: u64, index: u64) -> u64 {
    seed ^ index.wrapping_mul(0xff51_afd7_ed55_8ccd)
}

/// Writes the pattern of `seed` over `bytes`.
pub fn fill(bytes: &mut [u8], seed: u64) {
    let mut words = bytes.chunks_exact_mut(8);
    let mut index = 0u64;
    for chunk in &mut words {
        chunk.copy_from_slice(&word(seed, index).to_le_bytes());
        index += 1;
    }
    let tail = words.into_remainder();
    let last = word(seed, index).to_le_bytes();
    tail.copy_from_slice(&last[..tail.len()]);
}

/// The offset of the first byte of `bytes` that differs from the pattern of `seed`, if any.
pub fn first_mismatch(bytes: &[u8], seed: u64) -> Option<usize> {
    let mut words = bytes.chunks_exact(8);
    let mut index = 0u64;
    // Compare in blocks without branching per word, and look closer only at a block that
    // differs: the check runs over every byte of every frame.
    const BLOCK: usize = 64;
    let whole = words.len() / BLOCK * BLOCK;
    for _ in (0..whole).step_by(BLOCK) {
        let mut diff = 0u64;
        for _ in 0..BLOCK {
            let chunk = words.next().expect("counted above");
            diff |= u64::from_le_bytes(chunk.try_into().expect("8 bytes")) ^ word(seed, index);
            index += 1;
        }
        if diff != 0 {
            let start = (index as usize - BLOCK) * 8;
            return first_mismatch_slow(
                &bytes[start..start + BLOCK * 8],
                seed,
                index - BLOCK as u64,
            )
            .map(|at| start + at);
        }
    }
    let start = index as usize * 8;
    first_mismatch_slow(&bytes[start..], seed, index).map(|at| start + at)
}

fn first_mismatch_slow(bytes: &[u8], seed: u64, first_word: u64) -> Option<usize> {
    bytes.iter().enumerate().find_map(|(at, &b)| {
        let expected = word(seed, first_word + (at / 8) as u64).to_le_bytes()[at % 8];
        (b != expected).then_some(at)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filled_frame_checks_whole_and_any_changed_byte_is_found_where_it_is() {
        for len in [0usize, 1, 7, 8, 9, 511, 512, 513, 4096 + 3, 20_000] {
            let mut frame = vec![0u8; len];
            fill(&mut frame, seed(3, 17));
            assert_eq!(first_mismatch(&frame, seed(3, 17)), None, "len {len}");
            for at in [0, len / 2, len.saturating_sub(1)] {
                if len == 0 {
                    continue;
                }
                frame[at] ^= 0x40;
                assert_eq!(
                    first_mismatch(&frame, seed(3, 17)),
                    Some(at),
                    "len {len} at {at}"
                );
                frame[at] ^= 0x40;
            }
        }
    }

    #[test]
    fn another_frame_or_stream_differs_in_the_first_word() {
        let mut frame = vec![0u8; 64];
        fill(&mut frame, seed(0, 1));
        assert_eq!(first_mismatch(&frame, seed(0, 2)), Some(0));
        assert_eq!(first_mismatch(&frame, seed(1, 1)), Some(0));
    }
}
