//! The platform directory's profile cache: profiles served from memory, hot ones refreshed in the
//! background before they expire, concurrent lookups of an id sharing one platform request, and
//! the last known profile served through a platform outage for a bounded time.
//!
//! An entry's life, counted from when the platform returned it (`ttl` and `stale_for` are
//! settings):
//!
//! | age | a lookup … |
//! | --- | --- |
//! | under ¾ `ttl` | is answered from the cache |
//! | ¾ `ttl` to `ttl` | is answered from the cache, and the entry is refreshed in the background |
//! | `ttl` to `ttl + stale_for`, the last refresh failed | is answered with it (stale), and a refresh is retried in the background, at most every `retry` |
//! | `ttl` to `ttl + stale_for`, no refresh failed | waits for the platform, and gets the cached profile if the platform fails |
//! | past `ttl + stale_for` | waits for the platform, and gets `{"id": N}` if it fails |
//!
//! So a profile in use is never older than `ttl` while the platform answers, an expiry never
//! makes a lookup of a hot profile wait, and an outage degrades profiles only after `stale_for`.
//! Each id has at most one platform request in flight (a *flight*): a lookup or a refresh that
//! needs an id already asked for waits for that request instead of sending its own, however many
//! wait.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;
use tokio::sync::watch;

use crate::Profile;
use crate::directory::{DirectoryId, degraded_profile};

/// Ids per platform request: keeps URLs well under common server limits (about 8 KB) however
/// many profiles one page of chat needs.
pub(crate) const MAX_IDS_PER_REQUEST: usize = 100;

/// One platform request: the profiles it returned by id number, or why it failed.
pub(crate) type Fetched = Result<HashMap<u64, Profile>, String>;

/// Asks the platform for the profiles of some ids (at most [`MAX_IDS_PER_REQUEST`]).
pub(crate) type Fetch<I> = Arc<dyn Fn(Vec<I>) -> Pin<Box<dyn Future<Output = Fetched> + Send>> + Send + Sync>;

/// How many lookups a profile cache answered, and how, since it was made (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProfileStats {
    /// Requests sent to the platform API.
    pub requests: u64,
    /// Ids answered from the cache without waiting (fresh, or due for a refresh).
    pub hits: u64,
    /// Ids a lookup had to wait for the platform for.
    pub misses: u64,
    /// Ids refreshed (or retried) in the background.
    pub refreshes: u64,
    /// Ids answered with a profile past its TTL because the platform failed.
    pub stale: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    refreshes: AtomicU64,
    stale: AtomicU64,
}

impl Counters {
    fn add(&self, counter: &AtomicU64, metric: &'static str, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
            metrics::counter!(metric).increment(n);
        }
    }
}

/// A cached profile, with when the platform returned it and when a refresh of it last failed.
#[derive(Debug, Clone)]
struct Cached {
    profile: Profile,
    fetched: Instant,
    failed: Option<Instant>,
}

/// Entries leave the cache `ttl + stale_for` after they were fetched, whatever rewrote them since
/// (a failed refresh rewrites one to note the failure).
struct UntilStale(Duration);

impl<I> Expiry<I, Cached> for UntilStale {
    fn expire_after_create(&self, _: &I, value: &Cached, created_at: Instant) -> Option<Duration> {
        Some((value.fetched + self.0).saturating_duration_since(created_at))
    }

    fn expire_after_update(&self, _: &I, value: &Cached, updated_at: Instant, _: Option<Duration>) -> Option<Duration> {
        Some((value.fetched + self.0).saturating_duration_since(updated_at))
    }
}

/// A request in flight: its number (to tell flights apart) and where its outcome will appear
/// (`None` until then; the sender dropped without an outcome means the request task died).
#[derive(Clone)]
struct Flight {
    number: u64,
    outcome: watch::Receiver<Option<Arc<Fetched>>>,
}

/// The profile cache of one collection (users or topics). Cheap to clone: clones share it.
pub(crate) struct ProfileCache<I: DirectoryId> {
    inner: Arc<Inner<I>>,
}

impl<I: DirectoryId> Clone for ProfileCache<I> {
    fn clone(&self) -> Self {
        Self { inner: Arc::clone(&self.inner) }
    }
}

struct Inner<I: DirectoryId> {
    /// `v1/users` or `v1/topics`, for log lines and the request metric.
    kind: &'static str,
    fetch: Fetch<I>,
    entries: Cache<I, Cached>,
    flights: Mutex<HashMap<I, Flight>>,
    next_flight: AtomicU64,
    ttl: Duration,
    refresh_after: Duration,
    retry: Duration,
    counters: Counters,
}

