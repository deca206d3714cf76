//! Settings values that cannot hold what would not work: a zero period, a presence deadline too short
//! to renew. Each is made by a constructor that refuses such a value with an [`InvalidSetting`],
//! so that nothing downstream clamps it silently or panics on it.

use std::num::NonZeroU64;
use std::time::Duration;

/// A value a settings type refuses, and the rule it breaks. Its text reads after the setting's name:
/// `ping_interval must be positive (got 0ns)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be {rule} (got {got})")]
pub struct InvalidSetting {
    rule: &'static str,
    got: String,
}

impl InvalidSetting {
    /// `got` breaks `rule` (`"positive"`, `"between 1024 and 65536"`, …).
    pub fn new(rule: &'static str, got: impl std::fmt::Debug) -> Self {
        Self { rule, got: format!("{got:?}") }
    }
}

/// A duration that is not zero: a period (a timer of zero panics) or a lifetime (zero expires
/// everything at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NonZeroDuration(Duration);

impl NonZeroDuration {
    /// `duration`, if it is not zero.
    pub fn new(duration: Duration) -> Result<Self, InvalidSetting> {
        if duration.is_zero() { Err(InvalidSetting::new("positive", duration)) } else { Ok(Self(duration)) }
    }

    /// `secs` seconds.
    pub const fn from_secs(secs: NonZeroU64) -> Self {
        Self(Duration::from_secs(secs.get()))
    }

    /// `millis` milliseconds.
    pub const fn from_millis(millis: NonZeroU64) -> Self {
        Self(Duration::from_millis(millis.get()))
    }

    /// The duration.
    pub const fn get(self) -> Duration {
        self.0
    }
}

/// How long an instance vouches for its users' presence: at least [`PresenceTtl::MIN`], since the
/// hub renews it every third of it and renewing more often than every 10 ms would only load the
/// store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PresenceTtl(Duration);

impl PresenceTtl {
    /// The shortest presence deadline.
    pub const MIN: Duration = Duration::from_millis(30);

    /// 30 seconds.
    pub const DEFAULT: Self = Self(Duration::from_secs(30));

    /// `ttl`, if it is at least [`Self::MIN`].
    pub fn new(ttl: Duration) -> Result<Self, InvalidSetting> {
        if ttl < Self::MIN { Err(InvalidSetting::new("at least 30ms", ttl)) } else { Ok(Self(ttl)) }
    }

    /// The deadline's length.
    pub const fn get(self) -> Duration {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_duration_is_refused() {
        let refused = NonZeroDuration::new(Duration::ZERO).expect_err("zero is refused");
        assert_eq!(refused.to_string(), "must be positive (got 0ns)");
        assert_eq!(
            NonZeroDuration::new(Duration::from_millis(1)).map(NonZeroDuration::get),
            Ok(Duration::from_millis(1))
        );
    }

    #[test]
    fn a_presence_deadline_shorter_than_30_ms_is_refused() {
        assert!(PresenceTtl::new(Duration::from_millis(29)).is_err());
        assert_eq!(PresenceTtl::new(PresenceTtl::MIN).map(PresenceTtl::get), Ok(PresenceTtl::MIN));
    }
}
