//! Engine.IO sessions of this process: the registry by session id, and the outbox a session fills
//! while its client long-polls. A session lives in one process, so a polling request that lands on
//! another instance finds no session and gets Engine.IO's "Session ID unknown" (sticky sessions
//! keep a client on one instance).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{Notify, mpsc};

use super::engineio::{EnginePacket, EngineVersion};
use super::socket::Movable;

/// What the HTTP side hands to a session's task.
pub(crate) enum Inbound {
    /// Packets a polling POST carried.
    Packets(Vec<EnginePacket>),
    /// A WebSocket opened for this session: the upgrade probe is about to start on it.
    Upgrade(Movable),
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Packets(packets) => f.debug_tuple("Packets").field(packets).finish(),
            Self::Upgrade(..) => f.write_str("Upgrade"),
        }
    }
}

/// Why a poll got no packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PollError {
    /// The session moved to WebSocket.
    BadRequest,
}

#[derive(Debug, Default)]
struct OutboxState {
    packets: VecDeque<EnginePacket>,
    /// How many polls have come; the newest is the one that may take packets.
    polls: u64,
    upgraded: bool,
    closed: bool,
}

/// Packets waiting for the client's next poll.
#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<OutboxState>,
    ready: Notify,
    /// Signalled whenever a poll takes the queued packets.
    emptied: Notify,
    capacity: usize,
    /// How a poll's answer is framed.
    version: EngineVersion,
}

impl Outbox {
    pub(crate) fn new(capacity: usize, version: EngineVersion) -> Self {
        Self {
            state: Mutex::new(OutboxState::default()),
            ready: Notify::new(),
            emptied: Notify::new(),
            capacity,
            version,
        }
    }

    fn state(&self) -> MutexGuard<'_, OutboxState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a packet; `false` when the client has let too many pile up (it stopped polling).
    pub(crate) fn push(&self, packet: EnginePacket) -> bool {
        let mut state = self.state();
        if state.packets.len() >= self.capacity {
            return false;
        }
        state.packets.push_back(packet);
        drop(state);
        self.ready.notify_one();
        true
    }

    /// Ends polling: the waiting poll (if any) is answered with a noop and later polls are refused;
    /// returns what was still queued, for the WebSocket to carry.
    pub(crate) fn upgrade(&self) -> Vec<EnginePacket> {
        let mut state = self.state();
        state.upgraded = true;
        // Noops only ever mattered to a poll; the WebSocket carries the rest.
        let pending = state.packets.drain(..).filter(|packet| *packet != EnginePacket::Noop).collect();
        state.packets.push_back(EnginePacket::Noop);
        drop(state);
        self.ready.notify_one();
        pending
    }

    /// Resolves once no packet waits for a poll (a poll took them).
    pub(crate) async fn drained(&self) {
        loop {
            let emptied = self.emptied.notified();
            if self.state().packets.is_empty() {
                return;
            }
            emptied.await;
        }
    }

    /// A copy of the packets waiting for a poll.
    pub(crate) fn pending(&self) -> Vec<EnginePacket> {
        self.state().packets.iter().filter(|packet| **packet != EnginePacket::Noop).cloned().collect()
    }

    /// Ends the session: the waiting poll is answered with a close packet.
    pub(crate) fn close(&self) {
        let mut state = self.state();
        state.closed = true;
        drop(state);
        self.ready.notify_one();
    }

    /// Waits for packets and returns them as one payload (a long poll).
    ///
    /// A newer poll takes over from one still waiting, which is answered at once with a noop: a
    /// client only polls again once its last poll is over for it — answered, or given up on (it
    /// timed out, or a proxy cut it) while actix still holds that request, whose connection chatd
    /// only notices when it writes the answer. Packets only ever go to the newest poll.
    pub(crate) async fn poll(&self) -> Result<String, PollError> {
        let this = {
            let mut state = self.state();
            if state.upgraded && state.packets.is_empty() {
                return Err(PollError::BadRequest);
            }
            state.polls += 1;
            state.polls
        };
        // Wakes a poll still waiting, to see it is over.
        self.ready.notify_waiters();
        loop {
            let ready = self.ready.notified();
            {
                let mut state = self.state();
                if state.polls != this {
                    drop(state);
                    // A packet's wake-up may have come to this poll: hand it on to the newest.
                    self.ready.notify_one();
                    return Ok(self.version.encode_payload([&EnginePacket::Noop]));
                }
                if !state.packets.is_empty() || state.closed {
                    if state.packets.is_empty() {
                        return Ok(self.version.encode_payload([&EnginePacket::Close]));
                    }
                    let packets: Vec<EnginePacket> = state.packets.drain(..).collect();
                    drop(state);
                    self.emptied.notify_waiters();
                    return Ok(self.version.encode_payload(&packets));
                }
            }
            ready.await;
        }
    }
}

