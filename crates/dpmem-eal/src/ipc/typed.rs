//! Typed messages over the bytes-and-descriptors form: a type names its message and says how
//! its value becomes parameters and descriptors and back, and the channel's typed calls do
//! the rest (a request's replies come back decoded).

use std::os::fd::OwnedFd;
use std::time::Duration;

use super::channel::Incoming;
use super::channel::Ipc;
use super::error::IpcError;
use super::message::IpcMessage;
use super::replies::Replies;

/// A value sent as a message named [`TypedMessage::NAME`].
pub trait TypedMessage: Sized {
    /// The message name (at most 63 bytes).
    const NAME: &'static str;

    /// The value as parameters (at most 256 bytes) and descriptors (at most 8).
    fn encode(self) -> (Vec<u8>, Vec<OwnedFd>);

    /// The value back from what [`TypedMessage::encode`] made; `Err` says what is wrong.
    fn decode(params: &[u8], fds: Vec<OwnedFd>) -> Result<Self, String>;
}

impl IpcMessage {
    /// The message that carries `value`.
    pub fn from_typed<T: TypedMessage>(value: T) -> Result<IpcMessage, IpcError> {
        let (params, fds) = value.encode();
        IpcMessage::new(T::NAME, &params)?.with_fds(fds)
    }

    /// The value this message carries, its descriptors taken. A message of another name is
    /// refused, as are parameters that do not decode.
    pub fn decode<T: TypedMessage>(&mut self) -> Result<T, IpcError> {
        let name = self.name().to_owned();
        if name != T::NAME {
            return Err(IpcError::Decode {
                name,
                reason: format!("expected a {:?} message", T::NAME),
            });
        }
        let fds = self.take_fds();
        T::decode(self.params(), fds).map_err(|reason| IpcError::Decode { name, reason })
    }
}

/// A typed request's outcome: each reply decoded, beside the counts and the peers that did
/// not answer (whose `replies` is left empty).
#[derive(Debug)]
pub struct TypedReplies<T> {
    pub replies: Vec<(String, T)>,
    pub outcome: Replies,
}

impl Ipc {
    /// Registers an action for `Req` messages: `answer` gets each one decoded with its
    /// sender, and its `Some` is sent back as the reply to a request. A message that does not
    /// decode is logged and left unanswered (its requester counts it as not replied).
    pub fn register_typed<Req, Rep, F>(&self, answer: F) -> Result<(), IpcError>
    where
        Req: TypedMessage,
        Rep: TypedMessage,
        F: Fn(Req, &str) -> Option<Rep> + Send + Sync + 'static,
    {
        self.register_action(Req::NAME, move |incoming: &mut Incoming<'_>| {
            let request = match incoming.message_mut().decode::<Req>() {
                Ok(request) => request,
                Err(e) => {
                    eprintln!("dpmem: {e} (from {})", incoming.peer());
                    return;
                }
            };
            let Some(reply) = answer(request, incoming.peer()) else {
                return;
            };
            let sent = IpcMessage::from_typed(reply).and_then(|reply| {
                if incoming.is_request() {
                    incoming.reply(reply)
                } else {
                    Ok(())
                }
            });
            if let Err(e) = sent {
                eprintln!("dpmem: answering {:?}: {e}", Req::NAME);
            }
        })
    }

    /// Sends `request` to every peer and waits at most `timeout` for their `Rep` replies.
    pub fn request_typed<Req, Rep>(
        &self,
        request: Req,
        timeout: Duration,
    ) -> Result<TypedReplies<Rep>, IpcError>
    where
        Req: TypedMessage,
        Rep: TypedMessage,
    {
        let message = IpcMessage::from_typed(request)?;
        let mut outcome = self.request_sync(&message, timeout)?;
        let replies = std::mem::take(&mut outcome.replies)
            .into_iter()
            .map(|mut reply| Ok((reply.peer, reply.message.decode::<Rep>()?)))
            .collect::<Result<_, IpcError>>()?;
        Ok(TypedReplies { replies, outcome })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Grow {
        pages: u32,
    }

    impl TypedMessage for Grow {
        const NAME: &'static str = "test_grow";
        fn encode(self) -> (Vec<u8>, Vec<OwnedFd>) {
            (self.pages.to_le_bytes().to_vec(), Vec::new())
        }
        fn decode(params: &[u8], _fds: Vec<OwnedFd>) -> Result<Self, String> {
            let pages = params.try_into().map_err(|_| "4 bytes expected")?;
            Ok(Grow {
                pages: u32::from_le_bytes(pages),
            })
        }
    }

    #[test]
    fn a_typed_value_goes_through_a_message_and_a_stranger_is_refused() {
        let mut message = IpcMessage::from_typed(Grow { pages: 7 }).unwrap();
        assert_eq!(message.name(), "test_grow");
        assert_eq!(message.decode::<Grow>().unwrap().pages, 7);
        let mut short = IpcMessage::new("test_grow", &[1]).unwrap();
        assert!(matches!(
            short.decode::<Grow>(),
            Err(IpcError::Decode { .. })
        ));
        let mut other = IpcMessage::new("other", &[0; 4]).unwrap();
        assert!(other.decode::<Grow>().is_err());
    }
}
