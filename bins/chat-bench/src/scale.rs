//! The scale scenario (`--only scale`): how the cost of one operation grows with data the caller
//! does not see. A DM of a few messages and one of `--scale-messages` (written straight into
//! Redis in the original service's layout, then indexed by chatd on first use), and an inbox of a
//! few chats and one of `--scale-chats`; on each, one keep-alive client times the same operations
//! one after the other, and the table gives each one's p50/p99 at both sizes and their ratio.

use std::time::Instant;

use bytes::Bytes;
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use redis::aio::MultiplexedConnection;
use serde::Serialize;

use crate::http::Connection;
use crate::realtime;
use crate::tokens::token;

/// Entries per seeding pipeline.
const SEED_BATCH: u64 = 10_000;

/// One operation at both sizes.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Growth {
    pub(crate) operation: String,
    pub(crate) small: u64,
    pub(crate) large: u64,
    pub(crate) small_p50_ms: f64,
    pub(crate) small_p99_ms: f64,
    pub(crate) large_p50_ms: f64,
    pub(crate) large_p99_ms: f64,
}

/// What the scenario measured, and the one-time indexing of the large chat.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Scale {
    pub(crate) rows: Vec<Growth>,
    /// Seconds the first request to the large chat took (it indexes the original's entries).
    pub(crate) index_large_seconds: f64,
}

impl Scale {
    /// The growth table.
    pub(crate) fn lines(&self) -> String {
        let mut out = format!(
            "\nscale: one client, operations one at a time (the large chat indexed once first, in {:.1} s)\n",
            self.index_large_seconds
        );
        out.push_str(&format!(
            "{:<34} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}   {}\n",
            "operation", "small", "p50 ms", "p99 ms", "large", "p50 ms", "p99 ms", "p50 large/small"
        ));
        for row in &self.rows {
            out.push_str(&format!(
                "{:<34} {:>9} {:>9.2} {:>9.2} {:>9} {:>9.2} {:>7.2}   {:.1}x\n",
                row.operation,
                row.small,
                row.small_p50_ms,
                row.small_p99_ms,
                row.large,
                row.large_p50_ms,
                row.large_p99_ms,
                row.large_p50_ms / row.small_p50_ms.max(0.001)
            ));
        }
        out
    }
}

/// Sizes and samples.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) messages: u64,
    pub(crate) chats: u64,
    pub(crate) small: u64,
    pub(crate) samples: usize,
}

/// The id of message `k` of chat `tag`.
fn message_id(tag: u64, k: u64) -> String {
    format!("{tag:08x}-0000-4000-8000-{k:012x}")
}

/// Writes a DM between `a` and `b` of `n` messages in the original's layout (list and data hash,
/// both inboxes), message k by `a` when k is even.
async fn seed_chat(redis: &mut MultiplexedConnection, a: u64, b: u64, n: u64, tag: u64) -> Result<(), String> {
    let base = "bench:messages:myplatform";
    let chat = format!("{base}:dm:{}-{}", a.min(b), a.max(b));
    let mut k = 0;
    while k < n {
        let mut pipe = redis::pipe();
        for k in k..(k + SEED_BATCH).min(n) {
            let id = message_id(tag, k);
            let author = if k % 2 == 0 { a } else { b };
            let json = format!(
                r#"{{"id":"{id}","author":{author},"timestamp":"2026-11-25T13:29:54.837Z","type":"text","text":"message {k}"}}"#
            );
            pipe.rpush(&chat, &id).ignore().hset(format!("{chat}:data"), &id, json).ignore();
        }
        pipe.query_async::<()>(redis).await.map_err(|e| e.to_string())?;
        k += SEED_BATCH;
    }
    let score = 1_795_613_394_837_i64;
    let mut pipe = redis::pipe();
    pipe.zadd(format!("{base}:inbox:{a}"), format!("user-{b}"), score)
        .ignore()
        .zadd(format!("{base}:inbox:{b}"), format!("user-{a}"), score)
        .ignore();
    pipe.query_async::<()>(redis).await.map_err(|e| e.to_string())
}

