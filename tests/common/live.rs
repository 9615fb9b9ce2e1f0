//! A live view viewer for tests and benches: `GET /api/camera/live` over a plain HTTP/1.0
//! connection (so the body is not chunked), the multipart stream split into its JPEG frames.
#![allow(dead_code)]

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct LiveReader {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The response's Content-Type.
    pub content_type: String,
}

impl LiveReader {
    /// Connects and reads the response head; `Err` with the status line unless it is 200.
    pub async fn connect(addr: SocketAddr) -> Result<LiveReader, String> {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        stream
            .write_all(b"GET /api/camera/live HTTP/1.0\r\nHost: booth\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut r = LiveReader {
            stream,
            buf: Vec::new(),
            content_type: String::new(),
        };
        let head = r.until(b"\r\n\r\n").await.ok_or("no response head")?;
        let head = String::from_utf8_lossy(&head).into_owned();
        let status = head.lines().next().unwrap_or_default().to_string();
        if !status.contains(" 200 ") {
            return Err(head);
        }
        r.content_type = header(&head, "content-type").unwrap_or_default();
        Ok(r)
    }

    /// The next frame's bytes; `None` when the stream ends or is malformed.
    pub async fn next_frame(&mut self) -> Option<Vec<u8>> {
        let head = self.until(b"\r\n\r\n").await?;
        let head = String::from_utf8_lossy(&head).into_owned();
        if !head.trim_start().starts_with("--frame") {
            return None;
        }
        let len: usize = header(&head, "content-length")?.parse().ok()?;
        let mut frame = self.take(len + 2).await?;
        if !frame.ends_with(b"\r\n") {
            return None;
        }
        frame.truncate(len);
        Some(frame)
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// Everything up to and including `end`.
    async fn until(&mut self, end: &[u8]) -> Option<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.windows(end.len()).position(|w| w == end) {
                return Some(self.buf.drain(..i + end.len()).collect());
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    async fn take(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill().await {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

/// A frame's pixel size from its JPEG header, if it is a JPEG (starts FF D8, ends FF D9).
pub fn jpeg_size(frame: &[u8]) -> Option<(u32, u32)> {
    if !(frame.starts_with(&[0xFF, 0xD8]) && frame.ends_with(&[0xFF, 0xD9])) {
        return None;
    }
    image::ImageReader::with_format(std::io::Cursor::new(frame), image::ImageFormat::Jpeg)
        .into_dimensions()
        .ok()
}