impl<I: DirectoryId> std::fmt::Debug for ProfileCache<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileCache")
            .field("kind", &self.inner.kind)
            .field("cached", &self.inner.entries.entry_count())
            .field("ttl", &self.inner.ttl)
            .finish_non_exhaustive()
    }
}

/// What a lookup does with one id.
enum Plan {
    Answer(Profile),
    AnswerAndRefresh(Profile),
    AnswerStale(Profile, bool),
    Wait(Option<Profile>),
}

impl<I: DirectoryId> ProfileCache<I> {
    /// A cache of at most `capacity` profiles, fetched with `fetch`.
    pub(crate) fn new(kind: &'static str, fetch: Fetch<I>, capacity: u64, ttl: Duration, stale_for: Duration) -> Self {
        let entries = Cache::builder().max_capacity(capacity).expire_after(UntilStale(ttl + stale_for)).build();
        Self {
            inner: Arc::new(Inner {
                kind,
                fetch,
                entries,
                flights: Mutex::new(HashMap::new()),
                next_flight: AtomicU64::new(0),
                ttl,
                refresh_after: ttl * 3 / 4,
                retry: (ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(10)),
                counters: Counters::default(),
            }),
        }
    }

    /// The counts so far.
    pub(crate) fn stats(&self) -> ProfileStats {
        let c = &self.inner.counters;
        ProfileStats {
            requests: c.requests.load(Ordering::Relaxed),
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            refreshes: c.refreshes.load(Ordering::Relaxed),
            stale: c.stale.load(Ordering::Relaxed),
        }
    }

    /// The profiles of `ids`, every one answered (degraded when nothing better is known).
    pub(crate) async fn profiles(&self, ids: &[I]) -> HashMap<I, Profile> {
        let inner = &self.inner;
        // Sorted and de-duplicated: one question per id, in a stable order.
        let wanted: BTreeSet<I> = ids.iter().copied().collect();
        let mut answer = HashMap::with_capacity(wanted.len());
        let (mut wait, mut fallback, mut refresh) = (Vec::new(), HashMap::new(), Vec::new());
        let (mut hits, mut stale) = (0, 0);
        let now = Instant::now();
        for id in wanted {
            match self.plan(inner.entries.get(&id).await, now) {
                Plan::Answer(profile) => {
                    hits += 1;
                    answer.insert(id, profile);
                }
                Plan::AnswerAndRefresh(profile) => {
                    hits += 1;
                    refresh.push(id);
                    answer.insert(id, profile);
                }
                Plan::AnswerStale(profile, retry) => {
                    stale += 1;
                    if retry {
                        refresh.push(id);
                    }
                    answer.insert(id, profile);
                }
                Plan::Wait(known) => {
                    if let Some(profile) = known {
                        fallback.insert(id, profile);
                    }
                    wait.push(id);
                }
            }
        }
        let counters = &inner.counters;
        counters.add(&counters.hits, "chatd_profile_cache_hits_total", hits);
        counters.add(&counters.misses, "chatd_profile_cache_misses_total", wait.len() as u64);
        if !refresh.is_empty() {
            let started = self.refresh(&refresh);
            counters.add(&counters.refreshes, "chatd_profile_cache_refreshes_total", started as u64);
        }
        if !wait.is_empty() {
            for (ids, flight) in self.join(&wait) {
                let outcome = flight.outcome_when_landed().await;
                let fetched = outcome.as_deref().and_then(|fetched| fetched.as_ref().ok());
                for id in ids {
                    if let Some(profile) = fetched.and_then(|fetched| fetched.get(&id.number())) {
                        answer.insert(id, profile.clone());
                    } else if let Some(profile) = fallback.remove(&id) {
                        stale += 1;
                        answer.insert(id, profile);
                    } else {
                        answer.insert(id, degraded_profile(id.number()));
                    }
                }
            }
        }
        counters.add(&counters.stale, "chatd_profile_cache_stale_total", stale);
        answer
    }

    fn plan(&self, cached: Option<Cached>, now: Instant) -> Plan {
        let inner = &self.inner;
        let Some(cached) = cached else { return Plan::Wait(None) };
        let age = now.saturating_duration_since(cached.fetched);
        let retry_due = cached.failed.is_none_or(|failed| now.saturating_duration_since(failed) >= inner.retry);
        if age < inner.refresh_after {
            Plan::Answer(cached.profile)
        } else if age < inner.ttl {
            if retry_due { Plan::AnswerAndRefresh(cached.profile) } else { Plan::Answer(cached.profile) }
        } else if cached.failed.is_some() {
            Plan::AnswerStale(cached.profile, retry_due)
        } else {
            Plan::Wait(Some(cached.profile))
        }
    }