/// Writes an inbox of `n` direct chats for `owner`: the entries and each chat's latest message
/// (the chats' lists stay empty).
async fn seed_inbox(redis: &mut MultiplexedConnection, owner: u64, n: u64) -> Result<(), String> {
    let key = format!("bench:messages:myplatform:inbox:{owner}");
    let latest = "bench:messages:myplatform:latest";
    let mut k = 0;
    while k < n {
        let mut pipe = redis::pipe();
        for k in k..(k + SEED_BATCH).min(n) {
            let other = 5_000_000 + k;
            let id = message_id(0xaa00, k);
            let json = format!(
                r#"{{"id":"{id}","author":{other},"timestamp":"2026-11-25T13:29:54.837Z","type":"text","text":"hello"}}"#
            );
            pipe.zadd(&key, format!("user-{other}"), 1_795_613_394_837_i64 - k as i64)
                .ignore()
                .hset(latest, format!("dm:{}-{}", owner.min(other), owner.max(other)), json)
                .ignore();
        }
        pipe.query_async::<()>(redis).await.map_err(|e| e.to_string())?;
        k += SEED_BATCH;
    }
    Ok(())
}

fn expect(reply: Result<crate::http::Reply, String>, status: u16, what: &str) -> Result<(), String> {
    match reply {
        Ok(reply) if reply.status == status => Ok(()),
        Ok(reply) => Err(format!("{what}: {} {}", reply.status, String::from_utf8_lossy(&reply.body))),
        Err(error) => Err(format!("{what}: {error}")),
    }
}

/// Timings of one operation, in microseconds.
struct Timings(Histogram<u64>);

impl Timings {
    fn new() -> Result<Self, String> {
        Histogram::new(3).map(Self).map_err(|e| e.to_string())
    }

    fn since(&mut self, started: Instant) -> Result<(), String> {
        self.0.record(started.elapsed().as_micros() as u64).map_err(|e| e.to_string())
    }
}

