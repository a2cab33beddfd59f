//! Where the names of memzones and pools go under a band: each gets a bar under its memory and
//! a label beside the bar's start, in the first lane (row) where the label overlaps nothing.
//! Labels are in a monospace font, so their width is known without measuring text.

/// Pixels per character of the labels' font (monospace at 10 px, `.label` in the style sheet).
pub const CHAR_PX: f64 = 6.1;
/// Space kept between two labels in one lane.
const GAP_PX: f64 = 8.0;

/// Something to label: its bar's extent and its label's text width.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Labelled {
    pub x0: f64,
    pub x1: f64,
    pub chars: usize,
}

/// Where a bar and its label went.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    pub lane: usize,
    /// Where the label's text starts (or ends, when `anchor_end`).
    pub text_x: f64,
    /// The label ends at `text_x` (it would have run past the band's right end).
    pub anchor_end: bool,
    /// Whether the label is drawn: past `max_lanes` lanes a bar goes without one, and only its
    /// hover title names it.
    pub labelled: bool,
}

/// Places `items` between `left` and `right` in at most `max_lanes` lanes (at least one);
/// returns their placements, in `items`' order, and the number of lanes used.
pub fn place(
    items: &[Labelled],
    left: f64,
    right: f64,
    max_lanes: usize,
) -> (Vec<Placement>, usize) {
    let max_lanes = max_lanes.max(1);
    let extent = |item: &Labelled| {
        let text = item.chars as f64 * CHAR_PX;
        if item.x0 + text <= right {
            (item.x0, item.x1.max(item.x0 + text), item.x0, false)
        } else {
            // Right-aligned at the band's end, or at the bar's start when that is further left.
            let text_end = right.max(item.x0);
            (
                (text_end - text).max(left).min(item.x0),
                item.x1.max(text_end),
                text_end,
                true,
            )
        }
    };
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| extent(&items[a]).0.total_cmp(&extent(&items[b]).0));
    // The right end of what each lane holds so far.
    let mut lane_ends: Vec<f64> = Vec::new();
    let mut placements = vec![
        Placement {
            lane: 0,
            text_x: 0.0,
            anchor_end: false,
            labelled: false,
        };
        items.len()
    ];
    for i in order {
        let (start, end, text_x, anchor_end) = extent(&items[i]);
        let free = lane_ends.iter().position(|&e| e + GAP_PX <= start);
        let lane = match free {
            Some(lane) => Some(lane),
            None if lane_ends.len() < max_lanes => {
                lane_ends.push(f64::NEG_INFINITY);
                Some(lane_ends.len() - 1)
            }
            None => None,
        };
        placements[i] = match lane {
            Some(lane) => {
                lane_ends[lane] = end;
                Placement {
                    lane,
                    text_x,
                    anchor_end,
                    labelled: true,
                }
            }
            // No room for the label: the bar alone, in the last lane.
            None => Placement {
                lane: max_lanes - 1,
                text_x,
                anchor_end,
                labelled: false,
            },
        };
    }
    let lanes = lane_ends.len();
    (placements, lanes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(x0: f64, x1: f64, chars: usize) -> Labelled {
        Labelled { x0, x1, chars }
    }

    #[test]
    fn labels_that_would_overlap_take_another_lane() {
        let items = [
            item(0.0, 5.0, 10),
            item(10.0, 12.0, 10),
            item(200.0, 300.0, 4),
        ];
        let (p, lanes) = place(&items, 0.0, 1000.0, 8);
        assert_eq!(lanes, 2);
        assert_eq!((p[0].lane, p[1].lane, p[2].lane), (0, 1, 0));
        assert!(p.iter().all(|p| p.labelled && !p.anchor_end));
    }

    #[test]
    fn a_label_at_the_right_end_is_right_aligned() {
        let (p, _) = place(&[item(990.0, 995.0, 10)], 0.0, 1000.0, 8);
        assert!(p[0].anchor_end);
        assert_eq!(p[0].text_x, 1000.0);
    }

    #[test]
    fn past_the_last_lane_bars_go_unlabelled() {
        let items: Vec<Labelled> = (0..5).map(|i| item(i as f64, i as f64 + 1.0, 20)).collect();
        let (p, lanes) = place(&items, 0.0, 1000.0, 3);
        assert_eq!(lanes, 3);
        assert_eq!(p.iter().filter(|p| p.labelled).count(), 3);
        assert!(p.iter().filter(|p| !p.labelled).all(|p| p.lane == 2));
    }
}
