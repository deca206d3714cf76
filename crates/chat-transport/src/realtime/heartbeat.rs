//! The heartbeat of an Engine.IO session, which runs one way or the other by protocol version:
//! in v4 the server pings and waits for the pong; in v3 the client pings (the session answers
//! each ping with a pong) and the server only watches for silence, as engine.io 3 did.

use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio::time::{Interval, Sleep};

use super::engineio::{EnginePacket, EngineVersion};

/// What the heartbeat asks of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Beat {
    /// Send a ping (v4).
    Ping,
    /// The client has been silent too long: end the session.
    Expired,
    /// Nothing to do this time.
    Idle,
}

/// One session's heartbeat.
#[derive(Debug)]
pub(crate) enum Heartbeat {
    /// v4: a ping every interval; a ping still unanswered at a later tick more than `timeout`
    /// after it was sent ends the session.
    ServerPings {
        /// The ping interval.
        ticks: Interval,
        /// How long a pong may take.
        timeout: Duration,
        /// When the unanswered ping was sent.
        awaiting_pong: Option<Instant>,
    },
    /// v3: the session ends once the client has sent no packet for `silence` (the ping interval
    /// plus the ping timeout, engine.io 3's rule). A packet only records the time; the timer
    /// is moved when it fires early, so that hearing a packet costs no timer update.
    ClientPings {
        /// How long the client may stay silent.
        silence: Duration,
        /// When the client last sent a packet.
        last_heard: Instant,
        /// Fires at the earliest moment the silence could be over.
        timer: Pin<Box<Sleep>>,
    },
}

impl Heartbeat {
    /// The heartbeat for a session of `version`, starting now.
    pub(crate) fn new(version: EngineVersion, interval: Duration, timeout: Duration) -> Self {
        let now = Instant::now();
        match version {
            EngineVersion::V4 => Self::ServerPings {
                ticks: tokio::time::interval_at((now + interval).into(), interval),
                timeout,
                awaiting_pong: None,
            },
            EngineVersion::V3 => {
                let silence = interval + timeout;
                Self::ClientPings { silence, last_heard: now, timer: Box::pin(tokio::time::sleep(silence)) }
            }
        }
    }

    /// Waits until the heartbeat needs something done. Cancel-safe: the session calls it again in
    /// every turn of its loop.
    pub(crate) async fn next(&mut self) -> Beat {
        match self {
            Self::ServerPings { ticks, timeout, awaiting_pong } => {
                ticks.tick().await;
                match awaiting_pong {
                    Some(since) if since.elapsed() > *timeout => Beat::Expired,
                    Some(_) => Beat::Idle,
                    None => {
                        *awaiting_pong = Some(Instant::now());
                        Beat::Ping
                    }
                }
            }
            Self::ClientPings { silence, last_heard, timer } => loop {
                timer.as_mut().await;
                let due = *last_heard + *silence;
                if Instant::now() >= due {
                    return Beat::Expired;
                }
                // Packets arrived meanwhile: the silence is shorter than it looked.
                timer.as_mut().reset(due.into());
            },
        }
    }

    /// The client sent `packet`.
    pub(crate) fn heard(&mut self, packet: &EnginePacket) {
        match self {
            Self::ServerPings { awaiting_pong, .. } => {
                if matches!(packet, EnginePacket::Pong(_)) {
                    *awaiting_pong = None;
                }
            }
            // Any packet shows the client is alive (engine.io 3 reset its timer on each).
            Self::ClientPings { last_heard, .. } => *last_heard = Instant::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: Duration = Duration::from_millis(5);

    #[tokio::test]
    async fn v4_pings_and_gives_up_on_a_missing_pong() {
        let mut heartbeat = Heartbeat::new(EngineVersion::V4, SHORT, SHORT);
        assert_eq!(heartbeat.next().await, Beat::Ping);
        heartbeat.heard(&EnginePacket::Pong(None));
        assert_eq!(heartbeat.next().await, Beat::Ping);
        // Other packets are no pong: no ping goes out until the session is given up.
        heartbeat.heard(&EnginePacket::Message("2[\"x\"]".into()));
        loop {
            match heartbeat.next().await {
                Beat::Idle => {}
                Beat::Expired => break,
                Beat::Ping => panic!("a second ping while one is unanswered"),
            }
        }
    }

    #[tokio::test]
    async fn v3_never_pings_and_expires_after_silence() {
        let mut heartbeat = Heartbeat::new(EngineVersion::V3, SHORT, SHORT);
        heartbeat.heard(&EnginePacket::Ping(None));
        assert_eq!(heartbeat.next().await, Beat::Expired);
    }
}
