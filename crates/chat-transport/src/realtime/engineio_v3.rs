//! Engine.IO v3 long-polling payloads, what socket.io-client 1.x and 2.x send and expect: every
//! packet written as `<length>:<packet>`, the length counted the way JavaScript counts a string,
//! in UTF-16 code units (an emoji is two). Pure text in, text out.
//!
//! Two generations of this framing are in the wild, and both send `EIO=3`:
//! - engine.io-parser 2.x (socket.io-client 2.x) writes each packet as it is;
//! - engine.io-parser 1.x (socket.io-client 1.x) first UTF-8-encodes each packet into a string of
//!   byte-valued characters (U+0000–U+00FF), counts *those*, and lets HTTP send that string as
//!   UTF-8 once more; it reads what it receives back the same way.
//!
//! A request does not say which generation sent it, so chatd reads both and writes what both read
//! alike: inbound, a packet made only of byte-valued characters that spell valid multi-byte UTF-8
//! is taken for 1.x's encoding and decoded ([`undo_byte_string`]), anything else is taken as is;
//! outbound, chatd's packets are ASCII (the session escapes every other character in its JSON), on
//! which the two generations' lengths and decodings agree.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::codec_error::CodecError;
use super::engineio::EnginePacket;

/// Most digits a record's length may have: a body is far smaller than 10^15 code units, and a cap
/// keeps the arithmetic from overflowing.
const MAX_LENGTH_DIGITS: usize = 15;

/// Decodes a polling body: its records, then each record's packet (undoing 1.x's UTF-8 encoding
/// where the record is one).
///
/// Fails on an empty body and on any bad record, so that a half-understood body is never
/// half-applied.
pub(crate) fn decode_payload(body: &str) -> Result<Vec<EnginePacket>, CodecError> {
    split_payload(body)?.into_iter().map(|record| EnginePacket::decode(&undo_byte_string(record))).collect()
}

/// Encodes packets as one polling body, `<length>:<packet>` each. No packets give an empty string,
/// which is not a valid body (answer a poll with at least a noop).
pub(crate) fn encode_payload<'a>(packets: impl IntoIterator<Item = &'a EnginePacket>) -> String {
    let mut body = String::new();
    for packet in packets {
        let (kind, data) = packet.parts();
        // The type digit is one code unit.
        let length = 1 + utf16_len(data);
        // Writing to a String cannot fail.
        let _ = write!(body, "{length}:");
        body.push(kind);
        body.push_str(data);
    }
    body
}

/// Splits a polling body into its records' texts: `<digits>:` then that many UTF-16 code units,
/// again and again to the end of the body.
///
/// A missing or non-numeric length, a length running past the body or through the middle of a
/// character, and an empty record are all refused. (engine.io-parser skips empty records; no
/// client writes one.)
pub(crate) fn split_payload(body: &str) -> Result<Vec<&str>, CodecError> {
    if body.is_empty() {
        return Err(CodecError::Empty);
    }
    let mut records = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > MAX_LENGTH_DIGITS || rest.as_bytes().get(digits) != Some(&b':') {
            return Err(CodecError::BadLength);
        }
        let units = rest.bytes().take(digits).fold(0u64, |units, digit| units * 10 + u64::from(digit - b'0'));
        let units = usize::try_from(units).map_err(|_| CodecError::BadLength)?;
        // The digits and the colon are ASCII, so this is a character boundary.
        let (record, tail) = take_utf16(&rest[digits + 1..], units)?;
        if record.is_empty() {
            return Err(CodecError::Empty);
        }
        records.push(record);
        rest = tail;
    }
    Ok(records)
}

/// Undoes engine.io-parser 1.x's encoding of a packet: a text made only of characters up to
/// U+00FF whose values, read as bytes, are valid UTF-8 is that UTF-8, decoded. Any other text
/// (ASCII, or anything socket.io-client 2.x sends) comes back unchanged, without copying.
///
/// The one text this misreads is a 2.x client's that consists only of Latin-1 characters which
/// themselves spell UTF-8, such as the two characters `Ã©` (read as `é`): mojibake, in practice.
pub(crate) fn undo_byte_string(packet: &str) -> Cow<'_, str> {
    if packet.is_ascii() {
        return Cow::Borrowed(packet);
    }
    let bytes: Option<Vec<u8>> = packet.chars().map(|c| u8::try_from(c).ok()).collect();
    match bytes.map(String::from_utf8) {
        Some(Ok(decoded)) => Cow::Owned(decoded),
        _ => Cow::Borrowed(packet),
    }
}

/// The length JavaScript gives a string: its UTF-16 code units.
fn utf16_len(text: &str) -> usize {
    if text.is_ascii() { text.len() } else { text.encode_utf16().count() }
}

