//! A message of the channel: a name that selects the receiver's action, a few bytes of
//! parameters and a few open file descriptors, within DPDK's limits (`struct rte_mp_msg`).
//!
//! The limits are checked when a message is built, so a message that exists always fits and a
//! refused one was never sent.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::error::IpcError;

/// The longest name, in bytes: DPDK's `RTE_MP_MAX_NAME_LEN` (64) holds the name and its NUL.
pub const MAX_NAME_LEN: usize = 63;
/// The most bytes of parameters (DPDK's `RTE_MP_MAX_PARAM_LEN`).
pub const MAX_PARAM_LEN: usize = 256;
/// The most file descriptors (DPDK's `RTE_MP_MAX_FD_NUM`).
pub const MAX_FDS: usize = dpmem_sys::datagram::MAX_DATAGRAM_FDS;

/// A message within the limits. Received descriptors are open in this process and close with
/// the message unless taken ([`IpcMessage::take_fds`]).
#[derive(Debug)]
pub struct IpcMessage {
    name: String,
    params: Vec<u8>,
    fds: Vec<OwnedFd>,
}

impl IpcMessage {
    /// A message `name` with `params` and no descriptors. A name that is empty or has a NUL is
    /// refused (`EINVAL`), one over [`MAX_NAME_LEN`] bytes too (`ENAMETOOLONG`), and so are
    /// parameters over [`MAX_PARAM_LEN`] bytes (`EINVAL`).
    pub fn new(name: &str, params: &[u8]) -> Result<IpcMessage, IpcError> {
        check_name(name)?;
        if params.len() > MAX_PARAM_LEN {
            return Err(IpcError::ParamsTooLong {
                name: name.to_owned(),
                len: params.len(),
                max: MAX_PARAM_LEN,
            });
        }
        Ok(IpcMessage {
            name: name.to_owned(),
            params: params.to_vec(),
            fds: Vec::new(),
        })
    }

    /// This message carrying `fds` as well (they go with it: each is duplicated into the
    /// receiver). More than [`MAX_FDS`] are refused (`EINVAL`), and closed.
    pub fn with_fds(mut self, fds: Vec<OwnedFd>) -> Result<IpcMessage, IpcError> {
        if fds.len() > MAX_FDS {
            return Err(IpcError::TooManyFds {
                name: self.name,
                count: fds.len(),
                max: MAX_FDS,
            });
        }
        self.fds = fds;
        Ok(self)
    }

    /// A message as received: the receiver checked the same limits.
    pub(crate) fn received(name: String, params: Vec<u8>, fds: Vec<OwnedFd>) -> IpcMessage {
        IpcMessage { name, params, fds }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn params(&self) -> &[u8] {
        &self.params
    }

    /// The descriptors it carries.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        self.fds.iter().map(AsFd::as_fd).collect()
    }

    /// Takes the descriptors it carries, to keep them past the message.
    pub fn take_fds(&mut self) -> Vec<OwnedFd> {
        std::mem::take(&mut self.fds)
    }
}

/// Checks a message or action name against the limits.
pub fn check_name(name: &str) -> Result<(), IpcError> {
    if name.is_empty() || name.contains('\0') {
        return Err(IpcError::EmptyName);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(IpcError::NameTooLong {
            name: name.to_owned(),
            len: name.len(),
            max: MAX_NAME_LEN,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn the_limits_are_dpdks() {
        assert!(IpcMessage::new(&"n".repeat(63), &[0; 256]).is_ok());
        let long = IpcMessage::new(&"n".repeat(64), b"").unwrap_err();
        assert_eq!(long.kind(), ErrorKind::NameTooLong);
        assert_eq!(
            IpcMessage::new("", b"").unwrap_err().kind(),
            ErrorKind::Inval
        );
        assert_eq!(
            IpcMessage::new("a\0b", b"").unwrap_err().kind(),
            ErrorKind::Inval
        );
        let params = IpcMessage::new("p", &[0; 257]).unwrap_err();
        assert_eq!(params.kind(), ErrorKind::Inval);
        let fds: Vec<OwnedFd> = (0..9)
            .map(|_| std::fs::File::open("/dev/null").unwrap().into())
            .collect();
        let too_many = IpcMessage::new("f", b"")
            .unwrap()
            .with_fds(fds)
            .unwrap_err();
        assert!(matches!(too_many, IpcError::TooManyFds { count: 9, .. }));
    }
}
