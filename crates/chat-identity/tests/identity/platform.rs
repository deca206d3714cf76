//! The platform-API directory against a stand-in API on loopback that records what it receives.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chat_domain::{TopicId, UserId};
use chat_identity::{Directory, PlatformDirectory, PlatformSettings, Profile};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// How the stand-in answers; tests switch it to show that failures are not cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Knows every id below [`UNKNOWN_FROM`].
    Serve,
    Fail500,
    NotJson,
    NoEntries,
    /// Takes the request and never answers.
    Hang,
    /// Holds each request until the test opens the gate (one permit per request), then serves.
    Gate,
}

/// Ids from here up are unknown to the stand-in: it leaves them out of its answer.
const UNKNOWN_FROM: u64 = 900;

/// One request as the stand-in saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    path: String,
    query: String,
    user_agent: Option<String>,
}

impl Seen {
    fn ids(&self) -> Vec<u64> {
        let ids = self.query.split('&').find_map(|pair| pair.strip_prefix("ids=")).expect("an ids parameter");
        ids.split(',').map(|id| id.parse().expect("numeric ids")).collect()
    }
}

struct Shared {
    mode: Mutex<Mode>,
    seen: mpsc::UnboundedSender<Seen>,
    gate: tokio::sync::Semaphore,
}

struct StandIn {
    url: String,
    shared: Arc<Shared>,
    seen: mpsc::UnboundedReceiver<Seen>,
}

impl StandIn {
    async fn start(mode: Mode) -> Self {
        let (sender, seen) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared { mode: Mutex::new(mode), seen: sender, gate: tokio::sync::Semaphore::new(0) });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("bound address"));
        let data = web::Data::from(Arc::clone(&shared));
        let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(answer)))
            .workers(1)
            .disable_signals()
            .listen(listener)
            .expect("listens")
            .run();
        actix_web::rt::spawn(server);
        Self { url, shared, seen }
    }

    /// Lets `n` held requests through.
    fn open_gate(&self, n: usize) {
        self.shared.gate.add_permits(n);
    }

    fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap_or_else(PoisonError::into_inner) = mode;
    }

    /// The requests received so far. Exact after a lookup returns, since the stand-in records a
    /// request before answering it.
    fn take_seen(&mut self) -> Vec<Seen> {
        let mut seen = Vec::new();
        while let Ok(request) = self.seen.try_recv() {
            seen.push(request);
        }
        seen
    }
}

async fn answer(request: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let seen = Seen {
        path: request.path().to_owned(),
        query: request.query_string().to_owned(),
        user_agent: request
            .headers()
            .get("user-agent")
            .map(|value| value.to_str().expect("ASCII user agent").to_owned()),
    };
    let ids = seen.ids();
    let topics = seen.path.ends_with("/v1/topics");
    shared.seen.send(seen).expect("the test is listening");
    let mode = *shared.mode.lock().unwrap_or_else(PoisonError::into_inner);
    if mode == Mode::Gate {
        shared.gate.acquire().await.expect("the gate stays open").forget();
    }
    match mode {
        Mode::Serve | Mode::Gate => {
            let entries: Vec<Value> = ids
                .into_iter()
                .filter(|&id| id < UNKNOWN_FROM)
                .map(|id| if topics { topic_profile(id) } else { user_profile(id) })
                .collect();
            HttpResponse::Ok().json(json!({ "entries": entries }))
        }
        Mode::Fail500 => HttpResponse::InternalServerError().json(json!({"error": true})),
        Mode::NotJson => HttpResponse::Ok().content_type("application/json").body("<html>oops</html>"),
        Mode::NoEntries => HttpResponse::Ok().json(json!({"data": []})),
        Mode::Hang => std::future::pending().await,
    }
}

/// The stand-in's user profile. User 2's id comes back as a string, as some platforms write it.
fn user_profile(id: u64) -> Value {
    let id_value = if id == 2 { json!("2") } else { json!(id) };
    json!({
        "id": id_value,
        "username": format!("member{id}"),
        "role": {"id": 3, "handle": "registered", "value": "Registered"},
        "picture_url": format!("https://cdn.example/{id}.png"),
        "profile_url": format!("https://example/u/{id}"),
    })
}

fn topic_profile(id: u64) -> Value {
    json!({"id": id, "title": format!("Topic {id}"), "status": "open", "cover_image_thumbnail": null})
}

fn directory(api_url: &str) -> PlatformDirectory {
    PlatformDirectory::new(PlatformSettings { api_url: api_url.to_owned(), ..PlatformSettings::default() })
        .expect("valid settings")
}