/// Splits `text` after its first `units` UTF-16 code units; fails when it is shorter, or when the
/// cut would fall between the two halves of a surrogate pair (a character beyond U+FFFF).
fn take_utf16(text: &str, units: usize) -> Result<(&str, &str), CodecError> {
    // The common case: ASCII, one byte per code unit.
    if text.as_bytes().get(..units).is_some_and(<[u8]>::is_ascii) {
        return Ok(text.split_at(units));
    }
    let mut counted = 0;
    for (index, c) in text.char_indices() {
        if counted == units {
            return Ok(text.split_at(index));
        }
        counted += c.len_utf16();
        if counted > units {
            return Err(CodecError::BadLength);
        }
    }
    if counted == units { Ok((text, "")) } else { Err(CodecError::BadLength) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What engine.io-parser 1.x makes of a packet before framing it: one character per UTF-8 byte.
    fn byte_string(text: &str) -> String {
        text.bytes().map(char::from).collect()
    }

    #[test]
    fn records_are_length_prefixed() {
        let packets = vec![
            EnginePacket::Open(r#"{"sid":"a"}"#.to_owned()),
            EnginePacket::Message("0".to_owned()),
            EnginePacket::Ping(None),
            EnginePacket::Noop,
            EnginePacket::Ping(Some("probe".to_owned())),
        ];
        let body = r#"12:0{"sid":"a"}2:401:21:66:2probe"#;
        assert_eq!(encode_payload(&packets), body);
        assert_eq!(decode_payload(body), Ok(packets));
        assert_eq!(encode_payload(&[]), "");
    }

    #[test]
    fn lengths_count_utf16_code_units_as_javascript_does() {
        // "é" and "世" are one code unit each, "👋" two: 1 + 1 + 1 + 1 + 2 = 6 (in 11 bytes).
        let packet = EnginePacket::Message("hé世👋".to_owned());
        let body = encode_payload([&packet]);
        assert_eq!(body, "6:4hé世👋");
        assert_eq!(decode_payload(&body), Ok(vec![packet]));
        assert_eq!(decode_payload("3:4👋1:6"), Ok(vec![EnginePacket::Message("👋".to_owned()), EnginePacket::Noop]));
        // socket.io-client 2.x writes raw text that is not UTF-8 in disguise: taken as is.
        assert_eq!(decode_payload("5:4café"), Ok(vec![EnginePacket::Message("café".to_owned())]));
    }

    #[test]
    fn socket_io_client_1x_utf8_encoding_is_undone() {
        let packet = r#"42["m","héllo 👋 世界"]"#;
        let encoded = byte_string(packet);
        // engine.io-parser 1.x counts the encoded string: one character per UTF-8 byte.
        let body = format!("{}:{encoded}", encoded.chars().count());
        assert_eq!(encoded.chars().count(), packet.len());
        assert_eq!(decode_payload(&body), Ok(vec![EnginePacket::Message(packet[1..].to_owned())]));
        assert_eq!(undo_byte_string(&encoded), packet);
        // ASCII and genuine Latin-1 text are left alone (and not copied).
        assert!(matches!(undo_byte_string("42[\"m\"]"), Cow::Borrowed(_)));
        assert!(matches!(undo_byte_string("4café"), Cow::Borrowed("4café")));
        assert!(matches!(undo_byte_string("4👋"), Cow::Borrowed("4👋")));
        // The documented misreading: Latin-1 text that spells UTF-8.
        assert_eq!(undo_byte_string("4Ã©"), "4é");
    }

    #[test]
    fn bad_payloads_are_refused_whole() {
        let cases: &[(&str, CodecError)] = &[
            ("", CodecError::Empty),
            ("0:", CodecError::Empty),
            ("1:20:", CodecError::Empty),
            ("2", CodecError::BadLength),
            ("2:", CodecError::BadLength),
            (":2", CodecError::BadLength),
            ("x:2", CodecError::BadLength),
            ("-1:2", CodecError::BadLength),
            (" 1:2", CodecError::BadLength),
            ("1:2 ", CodecError::BadLength),
            ("1:21", CodecError::BadLength),
            ("1:21:", CodecError::BadLength),
            ("2:2", CodecError::BadLength),
            ("1:2\x1e1:6", CodecError::BadLength),
            // A length that ends between the halves of a surrogate pair.
            ("2:4👋", CodecError::BadLength),
            ("1:👋", CodecError::BadLength),
            ("1234567890123456:4", CodecError::BadLength),
            ("99999999999999999999:4", CodecError::BadLength),
            ("1:21:9", CodecError::UnknownPacketType),
            ("1:22:1x", CodecError::UnexpectedData),
            ("1:25:bAQID", CodecError::BinaryUnsupported),
        ];
        for (body, error) in cases {
            assert_eq!(decode_payload(body), Err(error.clone()), "{body:?}");
        }
    }

    #[test]
    fn splitting_keeps_records_exact() {
        assert_eq!(split_payload("1:23:4ab3:4👋"), Ok(vec!["2", "4ab", "4👋"]));
        // A colon inside a record is data.
        assert_eq!(split_payload("4:4a:b"), Ok(vec!["4a:b"]));
        // Leading zeros are digits like any other (JavaScript's Number reads them so).
        assert_eq!(split_payload("01:2"), Ok(vec!["2"]));
    }
}
