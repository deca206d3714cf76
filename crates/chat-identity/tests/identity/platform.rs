//! The platform-API directory against a stand-in API on loopback that records what it receives.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chat_domain::{TopicId, UserId};
use chat_identity::{Directory, PlatformDirectory, PlatformSettings};
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
}

struct StandIn {
    url: String,
    shared: Arc<Shared>,
    seen: mpsc::UnboundedReceiver<Seen>,
}

impl StandIn {
    async fn start(mode: Mode) -> Self {
        let (sender, seen) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared { mode: Mutex::new(mode), seen: sender });
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
    match mode {
        Mode::Serve => {
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
fn by_number<I: std::fmt::Display>(answer: HashMap<I, Value>) -> HashMap<u64, Value> {
    answer.into_iter().map(|(id, profile)| (id.to_string().parse().expect("numeric id"), profile)).collect()
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
