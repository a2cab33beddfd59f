//! Numbers on the EAL command line, read as DPDK reads each: plain decimal for sizes and
//! counts, C notation (`0x`, leading `0`) where DPDK uses `strtol(.., 0)`.

use super::error::OptionsError;

/// A plain decimal `u64`: digits only, no sign, no blanks (DPDK's `atoi` for `-m` would
/// read `12abc` as 12; dpmem refuses it).
pub(super) fn parse_decimal(
    option: &'static str,
    text: &str,
    shown: &str,
) -> Result<u64, OptionsError> {
    if text.is_empty() {
        return Err(OptionsError::invalid(option, shown, "empty number"));
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(OptionsError::invalid(
            option,
            shown,
            format!("'{text}' is not a decimal number"),
        ));
    }
    text.parse::<u64>()
        .map_err(|_| OptionsError::invalid(option, shown, format!("{text} does not fit 64 bits")))
}

/// An integer in C's `strtol(.., 0)` notation, as DPDK reads `--main-lcore`: `0x1f` is
/// hexadecimal, a leading `0` means octal, anything else decimal.
pub(super) fn parse_c_integer(option: &'static str, text: &str) -> Result<u32, OptionsError> {
    let (digits, radix) =
        if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            (hex, 16)
        } else if text.len() > 1 && text.starts_with('0') {
            (&text[1..], 8)
        } else {
            (text, 10)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(OptionsError::invalid(option, text, "not a number"));
    }
    u32::from_str_radix(digits, radix)
        .map_err(|_| OptionsError::invalid(option, text, "number does not fit 32 bits"))
}
