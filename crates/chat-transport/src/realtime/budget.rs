//! What one realtime connection may send, per second: its client events (`typing`, `subscribe`,
//! `unsubscribe`, any other), each one past the budget answered with `rate_limited` and acted on
//! not at all (never fanned out); and its frames (WebSocket messages, Socket.IO packets), past
//! which the connection is closed with 1008 `too many frames`.

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota};

/// A rate: so many per second on average, so many at once above it. A zero `per_second` turns
/// the budget off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// How many per second on average; `0` for no limit.
    pub per_second: u32,
    /// How many at once above the average (`0` counts as 1).
    pub burst: u32,
}

/// One connection's budget of something it sends.
#[derive(Debug)]
pub(crate) struct Budget {
    limiter: Option<DefaultDirectRateLimiter>,
    /// The `limit` label of `chatd_realtime_refused_total` for what is spent beyond it.
    limit: &'static str,
}

impl Budget {
    pub(crate) fn new(rate: Rate, limit: &'static str) -> Self {
        let limiter = NonZeroU32::new(rate.per_second).map(|per_second| {
            let burst = NonZeroU32::new(rate.burst).unwrap_or(NonZeroU32::MIN);
            DefaultDirectRateLimiter::direct(Quota::per_second(per_second).allow_burst(burst))
        });
        Self { limiter, limit }
    }

    /// Spends one; `false` (and counted) when the budget is spent.
    pub(crate) fn spend(&self) -> bool {
        let Some(limiter) = &self.limiter else { return true };
        let allowed = limiter.check().is_ok();
        if !allowed {
            metrics::counter!("chatd_realtime_refused_total", "limit" => self.limit).increment(1);
        }
        allowed
    }
}

/// A connection's two budgets.
#[derive(Debug)]
pub(crate) struct Budgets {
    /// Client events.
    pub(crate) events: Budget,
    /// Frames (WebSocket messages, Socket.IO packets).
    pub(crate) frames: Budget,
}

impl Budgets {
    pub(crate) fn new(settings: &super::RealtimeSettings) -> Self {
        Self {
            events: Budget::new(settings.client_events, "client_events"),
            frames: Budget::new(settings.frames, "frames"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_allows_its_burst_then_refuses() {
        let budget = Budget::new(Rate { per_second: 1, burst: 3 }, "test");
        // Within a second at most one more comes back, so of ten, at least six are refused.
        let allowed = (0..10).filter(|_| budget.spend()).count();
        assert!((3..=4).contains(&allowed), "{allowed}");
        let unlimited = Budget::new(Rate { per_second: 0, burst: 0 }, "test");
        assert!((0..1000).all(|_| unlimited.spend()));
    }
}
