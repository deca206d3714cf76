//! The reconnect storm: many `/ws` users stay connected while sends go on over REST; then every
//! socket drops at once and reconnects `since` the position of the last durable event it got.
//! Every message must reach its recipient's socket exactly once — before the drop, in the replay
//! that follows `authenticated` (`"recovered": true, "missed": N`), or live afterwards.
//!
//! Positions are opaque: the client only remembers the last one it was given (the `authenticated`
//! answer's, then each durable event's) and compares them for equality. Messages are told apart by
//! their id, which the send's answer names.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use serde_json::Value;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::http::Connection;
use crate::realtime::{self, Socket};
use crate::report::{Latency, Scenario, Storm};
use crate::tokens::token;

/// Socket users and senders, apart from the realtime scenario's so that none of its events can
/// count here.
const SOCKET_USERS_FROM: u64 = 700_000;
const SENDERS_FROM: u64 = 410_000;
const SENDERS: u64 = 32;
/// How long a dropped socket keeps trying to come back before it counts as gone.
const RECONNECT_DEADLINE: Duration = Duration::from_secs(60);
/// One connection attempt, handshake and `authenticated` included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The events that are kept in a channel's history and carry a position.
const DURABLE: [&str; 4] = ["new-message", "message-updated", "message-seen", "message-deleted"];
/// Examples of what went wrong kept for the report, of each kind.
const EXAMPLES: usize = 5;

/// How every socket drops when the storm starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Hangup {
    /// The TCP connection is reset (`SO_LINGER` 0): no close frame, as when a network goes away.
    Abrupt,
    /// A WebSocket close frame, then the connection is dropped without waiting for the answer.
    Clean,
}

/// Where a socket reconnects after the storm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Target {
    /// The instance it was connected to.
    Same,
    /// The next instance (the same one when there is only one).
    Other,
}

/// What the storm does, and for how long.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) sockets: usize,
    /// Sends per second over REST, for the whole run.
    pub(crate) rate: u64,
    /// Sending before the storm.
    pub(crate) before: Duration,
    /// How long every socket stays away once all have dropped.
    pub(crate) away: Duration,
    /// Sending after every socket is live again.
    pub(crate) after: Duration,
    /// At most this long, once sending stopped, for the last events to arrive.
    pub(crate) drain: Duration,
    pub(crate) hangup: Hangup,
    pub(crate) reconnect_to: Target,
}

/// What the bench tells every socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Live,
    /// Drop now, and wait.
    Storm,
    /// Every socket has dropped: reconnect `since` the last position, all at once.
    Reconnect,
    /// The run is over: hand in the log.
    Stop,
}

/// What one frame from chatd means to a storm client.
#[derive(Debug, PartialEq, Eq)]
enum Frame {
    Authenticated {
        position: Option<String>,
        recovered: Option<bool>,
        missed: Option<u64>,
    },
    /// `id` is the message's, for `new-message`.
    Durable {
        event: String,
        id: Option<String>,
        position: Option<String>,
    },
    /// Typing, presence, anything else.
    Other,
}

impl Frame {
    fn parse(text: &str) -> Self {
        let Ok(frame) = serde_json::from_str::<Value>(text) else { return Self::Other };
        let data = &frame["data"];
        let string = |value: &Value| value.as_str().map(str::to_owned);
        match frame["event"].as_str() {
            Some("authenticated") => Self::Authenticated {
                position: string(&data["position"]),
                recovered: data["recovered"].as_bool(),
                missed: data["missed"].as_u64(),
            },
            Some(event) if DURABLE.contains(&event) => Self::Durable {
                event: event.to_owned(),
                id: if event == "new-message" { string(&data["id"]) } else { None },
                position: string(&data["position"]),
            },
            _ => Self::Other,
        }
    }
}

/// One connection of a socket user, as its `authenticated` answer began it.
#[derive(Debug, Clone)]
struct Session {
    authenticated_at: Instant,
    since: Option<String>,
    position: Option<String>,
    recovered: Option<bool>,
    missed: Option<u64>,
    /// The reconnect after the storm (rather than the first connection, or one after the server
    /// closed the socket).
    after_storm: bool,
    /// Durable events of the replay still to come, and when its last one came.
    replay_left: u64,
    replay_done_at: Option<Instant>,
    /// Whether the position after the replay is the one `authenticated` announced.
    position_kept: Option<bool>,
}

