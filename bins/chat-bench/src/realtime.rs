//! Realtime scenarios: many idle WebSocket users spread over one or two chatd instances (the
//! connection-scale figures come from opening them), on either door — `/ws` or Socket.IO over a
//! WebSocket — then senders posting at a fixed rate while every recipient socket times each event
//! from its POST to its arrival.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt, stream};
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::http::Connection;
use crate::report::{Latency, Scenario};
use crate::tokens::token;

/// Socket users are numbered from here; senders from `SENDERS_FROM`.
const SOCKET_USERS_FROM: u64 = 500_000;
const SENDERS_FROM: u64 = 400_000;

/// Every event sent: when, and whether its recipient is on another instance than the sender's.
#[derive(Debug, Default)]
struct Tracker {
    sent: Mutex<HashMap<u64, (Instant, bool)>>,
    arrivals: Mutex<HashMap<u64, u32>>,
    same: Mutex<Option<Histogram<u64>>>,
    across: Mutex<Option<Histogram<u64>>>,
    /// Per instance: the events accepted (201) for a recipient whose socket is on it.
    needed: Vec<AtomicU64>,
}

impl Tracker {
    fn arrived(&self, seq: u64, at: Instant) {
        let Some((sent_at, across)) = self.sent.lock().ok().and_then(|sent| sent.get(&seq).copied()) else { return };
        let count = {
            let Ok(mut arrivals) = self.arrivals.lock() else { return };
            let count = arrivals.entry(seq).or_default();
            *count += 1;
            *count
        };
        if count > 1 {
            return;
        }
        let histogram = if across { &self.across } else { &self.same };
        if let Ok(mut histogram) = histogram.lock()
            && let Some(histogram) = histogram.as_mut()
        {
            histogram.record(at.duration_since(sent_at).as_micros() as u64).ok();
        }
    }
}

/// What opening the sockets cost.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) seconds: f64,
    sockets: Vec<tokio::task::JoinHandle<()>>,
    tracker: Arc<Tracker>,
    instances: Vec<u16>,
    door: Door,
}

impl Opened {
    /// The ports of the instances the sockets are spread over.
    pub(crate) fn instances(&self) -> &[u16] {
        &self.instances
    }

    /// Per instance: the sockets on it, and the events sent so far (answered 201) whose recipient's
    /// socket is on it — the deliveries its connections need.
    pub(crate) fn needed(&self) -> Vec<(usize, u64)> {
        let (count, instances) = (self.sockets.len(), self.instances.len());
        self.tracker
            .needed
            .iter()
            .enumerate()
            .map(|(at, needed)| {
                (count / instances + usize::from(at < count % instances), needed.load(Ordering::Relaxed))
            })
            .collect()
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        for socket in &self.sockets {
            socket.abort();
        }
    }
}

/// A `/ws` connection of the benchmark's.
pub(crate) type Socket = WebSocketStream<TcpStream>;

/// The door the realtime scenario's sockets come in by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Door {
    /// `/ws`: plain JSON frames, the token in the query.
    Ws,
    /// `/socket.io/` (Engine.IO v4, WebSocket transport from the start), the token in the CONNECT
    /// packet's `auth` — as socket.io-client v4 with `transports: ["websocket"]` does.
    SocketIo,
}

impl Door {
    /// How the door is named in the table's rows.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Ws => "/ws",
            Self::SocketIo => "socket.io",
        }
    }
}

