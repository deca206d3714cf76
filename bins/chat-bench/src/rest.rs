//! REST scenarios: sends, history pages, inbox pages and reads at a fixed concurrency for a fixed
//! time, each task on its own keep-alive connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use indicatif::ProgressBar;

use crate::cpu::{self, Pids};
use crate::http::Connection;
use crate::report::{Latency, Scenario};
use crate::shards::{ShardRow, Shards, Usage};
use crate::slowlog::{SlowLog, Slowest};
use crate::tokens::token;

/// Chats with history, and inboxes with entries, prepared before the read scenarios.
const HISTORY_PAIRS: u64 = 64;
const INBOX_OWNERS: u64 = 64;
/// Enough messages / chats to fill a 10-entry page.
const PER_CHAT: u64 = 12;

/// Which request a scenario repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rest {
    /// `POST /api/user/{id}`.
    Send,
    /// `GET /api/user/{id}?per_page=10`.
    History,
    /// `GET /api/list?per_page=10`.
    Inbox,
    /// `POST /api/user/{id}/read` with `{}`, each right after the other side sent a message there
    /// (the send is not timed), so that every read moves the position and announces it.
    Read,
}

impl Rest {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::History => "history page (10)",
            Self::Inbox => "inbox page (10)",
            Self::Read => "read (after a send)",
        }
    }
}