    /// The flights that will answer `ids`, each with the ids it answers: the ones already in the
    /// air, and new ones for the rest.
    fn join(&self, ids: &[I]) -> Vec<(Vec<I>, Flight)> {
        let mut flights = self.inner.flights.lock().unwrap_or_else(PoisonError::into_inner);
        let mut by_flight: HashMap<u64, (Vec<I>, Flight)> = HashMap::new();
        let mut unasked = Vec::new();
        for &id in ids {
            match flights.get(&id) {
                Some(flight) => {
                    by_flight.entry(flight.number).or_insert_with(|| (Vec::new(), flight.clone())).0.push(id);
                }
                None => unasked.push(id),
            }
        }
        let mut joined: Vec<(Vec<I>, Flight)> = by_flight.into_values().collect();
        joined.extend(self.launch(&mut flights, &unasked));
        joined
    }

    /// Starts flights for those of `ids` not in the air (a refresh: nobody waits for them, they
    /// land in the cache by themselves); returns how many ids they ask for.
    fn refresh(&self, ids: &[I]) -> usize {
        let mut flights = self.inner.flights.lock().unwrap_or_else(PoisonError::into_inner);
        let unasked: Vec<I> = ids.iter().copied().filter(|id| !flights.contains_key(id)).collect();
        self.launch(&mut flights, &unasked);
        unasked.len()
    }

    /// Sends the requests for `ids`, none of them in the air (`flights` is the locked board), one
    /// per chunk, each as a task of its own, so that it lands in the cache whoever waits for it or
    /// gives up.
    fn launch(&self, flights: &mut HashMap<I, Flight>, ids: &[I]) -> Vec<(Vec<I>, Flight)> {
        let mut started = Vec::new();
        for chunk in ids.chunks(MAX_IDS_PER_REQUEST) {
            let number = self.inner.next_flight.fetch_add(1, Ordering::Relaxed);
            let (landed, outcome) = watch::channel(None);
            let flight = Flight { number, outcome };
            for &id in chunk {
                flights.insert(id, flight.clone());
            }
            let landing = Landing { cache: self.clone(), ids: chunk.to_vec(), number };
            tokio::spawn(landing.fly(landed));
            started.push((chunk.to_vec(), flight));
        }
        started
    }
}

impl Flight {
    /// The request's outcome once it has one; `None` if its task died without one.
    async fn outcome_when_landed(mut self) -> Option<Arc<Fetched>> {
        let landed = self.outcome.wait_for(Option::is_some).await.ok()?;
        landed.clone()
    }
}

/// One flight's request and what follows it. Whatever happens to the task, dropping the landing
/// takes its ids off the flight board, so that the next lookup asks again.
struct Landing<I: DirectoryId> {
    cache: ProfileCache<I>,
    ids: Vec<I>,
    number: u64,
}

impl<I: DirectoryId> Landing<I> {
    async fn fly(self, landed: watch::Sender<Option<Arc<Fetched>>>) {
        let inner = Arc::clone(&self.cache.inner);
        inner.counters.add(&inner.counters.requests, "chatd_platform_requests_total", 1);
        let fetched = (inner.fetch)(self.ids.clone()).await;
        let now = Instant::now();
        match &fetched {
            Ok(profiles) => {
                for &id in &self.ids {
                    match profiles.get(&id.number()) {
                        Some(profile) => {
                            let cached = Cached { profile: profile.clone(), fetched: now, failed: None };
                            inner.entries.insert(id, cached).await;
                        }
                        // The platform no longer knows it: not cached, asked again next time.
                        None => inner.entries.invalidate(&id).await,
                    }
                }
            }
            Err(problem) => {
                tracing::warn!(api = inner.kind, ids = self.ids.len(), %problem, "platform API lookup failed; serving cached or degraded profiles");
                for &id in &self.ids {
                    if let Some(cached) = inner.entries.get(&id).await {
                        inner.entries.insert(id, Cached { failed: Some(now), ..cached }).await;
                    }
                }
            }
        }
        // Off the board before the outcome is out: whoever looks next finds the cache.
        drop(self);
        landed.send_replace(Some(Arc::new(fetched)));
    }
}

impl<I: DirectoryId> Drop for Landing<I> {
    fn drop(&mut self) {
        let mut flights = self.cache.inner.flights.lock().unwrap_or_else(PoisonError::into_inner);
        for id in &self.ids {
            if flights.get(id).is_some_and(|flight| flight.number == self.number) {
                flights.remove(id);
            }
        }
    }
}
