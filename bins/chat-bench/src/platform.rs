//! A stand-in platform API for the benchmark's chatd: `GET /v1/users?…&ids=1,2` and
//! `GET /v1/topics?…&ids=…` answer `{"entries": [...]}` after a fixed latency (a real platform
//! API is another service, often with a database behind it), and count what they were asked.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// What the stand-in has been asked so far.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    requests: AtomicU64,
    ids: AtomicU64,
}

impl Counts {
    /// Requests and ids asked for so far.
    pub(crate) fn read(&self) -> (u64, u64) {
        (self.requests.load(Ordering::Relaxed), self.ids.load(Ordering::Relaxed))
    }
}

/// The running stand-in: where it listens and its counts. It stops with the benchmark.
#[derive(Debug)]
pub(crate) struct PlatformApi {
    pub(crate) url: String,
    pub(crate) counts: Arc<Counts>,
}

impl PlatformApi {
    /// Listens on a free loopback port, answering after `latency`.
    pub(crate) async fn start(latency: Duration) -> Result<Self, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
        let url = format!("http://{}/", listener.local_addr().map_err(|e| e.to_string())?);
        let counts = Arc::new(Counts::default());
        let shared = Arc::clone(&counts);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counts = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |request| answer(request, Arc::clone(&counts), latency));
                    // A connection chatd drops ends here; nothing to report.
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Ok(Self { url, counts })
    }
}

async fn answer(
    request: Request<hyper::body::Incoming>,
    counts: Arc<Counts>,
    latency: Duration,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let ids: Vec<u64> = request
        .uri()
        .query()
        .and_then(|query| query.split('&').find_map(|pair| pair.strip_prefix("ids=")))
        .map(|ids| ids.split(',').filter_map(|id| id.parse().ok()).collect())
        .unwrap_or_default();
    counts.requests.fetch_add(1, Ordering::Relaxed);
    counts.ids.fetch_add(ids.len() as u64, Ordering::Relaxed);
    let topics = request.uri().path().ends_with("/v1/topics");
    tokio::time::sleep(latency).await;
    let entries: Vec<serde_json::Value> = ids
        .into_iter()
        .map(|id| {
            if topics {
                serde_json::json!({"id": id, "title": format!("Topic {id}"), "status": "open"})
            } else {
                serde_json::json!({"id": id, "username": format!("member{id}"), "picture_url": format!("https://cdn.example/{id}.png")})
            }
        })
        .collect();
    let body = serde_json::to_vec(&serde_json::json!({ "entries": entries })).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
    Ok(response)
}