fn users(ids: &[u64]) -> Vec<UserId> {
    ids.iter().map(|&id| UserId::new(id).expect("valid id")).collect()
}

fn topics(ids: &[u64]) -> Vec<TopicId> {
    ids.iter().map(|&id| TopicId::new(id).expect("valid id")).collect()
}

/// The answer keyed by plain numbers, for readable comparisons.
fn by_number<I: std::fmt::Display>(answer: HashMap<I, Profile>) -> HashMap<u64, Value> {
    answer.into_iter().map(|(id, profile)| (id.to_string().parse().expect("numeric id"), profile.to_value())).collect()
}

fn degraded(ids: &[u64]) -> HashMap<u64, Value> {
    ids.iter().map(|&id| (id, json!({ "id": id }))).collect()
}

const USER_QUERY: &str = "fields=id,username,role,picture_url,profile_url";

#[actix_web::test]
async fn one_deduplicated_request_per_lookup_then_the_cache() {
    let mut api = StandIn::start(Mode::Serve).await;
    let directory = directory(&format!("{}/", api.url));

    let answer = by_number(directory.users(&users(&[3, 1, 3, 2, 1])).await);
    let expected: HashMap<u64, Value> = [1, 2, 3].into_iter().map(|id| (id, user_profile(id))).collect();
    assert_eq!(answer, expected);
    assert_eq!(
        api.take_seen(),
        vec![Seen {
            path: "/v1/users".to_owned(),
            query: format!("{USER_QUERY}&ids=1,2,3"),
            user_agent: Some("Senna-Sockets-Server".to_owned()),
        }]
    );

    // All cached: no request at all.
    let again = by_number(directory.users(&users(&[2, 1])).await);
    assert_eq!(again, [1, 2].into_iter().map(|id| (id, user_profile(id))).collect());
    assert_eq!(api.take_seen(), vec![]);

    // Only the id not cached is asked for.
    let mixed = by_number(directory.users(&users(&[4, 2])).await);
    assert_eq!(mixed, [2, 4].into_iter().map(|id| (id, user_profile(id))).collect());
    let seen = api.take_seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].query, format!("{USER_QUERY}&ids=4"));
}

#[actix_web::test]
async fn topics_use_their_own_path_fields_and_cache() {
    let mut api = StandIn::start(Mode::Serve).await;
    // A base URL with a path and no trailing slash keeps its path.
    let directory = PlatformDirectory::new(PlatformSettings {
        api_url: format!("{}/platform", api.url),
        user_agent: "chatd-test/1".to_owned(),
        ..PlatformSettings::default()
    })
    .expect("valid settings");

    let answer = by_number(directory.topics(&topics(&[42, 7])).await);
    assert_eq!(answer, [7, 42].into_iter().map(|id| (id, topic_profile(id))).collect());
    assert_eq!(
        api.take_seen(),
        vec![Seen {
            path: "/platform/v1/topics".to_owned(),
            query: "fields=id,title,status,cover_image_thumbnail&ids=7,42".to_owned(),
            user_agent: Some("chatd-test/1".to_owned()),
        }]
    );

    directory.topics(&topics(&[7])).await;
    assert_eq!(api.take_seen(), vec![]);
    // Users 7 and 42 are a different cache: asked for.
    directory.users(&users(&[7])).await;
    assert_eq!(api.take_seen().len(), 1);
}

#[actix_web::test]
async fn ids_the_api_leaves_out_are_degraded_and_asked_again_next_time() {
    let mut api = StandIn::start(Mode::Serve).await;
    let directory = directory(&api.url);

    let answer = by_number(directory.users(&users(&[5, 950])).await);
    assert_eq!(answer, HashMap::from([(5, user_profile(5)), (950, json!({"id": 950}))]));
    assert_eq!(api.take_seen().len(), 1);

    let again = by_number(directory.users(&users(&[5, 950])).await);
    assert_eq!(again, HashMap::from([(5, user_profile(5)), (950, json!({"id": 950}))]));
    let seen = api.take_seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].ids(), vec![950], "only the unknown id is asked again");
}

#[actix_web::test]
async fn an_empty_lookup_asks_nothing() {
    let mut api = StandIn::start(Mode::Serve).await;
    let directory = directory(&api.url);
    assert!(directory.users(&[]).await.is_empty());
    assert!(directory.topics(&[]).await.is_empty());
    assert_eq!(api.take_seen(), vec![]);
}

