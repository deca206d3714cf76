//! Message timestamps: epoch milliseconds, written as ISO-8601 (`toISOString()`) in storage and as
//! `{epoch, iso}` on the wire, exactly as the original did.

use time::format_description::{BorrowedFormatItem, well_known::Rfc3339};
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

use crate::DomainError;

/// JavaScript's `Date.prototype.toISOString()`: always UTC, always milliseconds.
const ISO_MILLIS: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// JavaScript's `Date.prototype.toString()` in UTC, which the original wrote into `last_active`.
const JS_DATE: &[BorrowedFormatItem<'static>] = format_description!(
    "[weekday repr:short] [month repr:short] [day] [year] [hour]:[minute]:[second] GMT+0000 (Coordinated Universal Time)"
);

/// A point in time with millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Now, truncated to the millisecond.
    pub fn now() -> Self {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Self((nanos / 1_000_000) as i64)
    }

    /// The timestamp `millis` after the Unix epoch.
    pub fn from_epoch_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the Unix epoch (the inbox score, the wire `epoch`).
    pub fn epoch_millis(self) -> i64 {
        self.0
    }

    /// Parses a stored ISO-8601 / RFC 3339 timestamp (any offset, any sub-second precision).
    pub fn parse_iso(text: &str) -> Result<Self, DomainError> {
        OffsetDateTime::parse(text, &Rfc3339)
            .map(|at| Self((at.unix_timestamp_nanos() / 1_000_000) as i64))
            .map_err(|_| DomainError::argument(format!("Invalid timestamp {text:?}")))
    }

    /// `2026-11-25T13:29:54.837Z`, without allocating (it is written for every message shown).
    pub fn iso(self) -> IsoText {
        let at = self.utc();
        let mut text = IsoText { bytes: [0; IsoText::CAPACITY], len: 0 };
        if (0..=9999).contains(&at.year()) {
            // Digit by digit from the date `time` computed: its formatter interprets a format
            // description on every call, several times the cost.
            let (hour, minute, second, milli) = at.to_hms_milli();
            text.digits(at.year().unsigned_abs(), 4);
            for (separator, value) in
                [(b'-', u8::from(at.month())), (b'-', at.day()), (b'T', hour), (b':', minute), (b':', second)]
            {
                text.push(separator);
                text.digits(u32::from(value), 2);
            }
            text.push(b'.');
            text.digits(u32::from(milli), 3);
            text.push(b'Z');
        } else {
            for byte in self.format(ISO_MILLIS).bytes().take(IsoText::CAPACITY) {
                text.push(byte);
            }
        }
        text
    }

    /// `Wed Nov 25 2026 13:29:55 GMT+0000 (Coordinated Universal Time)`, for `activity:<uid>`.
    pub fn js_date_string(self) -> String {
        let at = self.utc();
        if !(0..=9999).contains(&at.year()) {
            return self.format(JS_DATE);
        }
        // Written piece by piece, for the reason `iso` is: it is written on every send.
        const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        let mut out = String::with_capacity(64);
        out.push_str(WEEKDAYS[usize::from(at.weekday().number_days_from_monday())]);
        out.push(' ');
        out.push_str(MONTHS[usize::from(u8::from(at.month()) - 1)]);
        let fields = [(' ', u32::from(at.day()), 2), (' ', at.year().unsigned_abs(), 4)];
        let clock = [(' ', at.hour()), (':', at.minute()), (':', at.second())].map(|(c, v)| (c, u32::from(v), 2));
        for (separator, value, width) in fields.into_iter().chain(clock) {
            out.push(separator);
            out.extend(padded(value, width).map(char::from));
        }
        out.push_str(" GMT+0000 (Coordinated Universal Time)");
        out
    }

    fn format(self, format: &[BorrowedFormatItem<'static>]) -> String {
        // Formatting a valid date into a String cannot fail with these descriptions.
        self.utc().format(format).unwrap_or_default()
    }

    fn utc(self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            .to_offset(UtcOffset::UTC)
    }
}

/// A timestamp's `toISOString()` text, held inline ([`Timestamp::iso`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IsoText {
    bytes: [u8; Self::CAPACITY],
    len: usize,
}

impl IsoText {
    /// Room for the longest form, a six-digit signed year (`+275760-09-13T00:00:00.000Z`).
    const CAPACITY: usize = 32;

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and separators, or a whole formatted string, are ever pushed.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }

    fn push(&mut self, byte: u8) {
        if self.len < Self::CAPACITY {
            self.bytes[self.len] = byte;
            self.len += 1;
        }
    }

    /// `value` in exactly `width` decimal digits, zero-padded.
    fn digits(&mut self, value: u32, width: u32) {
        for digit in padded(value, width) {
            self.push(digit);
        }
    }
}

/// The ASCII digits of `value` in exactly `width` places, zero-padded (higher places dropped).
fn padded(value: u32, width: u32) -> impl Iterator<Item = u8> {
    (0..width).rev().map(move |place| b'0' + (value / 10u32.pow(place) % 10) as u8)
}

impl std::fmt::Display for IsoText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for IsoText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq<&str> for IsoText {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_the_originals_iso_form() {
        let stored = "2026-11-25T13:29:54.837Z";
        let at = Timestamp::parse_iso(stored).expect("valid");
        assert_eq!(at.iso(), stored);
        assert_eq!(at.epoch_millis(), 1_795_613_394_837);
        assert_eq!(Timestamp::from_epoch_millis(1_795_613_394_000).iso(), "2026-11-25T13:29:54.000Z");
    }

    #[test]
    fn the_iso_text_is_the_formatters_for_every_year() {
        // Leap days, the epoch, before it, the last four-digit year and past it.
        for millis in
            [0, -1, 951_782_400_000, 1_709_164_799_999, 253_402_300_799_999, 253_402_300_800_000, -62_167_219_200_001]
        {
            let at = Timestamp::from_epoch_millis(millis);
            assert_eq!(at.iso().as_str(), at.format(ISO_MILLIS), "{millis}");
        }
    }

    #[test]
    fn other_offsets_and_precisions_are_read() {
        let at = Timestamp::parse_iso("2026-11-25T14:29:54.8379+01:00").expect("valid");
        assert_eq!(at.iso(), "2026-11-25T13:29:54.837Z");
        assert!(Timestamp::parse_iso("yesterday").is_err());
    }

    #[test]
    fn last_active_is_written_like_a_javascript_date() {
        let at = Timestamp::parse_iso("2026-11-25T13:29:55.000Z").expect("valid");
        assert_eq!(at.js_date_string(), "Wed Nov 25 2026 13:29:55 GMT+0000 (Coordinated Universal Time)");
    }
}
