//! The bytes of one datagram of the channel (dpmem's own layout, not DPDK's: a dpmem process
//! and a DPDK one do not share a runtime directory).
//!
//! `dpmp`, a version byte, the kind, the request id (little-endian u64), then the sender's
//! socket name, the message name (each a length byte and the bytes) and the parameters (a
//! little-endian u16 length and the bytes). Descriptors travel beside the bytes, as
//! `SCM_RIGHTS`. The sender names its own socket because an address seen by `recvmsg` is the
//! `/proc/self/fd/...` path it was bound through, meaningless to anyone else.

use super::message::{check_name, MAX_PARAM_LEN};
use super::peers::check_socket_name;

const MAGIC: &[u8; 4] = b"dpmp";
const VERSION: u8 = 1;

/// The largest datagram: header, two names of at most 255 bytes each, the parameters.
pub(crate) const MAX_DATAGRAM: usize = 4 + 1 + 1 + 8 + 1 + 255 + 1 + 255 + 2 + MAX_PARAM_LEN;

/// What a datagram is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One-way: no answer is expected.
    Message,
    /// Wants an answer: a [`Kind::Reply`], or a [`Kind::NoAction`] / [`Kind::NoReply`] notice.
    Request,
    Reply,
    /// The peer has no action for the request's name.
    NoAction,
    /// The peer's action returned without replying.
    NoReply,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Kind::Message => 1,
            Kind::Request => 2,
            Kind::Reply => 3,
            Kind::NoAction => 4,
            Kind::NoReply => 5,
        }
    }

    fn from_byte(byte: u8) -> Option<Kind> {
        Some(match byte {
            1 => Kind::Message,
            2 => Kind::Request,
            3 => Kind::Reply,
            4 => Kind::NoAction,
            5 => Kind::NoReply,
            _ => return None,
        })
    }
}

/// A datagram's header and parameters, borrowed from the buffer it was read into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    pub kind: Kind,
    /// The request this is or answers; 0 for a one-way message.
    pub id: u64,
    pub sender: &'a str,
    pub name: &'a str,
    pub params: &'a [u8],
}

impl Frame<'_> {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.name.len() + self.params.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(self.kind.byte());
        out.extend_from_slice(&self.id.to_le_bytes());
        for text in [self.sender, self.name] {
            // Both were checked against limits far below 256 bytes.
            out.push(text.len() as u8);
            out.extend_from_slice(text.as_bytes());
        }
        out.extend_from_slice(&(self.params.len() as u16).to_le_bytes());
        out.extend_from_slice(self.params);
        out
    }
}

/// Reads a datagram; `Err` says what is wrong with it, for the log.
pub(crate) fn decode(bytes: &[u8]) -> Result<Frame<'_>, String> {
    let mut rest = bytes;
    let mut take = |n: usize| -> Result<&[u8], String> {
        if rest.len() < n {
            return Err(format!("cut short ({} bytes)", bytes.len()));
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    if take(4)? != MAGIC {
        return Err("not a dpmem channel datagram".into());
    }
    let version = take(1)?[0];
    if version != VERSION {
        return Err(format!("version {version}, this process speaks {VERSION}"));
    }
    let kind = Kind::from_byte(take(1)?[0]).ok_or("unknown kind")?;
    let id = u64::from_le_bytes(take(8)?.try_into().map_err(|_| "cut short")?);
    let mut text = |what: &str| -> Result<&str, String> {
        let len = take(1)?[0] as usize;
        std::str::from_utf8(take(len)?).map_err(|_| format!("{what} is not UTF-8"))
    };
    let sender = text("sender")?;
    let name = text("name")?;
    let params_len = u16::from_le_bytes(take(2)?.try_into().map_err(|_| "cut short")?) as usize;
    let params = take(params_len)?;
    if !rest.is_empty() {
        return Err(format!("{} bytes past its end", rest.len()));
    }
    check_socket_name(sender).map_err(|e| format!("sender: {e}"))?;
    check_name(name).map_err(|e| e.to_string())?;
    if params.len() > MAX_PARAM_LEN {
        return Err(format!("{} bytes of parameters", params.len()));
    }
    Ok(Frame {
        kind,
        id,
        sender,
        name,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_reads_back_and_damage_is_refused() {
        let frame = Frame {
            kind: Kind::Request,
            id: 0x0102_0304_0506_0708,
            sender: "mp_socket_12_0",
            name: "grow",
            params: &[1, 2, 3],
        };
        let bytes = frame.encode();
        assert_eq!(decode(&bytes).unwrap(), frame);
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
        let mut other = bytes.clone();
        other[0] = b'x';
        assert!(decode(&other).is_err());
        let bad_sender = Frame {
            sender: "../config",
            ..frame.clone()
        };
        assert!(decode(&bad_sender.encode()).is_err());
        assert!(bytes.len() <= MAX_DATAGRAM);
    }
}