#[actix_web::test]
async fn many_ids_go_out_in_requests_of_at_most_one_hundred() {
    let mut api = StandIn::start(Mode::Serve).await;
    let directory = directory(&api.url);
    let wanted: Vec<u64> = (1..=250).rev().collect();

    let answer = by_number(directory.users(&users(&wanted)).await);
    assert_eq!(answer, wanted.iter().map(|&id| (id, user_profile(id))).collect());

    let seen = api.take_seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    let mut asked = Vec::new();
    for request in &seen {
        assert!(request.ids().len() <= 100, "{request:?}");
        asked.extend(request.ids());
    }
    asked.sort_unstable();
    assert_eq!(asked, (1..=250).collect::<Vec<u64>>(), "each id asked exactly once");
}

#[actix_web::test]
async fn a_failing_api_degrades_profiles_and_failures_are_not_cached() {
    for failure in [Mode::Fail500, Mode::NotJson, Mode::NoEntries] {
        let mut api = StandIn::start(Mode::Serve).await;
        let directory = directory(&api.url);
        directory.users(&users(&[1])).await;
        assert_eq!(api.take_seen().len(), 1);

        api.set_mode(failure);
        // User 1 is still served from the cache; user 3 degrades.
        let answer = by_number(directory.users(&users(&[1, 3])).await);
        assert_eq!(answer, HashMap::from([(1, user_profile(1)), (3, json!({"id": 3}))]), "{failure:?}");
        let topics_answer = by_number(directory.topics(&topics(&[8])).await);
        assert_eq!(topics_answer, degraded(&[8]), "{failure:?}");
        assert_eq!(api.take_seen().len(), 2, "{failure:?}");

        // Once the API is back, the degraded ids are asked again.
        api.set_mode(Mode::Serve);
        let answer = by_number(directory.users(&users(&[1, 3])).await);
        assert_eq!(answer, HashMap::from([(1, user_profile(1)), (3, user_profile(3))]), "{failure:?}");
        let seen = api.take_seen();
        assert_eq!(seen.len(), 1, "{failure:?}: {seen:?}");
        assert_eq!(seen[0].ids(), vec![3]);
    }
}

#[actix_web::test]
async fn an_unreachable_api_degrades_profiles() {
    // A port that was just free: nothing listens there any more.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.local_addr().expect("bound address").port()
    };
    let directory = directory(&format!("http://127.0.0.1:{port}/"));
    assert_eq!(by_number(directory.users(&users(&[1, 2, 2])).await), degraded(&[1, 2]));
    assert_eq!(by_number(directory.topics(&topics(&[9])).await), degraded(&[9]));
}

#[actix_web::test]
async fn an_api_slower_than_the_timeout_degrades_profiles() {
    let mut api = StandIn::start(Mode::Hang).await;
    let directory = PlatformDirectory::new(PlatformSettings {
        api_url: api.url.clone(),
        timeout: Duration::from_millis(300),
        ..PlatformSettings::default()
    })
    .expect("valid settings");

    // The stand-in never answers, so the lookup can only end through the client's timeout. The
    // outer limit only turns a hang (a broken timeout) into a failure instead of a stuck test.
    let wanted = users(&[4, 5]);
    let (answer, seen) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(directory.users(&wanted), api.seen.recv())
    })
    .await
    .expect("the lookup ends by itself");
    let seen = seen.expect("the stand-in received the request");
    assert_eq!(seen.ids(), vec![4, 5]);
    assert_eq!(by_number(answer), degraded(&[4, 5]));
    // And a failure is not cached: the next lookup asks again (and times out again).
    let wanted = users(&[5]);
    let (answer, seen) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(directory.users(&wanted), api.seen.recv())
    })
    .await
    .expect("the lookup ends by itself");
    assert_eq!(seen.map(|seen| seen.ids()), Some(vec![5]));
    assert_eq!(by_number(answer), degraded(&[5]));
    let unique: BTreeSet<u64> = api.take_seen().iter().flat_map(Seen::ids).collect();
    assert!(unique.is_empty(), "no further requests: {unique:?}");
}

fn caching(api_url: &str, ttl: Duration, stale: Duration) -> PlatformDirectory {
    PlatformDirectory::new(PlatformSettings {
        api_url: api_url.to_owned(),
        cache_ttl: ttl,
        cache_stale: stale,
        ..PlatformSettings::default()
    })
    .expect("valid settings")
}

