//! A lean HTTP/1.1 keep-alive client: one connection per task, requests in sequence, so a task's
//! latency is one request's latency.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

/// One keep-alive connection to chatd.
#[derive(Debug)]
pub(crate) struct Connection {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

/// What came back.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

impl Connection {
    pub(crate) async fn open(port: u16) -> Result<Self, String> {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
        stream.set_nodelay(true).ok();
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        Ok(Self { sender, host: format!("127.0.0.1:{port}") })
    }

    pub(crate) async fn get(&mut self, path: &str, token: &str) -> Result<Reply, String> {
        self.send("GET", path, token, Bytes::new()).await
    }

    pub(crate) async fn post(&mut self, path: &str, token: &str, body: Bytes) -> Result<Reply, String> {
        self.send("POST", path, token, body).await
    }

    pub(crate) async fn delete(&mut self, path: &str, token: &str) -> Result<Reply, String> {
        self.send("DELETE", path, token, Bytes::new()).await
    }

    async fn send(&mut self, method: &str, path: &str, token: &str, body: Bytes) -> Result<Reply, String> {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .header("x-auth-token", token)
            .header("content-type", "application/json")
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let response = self.sender.send_request(request).await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(Reply { status, body })
    }
}
