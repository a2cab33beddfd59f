//! The legend at the top of the map: a swatch for each class the bands use, with the same
//! classes (see [`super::palette`]), so the legend cannot disagree with the picture.

use super::band::{BAND_RIGHT, NAME_X};
use super::lanes::CHAR_PX;
use super::xml::{px, XmlWriter};

/// How a legend entry's swatch is drawn.
enum Swatch {
    /// A filled box of these classes (a second class drawn over the first).
    Fill(&'static str, Option<&'static str>),
    /// A thin bar, as memzones and pools are drawn under a band.
    Bar(&'static str),
    /// A vertical mark of this class.
    Mark(&'static str),
    /// The zigzag of a folded hole.
    Fold,
}

const ENTRIES: &[(Swatch, &str)] = &[
    (Swatch::Fill("page pinned", None), "page: pinned"),
    (
        Swatch::Fill("page may-go-back", None),
        "page: mapped on demand",
    ),
    (Swatch::Fill("page external", None), "page: external memory"),
    (Swatch::Fill("page not-mapped", None), "not mapped"),
    (
        Swatch::Fill("page pinned", Some("dirty")),
        "dirty (old data)",
    ),
    (Swatch::Mark("iova-break"), "IOVA break"),
    (Swatch::Fold, "folded hole (not to scale)"),
    (Swatch::Fill("elem busy", None), "heap: busy"),
    (Swatch::Fill("elem free", None), "heap: free"),
    (Swatch::Fill("elem parked", None), "heap: parked"),
    (Swatch::Bar("zone-bar"), "memzone"),
    (Swatch::Bar("pool-bar"), "mempool / packet pool"),
];

/// Height of one row of entries.
const ROW_PX: f64 = 16.0;

/// Draws the legend at `y`; returns its height. A run thinner than a pixel and a half is drawn
/// as a summary: its kinds stacked, each as tall as its share of the bytes.
pub fn draw(w: &mut XmlWriter, y: f64) -> f64 {
    w.start("g", &[("class", "legend".to_owned())]);
    let mut x = NAME_X;
    let mut row_y = y;
    for (swatch, text) in ENTRIES {
        let width = 18.0 + text.chars().count() as f64 * CHAR_PX + 16.0;
        if x + width > BAND_RIGHT {
            x = NAME_X;
            row_y += ROW_PX;
        }
        let box_attrs = |class: &str, h: f64, dy: f64| {
            [
                ("class", class.to_owned()),
                ("x", px(x)),
                ("y", px(row_y + dy)),
                ("width", px(14.0)),
                ("height", px(h)),
            ]
        };
        match swatch {
            Swatch::Fill(class, overlay) => {
                w.empty("rect", &box_attrs(class, 10.0, 1.0));
                if let Some(overlay) = overlay {
                    w.empty("rect", &box_attrs(overlay, 10.0, 1.0));
                }
            }
            Swatch::Bar(class) => w.empty("rect", &box_attrs(class, 3.0, 5.0)),
            Swatch::Mark(class) => w.empty(
                "line",
                &[
                    ("class", (*class).to_owned()),
                    ("x1", px(x + 7.0)),
                    ("y1", px(row_y - 2.0)),
                    ("x2", px(x + 7.0)),
                    ("y2", px(row_y + 7.0)),
                ],
            ),
            Swatch::Fold => w.empty(
                "path",
                &[
                    ("class", "fold".to_owned()),
                    (
                        "d",
                        format!(
                            "M{} {} L{} {} L{} {} L{} {}",
                            px(x + 4.0),
                            px(row_y),
                            px(x + 10.0),
                            px(row_y + 4.0),
                            px(x + 4.0),
                            px(row_y + 8.0),
                            px(x + 10.0),
                            px(row_y + 12.0)
                        ),
                    ),
                ],
            ),
        }
        w.text(
            "text",
            &[
                ("class", "label".to_owned()),
                ("x", px(x + 18.0)),
                ("y", px(row_y + 10.0)),
            ],
            text,
        );
        x += width;
    }
    row_y += ROW_PX;
    w.text(
        "text",
        &[
            ("class", "sub".to_owned()),
            ("x", px(NAME_X)),
            ("y", px(row_y + 10.0)),
        ],
        "A strip of several colours stacks what is too small to draw: each kind as tall as its share of the bytes. Hover for details.",
    );
    w.end();
    row_y + ROW_PX + 6.0 - y
}