/// The handle of one session, shared by its task and the HTTP requests that name its id.
#[derive(Debug)]
pub(crate) struct SessionHandle {
    pub(crate) inbound: mpsc::Sender<Inbound>,
    pub(crate) outbox: Arc<Outbox>,
    /// The protocol the session was opened with; every later request must speak it too.
    pub(crate) version: EngineVersion,
}

/// Every session of this process, by id.
#[derive(Debug, Default)]
pub(crate) struct Sessions(Mutex<HashMap<String, Arc<SessionHandle>>>);

impl Sessions {
    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<SessionHandle>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn insert(&self, sid: String, handle: Arc<SessionHandle>) {
        self.map().insert(sid, handle);
    }

    pub(crate) fn get(&self, sid: &str) -> Option<Arc<SessionHandle>> {
        self.map().get(sid).cloned()
    }

    pub(crate) fn remove(&self, sid: &str) {
        self.map().remove(sid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_newer_poll_takes_over_from_one_still_waiting() {
        let outbox = Outbox::new(8, EngineVersion::V4);
        let mut abandoned = Box::pin(outbox.poll());
        assert!(futures_util::poll!(&mut abandoned).is_pending());
        let mut newest = Box::pin(outbox.poll());
        assert!(futures_util::poll!(&mut newest).is_pending());
        // The one its client gave up on ends with nothing in it; packets go to the newest.
        assert_eq!(abandoned.await, Ok("6".to_owned()));
        assert!(outbox.push(EnginePacket::Message("2[\"x\"]".into())));
        assert_eq!(newest.await, Ok("42[\"x\"]".to_owned()));
    }

    #[tokio::test]
    async fn a_poll_waits_for_packets_and_takes_them_all() {
        let outbox = Arc::new(Outbox::new(8, EngineVersion::V4));
        let waiting = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.poll().await }
        });
        assert!(outbox.push(EnginePacket::Ping(None)));
        assert!(outbox.push(EnginePacket::Message("2[\"x\"]".into())));
        let payload = waiting.await.expect("the poll ends");
        // The poll may have woken for the first packet or both; what it took is a prefix.
        let payload = payload.expect("packets");
        assert!(payload.starts_with('2'), "{payload}");
    }

    #[tokio::test]
    async fn polls_are_framed_in_the_session_s_version() {
        let outbox = Outbox::new(8, EngineVersion::V3);
        assert!(outbox.push(EnginePacket::Message("0".into())));
        assert!(outbox.push(EnginePacket::Message("2[\"m\"]".into())));
        assert_eq!(outbox.poll().await, Ok("2:407:42[\"m\"]".to_owned()));
        outbox.close();
        assert_eq!(outbox.poll().await, Ok("1:1".to_owned()));
    }

    #[tokio::test]
    async fn no_poll_after_upgrade() {
        let outbox = Arc::new(Outbox::new(8, EngineVersion::V4));
        let first = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.poll().await }
        });
        tokio::task::yield_now().await;
        // Whether or not the first poll is already waiting, the upgrade answers it with a noop.
        let pending = outbox.upgrade();
        assert!(pending.is_empty());
        assert_eq!(first.await.expect("ends"), Ok("6".to_owned()));
        assert_eq!(outbox.poll().await, Err(PollError::BadRequest));
    }

    #[test]
    fn a_client_that_stops_polling_overflows() {
        let outbox = Outbox::new(2, EngineVersion::V4);
        assert!(outbox.push(EnginePacket::Noop));
        assert!(outbox.push(EnginePacket::Noop));
        assert!(!outbox.push(EnginePacket::Noop));
    }
}