/// One `new-message` as a socket received it.
#[derive(Debug, Clone)]
struct Arrival {
    id: String,
    at: Instant,
    session: usize,
    replayed: bool,
}

/// Everything one socket user saw, handed in when the run ends.
#[derive(Debug, Default)]
struct SocketLog {
    index: usize,
    /// The position to resume from: the last one chatd gave this socket.
    position: Option<String>,
    sessions: Vec<Session>,
    arrivals: Vec<Arrival>,
    received: HashMap<String, u32>,
    /// Every position a durable event carried, and which event it was.
    positions: HashMap<String, String>,
    dropped_at: Option<Instant>,
    failed_attempts: u64,
    last_failure: Option<String>,
    server_closes: u64,
    /// What chatd sent that the contract does not allow: what is wrong, and the frame.
    violations: Vec<(String, String)>,
}

impl SocketLog {
    fn new(index: usize) -> Self {
        Self { index, ..Self::default() }
    }

    /// A connection began with `text` (its `authenticated` frame), having asked for `since`.
    fn authenticated(&mut self, text: &str, at: Instant, since: Option<String>, after_storm: bool) {
        let Frame::Authenticated { position, recovered, missed } = Frame::parse(text) else {
            self.violations.push(("the first frame is not `authenticated`".to_owned(), text.to_owned()));
            return;
        };
        if position.is_none() {
            self.violations.push(("`authenticated` without a position".to_owned(), text.to_owned()));
        }
        let resumed = since.is_some() && recovered == Some(true);
        if since.is_some() && recovered.is_none() {
            self.violations.push(("`authenticated` after `since` without `recovered`".to_owned(), text.to_owned()));
        }
        if resumed && missed.is_none() {
            self.violations.push(("`recovered: true` without `missed`".to_owned(), text.to_owned()));
        }
        let replay_left = if resumed { missed.unwrap_or(0) } else { 0 };
        // Resuming, the position moves with the replayed events; otherwise the client starts
        // afresh from where chatd says it is (after a reload over REST, for `recovered: false`).
        if !resumed {
            self.position.clone_from(&position);
        }
        let position_kept = (resumed && replay_left == 0).then(|| self.position == position);
        self.sessions.push(Session {
            authenticated_at: at,
            since,
            position,
            recovered,
            missed,
            after_storm,
            replay_left,
            replay_done_at: None,
            position_kept,
        });
    }

    /// A frame on the current connection. True for the first arrival of a message.
    fn frame(&mut self, text: &str, at: Instant) -> bool {
        match Frame::parse(text) {
            Frame::Authenticated { .. } => {
                self.violations.push(("a second `authenticated` on one connection".to_owned(), text.to_owned()));
                false
            }
            Frame::Other => false,
            Frame::Durable { event, id, position } => {
                match &position {
                    None => self.violations.push((format!("`{event}` without a position"), text.to_owned())),
                    Some(position) => {
                        // A socket here hears only its user's channel: one position, one event (a
                        // duplicate of the same event is counted as such, not here).
                        let what = format!("{event} {}", id.as_deref().unwrap_or_default());
                        let first = self.positions.entry(position.clone()).or_insert_with(|| what.clone());
                        if *first != what {
                            let problem = "two different durable events with one position";
                            self.violations.push((problem.to_owned(), text.to_owned()));
                        }
                        self.position = Some(position.clone());
                    }
                }
                let session = self.sessions.len().saturating_sub(1);
                let mut replayed = false;
                if let Some(current) = self.sessions.last_mut()
                    && current.replay_left > 0
                {
                    replayed = true;
                    current.replay_left -= 1;
                    if current.replay_left == 0 {
                        current.replay_done_at = Some(at);
                        current.position_kept = Some(self.position == current.position);
                    }
                }
                let Some(id) = id else {
                    if event == "new-message" {
                        self.violations.push(("`new-message` without an id".to_owned(), text.to_owned()));
                    }
                    return false;
                };
                let count = self.received.entry(id.clone()).or_default();
                *count += 1;
                let first = *count == 1;
                self.arrivals.push(Arrival { id, at, session, replayed });
                first
            }
        }
    }

    fn storm_session(&self) -> Option<&Session> {
        self.sessions.iter().find(|session| session.after_storm)
    }

    /// Whether chatd answered a resume of this socket's with `recovered: false`: what it missed
    /// is then the client's to reload over REST.
    fn told_to_reload(&self) -> bool {
        self.sessions.iter().any(|session| session.since.is_some() && session.recovered == Some(false))
    }

