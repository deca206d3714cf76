//! The one error of the realtime codecs (Engine.IO, Socket.IO and the plain `/ws` frames): what was
//! wrong with a packet, worded so that the message can be sent back to the client as is.
//!
//! No variant carries the client's own bytes: echoing input back invites log and terminal
//! injection and leaks nothing useful, so each message names the problem, not the offending text.

/// Why a packet, payload or query could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CodecError {
    /// Nothing at all where a packet was expected (also an empty record in a polling payload).
    #[error("empty packet")]
    Empty,
    /// An Engine.IO v3 polling record whose `<length>:` prefix is missing or not a number, or
    /// whose length runs past the end of the body or through the middle of a character.
    #[error("invalid payload length")]
    BadLength,
    /// The leading packet type is not one the protocol defines.
    #[error("unknown packet type")]
    UnknownPacketType,
    /// A binary packet (Engine.IO `b…` base64, Socket.IO `BINARY_EVENT` / `BINARY_ACK`): chatd's
    /// events are JSON only, so attachments are refused rather than half-supported.
    #[error("binary packets are not supported")]
    BinaryUnsupported,
    /// Data after a packet type that carries none (Engine.IO close / upgrade / noop, Socket.IO
    /// DISCONNECT).
    #[error("this packet type carries no data")]
    UnexpectedData,
    /// The JSON part does not parse; the detail is `serde_json`'s, which names the problem and its
    /// position but never quotes the input.
    #[error("invalid JSON: {0}")]
    BadJson(String),
    /// The JSON must be an array (Socket.IO EVENT and ACK arguments).
    #[error("data must be a JSON array")]
    NotAnArray,
    /// The JSON must be an object (Socket.IO CONNECT auth, `CONNECT_ERROR`, a `/ws` frame).
    #[error("data must be a JSON object")]
    NotAnObject,
    /// The packet type requires data and there is none (e.g. a Socket.IO EVENT with no arguments).
    #[error("missing data")]
    MissingData,
    /// No usable event name: an empty array, a first element that is not a string, or a `/ws`
    /// frame without a non-empty string `event`.
    #[error("missing event name")]
    MissingEventName,
    /// An event name Socket.IO keeps for itself (`connect`, `disconnect`, …), which
    /// socket.io-parser refuses too.
    #[error("reserved event name")]
    ReservedEventName,
    /// An ack id that is missing where required or does not fit in 64 bits.
    #[error("invalid ack id")]
    BadAckId,
    /// A namespace that holds control characters.
    #[error("invalid namespace")]
    BadNamespace,
    /// The Engine.IO query asks for neither protocol version 3 nor 4.
    #[error("unsupported protocol version")]
    UnsupportedProtocolVersion,
    /// The Engine.IO query asks for JSONP polling (`j=`), which chatd does not offer: its answers
    /// are plain text, never a script.
    #[error("JSONP polling is not supported")]
    JsonpUnsupported,
    /// The Engine.IO query's `transport` is missing or is neither `polling` nor `websocket`.
    #[error("unknown transport")]
    UnknownTransport,
    /// The Engine.IO query's `sid` is empty, too long or has characters a session id never has.
    #[error("invalid session id")]
    BadSessionId,
    /// The Engine.IO query repeats a parameter, so which one counts would be a guess.
    #[error("malformed query string")]
    BadQuery,
}

impl CodecError {
    /// The error of a failed `serde_json` parse. `serde_json` reports a recursion limit (128) as an
    /// ordinary error, so hostile nesting lands here instead of overflowing the stack.
    pub(crate) fn json(error: &serde_json::Error) -> Self {
        Self::BadJson(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_do_not_echo_input() {
        let error =
            CodecError::json(&serde_json::from_str::<serde_json::Value>("[\"secret\" x]").expect_err("invalid JSON"));
        let message = error.to_string();
        assert!(message.starts_with("invalid JSON: "), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }

    #[test]
    fn messages_are_plain_words() {
        assert_eq!(CodecError::Empty.to_string(), "empty packet");
        assert_eq!(CodecError::BinaryUnsupported.to_string(), "binary packets are not supported");
        assert_eq!(CodecError::BadAckId.to_string(), "invalid ack id");
        assert_eq!(CodecError::BadNamespace.to_string(), "invalid namespace");
    }
}