/// Opens a Socket.IO connection on `port` as `user` and waits for its `authenticated` event (which
/// the Node reference server sends too): returns the socket and that packet.
pub(crate) async fn connect_socketio(port: u16, user: u64) -> Result<(Socket, String), String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).ok();
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    let (mut socket, _) = tokio_tungstenite::client_async(url, stream).await.map_err(|e| e.to_string())?;
    let connect = format!(r#"40{{"token":"{}"}}"#, token(user));
    socket.send(Message::Text(connect.into())).await.map_err(|e| e.to_string())?;
    // The Engine.IO open packet, the Socket.IO CONNECT answer, then the event.
    while let Some(frame) = socket.next().await {
        let Message::Text(text) = frame.map_err(|e| e.to_string())? else { continue };
        if text.starts_with(r#"42["authenticated""#) {
            return Ok((socket, text.as_str().to_owned()));
        }
        if text.starts_with("44") || text.starts_with(r#"42["unauthorized""#) {
            return Err(format!("user {user} was not authenticated: {text}"));
        }
    }
    Err(format!("user {user}'s Socket.IO connection closed before it was authenticated"))
}

/// Opens `/ws` on `port` as `user`, resuming `since` a position when one is given, and waits for
/// the first frame, which must be `authenticated`: returns the socket and that frame's text.
pub(crate) async fn connect(port: u16, user: u64, since: Option<&str>) -> Result<(Socket, String), String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).ok();
    let mut url = format!("ws://127.0.0.1:{port}/ws?token={}", token(user));
    if let Some(since) = since {
        url.push_str("&since=");
        url.push_str(&query_encoded(since));
    }
    let (mut socket, _) = tokio_tungstenite::client_async(url, stream).await.map_err(|e| e.to_string())?;
    // Open means authenticated.
    match socket.next().await {
        Some(Ok(Message::Text(text))) if text.contains("\"authenticated\"") => Ok((socket, text.as_str().to_owned())),
        other => Err(format!("user {user} was not authenticated: {other:?}")),
    }
}

