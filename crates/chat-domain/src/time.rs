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

    /// `2026-11-25T13:29:54.837Z`.
    pub fn iso(self) -> String {
        self.format(ISO_MILLIS)
    }

    /// `Wed Nov 25 2026 13:29:55 GMT+0000 (Coordinated Universal Time)`, for `activity:<uid>`.
    pub fn js_date_string(self) -> String {
        self.format(JS_DATE)
    }

    fn format(self, format: &[BorrowedFormatItem<'static>]) -> String {
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            .to_offset(UtcOffset::UTC);
        // Formatting a valid date into a String cannot fail with these descriptions.
        at.format(format).unwrap_or_default()
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
