//! The horizontal axis of one memseg list's band: where each address of the list is drawn.
//!
//! A list reserves far more address space than it maps (a dynamic-memory list of 2 MiB pages
//! reserves 32 GiB and may map 20 MiB of it), so a band drawn to one scale would show its
//! memory as a sliver. The axis is linear over mapped memory and over holes no wider than a
//! fold; a hole that would be wider is *folded* to a fixed width, drawn as a break, and says
//! its size. Every band has the same width in pixels whatever its size, so a band of a few MiB
//! and one of many GiB read alike; what is smaller than a pixel is summarised by the runs
//! drawn on it ([`super::runs`]).

/// Pixels a folded hole takes, unless many folds must share the band.
const FOLD_PX: f64 = 28.0;
/// Folds together take at most this share of the band.
const FOLDS_MAX_SHARE: f64 = 0.4;

/// A stretch of the list's addresses, mapped or not, as the axis lays it out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AxisPiece {
    pub va: usize,
    pub len: usize,
    pub mapped: bool,
    pub x: f64,
    pub width: f64,
    /// Drawn narrower than its share of the scale: a hole shown as a break.
    pub folded: bool,
}

#[derive(Debug, Clone)]
pub struct Axis {
    pieces: Vec<AxisPiece>,
    x: f64,
    width: f64,
    /// Bytes per pixel over the linear parts.
    bytes_per_px: f64,
}

impl Axis {
    /// The axis of a band `width` pixels wide starting at `x`, over `stretches` — `(va, len,
    /// mapped)` in address order, tiling the list.
    pub fn new(x: f64, width: f64, stretches: &[(usize, usize, bool)]) -> Axis {
        let mapped: f64 = stretches.iter().filter(|s| s.2).map(|s| s.1 as f64).sum();
        let mut folded = vec![false; stretches.len()];
        let mut fold_px = FOLD_PX;
        // Bytes drawn to scale, and the pixels they share. Folding a hole frees pixels for the
        // rest, which can make another hole too wide: repeat until nothing more folds (at most
        // once per hole). With nothing mapped the whole list is one hole, drawn to scale.
        let bytes_per_px = if mapped > 0.0 {
            loop {
                let folds = folded.iter().filter(|&&f| f).count();
                fold_px = FOLD_PX.min(width * FOLDS_MAX_SHARE / folds.max(1) as f64);
                let linear: f64 = stretches
                    .iter()
                    .zip(&folded)
                    .filter(|(_, &f)| !f)
                    .map(|(s, _)| s.1 as f64)
                    .sum();
                let bytes_per_px = linear / (width - fold_px * folds as f64);
                let mut changed = false;
                for (s, f) in stretches.iter().zip(folded.iter_mut()) {
                    if !s.2 && !*f && s.1 as f64 / bytes_per_px > fold_px {
                        *f = true;
                        changed = true;
                    }
                }
                if !changed {
                    break bytes_per_px;
                }
            }
        } else {
            let total: f64 = stretches.iter().map(|s| s.1 as f64).sum();
            total.max(1.0) / width
        };
        let mut at = x;
        let pieces = stretches
            .iter()
            .zip(&folded)
            .map(|(&(va, len, mapped), &folded)| {
                let w = if folded {
                    fold_px
                } else {
                    len as f64 / bytes_per_px
                };
                let piece = AxisPiece {
                    va,
                    len,
                    mapped,
                    x: at,
                    width: w,
                    folded,
                };
                at += w;
                piece
            })
            .collect();
        Axis {
            pieces,
            x,
            width,
            bytes_per_px,
        }
    }

    pub fn pieces(&self) -> &[AxisPiece] {
        &self.pieces
    }

    /// Bytes one pixel stands for where the band is drawn to scale.
    pub fn bytes_per_px(&self) -> f64 {
        self.bytes_per_px
    }

    /// The x of address `va`; addresses outside the list are put at its ends.
    pub fn x_of(&self, va: usize) -> f64 {
        let i = self.pieces.partition_point(|p| p.va + p.len <= va);
        match self.pieces.get(i) {
            None => self.x + self.width,
            Some(p) if va <= p.va => p.x,
            Some(p) => p.x + (va - p.va) as f64 * p.width / p.len as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn a_fully_mapped_list_is_linear() {
        let axis = Axis::new(10.0, 1000.0, &[(0, 100 * MIB, true)]);
        assert_eq!(axis.x_of(0), 10.0);
        assert_eq!(axis.x_of(50 * MIB), 510.0);
        assert_eq!(axis.x_of(100 * MIB), 1010.0);
        assert!(!axis.pieces()[0].folded);
    }

    #[test]
    fn a_wide_hole_folds_and_the_mapped_memory_takes_the_band() {
        // 32 MiB mapped at the start of a 32 GiB list.
        let axis = Axis::new(
            0.0,
            1000.0,
            &[(0, 32 * MIB, true), (32 * MIB, 32736 * MIB, false)],
        );
        let [mapped, hole] = axis.pieces() else {
            panic!("two pieces")
        };
        assert!(hole.folded && !mapped.folded);
        assert_eq!(hole.width, FOLD_PX);
        assert!((mapped.width - (1000.0 - FOLD_PX)).abs() < 1e-9);
        assert!(((hole.x + hole.width) - 1000.0).abs() < 1e-9);
        assert!((axis.x_of(16 * MIB) - (1000.0 - FOLD_PX) / 2.0).abs() < 1e-9);
    }

    #[test]
    fn a_narrow_hole_stays_to_scale() {
        // A hole of one 4 KiB page in 16 MiB of mapped memory: drawn to scale, under a pixel.
        let axis = Axis::new(
            0.0,
            1000.0,
            &[
                (0, 8 * MIB, true),
                (8 * MIB, 4096, false),
                (8 * MIB + 4096, 8 * MIB, true),
            ],
        );
        assert!(axis.pieces().iter().all(|p| !p.folded));
        let hole = axis.pieces()[1];
        assert!(hole.width > 0.0 && hole.width < 1.0);
    }

    #[test]
    fn many_holes_share_at_most_their_part_of_the_band() {
        let mut stretches = Vec::new();
        for i in 0..100 {
            stretches.push((i * 2048 * MIB, 2 * MIB, true));
            stretches.push((i * 2048 * MIB + 2 * MIB, 2046 * MIB, false));
        }
        let axis = Axis::new(0.0, 1000.0, &stretches);
        let folds: f64 = axis
            .pieces()
            .iter()
            .filter(|p| p.folded)
            .map(|p| p.width)
            .sum();
        assert!(folds <= 400.0 + 1e-9, "{folds}");
        assert!((axis.pieces().last().map_or(0.0, |p| p.x + p.width) - 1000.0).abs() < 1e-6);
    }

    #[test]
    fn an_empty_list_is_one_hole_to_scale() {
        let axis = Axis::new(0.0, 500.0, &[(0, 1 << 30, false)]);
        assert_eq!(axis.pieces()[0].width, 500.0);
        assert!(!axis.pieces()[0].folded);
        assert_eq!(axis.x_of(1 << 29), 250.0);
    }
}
