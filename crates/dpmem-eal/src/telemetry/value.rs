//! What a telemetry command answers with, as DPDK's `rte_tel_data` holds it, and its JSON text.
//!
//! An answer is a string, an integer (signed or not), an array, or a dictionary of named
//! values. Two of DPDK's rules are kept because clients are written against them: a
//! dictionary's names are letters, digits, `_` and `/` only and shorter than 128 bytes
//! ([`TelemetryDict::insert`] refuses others, as `rte_tel_data_add_dict_*` does), and the JSON
//! lists entries in the order they were added. DPDK's fixed buffers (512 array entries,
//! 128-byte strings) are no limit here; the only one is the length of the whole answer, which
//! the server keeps by leaving out what does not fit (`answer.rs`).

use std::fmt::Write as _;

use super::error::TelemetryError;

/// Names of dictionary entries are shorter than this (DPDK's `RTE_TEL_MAX_STRING_LEN`).
pub const MAX_NAME_LEN: usize = 128;

/// A value in a telemetry answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TelemetryValue {
    String(String),
    Int(i64),
    Uint(u64),
    Array(Vec<TelemetryValue>),
    Dict(TelemetryDict),
}

/// Named values, in the order they were added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TelemetryDict {
    entries: Vec<(String, TelemetryValue)>,
}

/// Whether `name` may name a dictionary entry; the reason when it may not.
pub fn check_name(name: &str) -> Result<(), TelemetryError> {
    let refuse = |reason| {
        Err(TelemetryError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return refuse("empty");
    }
    if name.len() >= MAX_NAME_LEN {
        return refuse("128 bytes or longer");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'/')
    {
        return refuse("only letters, digits, '_' and '/' may appear");
    }
    Ok(())
}

impl TelemetryDict {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `value` under `name`, or replaces the value already there (keeping its place).
    /// A name DPDK would refuse is refused, and nothing is added.
    pub fn insert(
        &mut self,
        name: &str,
        value: impl Into<TelemetryValue>,
    ) -> Result<&mut Self, TelemetryError> {
        check_name(name)?;
        let value = value.into();
        match self.entries.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((name.to_owned(), value)),
        }
        Ok(self)
    }

    pub fn get(&self, name: &str) -> Option<&TelemetryValue> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The entries, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &TelemetryValue)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl TelemetryValue {
    /// The value as compact JSON (no spaces, as DPDK writes it).
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write_json(&mut out);
        out
    }

    pub(crate) fn write_json(&self, out: &mut String) {
        match self {
            TelemetryValue::String(s) => write_json_str(out, s),
            TelemetryValue::Int(i) => {
                let _ = write!(out, "{i}");
            }
            TelemetryValue::Uint(u) => {
                let _ = write!(out, "{u}");
            }
            TelemetryValue::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_json(out);
                }
                out.push(']');
            }
            TelemetryValue::Dict(dict) => {
                out.push('{');
                for (i, (name, value)) in dict.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_entry(out, name, value);
                }
                out.push('}');
            }
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            TelemetryValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value of an unsigned integer, or of a signed one that is not negative.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            TelemetryValue::Uint(u) => Some(*u),
            TelemetryValue::Int(i) => u64::try_from(*i).ok(),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[TelemetryValue]> {
        match self {
            TelemetryValue::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&TelemetryDict> {
        match self {
            TelemetryValue::Dict(d) => Some(d),
            _ => None,
        }
    }
}

/// `"name":value`.
pub(crate) fn write_json_entry(out: &mut String, name: &str, value: &TelemetryValue) {
    write_json_str(out, name);
    out.push(':');
    value.write_json(out);
}

/// `s` as a JSON string: quotes, backslashes and control characters escaped.
pub(crate) fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl From<&str> for TelemetryValue {
    fn from(s: &str) -> Self {
        TelemetryValue::String(s.to_owned())
    }
}

impl From<String> for TelemetryValue {
    fn from(s: String) -> Self {
        TelemetryValue::String(s)
    }
}

impl From<i32> for TelemetryValue {
    fn from(i: i32) -> Self {
        TelemetryValue::Int(i.into())
    }
}

impl From<i64> for TelemetryValue {
    fn from(i: i64) -> Self {
        TelemetryValue::Int(i)
    }
}

impl From<u32> for TelemetryValue {
    fn from(u: u32) -> Self {
        TelemetryValue::Uint(u.into())
    }
}

impl From<u64> for TelemetryValue {
    fn from(u: u64) -> Self {
        TelemetryValue::Uint(u)
    }
}

impl From<usize> for TelemetryValue {
    fn from(u: usize) -> Self {
        // usize is at most 64 bits on every target dpmem builds for.
        TelemetryValue::Uint(u as u64)
    }
}

impl From<TelemetryDict> for TelemetryValue {
    fn from(d: TelemetryDict) -> Self {
        TelemetryValue::Dict(d)
    }
}

impl<T: Into<TelemetryValue>> From<Vec<T>> for TelemetryValue {
    fn from(items: Vec<T>) -> Self {
        TelemetryValue::Array(items.into_iter().map(Into::into).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_the_order_of_entries_and_escapes_strings() {
        let mut inner = TelemetryDict::new();
        inner.insert("z", 1u32).unwrap().insert("a", -2i32).unwrap();
        let mut dict = TelemetryDict::new();
        dict.insert("name", "a \"quoted\"\\\n\u{1}")
            .unwrap()
            .insert("list", vec![3u64, 4])
            .unwrap()
            .insert("inner", inner)
            .unwrap()
            .insert("name", "replaced")
            .unwrap();
        assert_eq!(
            TelemetryValue::from(dict).to_json(),
            r#"{"name":"replaced","list":[3,4],"inner":{"z":1,"a":-2}}"#
        );
        assert_eq!(
            TelemetryValue::from("a \"q\"\\\n\u{1}").to_json(),
            r#""a \"q\"\\\n\u0001""#
        );
    }

    #[test]
    fn names_dpdk_refuses_are_refused_and_nothing_is_added() {
        let mut dict = TelemetryDict::new();
        for bad in ["", "Head id", "a-b", "é", &"x".repeat(128)] {
            assert!(dict.insert(bad, 1u32).is_err(), "{bad:?}");
        }
        assert!(dict.is_empty());
        dict.insert("Heap_id", 0u32).unwrap();
        dict.insert("/a/b_9", 0u32).unwrap();
        dict.insert(&"x".repeat(127), 0u32).unwrap();
        assert_eq!(dict.len(), 3);
    }
}
