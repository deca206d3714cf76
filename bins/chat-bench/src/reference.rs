//! The reference server: a bare actix-web + Redis server answering chat-bench's three REST
//! requests with one Redis script each and nothing else — no signature check (the user is read
//! from the token's payload), no profiles, no validation, no events but one `PUBLISH`. It runs as
//! a process of its own (`chat-bench --reference-server PORT --reference-redis PORT`), so that
//! chatd's figures can also be read as a share of what any server doing the same Redis work
//! reaches on the same machine in the same run.

use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use deadpool_redis::redis::{self, Script, aio::MultiplexedConnection};

/// A send: the message in the chat's list and data, both inboxes, the latest-message hash, and one
/// event. KEYS: list, data, sender's inbox, recipient's inbox, latest hash. ARGV: id, JSON, score,
/// the members of the two inboxes, the chat's latest field, the channel.
const SEND: &str = r"
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[5])
redis.call('HSET', KEYS[5], ARGV[6], ARGV[2])
redis.call('PUBLISH', ARGV[7], ARGV[2])
return 1
";

/// A history page: the last `ARGV[1]` messages. KEYS: list, data.
const HISTORY: &str = r"
local ids = redis.call('LRANGE', KEYS[1], -tonumber(ARGV[1]), -1)
if #ids == 0 then
  return {}
end
return redis.call('HMGET', KEYS[2], unpack(ids))
";

/// An inbox page: the newest `ARGV[1]` entries with their latest messages. KEYS: inbox, latest
/// hash. ARGV: the page size, the owner's id.
const INBOX: &str = r"
local entries = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #entries == 0 then
  return {}
end
local owner, fields = tonumber(ARGV[2]), {}
for i, member in ipairs(entries) do
  local other = tonumber(string.sub(member, 6))
  fields[i] = 'dm:' .. math.min(owner, other) .. '-' .. math.max(owner, other)
end
return redis.call('HMGET', KEYS[2], unpack(fields))
";

struct Shared {
    redis: MultiplexedConnection,
    send: Script,
    history: Script,
    inbox: Script,
    next_id: AtomicU64,
}

/// Serves on `port` against Redis on `redis_port` until killed.
pub(crate) fn serve(port: u16, redis_port: u16) -> Result<(), String> {
    actix_web::rt::System::new().block_on(async move {
        let client = redis::Client::open(format!("redis://127.0.0.1:{redis_port}")).map_err(|e| e.to_string())?;
        let redis = client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
        let shared = web::Data::new(Shared {
            redis,
            send: Script::new(SEND),
            history: Script::new(HISTORY),
            inbox: Script::new(INBOX),
            next_id: AtomicU64::new(0),
        });
        HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .route("/api/list", web::get().to(inbox))
                .route("/api/user/{id}", web::get().to(history))
                .route("/api/user/{id}", web::post().to(send))
        })
        .bind(("127.0.0.1", port))
        .map_err(|e| e.to_string())?
        .run()
        .await
        .map_err(|e| e.to_string())
    })
}

/// The `user_id` in the token's payload (the `x-auth-token` header chat-bench sends), unverified.
fn user(request: &HttpRequest) -> Option<u64> {
    let token = request.headers().get("x-auth-token")?.to_str().ok()?;
    let payload = URL_SAFE_NO_PAD.decode(token.split('.').nth(1)?).ok()?;
    serde_json::from_slice::<serde_json::Value>(&payload).ok()?.get("user_id")?.as_u64()
}

fn chat(a: u64, b: u64) -> String {
    format!("dm:{}-{}", a.min(b), a.max(b))
}

/// The body is read (a keep-alive connection whose request body is left unread is closed) and not
/// looked at.
async fn send(
    request: HttpRequest,
    path: web::Path<u64>,
    _body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let (Some(from), to) = (user(&request), path.into_inner()) else { return HttpResponse::Unauthorized().finish() };
    let number = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let id = format!("00000000-0000-4000-8000-{number:012}");
    let json = format!(r#"{{"id":"{id}","author":{from},"type":"text","text":"benchmark message"}}"#);
    let chat = chat(from, to);
    let score = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let mut redis = shared.redis.clone();
    let done: Result<i64, _> = shared
        .send
        .key(format!("ref:{chat}"))
        .key(format!("ref:{chat}:data"))
        .key(format!("ref:inbox:{from}"))
        .key(format!("ref:inbox:{to}"))
        .key("ref:latest")
        .arg(&id)
        .arg(&json)
        .arg(score as u64)
        .arg(format!("user-{to}"))
        .arg(format!("user-{from}"))
        .arg(&chat)
        .arg(format!("ref:events:user:{to}"))
        .invoke_async(&mut redis)
        .await;
    match done {
        Ok(_) => HttpResponse::Created().content_type("application/json").body(format!(r#"{{"entry":{json}}}"#)),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

async fn history(request: HttpRequest, path: web::Path<u64>, shared: web::Data<Shared>) -> HttpResponse {
    let Some(reader) = user(&request) else { return HttpResponse::Unauthorized().finish() };
    let chat = chat(reader, path.into_inner());
    let mut redis = shared.redis.clone();
    let page: Result<Vec<Option<String>>, _> = shared
        .history
        .key(format!("ref:{chat}"))
        .key(format!("ref:{chat}:data"))
        .arg(10)
        .invoke_async(&mut redis)
        .await;
    answer(page.map(|messages| {
        format!(r#"{{"messages":[{}]}}"#, messages.into_iter().flatten().collect::<Vec<_>>().join(","))
    }))
}

async fn inbox(request: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let Some(owner) = user(&request) else { return HttpResponse::Unauthorized().finish() };
    let mut redis = shared.redis.clone();
    let page: Result<Vec<Option<String>>, _> = shared
        .inbox
        .key(format!("ref:inbox:{owner}"))
        .key("ref:latest")
        .arg(10)
        .arg(owner)
        .invoke_async(&mut redis)
        .await;
    answer(
        page.map(|latest| format!(r#"{{"entries":[{}]}}"#, latest.into_iter().flatten().collect::<Vec<_>>().join(","))),
    )
}

fn answer(body: Result<String, redis::RedisError>) -> HttpResponse {
    match body {
        Ok(body) => HttpResponse::Ok().content_type("application/json").body(body),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}