/// One size's timings in a DM of `n` messages between `a` and `b`, in a fixed order.
async fn measure_chat(
    port: u16,
    a: u64,
    b: u64,
    n: u64,
    tag: u64,
    samples: usize,
) -> Result<Vec<(&'static str, Timings)>, String> {
    let mut client = Connection::open(port).await?;
    let (ta, tb) = (token(a), token(b));
    let (mut page, mut cursor, mut send, mut read, mut edit, mut delete) =
        (Timings::new()?, Timings::new()?, Timings::new()?, Timings::new()?, Timings::new()?, Timings::new()?);
    let middle = message_id(tag, n / 2);
    let body = Bytes::from_static(br#"{"type":"text","text":"scale"}"#);
    // a's messages (even k): the edits from a quarter in, the deletes from three quarters in (the
    // cursor's middle message stays).
    let mine = |from: u64, run: usize| message_id(tag, (from & !1) + 2 * run as u64);
    for run in 0..samples {
        let started = Instant::now();
        expect(client.get(&format!("/api/user/{b}?per_page=10"), &ta).await, 200, "history")?;
        page.since(started)?;
        let started = Instant::now();
        expect(client.get(&format!("/api/user/{b}?before={middle}&per_page=10"), &ta).await, 200, "cursor page")?;
        cursor.since(started)?;
        let started = Instant::now();
        expect(client.post(&format!("/api/user/{a}"), &tb, body.clone()).await, 201, "send")?;
        send.since(started)?;
        // The read moves a's position to the message b just sent.
        let started = Instant::now();
        expect(client.post(&format!("/api/user/{b}/read"), &ta, Bytes::from_static(b"{}")).await, 200, "read")?;
        read.since(started)?;
        let started = Instant::now();
        let edited = Bytes::from_static(br#"{"text":"edited"}"#);
        expect(client.post(&format!("/api/user/{b}/{}", mine(n / 4, run)), &ta, edited).await, 200, "edit")?;
        edit.since(started)?;
        let started = Instant::now();
        expect(client.delete(&format!("/api/user/{b}/{}", mine(3 * n / 4, run)), &ta).await, 200, "delete")?;
        delete.since(started)?;
    }
    Ok(vec![
        ("history page 1", page),
        ("history before the middle", cursor),
        ("send", send),
        ("read (after the other's send)", read),
        ("edit (from a quarter in)", edit),
        ("delete (from three quarters in)", delete),
    ])
}

/// One size's timings for `owner`, whose inbox holds the chats.
async fn measure_inbox(port: u16, owner: u64, samples: usize) -> Result<Vec<(&'static str, Timings)>, String> {
    let mut client = Connection::open(port).await?;
    let owner_token = token(owner);
    let (mut inbox, mut connect) = (Timings::new()?, Timings::new()?);
    for _ in 0..samples {
        let started = Instant::now();
        expect(client.get("/api/list?per_page=10", &owner_token).await, 200, "inbox")?;
        inbox.since(started)?;
        let started = Instant::now();
        let socket = realtime::connect(port, owner, None).await?;
        connect.since(started)?;
        drop(socket);
    }
    Ok(vec![("inbox page 1", inbox), ("open /ws (to authenticated)", connect)])
}

/// Runs the scenario against chatd on `port`, whose Redis is on `redis_port`.
pub(crate) async fn run(
    port: u16,
    redis_port: u16,
    settings: Settings,
    progress: &ProgressBar,
) -> Result<Scale, String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{redis_port}")).map_err(|e| e.to_string())?;
    let mut redis = client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
    let sizes = [(settings.small, settings.chats.min(settings.small)), (settings.messages, settings.chats)];
    let mut measured = Vec::new();
    let mut index_large_seconds = 0.0;
    for (step, (messages, chats)) in sizes.into_iter().enumerate() {
        let step = step as u64;
        let (a, b, owner) = (700_000 + 10 * step, 700_001 + 10 * step, 700_002 + 10 * step);
        progress.set_message(format!("scale: seeding {messages} messages, {chats} chats"));
        seed_chat(&mut redis, a, b, messages, 0xbe00 + step).await?;
        seed_inbox(&mut redis, owner, chats).await?;
        // The first request indexes the original's entries (once), and the first inbox page the
        // owner's inbox; neither is timed with the rest.
        progress.set_message(format!("scale: indexing {messages} messages"));
        let started = Instant::now();
        let mut client = Connection::open(port).await?;
        let first = message_id(0xbe00 + step, messages - 1);
        expect(client.get(&format!("/api/user/{b}?before={first}&per_page=1"), &token(a)).await, 200, "indexing")?;
        if step == 1 {
            index_large_seconds = started.elapsed().as_secs_f64();
        }
        expect(client.get("/api/list?per_page=10", &token(owner)).await, 200, "first inbox page")?;
        progress.set_message(format!("scale: timing at {messages} messages, {chats} chats"));
        let mut rows = measure_chat(port, a, b, messages, 0xbe00 + step, settings.samples).await?;
        rows.extend(measure_inbox(port, owner, settings.samples).await?);
        measured.push((messages, chats, rows));
    }
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let (small, large) = (&measured[0], &measured[1]);
    let rows = small
        .2
        .iter()
        .zip(&large.2)
        .map(|((operation, Timings(s)), (_, Timings(l)))| {
            let by_chats = operation.starts_with("inbox") || operation.starts_with("open");
            Growth {
                operation: (*operation).to_owned(),
                small: if by_chats { small.1 } else { small.0 },
                large: if by_chats { large.1 } else { large.0 },
                small_p50_ms: ms(s, 0.5),
                small_p99_ms: ms(s, 0.99),
                large_p50_ms: ms(l, 0.5),
                large_p99_ms: ms(l, 0.99),
            }
        })
        .collect();
    Ok(Scale { rows, index_large_seconds })
}