#[actix_web::test]
async fn concurrent_lookups_of_the_same_ids_share_one_request() {
    let mut api = StandIn::start(Mode::Gate).await;
    let directory = directory(&api.url);
    let mut lookups = tokio::task::JoinSet::new();
    for n in 0..50 {
        let directory = directory.clone();
        // Each asks for the same three users, some with others of their own.
        let wanted = if n % 2 == 0 { users(&[1, 2, 3]) } else { users(&[3, 2, 1, 1]) };
        lookups.spawn(async move { by_number(directory.users(&wanted).await) });
    }
    // The first request is held at the stand-in; once every lookup has counted its misses it has
    // joined that request's flight (counting and joining happen in one step), so open the gate.
    let first = api.seen.recv().await.expect("a request");
    while directory.stats().0.misses < 150 {
        tokio::task::yield_now().await;
    }
    api.open_gate(1);
    let expected = HashMap::from([(1, user_profile(1)), (2, user_profile(2)), (3, user_profile(3))]);
    while let Some(answer) = lookups.join_next().await {
        assert_eq!(answer.expect("the lookup ran"), expected);
    }
    assert_eq!(first.ids(), vec![1, 2, 3]);
    assert_eq!(api.take_seen(), Vec::new(), "one request for all 50 lookups");
    let (stats, _) = directory.stats();
    assert_eq!((stats.requests, stats.misses, stats.hits), (1, 150, 0));

    // Once it landed, the cache answers.
    api.open_gate(10);
    assert_eq!(by_number(directory.users(&users(&[2, 1, 3])).await), expected);
    assert_eq!(directory.stats().0.requests, 1);
}

#[actix_web::test]
async fn profiles_in_use_are_refreshed_before_they_expire_so_no_lookup_waits() {
    let mut api = StandIn::start(Mode::Serve).await;
    let ttl = Duration::from_secs(2);
    let directory = caching(&api.url, ttl, Duration::ZERO);
    assert_eq!(by_number(directory.users(&users(&[1])).await), HashMap::from([(1, user_profile(1))]));
    // A client using the profile for two and a half TTLs: refreshes keep it fresh in the
    // background, one per refresh period (from ¾ TTL on), and no lookup waits for the API again.
    let start = tokio::time::Instant::now();
    while start.elapsed() < ttl * 5 / 2 {
        assert_eq!(by_number(directory.users(&users(&[1])).await), HashMap::from([(1, user_profile(1))]));
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let (stats, _) = directory.stats();
    assert_eq!(stats.misses, 1, "only the first lookup waited: {stats:?}");
    assert!((2..=4).contains(&stats.refreshes), "one refresh per ¾ TTL: {stats:?}");
    assert_eq!(stats.requests, 1 + stats.refreshes, "{stats:?}");
    assert_eq!(stats.stale, 0, "{stats:?}");
    assert!(api.take_seen().iter().all(|seen| seen.ids() == vec![1]));
}

#[actix_web::test]
async fn through_an_outage_the_last_known_profile_is_served_for_the_stale_time() {
    let mut api = StandIn::start(Mode::Serve).await;
    let ttl = Duration::from_millis(300);
    let lasting = caching(&api.url, ttl, Duration::from_secs(3600));
    let brief = caching(&api.url, ttl, Duration::ZERO);
    for directory in [&lasting, &brief] {
        directory.users(&users(&[1])).await;
    }
    assert_eq!(api.take_seen().len(), 2);

    api.set_mode(Mode::Fail500);
    // Past the TTL (time passing is what is under test here).
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    // Within the stale time: the lookup asks, the API fails, the last known profile is answered;
    // the next lookup gets it without waiting for the API (a retry only every ¼ TTL, in the
    // background).
    assert_eq!(
        by_number(lasting.users(&users(&[1, 5])).await),
        HashMap::from([(1, user_profile(1)), (5, json!({"id": 5}))])
    );
    assert_eq!(by_number(lasting.users(&users(&[1])).await), HashMap::from([(1, user_profile(1))]));
    let (stats, _) = lasting.stats();
    assert_eq!((stats.misses, stats.stale), (3, 2), "{stats:?}");
    // Without a stale time the profile degrades as soon as it expires.
    assert_eq!(by_number(brief.users(&users(&[1])).await), degraded(&[1]));

    // The failure is retried in the background once ¼ TTL has passed, while the lookup is
    // answered at once.
    api.take_seen();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(by_number(lasting.users(&users(&[1])).await), HashMap::from([(1, user_profile(1))]));
    let retry = api.seen.recv().await.expect("a retry");
    assert_eq!(retry.ids(), vec![1]);
    let (stats, _) = lasting.stats();
    assert_eq!((stats.misses, stats.stale, stats.refreshes), (3, 3, 1), "{stats:?}");
}
