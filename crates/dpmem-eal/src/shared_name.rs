//! Names kept in shared memory: fixed-size byte arrays, zero-padded, so a record holds no
//! pointer to process-local memory and reads the same in every process.

use crate::error::EalError;

/// `s` as an `N`-byte field; refused when it does not fit with its terminating zero.
pub(crate) fn encode_str<const N: usize>(s: &str) -> Result<[u8; N], EalError> {
    let bytes = s.as_bytes();
    if bytes.len() >= N {
        return Err(EalError::InvalidArgument(format!(
            "{s:?} is longer than {} bytes",
            N - 1
        )));
    }
    let mut out = [0u8; N];
    out[..bytes.len()].copy_from_slice(bytes);
    Ok(out)
}

/// The name in a field written by [`encode_str`] (up to its first zero).
pub(crate) fn decode_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}