/// Fills the chats and inboxes the read scenarios page through.
pub(crate) async fn seed(port: u16) -> Result<(), String> {
    let mut jobs = Vec::new();
    for pair in 0..HISTORY_PAIRS {
        for _ in 0..PER_CHAT {
            jobs.push((1_000 + pair, 2_000 + pair));
        }
    }
    for owner in 0..INBOX_OWNERS {
        for sender in 0..PER_CHAT {
            jobs.push((10_000 + owner * PER_CHAT + sender, 3_000 + owner));
        }
    }
    let jobs = Arc::new(std::sync::Mutex::new(jobs));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let jobs = jobs.clone();
        tasks.push(tokio::spawn(async move {
            let mut connection = Connection::open(port).await?;
            loop {
                let job = jobs.lock().map_err(|_| "poisoned".to_owned())?.pop();
                let Some((from, to)) = job else { return Ok::<(), String>(()) };
                let body = Bytes::from_static(br#"{"type":"text","text":"seeded message"}"#);
                let reply = connection.post(&format!("/api/user/{to}"), &token(from), body).await?;
                if reply.status != 201 {
                    return Err(format!("seeding failed: {} {}", reply.status, String::from_utf8_lossy(&reply.body)));
                }
            }
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// One measured stretch of a scenario against one server: its latencies, failures, length and
/// the CPU each process used meanwhile. Stretches of one scenario and server add up.
#[derive(Debug)]
pub(crate) struct Stretch {
    histogram: Histogram<u64>,
    errors: u64,
    seconds: f64,
    cpu: cpu::Sample,
    slowest: Option<Slowest>,
    /// On a cluster: what each primary did.
    shards: Option<Usage>,
}

impl Stretch {
    /// Nothing measured yet, to add stretches to.
    pub(crate) fn new() -> Result<Self, String> {
        let histogram = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
        Ok(Self { histogram, errors: 0, seconds: 0.0, cpu: cpu::Sample::default(), slowest: None, shards: None })
    }

    /// Adds `other`, measured later on the same server.
    pub(crate) fn add(&mut self, other: Stretch) -> Result<(), String> {
        self.histogram.add(other.histogram).map_err(|e| e.to_string())?;
        self.errors += other.errors;
        self.seconds += other.seconds;
        self.cpu.add(other.cpu);
        self.slowest = Slowest::max(self.slowest.take(), other.slowest);
        if let Some(theirs) = other.shards {
            self.shards.get_or_insert_with(Usage::default).add(&theirs);
        }
        Ok(())
    }

    /// On a cluster: each primary's figures per operation.
    pub(crate) fn shard_rows(&self) -> Option<Vec<ShardRow>> {
        self.shards.as_ref().map(|usage| usage.rows(self.histogram.len()))
    }

    /// The row of the table.
    pub(crate) fn scenario(&self, kind: Rest, concurrency: usize, ceiling: f64) -> Scenario {
        let per_second = self.histogram.len() as f64 / self.seconds;
        Scenario {
            name: kind.name().to_owned(),
            concurrency,
            seconds: self.seconds,
            operations: self.histogram.len(),
            errors: self.errors,
            per_second,
            ratio: per_second / ceiling,
            latency: Latency::from_micros(&self.histogram),
            lost: None,
            duplicated: None,
            platform_requests: None,
            share_of_reference: None,
            cpu: self.cpu.per_operation(self.histogram.len()),
            slowest_redis: Some(crate::slowlog::Reading::new(self.slowest.clone())),
        }
    }
}

/// What a stretch reads beside its latencies: the CPU of `pids`, Redis's slowest call and, on a
/// cluster, each primary's own figures.
pub(crate) struct Probes<'a> {
    pub(crate) pids: &'a Pids,
    pub(crate) slowlog: &'a mut SlowLog,
    pub(crate) shards: Option<&'a mut Shards>,
}

/// Runs `kind` against the servers on `ports` (connection `i` to `ports[i % ports.len()]`) with
/// `concurrency` connections for `duration`, after a second of warm-up; the `probes` are read over
/// the measured time.
pub(crate) async fn run(
    ports: &[u16],
    probes: &mut Probes<'_>,
    kind: Rest,
    concurrency: usize,
    duration: Duration,
    progress: &ProgressBar,
) -> Result<Stretch, String> {
    let warm_until = Instant::now() + Duration::from_secs(1);
    let end = warm_until + duration;
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let errors = errors.clone();
        let progress = progress.clone();
        let port = ports[task % ports.len()];
        tasks.push(tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
            let mut connection = Connection::open(port).await?;
            let mut rng = fastrand::Rng::with_seed(task as u64);
            let send_body = Bytes::from_static(br#"{"type":"text","text":"benchmark message"}"#);
            loop {
                let started = Instant::now();
                if started >= end {
                    return Ok::<_, String>(histogram);
                }
                let reply = match kind {
                    Rest::Send => {
                        let from = rng.u64(1..=1_000);
                        connection.post(&format!("/api/user/{}", from + 100_000), &token(from), send_body.clone()).await
                    }
                    Rest::History => {
                        let pair = rng.u64(0..HISTORY_PAIRS);
                        connection.get(&format!("/api/user/{}?per_page=10", 2_000 + pair), &token(1_000 + pair)).await
                    }
                    Rest::Inbox => {
                        let owner = rng.u64(0..INBOX_OWNERS);
                        connection.get("/api/list?per_page=10", &token(3_000 + owner)).await
                    }
                    Rest::Read => {
                        // Each task its own chat, so that every read has a new message to read.
                        let (reader, writer) = (200_000 + task as u64, 300_000 + task as u64);
                        let sent =
                            connection.post(&format!("/api/user/{reader}"), &token(writer), send_body.clone()).await;
                        if !matches!(&sent, Ok(reply) if reply.status == 201) {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                        let started = Instant::now();
                        let reply = connection
                            .post(&format!("/api/user/{writer}/read"), &token(reader), Bytes::from_static(b"{}"))
                            .await;
                        if started >= warm_until {
                            histogram.record(started.elapsed().as_micros() as u64).map_err(|e| e.to_string())?;
                            progress.inc(1);
                            if !matches!(&reply, Ok(reply) if reply.status == 200) {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        if reply.is_err() {
                            connection = Connection::open(port).await?;
                        }
                        continue;
                    }
                };
                let ok = matches!(&reply, Ok(reply) if reply.status < 300);
                if started < warm_until {
                    continue;
                }
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                    if reply.is_err() {
                        connection = Connection::open(port).await?;
                    }
                }
                histogram.record(started.elapsed().as_micros() as u64).map_err(|e| e.to_string())?;
                progress.inc(1);
            }
        }));
    }
    tokio::time::sleep_until(warm_until.into()).await;
    probes.slowlog.reset().await?;
    if let Some(shards) = probes.shards.as_deref_mut() {
        shards.start().await?;
    }
    let started = cpu::Sample::now(probes.pids);
    let mut histogram = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
    for task in tasks {
        histogram.add(task.await.map_err(|e| e.to_string())??).map_err(|e| e.to_string())?;
    }
    let cpu = cpu::Sample::now(probes.pids).since(started);
    let shards = match probes.shards.as_deref_mut() {
        Some(shards) => Some(shards.stop().await?),
        None => None,
    };
    let slowest = probes.slowlog.slowest().await?;
    let errors = errors.load(Ordering::Relaxed);
    Ok(Stretch { histogram, errors, seconds: duration.as_secs_f64(), cpu, slowest, shards })
}
