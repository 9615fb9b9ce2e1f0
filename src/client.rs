//! A minimal HTTP/1.1 client on hyper, for the CLI talking to a running daemon (`pay`) and for the
//! integration tests. Loopback only, no TLS, one request per connection.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;

pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    /// The first `Set-Cookie` header, if any.
    pub set_cookie: Option<String>,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Response {
    /// A response header as text, if present and readable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

const TIMEOUT: Duration = Duration::from_secs(30);

pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> std::io::Result<Response> {
    tokio::time::timeout(TIMEOUT, send(addr, method, path, headers, body.into()))
        .await
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no reply from {addr} in {TIMEOUT:?}"),
            )
        })?
}

async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> std::io::Result<Response> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(other)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(Full::new(body)).map_err(other)?;
    let response = sender.send_request(request).await.map_err(other)?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.map_err(other)?.to_bytes();
    Ok(Response {
        status,
        content_type,
        set_cookie,
        headers,
        body,
    })
}

fn other(e: impl std::error::Error + Send + Sync + 'static) -> std::io::Error {
    std::io::Error::other(e)
}