    /// The sessions and what arrived, for a report on what went wrong.
    fn describe(&self, user: u64, zero: Instant) -> String {
        let mut out = format!("user {user}:");
        if let Some(dropped) = self.dropped_at {
            write!(out, " dropped at {:+.3} s;", seconds(dropped, zero)).ok();
        }
        for (number, session) in self.sessions.iter().enumerate() {
            write!(
                out,
                " session {number} authenticated at {:+.3} s (since {:?}: position {:?}, recovered {:?}, missed {:?});",
                seconds(session.authenticated_at, zero),
                session.since,
                session.position,
                session.recovered,
                session.missed
            )
            .ok();
        }
        let shown: Vec<String> = self
            .arrivals
            .iter()
            .map(|arrival| {
                let how = if arrival.replayed { ", replayed" } else { "" };
                format!("{} (session {}{how}, {:+.3} s)", arrival.id, arrival.session, seconds(arrival.at, zero))
            })
            .collect();
        write!(out, " received {} message(s): {}", shown.len(), shown.join(", ")).ok();
        if self.failed_attempts > 0 {
            write!(out, "; {} failed connection attempt(s), the last: {:?}", self.failed_attempts, self.last_failure)
                .ok();
        }
        out
    }
}

/// `at` in seconds after `zero` (negative: before it).
fn seconds(at: Instant, zero: Instant) -> f64 {
    if at >= zero { (at - zero).as_secs_f64() } else { -(zero - at).as_secs_f64() }
}

/// One message chatd accepted: whose socket must get it, and when it was sent.
#[derive(Debug, Clone, Copy)]
struct Sent {
    socket: usize,
    seq: u64,
    at: Instant,
}

/// What the senders share.
#[derive(Debug, Default)]
struct Sends {
    going: AtomicBool,
    next: AtomicU64,
    errors: AtomicU64,
    /// By message id.
    sent: Mutex<HashMap<String, Sent>>,
}

/// What the sockets share with the bench while it runs.
#[derive(Debug, Default)]
struct Counters {
    dropped: AtomicUsize,
    live_again: AtomicUsize,
    /// First arrivals of messages, over all sockets.
    received: AtomicU64,
}

/// One socket user's task: reads its connection, drops it when the storm comes, and comes back
/// `since` its last position (also if chatd closes it), until told to stop.
struct Client {
    user: u64,
    port: u16,
    port_after_storm: u16,
    hangup: Hangup,
    control: watch::Receiver<Phase>,
    counters: Arc<Counters>,
    log: SocketLog,
}

