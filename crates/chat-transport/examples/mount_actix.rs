//! chatd mounted in an existing actix-web app: the host keeps its own routes and its own 404, and
//! chatd's REST API and realtime doors answer under `/chat`, in chatd's middleware (JSON error
//! bodies, request ids, the header limit), on the in-memory store. It starts on a free port, talks
//! to itself over real HTTP and a real WebSocket, checks what it gets, and exits 0 — so CI runs it.
//!
//! `cargo run -p chat-transport --example mount_actix`

#![expect(clippy::print_stdout, reason = "an example shows what happens on its standard output")]

use std::error::Error;
use std::net::TcpListener;

use actix_web::{App, HttpResponse, HttpServer, web};
use chat_domain::DomainHandle;
use chat_identity::{JwtSettings, TokenVerifier};
use chat_service::Adapters;
use chat_transport::{ChatApi, Tenants, not_found, remember_sockets};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

/// The secret the platform signs its users' tokens with (HS256).
const SECRET: &str = "the platform's secret";

/// The host's own 404 page.
const HOST_NOT_FOUND: &str = "Nothing here (the host's own 404)";

#[actix_web::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // chatd's pieces, built once: the in-memory store and built-in directory, the platform's
    // tokens, one tenant.
    let verifier = TokenVerifier::new(&JwtSettings { secret: Some(SECRET.into()), ..JwtSettings::default() })?;
    let tenants = Tenants::new(DomainHandle::parse("example")?, []);
    let chat = ChatApi::builder(Adapters::in_memory(), verifier, tenants).error_stacks(true).build()?;
    let hub = chat.hub().clone();

    // The host app: its own home page and 404; chatd under /chat, with chatd's JSON 404 there.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(move || {
        App::new()
            .route("/", web::get().to(|| async { HttpResponse::Ok().body("The host's home page") }))
            .service(
                web::scope("/chat")
                    .wrap(chat.middleware())
                    .configure(chat.rest_api())
                    .configure(chat.realtime())
                    .default_service(not_found()),
            )
            .default_service(web::to(|| async { HttpResponse::NotFound().body(HOST_NOT_FOUND) }))
    })
    // So that the realtime doors can end their connections promptly.
    .on_connect(remember_sockets)
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    let server_handle = server.handle();
    actix_web::rt::spawn(server);
    println!("listening on http://127.0.0.1:{port}");

    // The host's routes and 404 are its own.
    let (status, body) = request(port, "GET", "/", None, None).await?;
    assert_eq!((status, body.as_str()), (200, "The host's home page"));
    let (status, body) = request(port, "GET", "/nothing", None, None).await?;
    assert_eq!((status, body.as_str()), (404, HOST_NOT_FOUND), "the host's 404 is untouched");
    println!("GET /nothing: {status} {body:?}");

    // Under /chat, chatd answers, errors included, with its JSON error body.
    let (status, body) = request(port, "GET", "/chat/nothing", None, None).await?;
    let error: Value = serde_json::from_str(&body)?;
    assert_eq!((status, &error["code"]), (404, &json!("NOT_FOUND")), "{body}");
    let (status, body) = request(port, "GET", "/chat/api/list", None, None).await?;
    let error: Value = serde_json::from_str(&body)?;
    assert_eq!((status, &error["code"]), (401, &json!("NOT_AUTHENTICATED")), "{body}");
    println!("GET /chat/api/list without a token: {status} {}", error["message"]);

    // User 2 listens on /chat/ws; user 1 sends over REST; user 2 hears it.
    let url = format!("ws://127.0.0.1:{port}/chat/ws?token={}", token(2)?);
    let (mut socket, upgrade) = tokio_tungstenite::connect_async(url).await?;
    assert_eq!(upgrade.status().as_u16(), 101);
    assert_eq!(next_event(&mut socket).await?.0, "authenticated");
    println!("/chat/ws upgraded and authenticated user 2");

    let message = json!({"type": "text", "text": "hello from the host app"}).to_string();
    let (status, body) = request(port, "POST", "/chat/api/user/2", Some(&token(1)?), Some(&message)).await?;
    assert_eq!(status, 201, "{body}");
    let sent: Value = serde_json::from_str(&body)?;
    println!("POST /chat/api/user/2: {status}, message {}", sent["entry"]["id"]);

    let heard = loop {
        let (event, data) = next_event(&mut socket).await?;
        if event == "new-message" {
            break data;
        }
    };
    assert_eq!(heard["id"], sent["entry"]["id"], "user 2 hears the message user 1 sent");
    println!("user 2 heard over /chat/ws: {}", heard["text"]);

    let (status, body) = request(port, "GET", "/chat/api/user/1", Some(&token(2)?), None).await?;
    let history: Value = serde_json::from_str(&body)?;
    assert_eq!((status, &history["messages"][0]["text"]), (200, &json!("hello from the host app")), "{body}");
    println!("GET /chat/api/user/1: {status}, {} message(s)", history["state"]["total"]);

    // Stopping: realtime connections close with "going away", then the server stops.
    hub.shut_down();
    server_handle.stop(true).await;
    println!("all checks passed");
    Ok(())
}

/// A token for `user`, as the platform would issue it.
fn token(user: u64) -> Result<String, jsonwebtoken::errors::Error> {
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &json!({ "user_id": user }), &key)
}

/// One HTTP/1.1 request on a connection of its own: the status and the body.
async fn request(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<(u16, String), Box<dyn Error>> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("X-Auth-Token: {token}\r\n"));
    }
    let body = body.unwrap_or_default();
    head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len()));
    stream.write_all(format!("{head}{body}").as_bytes()).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    let (head, body) = answer.split_once("\r\n\r\n").ok_or("an HTTP answer")?;
    let status = head.split(' ').nth(1).ok_or("a status line")?.parse()?;
    Ok((status, body.to_owned()))
}

/// The next `/ws` frame's event and data.
async fn next_event<S>(socket: &mut S) -> Result<(String, Value), Box<dyn Error>>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), socket.next()).await? {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text)?;
                return Ok((frame["event"].as_str().unwrap_or_default().to_owned(), frame["data"].clone()));
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error.into()),
            None => return Err("the WebSocket closed".into()),
        }
    }
}
