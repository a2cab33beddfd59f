//! One answer on the socket: `{"<command>":<value>}`, no longer than the length the greeting
//! promises.
//!
//! A client reads each answer with one `recv` of `max_output_len` bytes; a longer message
//! would reach it cut, as JSON that does not parse. So an answer that does not fit is made to
//! fit the way DPDK's JSON writer does it: the top-level array or dictionary keeps the entries
//! that fit and leaves out the others, and a string is cut. The answer is always whole JSON.

use super::value::{write_json_entry, write_json_str, TelemetryValue};

/// The longest answer, in bytes (DPDK's `MAX_OUTPUT_LEN`), as the greeting tells clients.
pub const MAX_OUTPUT_LEN: usize = 16 * 1024;

/// Command names are shorter than this, in bytes (DPDK's `MAX_CMD_LEN`); an answer's key is
/// the request's command cut to this length, as DPDK prints it.
pub const MAX_COMMAND_LEN: usize = 56;

/// The answer to `command`: its value, or `null` when there is none (an unknown command, a
/// refused parameter, a failed handler).
pub(crate) fn answer(command: &str, value: Option<&TelemetryValue>) -> String {
    let mut out = String::from("{");
    write_json_str(&mut out, cut(command, MAX_COMMAND_LEN));
    out.push(':');
    // Room for the value and the closing brace.
    let room = MAX_OUTPUT_LEN.saturating_sub(out.len() + 1);
    match value {
        None => out.push_str("null"),
        Some(value) => out.push_str(&fitted(value, room)),
    }
    out.push('}');
    out
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let end = (0..=max)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    &s[..end]
}

/// `value` as JSON of at most `room` bytes.
fn fitted(value: &TelemetryValue, room: usize) -> String {
    let whole = value.to_json();
    if whole.len() <= room {
        return whole;
    }
    match value {
        TelemetryValue::Array(items) => {
            let parts = items.iter().map(TelemetryValue::to_json);
            join_fitting('[', ']', parts, room)
        }
        TelemetryValue::Dict(dict) => {
            let parts = dict.iter().map(|(name, value)| {
                let mut part = String::new();
                write_json_entry(&mut part, name, value);
                part
            });
            join_fitting('{', '}', parts, room)
        }
        TelemetryValue::String(s) => fitted_str(s, room),
        // A number is at most 20 digits and a sign; `room` is never that small.
        TelemetryValue::Int(_) | TelemetryValue::Uint(_) => whole,
    }
}

/// `open`, the parts that fit (each one that would overflow is left out, later smaller ones
/// still go in), `close`.
fn join_fitting(
    open: char,
    close: char,
    parts: impl Iterator<Item = String>,
    room: usize,
) -> String {
    let mut out = String::from(open);
    let mut first = true;
    for part in parts {
        let separator = usize::from(!first);
        if out.len() + separator + part.len() + 1 > room {
            continue;
        }
        if !first {
            out.push(',');
        }
        out.push_str(&part);
        first = false;
    }
    out.push(close);
    out
}

/// The longest beginning of `s` whose JSON string fits in `room` bytes.
fn fitted_str(s: &str, room: usize) -> String {
    let mut out = String::from("\"");
    let mut one = String::new();
    for c in s.chars() {
        one.clear();
        let mut buf = [0u8; 4];
        write_json_str(&mut one, c.encode_utf8(&mut buf));
        // `one` is the character quoted; its inside is what it adds.
        let inside = &one[1..one.len() - 1];
        if out.len() + inside.len() + 1 > room {
            break;
        }
        out.push_str(inside);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::value::TelemetryDict;

    #[test]
    fn an_answer_names_its_command_and_says_null_for_none() {
        assert_eq!(answer("/x", None), r#"{"/x":null}"#);
        let long = "/".repeat(100);
        assert_eq!(
            answer(&long, None),
            format!(r#"{{"{}":null}}"#, "/".repeat(56))
        );
        assert_eq!(
            answer("/list", Some(&TelemetryValue::from(vec![1u32, 2]))),
            r#"{"/list":[1,2]}"#
        );
    }

    #[test]
    fn what_does_not_fit_is_left_out_and_the_answer_stays_json() {
        let big: Vec<String> = (0..3000).map(|i| format!("pool_{i:06}")).collect();
        let text = answer("/mempool/list", Some(&TelemetryValue::from(big)));
        assert!(text.len() <= MAX_OUTPUT_LEN, "{}", text.len());
        assert!(text.len() > MAX_OUTPUT_LEN - 20, "as many entries as fit");
        assert!(text.starts_with(r#"{"/mempool/list":["pool_000000","#));
        assert!(text.ends_with("\"]}"));

        let mut dict = TelemetryDict::new();
        dict.insert("huge", "x".repeat(MAX_OUTPUT_LEN)).unwrap();
        dict.insert("small", 7u32).unwrap();
        let text = answer("/d", Some(&TelemetryValue::from(dict)));
        assert_eq!(
            text, r#"{"/d":{"small":7}}"#,
            "the entry that cannot fit is left out"
        );

        let quotes = "\"".repeat(MAX_OUTPUT_LEN);
        let text = answer("/s", Some(&TelemetryValue::from(quotes)));
        assert!(text.len() <= MAX_OUTPUT_LEN);
        assert!(
            text.ends_with("\\\"\"}"),
            "cut between escapes, not inside one"
        );
    }
}
