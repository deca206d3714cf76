//! Positions in a channel's event history: where a client is, so that it can resume after a
//! reconnect with exactly the durable events it missed.
//!
//! A position is the channel's *epoch* (which changes only when the history was lost, e.g. Redis
//! flushed) and the *sequence number* of the channel's last durable event (dense: 1, 2, 3 …,
//! assigned in the same atomic write as the change it announces; 0 before the first). Clients see
//! it as one opaque string, `<epoch>-<seq>`.

use std::fmt;
use std::str::FromStr;

use crate::ChatEvent;

/// A place in one channel's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    /// Which incarnation of the channel's history.
    pub epoch: u64,
    /// The number of durable events the channel had at this point.
    pub seq: u64,
}

impl Position {
    /// Whether an event at `self` is already covered by `seen` (same epoch, not later).
    pub fn covered_by(self, seen: Position) -> bool {
        self.epoch == seen.epoch && self.seq <= seen.seq
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.epoch, self.seq)
    }
}

/// A string that is not a position chatd made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedPosition;

impl fmt::Display for MalformedPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a position")
    }
}

impl std::error::Error for MalformedPosition {}

impl FromStr for Position {
    type Err = MalformedPosition;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (epoch, seq) = text.split_once('-').ok_or(MalformedPosition)?;
        let number = |part: &str| {
            // Digits only: `u64::from_str` would also take a leading `+`.
            if part.is_empty() || part.len() > 20 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(MalformedPosition);
            }
            part.parse::<u64>().map_err(|_| MalformedPosition)
        };
        Ok(Self { epoch: number(epoch)?, seq: number(seq)? })
    }
}

impl ChatEvent {
    /// Whether the event is durable: recorded in its channels' histories with a position, so that
    /// a reconnecting client gets it again. Typing and presence are ephemeral.
    pub fn is_durable(&self) -> bool {
        !matches!(self, Self::Typing { .. } | Self::Presence { .. })
    }
}

/// How far one channel's history reaches back: the last `size` durable events, none older than
/// `ttl`. A channel with no event for `ttl` drops its history altogether (its position stays).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryWindow {
    /// Durable events kept per channel.
    pub size: u64,
    /// How long an event is kept.
    pub ttl: std::time::Duration,
}

impl Default for HistoryWindow {
    fn default() -> Self {
        Self { size: 1_000, ttl: std::time::Duration::from_secs(86_400) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_survives_its_text_and_nothing_else_parses() {
        let position = Position { epoch: 1_764_590_000_123_456, seq: 42 };
        assert_eq!(position.to_string(), "1764590000123456-42");
        assert_eq!("1764590000123456-42".parse(), Ok(position));
        for bad in ["", "-", "1-", "-1", "1", "a-1", "1-+2", "1-2-3", " 1-2", "99999999999999999999999-1"] {
            assert_eq!(bad.parse::<Position>(), Err(MalformedPosition), "{bad:?}");
        }
    }

    #[test]
    fn an_event_is_covered_only_within_its_epoch() {
        let seen = Position { epoch: 7, seq: 10 };
        assert!(Position { epoch: 7, seq: 10 }.covered_by(seen));
        assert!(Position { epoch: 7, seq: 3 }.covered_by(seen));
        assert!(!Position { epoch: 7, seq: 11 }.covered_by(seen));
        assert!(!Position { epoch: 8, seq: 1 }.covered_by(seen), "a new epoch starts over");
    }
}