/// `text` as a URL query value: positions are opaque, so anything but the unreserved characters
/// is percent-encoded.
fn query_encoded(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Opens `count` authenticated sockets, 256 handshakes at a time, user `first_user + i` on instance
/// `i % instances.len()`, and hands each to `opened` with its index and its `authenticated` frame.
/// Returns the seconds it took.
pub(crate) async fn open_each(
    instances: &[u16],
    door: Door,
    first_user: u64,
    count: usize,
    progress: &ProgressBar,
    mut opened: impl FnMut(usize, Socket, String),
) -> Result<f64, String> {
    let started = Instant::now();
    let connects = (0..count).map(|index| {
        let (port, user) = (instances[index % instances.len()], first_user + index as u64);
        async move {
            let connected = match door {
                Door::Ws => connect(port, user, None).await,
                Door::SocketIo => connect_socketio(port, user).await,
            };
            connected.map(|(socket, text)| (index, socket, text))
        }
    });
    let mut connecting = stream::iter(connects).buffer_unordered(256);
    while let Some(socket) = connecting.next().await {
        let (index, socket, authenticated) = socket?;
        opened(index, socket, authenticated);
        progress.inc(1);
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Opens `count` authenticated sockets by `door`, user i on instance `i % instances.len()`, each
/// then reading events into the tracker (and answering Engine.IO's pings).
pub(crate) async fn open(
    instances: &[u16],
    door: Door,
    count: usize,
    progress: &ProgressBar,
) -> Result<Opened, String> {
    let tracker = Arc::new(Tracker {
        same: Mutex::new(Some(Histogram::new(3).map_err(|e| e.to_string())?)),
        across: Mutex::new(Some(Histogram::new(3).map_err(|e| e.to_string())?)),
        needed: instances.iter().map(|_| AtomicU64::new(0)).collect(),
        ..Tracker::default()
    });
    let mut sockets = Vec::with_capacity(count);
    let seconds = open_each(instances, door, SOCKET_USERS_FROM, count, progress, |_, mut socket, _| {
        let tracker = tracker.clone();
        sockets.push(tokio::spawn(async move {
            while let Some(Ok(message)) = socket.next().await {
                let Message::Text(text) = message else { continue };
                let at = Instant::now();
                if door == Door::SocketIo && text.as_str() == "2" {
                    if socket.send(Message::Text("3".into())).await.is_err() {
                        return;
                    }
                    continue;
                }
                // `…"text":"rt <seq>"…`: no need to parse the whole frame.
                if let Some(seq) = text.split("\"rt ").nth(1).and_then(|rest| rest.split('"').next()?.parse().ok()) {
                    tracker.arrived(seq, at);
                }
            }
        }));
    })
    .await?;
    Ok(Opened { seconds, sockets, tracker, instances: instances.to_vec(), door })
}

/// Posts `rate` events per second for `duration` through the first instance, to random socket
/// users, then waits for the stragglers. Returns the same-instance and (with two instances) the
/// cross-instance figures.
pub(crate) async fn run(
    opened: &Opened,
    rate: u64,
    duration: Duration,
    ceiling: f64,
    progress: &ProgressBar,
) -> Result<Vec<Scenario>, String> {
    let senders = 32_u64;
    let port = opened.instances[0];
    let sockets = opened.sockets.len() as u64;
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + duration;
    let mut tasks = Vec::new();
    for sender in 0..senders {
        let (tracker, next, errors, progress) =
            (opened.tracker.clone(), next.clone(), errors.clone(), progress.clone());
        let instances = opened.instances.len() as u64;
        tasks.push(tokio::spawn(async move {
            let mut connection = Connection::open(port).await?;
            let mut rng = fastrand::Rng::with_seed(sender);
            let mut tick = tokio::time::interval(Duration::from_secs_f64(senders as f64 / rate as f64));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            while Instant::now() < end {
                tick.tick().await;
                let seq = next.fetch_add(1, Ordering::Relaxed);
                let index = rng.u64(0..sockets);
                let across = !index.is_multiple_of(instances);
                if let Ok(mut sent) = tracker.sent.lock() {
                    sent.insert(seq, (Instant::now(), across));
                }
                let body = Bytes::from(format!(r#"{{"type":"text","text":"rt {seq}"}}"#));
                let path = format!("/api/user/{}", SOCKET_USERS_FROM + index);
                match connection.post(&path, &token(SENDERS_FROM + sender), body).await {
                    Ok(reply) if reply.status == 201 => {
                        if let Some(needed) = tracker.needed.get((index % instances) as usize) {
                            needed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                progress.inc(1);
            }
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    // Wait for the last events (or give up on them: they count as lost).
    let sent = next.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let arrived = opened.tracker.arrivals.lock().map(|a| a.len() as u64).unwrap_or(0);
        if arrived >= sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (lost, duplicated) = {
        let arrivals = opened.tracker.arrivals.lock().map_err(|_| "poisoned")?;
        let lost = sent - arrivals.len() as u64;
        let duplicated = arrivals.values().map(|n| u64::from(n.saturating_sub(1))).sum();
        (lost, duplicated)
    };
    let seconds = duration.as_secs_f64();
    let mut scenarios = Vec::new();
    for (name, histogram) in
        [("realtime same instance", &opened.tracker.same), ("realtime across instances", &opened.tracker.across)]
    {
        let Some(histogram) = histogram.lock().map_err(|_| "poisoned")?.take() else { continue };
        if histogram.is_empty() {
            continue;
        }
        let name = match opened.door {
            Door::Ws => name.to_owned(),
            door => format!("{name} ({})", door.label()),
        };
        scenarios.push(Scenario {
            name,
            concurrency: opened.sockets.len(),
            seconds,
            operations: histogram.len(),
            errors: errors.load(Ordering::Relaxed),
            per_second: histogram.len() as f64 / seconds,
            ratio: histogram.len() as f64 / seconds / ceiling,
            latency: Latency::from_micros(&histogram),
            lost: Some(lost),
            duplicated: Some(duplicated),
            platform_requests: None,
            share_of_reference: None,
            cpu: None,
            slowest_redis: None,
        });
    }
    Ok(scenarios)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_goes_into_the_query_as_it_is_or_percent_encoded() {
        assert_eq!(query_encoded("17-42"), "17-42");
        assert_eq!(query_encoded("a b/c+d=é"), "a%20b%2Fc%2Bd%3D%C3%A9");
    }
}
