//! The map's look in one place: the style sheet that gives each class its colour, and the
//! hatching drawn over pages that may hold old data. The bands and the legend use the same
//! classes, so a colour cannot mean one thing in the legend and another in a band.
//!
//! Colours are Tableau's ten, which stay apart for the common kinds of colour blindness;
//! states that must never be confused (busy and free) differ in lightness too.

/// The style sheet inside the SVG (`<style>`), understood by browsers and librsvg alike.
pub const STYLE: &str = "
text { font-family: 'DejaVu Sans Mono', 'Liberation Mono', Menlo, monospace; fill: #222; }
.title { font-size: 17px; font-weight: bold; }
.sub { font-size: 11px; fill: #444; }
.section { font-size: 13px; font-weight: bold; }
.section-sub { font-size: 11px; fill: #444; }
.band-title { font-size: 11px; font-weight: bold; }
.row-name { font-size: 10px; fill: #666; }
.label { font-size: 10px; }
.axis { font-size: 9px; fill: #666; }
.note { font-size: 11px; fill: #a33; }
.band-frame { fill: none; stroke: #999; stroke-width: 0.5; }
.page.pinned { fill: #4e79a7; }
.page.may-go-back { fill: #a0cbe8; }
.page.external { fill: #b07aa1; }
.page.not-mapped { fill: #eeeeee; }
.dirty { fill: url(#dirty-hatch); }
.page-grid { stroke: #ffffff; stroke-width: 0.6; stroke-opacity: 0.8; fill: none; }
.fold { fill: none; stroke: #888; stroke-width: 1; }
.iova-break { stroke: #d62728; stroke-width: 1.5; }
.elem.busy { fill: #f28e2b; }
.elem.free { fill: #59a14f; }
.elem.parked { fill: #edc948; }
.elem.none { fill: #f7f7f7; }
.zone-bar { fill: #9c755f; }
.zone-outline { fill: none; stroke: #5a4030; stroke-width: 0.7; stroke-opacity: 0.7; }
.pool-bar { fill: #d37295; }
.pool-outline { fill: none; stroke: #8e3b5f; stroke-width: 1.2; stroke-dasharray: 3 2; }
g.memzone:hover .zone-bar, g.pool:hover .pool-bar, g.pool-part:hover .pool-bar { fill: #222; }
";

/// Definitions the style sheet refers to.
pub const DEFS: &str = "<defs>
<pattern id=\"dirty-hatch\" width=\"5\" height=\"5\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\">
<rect width=\"5\" height=\"5\" fill=\"none\"/>
<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"5\" stroke=\"#222\" stroke-width=\"1.6\" stroke-opacity=\"0.55\"/>
</pattern>
</defs>
";
