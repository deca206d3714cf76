//! A WebSocket client for the `/ws` door (tokio-tungstenite): JSON frames in and out, close frames
//! reported, and a generous timeout so that a missing event fails the test instead of hanging it.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{TestApp, token};

/// How long a test waits for something that should arrive at once.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// What the server sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A frame `{"event", "data"}`.
    Event(String, Value),
    /// A close frame (code and reason), or the connection ending without one.
    Closed(Option<(u16, String)>),
}

pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The `position` of the last frame that had one: [`Self::next`] checks it and takes it out of
    /// the data, so that tests about other things compare data without it.
    pub position: Option<String>,
}

/// Takes `position` out of an event's data, checking that it is a position (`<epoch>-<seq>`).
pub fn take_position(data: &mut Value) -> Option<String> {
    let position = data.as_object_mut()?.remove("position")?;
    let text = position.as_str().unwrap_or_else(|| panic!("a position is a string: {position}"));
    let (epoch, seq) = text.split_once('-').unwrap_or_else(|| panic!("a position: {text}"));
    assert!(epoch.parse::<u64>().is_ok() && seq.parse::<u64>().is_ok(), "a position: {text}");
    Some(text.to_owned())
}

impl WsClient {
    /// Connects to `url` (with any headers already on the request).
    pub async fn connect(request: impl IntoClientRequest + Unpin) -> Self {
        let (stream, _) = tokio_tungstenite::connect_async(request).await.expect("the WebSocket upgrade succeeds");
        Self { stream, position: None }
    }

    /// Connects to `url` on a socket with a small receive buffer (see [`connect_small`]).
    pub async fn connect_small(url: String) -> Self {
        Self { stream: connect_small(url).await, position: None }
    }

    /// Connects to `/ws` of `app` as `user` (token in the query) and waits for `authenticated`.
    pub async fn authenticated(app: &TestApp, user: u64) -> Self {
        let mut client = Self::connect(app.ws_url(&format!("/ws?token={}", token(user)))).await;
        assert_eq!(client.expect("authenticated").await, json!({"user": user}));
        assert!(client.position.is_some(), "authenticated carries the user's position");
        client
    }

    /// Connects to `/ws` of `app` as `user`, resuming `since` a position; returns the
    /// `authenticated` data.
    pub async fn resumed(app: &TestApp, user: u64, since: &str) -> (Self, Value) {
        let url =
            reqwest::Url::parse_with_params(&app.ws_url("/ws"), [("token", token(user).as_str()), ("since", since)])
                .expect("a valid URL");
        let mut client = Self::connect(url.as_str()).await;
        let mut data = client.expect("authenticated").await;
        assert_eq!(data["user"], user, "{data}");
        data["position"] = json!(client.position.take().expect("authenticated carries the user's position"));
        (client, data)
    }

    /// Sends `{"event", "data"}`.
    pub async fn send(&mut self, event: &str, data: Value) {
        self.send_raw(json!({"event": event, "data": data}).to_string()).await;
    }

    /// Sends a text frame as it is.
    pub async fn send_raw(&mut self, text: String) {
        self.stream.send(Message::text(text)).await.expect("the frame is sent");
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.stream.send(Message::binary(bytes)).await.expect("the frame is sent");
    }

    /// The next frame or the close, skipping pings and pongs.
    pub async fn next(&mut self) -> Incoming {
        loop {
            let message =
                tokio::time::timeout(PATIENCE, self.stream.next()).await.expect("the server sends something in time");
            match message {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text).expect("frames are JSON");
                    let event = frame["event"].as_str().expect("frames have an event").to_owned();
                    let mut data = frame["data"].clone();
                    if let Some(position) = take_position(&mut data) {
                        self.position = Some(position);
                    }
                    return Incoming::Event(event, data);
                }
                Some(Ok(Message::Close(frame))) => {
                    return Incoming::Closed(frame.map(|f| (u16::from(f.code), f.reason.to_string())));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Binary(_))) => panic!("chatd sends no binary frames"),
                Some(Err(_)) | None => return Incoming::Closed(None),
            }
        }
    }

    /// Sends a ping and reads until its pong: by then the server has handled every frame sent
    /// before it. Returns what came meanwhile.
    pub async fn barrier(&mut self) -> Vec<Incoming> {
        let mark = uuid::Uuid::new_v4().to_string();
        self.stream.send(Message::Ping(mark.clone().into_bytes().into())).await.expect("the ping is sent");
        let mut came = Vec::new();
        loop {
            let message =
                tokio::time::timeout(PATIENCE, self.stream.next()).await.expect("the server sends something in time");
            match message {
                Some(Ok(Message::Pong(payload))) if payload.as_ref() == mark.as_bytes() => return came,
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text).expect("frames are JSON");
                    let event = frame["event"].as_str().expect("frames have an event").to_owned();
                    came.push(Incoming::Event(event, frame["data"].clone()));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                other => panic!("the connection ended before the pong: {other:?}"),
            }
        }
    }

    /// The next frame, which must be `event`; returns its data.
    pub async fn expect(&mut self, event: &str) -> Value {
        match self.next().await {
            Incoming::Event(name, data) if name == event => data,
            other => panic!("expected {event}, got {other:?}"),
        }
    }

    /// Closes the connection and waits until the server has let go of it.
    pub async fn close(mut self) {
        self.stream.close(None).await.ok();
        while let Ok(Some(Ok(_))) = tokio::time::timeout(PATIENCE, self.stream.next()).await {}
    }

    /// Closes from the client's side as RFC 6455 has it (see [`close_handshake`]).
    pub async fn close_handshake(mut self) -> (Option<(u16, String)>, Duration) {
        close_handshake(&mut self.stream).await
    }

    /// Subscribes to a topic and waits for the confirmation.
    pub async fn subscribe(&mut self, topic: u64) {
        self.send("subscribe", json!({"topic": topic})).await;
        assert_eq!(self.expect("subscribed").await, json!({"topic": topic}));
        assert!(self.position.take().is_some(), "the answer carries the topic's position");
    }
}

/// Closes `stream` from the client's side as RFC 6455 has it: sends a close frame, reads the
/// server's answering close (code and reason), then waits for the server to end the TCP
/// connection, which a client leaves to the server. Returns the answer and how long it all took.
pub async fn close_handshake(
    stream: &mut WebSocketStream<MaybeTlsStream<TcpStream>>,
) -> (Option<(u16, String)>, Duration) {
    let started = Instant::now();
    stream.close(None).await.expect("the close frame is sent");
    let answer = loop {
        match tokio::time::timeout(PATIENCE, stream.next()).await.expect("the server answers the close in time") {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| (u16::from(f.code), f.reason.to_string())),
            Some(Ok(_)) => {}
            other => panic!("the server did not answer the close: {other:?}"),
        }
    };
    let end = tokio::time::timeout(PATIENCE, stream.next()).await.expect("the server ends the connection in time");
    assert!(end.is_none(), "nothing after the close: {end:?}");
    (answer, started.elapsed())
}

/// Opens a WebSocket to `url` on a socket with a small receive buffer (4 KiB): once such a client
/// stops reading, chatd's writes to it are held up after a few frames.
pub async fn connect_small(url: String) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
    let address = url.trim_start_matches("ws://").split('/').next().expect("a host and port").to_owned();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(address.parse().expect("an IP address and port")).await.unwrap();
    let (stream, _) =
        tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp)).await.expect("the WebSocket upgrade succeeds");
    stream
}