/// What woke a client.
enum Step {
    Control(bool),
    Frame(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    Back(Box<Comeback>),
}

impl Client {
    async fn run(mut self, socket: Socket) -> SocketLog {
        let mut socket = Some(socket);
        loop {
            let step = match socket.as_mut() {
                Some(connection) => tokio::select! {
                    biased;
                    changed = self.control.changed() => Step::Control(changed.is_ok()),
                    frame = connection.next() => Step::Frame(frame),
                },
                // Dropped by the storm: wait until every socket has, then come back together.
                None if self.log.dropped_at.is_some() && *self.control.borrow() == Phase::Storm => {
                    Step::Control(self.control.changed().await.is_ok())
                }
                None => {
                    let since = self.log.position.clone();
                    tokio::select! {
                        biased;
                        changed = self.control.changed() => Step::Control(changed.is_ok()),
                        back = come_back(self.port, self.user, since) => Step::Back(Box::new(back)),
                    }
                }
            };
            match step {
                Step::Control(open) => {
                    let phase = *self.control.borrow_and_update();
                    if !open || phase == Phase::Stop {
                        return self.log;
                    }
                    if phase != Phase::Live && self.log.dropped_at.is_none() {
                        self.log.dropped_at = Some(Instant::now());
                        if let Some(connection) = socket.take() {
                            hang_up(connection, self.hangup).await;
                        }
                        self.port = self.port_after_storm;
                        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Step::Frame(Some(Ok(Message::Text(text)))) => {
                    if self.log.frame(&text, Instant::now()) {
                        self.counters.received.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Step::Frame(Some(Ok(_))) => {}
                Step::Frame(Some(Err(_)) | None) => {
                    self.log.server_closes += 1;
                    socket = None;
                }
                Step::Back(back) => {
                    self.log.failed_attempts += back.failures;
                    if back.last_error.is_some() {
                        self.log.last_failure = back.last_error;
                    }
                    // The position does not move while disconnected: this is what was asked.
                    let since = self.log.position.clone();
                    match back.connection {
                        Some((connection, authenticated, at)) => {
                            let after_storm = self.log.dropped_at.is_some() && self.log.storm_session().is_none();
                            self.log.authenticated(&authenticated, at, since, after_storm);
                            if after_storm {
                                self.counters.live_again.fetch_add(1, Ordering::Relaxed);
                            }
                            socket = Some(connection);
                        }
                        None => {
                            // Gave up: wait to be stopped.
                            while self.control.changed().await.is_ok() && *self.control.borrow() != Phase::Stop {}
                            return self.log;
                        }
                    }
                }
            }
        }
    }
}

/// Drops a connection the way the storm asks.
async fn hang_up(mut connection: Socket, hangup: Hangup) {
    match hangup {
        Hangup::Abrupt => {
            connection.get_ref().set_zero_linger().ok();
        }
        Hangup::Clean => {
            tokio::time::timeout(Duration::from_secs(1), connection.send(Message::Close(None))).await.ok();
        }
    }
    drop(connection);
}

/// How a reconnect went.
struct Comeback {
    /// The socket, its `authenticated` frame and when that came; none if the socket gave up.
    connection: Option<(Socket, String, Instant)>,
    failures: u64,
    last_error: Option<String>,
}

/// Reconnects `since` a position, retrying with a growing, jittered pause like a real client,
/// until `RECONNECT_DEADLINE`.
async fn come_back(port: u16, user: u64, since: Option<String>) -> Comeback {
    let deadline = Instant::now() + RECONNECT_DEADLINE;
    let mut back = Comeback { connection: None, failures: 0, last_error: None };
    let mut pause = Duration::from_millis(50);
    loop {
        let attempt = tokio::time::timeout(ATTEMPT_TIMEOUT, realtime::connect(port, user, since.as_deref())).await;
        match attempt {
            Ok(Ok((socket, authenticated))) => {
                back.connection = Some((socket, authenticated, Instant::now()));
                return back;
            }
            Ok(Err(error)) => back.last_error = Some(error),
            Err(_) => back.last_error = Some("timed out".to_owned()),
        }
        back.failures += 1;
        if Instant::now() + pause > deadline {
            return back;
        }
        tokio::time::sleep(pause.mul_f64(0.5 + fastrand::f64())).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// One sender: posts to random socket users at its share of the rate, through `port`, until
/// told to stop, and records what chatd accepted.
async fn send(port: u16, sender: u64, sockets: usize, rate: u64, sends: Arc<Sends>) -> Result<(), String> {
    let mut connection = Connection::open(port).await?;
    let mut rng = fastrand::Rng::with_seed(sender);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(SENDERS as f64 / rate.max(1) as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let author = token(SENDERS_FROM + sender);
    while sends.going.load(Ordering::Relaxed) {
        tick.tick().await;
        let seq = sends.next.fetch_add(1, Ordering::Relaxed);
        let socket = rng.usize(0..sockets);
        let body = Bytes::from(format!(r#"{{"type":"text","text":"storm {seq}"}}"#));
        let at = Instant::now();
        let reply = connection.post(&format!("/api/user/{}", SOCKET_USERS_FROM + socket as u64), &author, body).await;
        let id = match &reply {
            Ok(reply) if reply.status == 201 => serde_json::from_slice::<Value>(&reply.body)
                .ok()
                .and_then(|answer| answer["entry"]["id"].as_str().map(str::to_owned)),
            _ => None,
        };
        match id {
            Some(id) => {
                sends.sent.lock().map_err(|_| "poisoned")?.insert(id, Sent { socket, seq, at });
            }
            None => {
                sends.errors.fetch_add(1, Ordering::Relaxed);
                if reply.is_err() {
                    connection = Connection::open(port).await?;
                }
            }
        }
    }
    Ok(())
}

/// Waits until `done` holds, checking every 10 ms, for at most `limit`. True if it held.
async fn wait_until(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// Runs the storm against `instances` (sends go through the first). Returns its two table rows
/// (the reconnect, and the events) and the storm's own figures.
pub(crate) async fn run(
    instances: &[u16],
    settings: &Settings,
    ceiling: f64,
    progress: &ProgressBar,
) -> Result<(Vec<Scenario>, Storm), String> {
    let (control, watching) = watch::channel(Phase::Live);
    let counters = Arc::new(Counters::default());
    let mut clients = Vec::with_capacity(settings.sockets);
    let shift = match settings.reconnect_to {
        Target::Same => 0,
        Target::Other => 1,
    };
    progress.set_length(settings.sockets as u64);
    progress.set_message("storm: opening sockets");
    realtime::open_each(
        instances,
        realtime::Door::Ws,
        SOCKET_USERS_FROM,
        settings.sockets,
        progress,
        |index, socket, authenticated| {
            let mut log = SocketLog::new(index);
            log.authenticated(&authenticated, Instant::now(), None, false);
            let client = Client {
                user: SOCKET_USERS_FROM + index as u64,
                port: instances[index % instances.len()],
                port_after_storm: instances[(index + shift) % instances.len()],
                hangup: settings.hangup,
                control: watching.clone(),
                counters: counters.clone(),
                log,
            };
            clients.push(tokio::spawn(client.run(socket)));
        },
    )
    .await?;

    let sends = Arc::new(Sends { going: AtomicBool::new(true), ..Sends::default() });
    let sending_from = Instant::now();
    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| tokio::spawn(send(instances[0], sender, settings.sockets, settings.rate, sends.clone())))
        .collect();
    progress.set_position(0);
    progress.set_message("storm: sending");
    tokio::time::sleep(settings.before).await;

    progress.set_message("storm: reconnecting");
    let storm_at = Instant::now();
    control.send(Phase::Storm).map_err(|_| "every storm client is gone")?;
    wait_until(Duration::from_secs(10), || counters.dropped.load(Ordering::Relaxed) >= settings.sockets).await;
    tokio::time::sleep(settings.away).await;
    let reconnect_at = Instant::now();
    control.send(Phase::Reconnect).map_err(|_| "every storm client is gone")?;
    wait_until(RECONNECT_DEADLINE + ATTEMPT_TIMEOUT, || {
        let back = counters.live_again.load(Ordering::Relaxed);
        progress.set_position(back as u64);
        back >= settings.sockets
    })
    .await;
    progress.set_message("storm: sending after");
    tokio::time::sleep(settings.after).await;
    sends.going.store(false, Ordering::Relaxed);
    for sender in senders {
        sender.await.map_err(|e| e.to_string())??;
    }
    let sending_seconds = sending_from.elapsed().as_secs_f64();

    progress.set_message("storm: draining");
    let accepted = sends.sent.lock().map_err(|_| "poisoned")?.len() as u64;
    if wait_until(settings.drain, || counters.received.load(Ordering::Relaxed) >= accepted).await {
        // Long enough for a late duplicate to show.
        tokio::time::sleep(Duration::from_millis(500).min(settings.drain)).await;
    }
    control.send(Phase::Stop).ok();
    let mut logs = Vec::with_capacity(clients.len());
    for client in clients {
        logs.push(client.await.map_err(|e| e.to_string())?);
    }
    logs.sort_by_key(|log| log.index);

    let sent = std::mem::take(&mut *sends.sent.lock().map_err(|_| "poisoned")?);
    let mut tally = tally(&sent, &logs, storm_at, reconnect_at)?;
    let storm = &mut tally.storm;
    storm.hangup = format!("{:?}", settings.hangup).to_lowercase();
    storm.reconnect_to = match settings.reconnect_to {
        Target::Other if instances.len() > 1 => "other",
        _ => "same",
    }
    .to_owned();
    storm.away_seconds = settings.away.as_secs_f64();
    storm.instances = instances.len();
    storm.send_rate = settings.rate;
    storm.send_errors = sends.errors.load(Ordering::Relaxed);
    storm.sent_per_second = sent.len() as f64 / sending_seconds;
    storm.judge();

    let reconnect_seconds =
        storm.all_live_seconds.map_or(RECONNECT_DEADLINE.as_secs_f64(), |live| live - storm.reconnect_from_seconds);
    let rows = vec![
        Scenario {
            name: "storm reconnect".to_owned(),
            concurrency: settings.sockets,
            seconds: reconnect_seconds,
            operations: tally.reconnects.len(),
            errors: storm.failed_attempts + (storm.sockets - storm.sockets_back) as u64,
            per_second: tally.reconnects.len() as f64 / reconnect_seconds,
            ratio: tally.reconnects.len() as f64 / reconnect_seconds / ceiling,
            latency: Latency::from_micros(&tally.reconnects),
            lost: None,
            duplicated: None,
            platform_requests: None,
            share_of_reference: None,
            cpu: None,
            slowest_redis: None,
        },
        Scenario {
            name: "storm events".to_owned(),
            concurrency: settings.sockets,
            seconds: sending_seconds,
            operations: tally.events.len(),
            errors: storm.send_errors,
            per_second: tally.events.len() as f64 / sending_seconds,
            ratio: tally.events.len() as f64 / sending_seconds / ceiling,
            latency: Latency::from_micros(&tally.events),
            lost: Some(storm.lost),
            duplicated: Some(storm.duplicated),
            platform_requests: None,
            share_of_reference: None,
            cpu: None,
            slowest_redis: None,
        },
    ];
    Ok((rows, tally.storm))
}

/// The storm's figures, with the latencies behind its rows.
#[derive(Debug)]
struct Tally {
    storm: Storm,
    /// From letting the sockets back to each one's `authenticated`, µs.
    reconnects: Histogram<u64>,
    /// From each send to its first arrival, µs.
    events: Histogram<u64>,
}

/// Holds what was sent against what every socket received.
/// Times are from `storm_at`, when every socket was told to drop; the reconnect latencies from
/// `reconnect_at`, when they were let back.
fn tally(
    sent: &HashMap<String, Sent>,
    logs: &[SocketLog],
    storm_at: Instant,
    reconnect_at: Instant,
) -> Result<Tally, String> {
    let histogram = || Histogram::<u64>::new(3).map_err(|e| e.to_string());
    let (mut reconnects, mut events) = (histogram()?, histogram()?);
    let mut storm = Storm { sockets: logs.len(), sent: sent.len() as u64, ..Storm::default() };
    let user = |index: usize| SOCKET_USERS_FROM + index as u64;
    let micros = |from: Instant, to: Instant| to.saturating_duration_since(from).as_micros() as u64;

    // Every message sent, against its recipient's socket.
    let mut by_time: Vec<(&String, &Sent)> = sent.iter().collect();
    by_time.sort_by_key(|(_, sent)| sent.seq);
    for (id, message) in by_time {
        let Some(log) = logs.get(message.socket) else { continue };
        match log.arrivals.iter().find(|arrival| &arrival.id == id) {
            Some(arrival) => {
                storm.delivered += 1;
                events.record(micros(message.at, arrival.at)).map_err(|e| e.to_string())?;
            }
            None if log.told_to_reload() => storm.left_to_rest += 1,
            None => {
                storm.lost += 1;
                if storm.examples.len() < EXAMPLES {
                    storm.examples.push(format!(
                        "lost: message {id} (\"storm {}\") sent to user {} at {:+.3} s from the storm; {}",
                        message.seq,
                        user(message.socket),
                        seconds(message.at, storm_at),
                        log.describe(user(message.socket), storm_at)
                    ));
                }
            }
        }
    }

    let mut duplicate_examples = 0;
    let (mut last_back, mut last_drop) = (0.0_f64, 0.0_f64);
    let mut violations: BTreeMap<&str, (u64, usize, &str)> = BTreeMap::new();
    for log in logs {
        for (id, count) in &log.received {
            match sent.get(id) {
                Some(message) if message.socket == log.index => {}
                _ => storm.unexpected += 1,
            }
            if *count > 1 {
                storm.duplicated += u64::from(count - 1);
                if duplicate_examples < EXAMPLES {
                    duplicate_examples += 1;
                    let seq = sent.get(id).map_or("?".to_owned(), |message| message.seq.to_string());
                    storm.examples.push(format!(
                        "duplicated: message {id} (\"storm {seq}\") arrived {count} times; {}",
                        log.describe(user(log.index), storm_at)
                    ));
                }
            }
        }
        storm.failed_attempts += log.failed_attempts;
        storm.server_closes += log.server_closes;
        storm.protocol_violations += log.violations.len() as u64;
        for (what, frame) in &log.violations {
            let seen = violations.entry(what.as_str()).or_insert((0, log.index, frame.as_str()));
            seen.0 += 1;
        }
        storm.recovered_false +=
            log.sessions.iter().filter(|s| s.since.is_some() && s.recovered == Some(false)).count() as u64;
        storm.position_mismatches +=
            log.sessions.iter().filter(|session| session.position_kept == Some(false)).count() as u64;
        if let Some(dropped) = log.dropped_at {
            last_drop = last_drop.max(seconds(dropped, storm_at));
        }
        let Some(session) = log.storm_session() else { continue };
        storm.sockets_back += 1;
        reconnects.record(micros(reconnect_at, session.authenticated_at)).map_err(|e| e.to_string())?;
        let back = seconds(session.authenticated_at, storm_at);
        last_back = last_back.max(back);
        storm.missed_replayed += if session.recovered == Some(true) { session.missed.unwrap_or(0) } else { 0 };
        if session.replay_left > 0 {
            storm.incomplete_replays += 1;
        }
        if let Some(done) = session.replay_done_at {
            let after = seconds(done, storm_at);
            storm.last_missed_seconds = Some(storm.last_missed_seconds.map_or(after, |last: f64| last.max(after)));
        }
    }
    for (what, (count, index, frame)) in violations {
        storm.examples.push(format!("contract: {what}, {count} time(s), first to user {}: {frame}", user(index)));
    }
    if storm.sockets_back == storm.sockets && storm.sockets > 0 {
        storm.all_live_seconds = Some(last_back);
    }
    storm.all_dropped_seconds = last_drop;
    storm.reconnect_from_seconds = seconds(reconnect_at, storm_at);
    Ok(Tally { storm, reconnects, events })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticated(position: &str, resume: Option<(bool, u64)>) -> String {
        let resume = resume
            .map_or(String::new(), |(recovered, missed)| format!(r#","recovered":{recovered},"missed":{missed}"#));
        format!(r#"{{"event":"authenticated","data":{{"user":700000,"position":"{position}"{resume}}}}}"#)
    }

    fn message(id: &str, position: &str) -> String {
        format!(
            r#"{{"event":"new-message","data":{{"id":"{id}","author":410000,"type":"text","text":"storm 1","chat":{{"type":"user","id":410000}},"position":"{position}"}}}}"#
        )
    }

    const PRESENCE: &str = r#"{"event":"presence","data":{"user":410000,"status":"active"}}"#;

    #[test]
    fn frames_are_read_for_what_the_storm_needs() {
        assert_eq!(
            Frame::parse(&authenticated("e-3", Some((true, 2)))),
            Frame::Authenticated { position: Some("e-3".to_owned()), recovered: Some(true), missed: Some(2) }
        );
        assert_eq!(
            Frame::parse(&message("m1", "e-4")),
            Frame::Durable {
                event: "new-message".to_owned(),
                id: Some("m1".to_owned()),
                position: Some("e-4".to_owned())
            }
        );
        assert_eq!(
            Frame::parse(r#"{"event":"message-deleted","data":{"id":"m1","position":"e-5"}}"#),
            Frame::Durable { event: "message-deleted".to_owned(), id: None, position: Some("e-5".to_owned()) }
        );
        assert_eq!(Frame::parse(PRESENCE), Frame::Other);
        assert_eq!(Frame::parse("not json"), Frame::Other);
    }

    #[test]
    fn a_client_resumes_from_the_last_position_and_counts_the_replay() {
        let zero = Instant::now();
        let mut log = SocketLog::new(0);
        log.authenticated(&authenticated("e-0", None), zero, None, false);
        assert_eq!(log.position.as_deref(), Some("e-0"));
        assert!(log.frame(&message("m1", "e-1"), zero));
        assert!(!log.frame(PRESENCE, zero));
        assert_eq!(log.position.as_deref(), Some("e-1"));

        // Back after the storm: two missed events, presence among them, then live ones.
        log.dropped_at = Some(zero);
        let since = log.position.clone();
        log.authenticated(&authenticated("e-3", Some((true, 2))), zero, since, true);
        assert_eq!(log.position.as_deref(), Some("e-1"), "the replay moves the position, not the answer");
        assert!(log.frame(&message("m2", "e-2"), zero));
        assert!(!log.frame(PRESENCE, zero));
        let replay_end = zero + Duration::from_millis(5);
        assert!(log.frame(&message("m3", "e-3"), replay_end));
        assert!(log.frame(&message("m4", "e-4"), replay_end + Duration::from_millis(1)));
        assert!(!log.frame(&message("m4", "e-4"), replay_end), "a second arrival is not a first");

        let session = log.storm_session().expect("the storm session");
        assert_eq!((session.replay_left, session.replay_done_at), (0, Some(replay_end)));
        assert_eq!(session.position_kept, Some(true));
        let replayed: Vec<bool> = log.arrivals.iter().map(|arrival| arrival.replayed).collect();
        assert_eq!(replayed, [false, true, true, false, false]);
        assert_eq!(log.received["m4"], 2);
        assert!(log.violations.is_empty(), "{:?}", log.violations);
        log.frame(&message("m5", "e-4"), replay_end);
        assert_eq!(log.violations.len(), 1);
        assert_eq!(log.violations[0].0, "two different durable events with one position");
    }

    #[test]
    fn what_breaks_the_contract_is_noted() {
        let zero = Instant::now();
        let mut log = SocketLog::new(0);
        // A server that knows nothing of positions.
        log.authenticated(r#"{"event":"authenticated","data":{"user":700000}}"#, zero, None, false);
        log.frame(r#"{"event":"new-message","data":{"id":"m1"}}"#, zero);
        log.authenticated(r#"{"event":"authenticated","data":{"user":700000}}"#, zero, Some("e-1".to_owned()), true);
        assert_eq!(log.violations.len(), 4, "{:?}", log.violations);
        assert_eq!(log.violations[3].0, "`authenticated` after `since` without `recovered`");
    }

    #[test]
    fn a_recovered_false_answer_starts_afresh_from_the_answer() {
        let zero = Instant::now();
        let mut log = SocketLog::new(0);
        log.authenticated(&authenticated("e-0", None), zero, None, false);
        log.authenticated(&authenticated("f-9", Some((false, 0))), zero, Some("e-0".to_owned()), true);
        assert_eq!(log.position.as_deref(), Some("f-9"));
        assert!(log.told_to_reload());
        assert_eq!(log.storm_session().map(|session| session.replay_left), Some(0));
    }

    #[test]
    fn the_tally_counts_lost_duplicated_and_unexpected() {
        let zero = Instant::now();
        let later = |ms| zero + Duration::from_millis(ms);
        let sent: HashMap<String, Sent> = [
            ("m1", 0, 1), // delivered before the storm
            ("m2", 0, 2), // replayed
            ("m3", 0, 3), // lost
            ("m4", 1, 4), // delivered twice
            ("m5", 2, 5), // socket 2 was told to reload
        ]
        .into_iter()
        .map(|(id, socket, seq)| (id.to_owned(), Sent { socket, seq, at: later(seq) }))
        .collect();

        let mut first = SocketLog::new(0);
        first.authenticated(&authenticated("e-0", None), zero, None, false);
        first.frame(&message("m1", "e-1"), later(10));
        first.dropped_at = Some(later(100));
        first.authenticated(&authenticated("e-2", Some((true, 1))), later(300), Some("e-1".to_owned()), true);
        first.frame(&message("m2", "e-2"), later(310));
        first.frame(&message("stranger", "e-3"), later(320));

        let mut second = SocketLog::new(1);
        second.authenticated(&authenticated("e-0", None), zero, None, false);
        second.frame(&message("m4", "e-1"), later(20));
        second.dropped_at = Some(later(100));
        second.authenticated(&authenticated("e-1", Some((true, 0))), later(200), Some("e-1".to_owned()), true);
        second.frame(&message("m4", "e-1"), later(210));

        let mut third = SocketLog::new(2);
        third.authenticated(&authenticated("e-0", None), zero, None, false);
        third.dropped_at = Some(later(100));
        third.authenticated(&authenticated("f-1", Some((false, 0))), later(250), Some("e-0".to_owned()), true);

        let tally = tally(&sent, &[first, second, third], later(100), later(150)).expect("a tally");
        let storm = &tally.storm;
        assert_eq!((storm.sent, storm.delivered, storm.lost, storm.duplicated), (5, 3, 1, 1));
        assert_eq!((storm.unexpected, storm.left_to_rest, storm.recovered_false), (1, 1, 1));
        assert_eq!((storm.sockets_back, storm.missed_replayed, storm.incomplete_replays), (3, 1, 0));
        assert_eq!((storm.all_dropped_seconds, storm.all_live_seconds), (0.0, Some(0.2)));
        assert_eq!(storm.reconnect_from_seconds, 0.05);
        assert_eq!(tally.reconnects.max() / 1000, 150, "ms from being let back at 150 to the last back at 300");
        assert_eq!(storm.last_missed_seconds, Some(0.21));
        assert_eq!(storm.position_mismatches, 0);
        assert_eq!(tally.reconnects.len(), 3);
        assert_eq!(tally.events.len(), 3);
        assert!(
            storm.examples[0].starts_with("lost: message m3 (\"storm 3\") sent to user 700000"),
            "{:?}",
            storm.examples
        );
        assert!(storm.examples[1].starts_with("duplicated: message m4"), "{:?}", storm.examples);
    }
}
