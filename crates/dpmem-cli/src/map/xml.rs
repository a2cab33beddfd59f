//! A small XML writer for the map's SVG and HTML: elements, attributes and text, every value
//! escaped, so a memzone or pool named `<script>` or `a&b` is shown as written and the
//! document still parses.

use std::fmt::Write;

/// A document being written, element by element.
#[derive(Debug, Default)]
pub struct XmlWriter {
    out: String,
    /// Elements opened and not closed yet, innermost last.
    open: Vec<&'static str>,
}

impl XmlWriter {
    pub fn new() -> XmlWriter {
        XmlWriter::default()
    }

    /// Opens `<name attrs…>`; [`XmlWriter::end`] closes it.
    pub fn start(&mut self, name: &'static str, attrs: &[(&str, String)]) {
        self.tag(name, attrs);
        self.out.push_str(">\n");
        self.open.push(name);
    }

    /// Closes the innermost open element.
    pub fn end(&mut self) {
        let name = self.open.pop().expect("an element to close");
        // `write!` into a String cannot fail.
        let _ = writeln!(self.out, "</{name}>");
    }

    /// `<name attrs…/>`.
    pub fn empty(&mut self, name: &'static str, attrs: &[(&str, String)]) {
        self.tag(name, attrs);
        self.out.push_str("/>\n");
    }

    /// `<name attrs…>text</name>`.
    pub fn text(&mut self, name: &'static str, attrs: &[(&str, String)], text: &str) {
        self.tag(name, attrs);
        self.out.push('>');
        self.out.push_str(&escape(text));
        let _ = writeln!(self.out, "</{name}>");
    }

    /// Text the caller wrote and vouches for (a style sheet, a doctype): no escaping.
    pub fn verbatim(&mut self, text: &str) {
        self.out.push_str(text);
    }

    /// The document; every element must be closed.
    pub fn finish(self) -> String {
        assert!(self.open.is_empty(), "unclosed elements: {:?}", self.open);
        self.out
    }

    fn tag(&mut self, name: &str, attrs: &[(&str, String)]) {
        let _ = write!(self.out, "<{name}");
        for (key, value) in attrs {
            let _ = write!(self.out, " {key}=\"{}\"", escape(value));
        }
    }
}

/// `text` as XML character data or an attribute value: the five markup characters as
/// entities, and characters XML 1.0 does not allow at all (most control characters, which a
/// shared-memory name could hold) as U+FFFD, so that the document stays well-formed.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A coordinate or length in pixels, to a tenth.
pub fn px(value: f64) -> String {
    let tenths = (value * 10.0).round() / 10.0;
    if tenths.fract() == 0.0 {
        format!("{tenths:.0}")
    } else {
        format!("{tenths:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_forbidden_characters_are_escaped() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(escape("bell\u{7}tab\t"), "bell\u{fffd}tab\t");
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn elements_nest_and_attributes_are_escaped() {
        let mut w = XmlWriter::new();
        w.start("g", &[("data-name", "x\"y".to_owned())]);
        w.text("title", &[], "<zone>");
        w.empty("rect", &[("x", px(1.25)), ("y", px(2.0))]);
        w.end();
        assert_eq!(
            w.finish(),
            "<g data-name=\"x&quot;y\">\n<title>&lt;zone&gt;</title>\n<rect x=\"1.3\" y=\"2\"/>\n</g>\n"
        );
    }

    #[test]
    #[should_panic(expected = "unclosed")]
    fn an_unclosed_element_is_a_bug() {
        let mut w = XmlWriter::new();
        w.start("svg", &[]);
        let _ = w.finish();
    }
}
