//! What a band draws, from what it shows: pages or heap elements become *runs*.
//!
//! Neighbours of one kind merge into one run, whatever their size (a run of 4096 pinned pages
//! is one rectangle, not 4096). Neighbours of different kinds each get their own run as long
//! as they are at least a pixel or so wide; narrower ones are gathered, left to right, into a
//! summary run that grows until it is that wide, and records how many of each kind it holds and
//! their bytes, so that nothing is lost: the picture draws a summary's kinds in proportion and
//! names the counts in its hover title. So a band has at most a few runs per pixel, however
//! many pages or elements the memory holds.

use super::axis::Axis;

/// A stretch of addresses of one kind, to draw: one page or one heap element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece<K> {
    pub va: usize,
    pub len: usize,
    pub kind: K,
}

/// How many pieces of one kind a run holds, and their bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindTotal<K> {
    pub kind: K,
    pub count: u64,
    pub bytes: u64,
}

/// Neighbouring pieces drawn as one rectangle.
#[derive(Debug, Clone, PartialEq)]
pub struct Run<K> {
    pub va: usize,
    pub len: usize,
    pub x0: f64,
    pub x1: f64,
    /// Per kind, in the kinds' order; one entry unless the run summarises narrow pieces.
    pub kinds: Vec<KindTotal<K>>,
}

impl<K: Copy + Ord> Run<K> {
    pub fn end(&self) -> usize {
        self.va + self.len
    }

    pub fn width(&self) -> f64 {
        self.x1 - self.x0
    }

    /// The kind of every piece of the run, when they are all of one.
    pub fn single_kind(&self) -> Option<K> {
        match self.kinds.as_slice() {
            [only] => Some(only.kind),
            _ => None,
        }
    }

    /// How many pieces the run holds.
    pub fn count(&self) -> u64 {
        self.kinds.iter().map(|k| k.count).sum()
    }

    fn add(&mut self, piece: &Piece<K>, x1: f64) {
        self.len = piece.va + piece.len - self.va;
        self.x1 = x1;
        match self.kinds.binary_search_by(|k| k.kind.cmp(&piece.kind)) {
            Ok(i) => {
                self.kinds[i].count += 1;
                self.kinds[i].bytes += piece.len as u64;
            }
            Err(i) => self.kinds.insert(
                i,
                KindTotal {
                    kind: piece.kind,
                    count: 1,
                    bytes: piece.len as u64,
                },
            ),
        }
    }
}

/// The runs to draw for `pieces` (in address order, not overlapping) on `axis`; pieces
/// narrower than `min_px` are summarised as this module's notes say.
pub fn merge<K: Copy + Ord>(
    pieces: impl IntoIterator<Item = Piece<K>>,
    axis: &Axis,
    min_px: f64,
) -> Vec<Run<K>> {
    let mut runs: Vec<Run<K>> = Vec::new();
    for piece in pieces {
        let x0 = axis.x_of(piece.va);
        let x1 = axis.x_of(piece.va + piece.len);
        if let Some(last) = runs.last_mut() {
            let touching = last.end() == piece.va;
            let same_kind = last.single_kind() == Some(piece.kind);
            let both_narrow = last.width() < min_px && x1 - x0 < min_px;
            if touching && (same_kind || both_narrow) {
                last.add(&piece, x1);
                continue;
            }
        }
        runs.push(Run {
            va: piece.va,
            len: piece.len,
            x0,
            x1,
            kinds: vec![KindTotal {
                kind: piece.kind,
                count: 1,
                bytes: piece.len as u64,
            }],
        });
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(bytes: usize, width: f64) -> Axis {
        Axis::new(0.0, width, &[(0, bytes, true)])
    }

    fn piece(va: usize, len: usize, kind: u8) -> Piece<u8> {
        Piece { va, len, kind }
    }

    #[test]
    fn neighbours_of_one_kind_are_one_run() {
        let pieces = (0..4096).map(|i| piece(i * 4096, 4096, 0));
        let runs = merge(pieces, &axis(4096 * 4096, 1000.0), 1.5);
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].count(), 4096);
        assert_eq!(runs[0].len, 4096 * 4096);
        assert_eq!((runs[0].x0, runs[0].x1), (0.0, 1000.0));
    }

    #[test]
    fn wide_pieces_of_different_kinds_stay_apart() {
        let pieces = [piece(0, 100, 0), piece(100, 100, 1), piece(200, 100, 0)];
        let runs = merge(pieces, &axis(300, 300.0), 1.5);
        assert_eq!(runs.len(), 3);
        assert!(runs.iter().all(|r| r.single_kind().is_some()));
    }

    #[test]
    fn narrow_pieces_are_summarised_with_their_counts_and_bytes() {
        // 1000 elements of 64 bytes, alternately busy and free, on a band of 100 px: 640 bytes
        // per pixel, so ten pieces or more make a run of at least a pixel.
        let pieces = (0..1000).map(|i| piece(i * 64, 64, (i % 2) as u8));
        let runs = merge(pieces, &axis(64_000, 100.0), 1.0);
        assert!(runs.len() <= 100 && runs.len() >= 90, "{}", runs.len());
        let total: u64 = runs.iter().map(Run::count).sum();
        assert_eq!(total, 1000);
        let busy_bytes: u64 = runs
            .iter()
            .flat_map(|r| &r.kinds)
            .filter(|k| k.kind == 0)
            .map(|k| k.bytes)
            .sum();
        assert_eq!(busy_bytes, 500 * 64);
        assert!(runs.iter().all(|r| r.single_kind().is_none()));
    }

    #[test]
    fn a_gap_starts_a_new_run() {
        let pieces = [piece(0, 10, 0), piece(20, 10, 0)];
        let runs = merge(pieces, &axis(30, 30.0), 1.5);
        assert_eq!(runs.len(), 2);
    }

    #[test]
    fn a_narrow_piece_after_a_wide_one_does_not_blur_it() {
        let pieces = [piece(0, 1000, 0), piece(1000, 1, 1), piece(1001, 1, 0)];
        let runs = merge(pieces, &axis(1002, 1002.0), 1.5);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].single_kind(), Some(0));
        assert_eq!(runs[1].count(), 2);
    }
}
