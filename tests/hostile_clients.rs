//! Hostile and broken HTTP clients against the real daemon's webhook listener (the one the tunnel
//! exposes): oversized bodies, slow senders, idle connections, header floods, and a stop while
//! such clients hang on. Every attack is bounded in bytes, connections and time, and talks only to
//! the daemon on 127.0.0.1.
//!
//! After each attack: the daemon's VmRSS has grown by less than `RSS_CAP_KIB`, its log shows no
//! panic, and a normal Payme CheckPerformTransaction is answered. While the slow attacks run, a
//! normal request on another connection must be answered within `PROMPT` (a sanity bound, not a
//! benchmark).

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Growth of the daemon's resident memory an attack may cause.
const RSS_CAP_KIB: u64 = 64 * 1024;
/// A normal request during or after an attack is answered within this.
const PROMPT: Duration = Duration::from_secs(5);
/// The webhook's deadline for a request body (`http/webhook.rs`).
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client trickling its headers (or sending nothing) may hold a connection.
const HEADER_DEADLINE: Duration = Duration::from_secs(15);

fn rss_kib(pid: u32) -> u64 {
    status_field(pid, "VmRSS:").expect("the daemon's VmRSS")
}

/// A daemon with one order, warmed up by one request, and its resident memory at that point.
struct Target {
    d: Daemon,
    order: String,
    amount: i64,
    rss_before: u64,
}

impl Target {
    async fn start() -> Target {
        let d = Daemon::start().await;
        let (order, amount) = d.new_order(1).await;
        let t = Target {
            rss_before: 0,
            d,
            order,
            amount,
        };
        t.check_perform().await;
        Target {
            rss_before: rss_kib(t.d.pid()),
            ..t
        }
    }

    fn body(&self, id: i64) -> String {
        json!({
            "method": "CheckPerformTransaction",
            "params": { "amount": self.amount, "account": account(&self.order) },
            "id": id,
        })
        .to_string()
    }

    /// A normal CheckPerformTransaction on its own connection, answered `allow: true` within `PROMPT`.
    async fn check_perform(&self) -> Duration {
        let started = Instant::now();
        let v = tokio::time::timeout(
            PROMPT,
            self.d.rpc(
                "CheckPerformTransaction",
                json!({ "amount": self.amount, "account": account(&self.order) }),
            ),
        )
        .await
        .unwrap_or_else(|_| panic!("a normal Payme request was not answered within {PROMPT:?}"));
        assert_eq!(v["result"]["allow"], true, "{v}");
        started.elapsed()
    }

    /// The daemon survived: still running, no panic logged, memory within the cap, still answering.
    async fn assert_healthy(&self, attack: &str) {
        let took = self.check_perform().await;
        let rss = rss_kib(self.d.pid());
        let log = self.d.log();
        assert!(!log.contains("panicked"), "{attack}: the daemon panicked:\n{log}");
        eprintln!(
            "{attack}: VmRSS {} → {rss} KiB (+{} KiB); a normal request afterwards took {took:?}",
            self.rss_before,
            rss.saturating_sub(self.rss_before)
        );
        assert!(
            rss <= self.rss_before + RSS_CAP_KIB,
            "{attack}: VmRSS grew from {} KiB to {rss} KiB",
            self.rss_before
        );
    }
}

/// What a raw client saw.
#[derive(Debug)]
enum Outcome {
    /// A complete HTTP response.
    Response {
        status: u16,
        body: Vec<u8>,
        after: Duration,
    },
    /// EOF or a reset before a complete response; `partial` is whatever arrived.
    Closed { partial: Vec<u8>, after: Duration },
    /// Nothing conclusive before the deadline.
    StillOpen,
}

/// Reads one HTTP/1.1 response (Content-Length or none), or notes the connection closing.
async fn read_response(mut r: impl AsyncReadExt + Unpin, started: Instant, limit: Duration) -> Outcome {
    let mut buf = Vec::new();
    let deadline = started + limit;
    loop {
        if let Some(done) = parse_response(&buf) {
            return match done {
                Ok((status, body)) => Outcome::Response {
                    status,
                    body,
                    after: started.elapsed(),
                },
                Err(()) => Outcome::Closed {
                    partial: buf,
                    after: started.elapsed(),
                },
            };
        }
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout_at(deadline.into(), r.read(&mut chunk)).await {
            Err(_) => return Outcome::StillOpen,
            Ok(Ok(0)) | Ok(Err(_)) => {
                // A response without Content-Length ends at EOF.
                if let Some((status, body)) = parse_head(&buf).map(|(s, h)| (s, buf[h..].to_vec())) {
                    return Outcome::Response {
                        status,
                        body,
                        after: started.elapsed(),
                    };
                }
                return Outcome::Closed {
                    partial: buf,
                    after: started.elapsed(),
                };
            }
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
        assert!(buf.len() < 1 << 20, "the daemon sent more than 1 MiB");
    }
}

/// `(status, head length)` once the head is complete.
fn parse_head(buf: &[u8]) -> Option<(u16, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, end))
}

/// `Some(Ok)` for a complete response with a Content-Length, `None` while incomplete.
fn parse_response(buf: &[u8]) -> Option<Result<(u16, Vec<u8>), ()>> {
    let (status, head_len) = parse_head(buf)?;
    let head = String::from_utf8_lossy(&buf[..head_len]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())?;
    (buf.len() >= head_len + length).then(|| Ok((status, buf[head_len..head_len + length].to_vec())))
}

fn head(addr: SocketAddr, auth: Option<&str>, framing: &str) -> String {
    let auth = auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    format!("POST /payme HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: text/json; charset=UTF-8\r\n{framing}\r\n")
}

/// Sends `head` and then up to `body_len` bytes of body (raw or as 64 KiB chunks) while reading
/// the reply on the same connection; stops writing once the daemon has answered or closed.
async fn post_big(addr: SocketAddr, auth: Option<&str>, body_len: usize, chunked: bool) -> (Outcome, usize) {
    let framing = if chunked {
        "Transfer-Encoding: chunked\r\n".to_string()
    } else {
        format!("Content-Length: {body_len}\r\n")
    };
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (r, mut w) = stream.into_split();
    let started = Instant::now();
    let reader = tokio::spawn(read_response(r, started, Duration::from_secs(20)));
    let request_head = head(addr, auth, &framing);
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let writer = tokio::spawn(async move {
        if w.write_all(request_head.as_bytes()).await.is_err() {
            return;
        }
        // A body that is valid JSON so far, so nothing but its size is wrong.
        let piece = {
            let mut p = b"{\"method\":\"CheckPerformTransaction\",\"params\":{\"pad\":\"".to_vec();
            p.resize(64 * 1024, b'a');
            p
        };
        let mut sent = 0;
        while sent < body_len {
            let n = piece.len().min(body_len - sent);
            let wrote = if chunked {
                let mut frame = format!("{n:x}\r\n").into_bytes();
                frame.extend_from_slice(&piece[..n]);
                frame.extend_from_slice(b"\r\n");
                w.write_all(&frame).await
            } else {
                w.write_all(&piece[..n]).await
            };
            if wrote.is_err() {
                break;
            }
            sent += n;
            counter.store(sent, Ordering::Relaxed);
        }
        if chunked && sent >= body_len {
            let _ = w.write_all(b"0\r\n\r\n").await;
        }
        // Keep the write half open until the reader is done (dropping it would half-close).
        tokio::time::sleep(Duration::from_secs(20)).await;
        drop(w);
    });
    let outcome = reader.await.expect("reader");
    writer.abort();
    let _ = writer.await;
    (outcome, sent.load(Ordering::Relaxed))
}

/// The reply to an oversized body: a JSON-RPC error with HTTP 200 (-32600, or -32504 without the
/// key), or a 413, or the connection cut. Anything else, or no end within 20 s, fails.
fn assert_bounded_reply(what: &str, outcome: &Outcome, expected_code: i64) {
    match outcome {
        Outcome::Response {
            status: 200,
            body,
            after,
        } => {
            let v: Value = serde_json::from_slice(body).unwrap_or_else(|e| panic!("{what}: reply is not JSON: {e}"));
            assert_eq!(error_code(&v), expected_code, "{what}: {v}");
            assert_eq!(v["id"], Value::Null, "{what}: {v}");
            eprintln!("{what}: HTTP 200 JSON-RPC {expected_code} after {after:?}");
        }
        Outcome::Response { status: 413, after, .. } => eprintln!("{what}: HTTP 413 after {after:?}"),
        Outcome::Response { status, body, .. } => {
            panic!("{what}: HTTP {status}: {}", String::from_utf8_lossy(body))
        }
        Outcome::Closed { partial, after } => eprintln!(
            "{what}: connection closed after {after:?} with {} bytes of reply",
            partial.len()
        ),
        Outcome::StillOpen => panic!("{what}: no reply and no close within 20 s"),
    }
}

#[tokio::test]
async fn oversized_bodies_get_a_bounded_reply() {
    let t = Target::start().await;
    let auth = basic_header_for_tests();
    for (what, len, chunked, auth, code) in [
        ("1 MB Content-Length", 1 << 20, false, Some(auth.as_str()), -32600),
        ("10 MB Content-Length", 10 << 20, false, Some(auth.as_str()), -32600),
        ("10 MB chunked", 10 << 20, true, Some(auth.as_str()), -32600),
        ("10 MB chunked, no key", 10 << 20, true, None, -32504),
    ] {
        let (outcome, sent) = post_big(t.d.webhook, auth, len, chunked).await;
        eprintln!("{what}: the client wrote {sent} body bytes before the reply");
        assert_bounded_reply(what, &outcome, code);
    }
    // The same, ten at once.
    let attacks: Vec<_> = (0..10)
        .map(|i| {
            let auth = auth.clone();
            let addr = t.d.webhook;
            tokio::spawn(async move { post_big(addr, Some(&auth), 10 << 20, i % 2 == 0).await })
        })
        .collect();
    for a in attacks {
        let (outcome, _) = a.await.expect("attack");
        assert_bounded_reply("10 concurrent 10 MB bodies", &outcome, -32600);
    }
    t.assert_healthy("oversized bodies").await;
}

fn basic_header_for_tests() -> String {
    photoboothd::payme::auth::basic_header(KEY)
}

#[tokio::test]
async fn a_body_sent_one_byte_per_second_times_out_while_others_are_served() {
    let t = Target::start().await;
    let body = t.body(7);
    let stream = TcpStream::connect(t.d.webhook).await.expect("connect");
    let (r, mut w) = stream.into_split();
    let started = Instant::now();
    let request_head = head(
        t.d.webhook,
        Some(&basic_header_for_tests()),
        &format!("Content-Length: {}\r\n", body.len()),
    );
    w.write_all(request_head.as_bytes()).await.expect("head");
    let reader = tokio::spawn(read_response(r, started, Duration::from_secs(25)));
    // One byte a second, never the whole body: at most 25 bytes, and only while the reply is pending.
    let trickle = tokio::spawn(async move {
        for &b in body.as_bytes().iter().take(25) {
            if w.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        w
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let took = t.check_perform().await;
    eprintln!("slow body: a normal request during it took {took:?}");

    let outcome = reader.await.expect("reader");
    trickle.abort();
    match &outcome {
        Outcome::Response { status, body, after } => {
            assert_eq!(*status, 200, "{}", String::from_utf8_lossy(body));
            let v: Value = serde_json::from_slice(body).expect("JSON reply");
            assert_eq!(error_code(&v), -32600, "{v}");
            assert_eq!(v["error"]["data"], "body", "{v}");
            assert!(
                *after >= BODY_TIMEOUT - Duration::from_millis(500) && *after <= BODY_TIMEOUT + Duration::from_secs(5),
                "the slow body was cut off after {after:?}, expected about {BODY_TIMEOUT:?}"
            );
            eprintln!("slow body: JSON-RPC -32600 (data \"body\") after {after:?}");
        }
        other => panic!("slow body: expected a JSON-RPC -32600 after about {BODY_TIMEOUT:?}, got {other:?}"),
    }
    t.assert_healthy("slow body").await;
}

/// Trickles `bytes` one at a time every `every` until the daemon closes (or answers) or `limit`
/// passes. Returns what happened and how many bytes went out.
async fn trickle(addr: SocketAddr, bytes: Vec<u8>, every: Duration, limit: Duration) -> (Outcome, usize) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut r, mut w) = stream.into_split();
    let started = Instant::now();
    let deadline = started + limit;
    let mut sent = 0;
    let mut buf = Vec::new();
    let mut next = tokio::time::Instant::now();
    loop {
        let mut chunk = [0u8; 4096];
        tokio::select! {
            read = r.read(&mut chunk) => match read {
                Ok(0) | Err(_) => {
                    let outcome = match parse_head(&buf) {
                        Some((status, h)) => Outcome::Response { status, body: buf[h..].to_vec(), after: started.elapsed() },
                        None => Outcome::Closed { partial: buf, after: started.elapsed() },
                    };
                    return (outcome, sent);
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            },
            _ = tokio::time::sleep_until(next) => {
                if Instant::now() >= deadline {
                    return (Outcome::StillOpen, sent);
                }
                if sent < bytes.len() && w.write_all(&bytes[sent..sent + 1]).await.is_ok() {
                    sent += 1;
                }
                next += every;
            }
        }
    }
}

#[tokio::test]
async fn headers_trickled_one_byte_per_500_ms_are_cut_off() {
    let t = Target::start().await;
    let body = t.body(8);
    let request = format!(
        "{}{body}",
        head(
            t.d.webhook,
            Some(&basic_header_for_tests()),
            &format!("Content-Length: {}\r\n", body.len())
        )
    );
    let addr = t.d.webhook;
    let limit = HEADER_DEADLINE + Duration::from_secs(5);
    let slow = tokio::spawn(trickle(addr, request.into_bytes(), Duration::from_millis(500), limit));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let took = t.check_perform().await;
    eprintln!("slow headers: a normal request during it took {took:?}");
    let (outcome, sent) = slow.await.expect("trickle");
    match outcome {
        Outcome::Closed { after, .. } => {
            eprintln!("slow headers: closed after {after:?} and {sent} bytes");
            assert!(after <= HEADER_DEADLINE, "closed only after {after:?}");
        }
        Outcome::Response { status, after, .. } => {
            eprintln!("slow headers: HTTP {status} after {after:?} and {sent} bytes");
            assert!(matches!(status, 408 | 400), "HTTP {status} to a trickled head");
            assert!(after <= HEADER_DEADLINE, "answered only after {after:?}");
        }
        Outcome::StillOpen => panic!(
            "slow headers: the daemon still held the connection after {limit:?} ({sent} header bytes sent); \
             it needs a header read timeout"
        ),
    }
    t.assert_healthy("slow headers").await;
}

#[tokio::test]
async fn idle_connections_that_send_nothing_are_closed() {
    let t = Target::start().await;
    let mut idle = Vec::new();
    for _ in 0..50 {
        idle.push(TcpStream::connect(t.d.webhook).await.expect("connect"));
    }
    let started = Instant::now();
    let mut closed = 0;
    for mut s in idle {
        let left = (started + HEADER_DEADLINE + Duration::from_secs(5)).saturating_duration_since(Instant::now());
        let mut byte = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(left, s.read(&mut byte)).await {
            closed += 1;
        }
    }
    let after = started.elapsed();
    eprintln!("idle connections: {closed} of 50 closed by the daemon after {after:?}");
    assert_eq!(closed, 50, "idle connections still open after {after:?}");
    assert!(
        after <= HEADER_DEADLINE + Duration::from_secs(1),
        "closed only after {after:?}"
    );
    t.assert_healthy("idle connections").await;
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn five_hundred_idle_connections_do_not_lock_payme_out() {
    let t = Target::start().await;
    let addr = t.d.webhook;
    let fds_before = open_fds(t.d.pid());
    // All at once, each connect bounded: a connect the kernel cannot complete (accept queue full)
    // is given up after 3 s, as an attacker would not wait for it either.
    let attempts: Vec<_> = (0..500)
        .map(|_| tokio::spawn(tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(addr))))
        .collect();
    let mut idle = Vec::with_capacity(500);
    for a in attempts {
        if let Ok(Ok(Ok(s))) = a.await {
            idle.push(s);
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let held = open_fds(t.d.pid()).saturating_sub(fds_before);
    eprintln!(
        "500 idle connections: {} connected, the daemon holds {held} of them",
        idle.len()
    );
    let started = Instant::now();
    let took = tokio::time::timeout(
        Duration::from_secs(30),
        t.d.rpc(
            "CheckPerformTransaction",
            json!({ "amount": t.amount, "account": account(&t.order) }),
        ),
    )
    .await
    .map(|v| {
        assert_eq!(v["result"]["allow"], true, "{v}");
        started.elapsed()
    });
    eprintln!("500 idle connections: a normal request took {took:?}");
    let took = took.expect("a normal request was not answered within 30 s behind 500 idle connections");
    assert!(
        took <= PROMPT,
        "a normal request while {} idle connections were open ({held} held by the daemon) took {took:?}, more than {PROMPT:?}",
        idle.len()
    );
    drop(idle);
    t.assert_healthy("500 idle connections").await;
}

/// Sends `request` while reading; the outcome must be a 431 (or 400/413/414) or a close, quickly.
async fn flood(addr: SocketAddr, request: Vec<u8>) -> Outcome {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (r, mut w) = stream.into_split();
    let started = Instant::now();
    let reader = tokio::spawn(read_response(r, started, Duration::from_secs(10)));
    let writer = tokio::spawn(async move {
        for piece in request.chunks(64 * 1024) {
            if w.write_all(piece).await.is_err() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(w);
    });
    let outcome = reader.await.expect("reader");
    writer.abort();
    outcome
}

fn assert_rejected(what: &str, outcome: &Outcome) {
    match outcome {
        Outcome::Response { status, after, .. } => {
            eprintln!("{what}: HTTP {status} after {after:?}");
            assert!(matches!(status, 431 | 400 | 413 | 414), "{what}: HTTP {status}");
        }
        Outcome::Closed { partial, after } => {
            eprintln!("{what}: closed after {after:?} ({} bytes of reply)", partial.len())
        }
        Outcome::StillOpen => panic!("{what}: neither rejected nor closed within 10 s"),
    }
}

#[tokio::test]
async fn header_floods_are_rejected() {
    let t = Target::start().await;
    let addr = t.d.webhook;
    let auth = basic_header_for_tests();
    let body = t.body(9);

    let mut many = format!("POST /payme HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\n");
    for i in 0..10_000 {
        many.push_str(&format!("X-Flood-{i}: {i}\r\n"));
    }
    many.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    assert_rejected("10 000 headers", &flood(addr, many.clone().into_bytes()).await);

    let mut long = format!("POST /payme HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nX-Long: ");
    long.push_str(&"a".repeat(1 << 20));
    long.push_str(&format!("\r\nContent-Length: {}\r\n\r\n{body}", body.len()));
    assert_rejected("a 1 MB header line", &flood(addr, long.clone().into_bytes()).await);

    let uri = format!(
        "POST /payme?{} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Length: {}\r\n\r\n{body}",
        "q".repeat(1 << 20),
        body.len()
    );
    assert_rejected("a 1 MB request line", &flood(addr, uri.into_bytes()).await);

    // Twenty at once, alternating the two kinds.
    let attacks: Vec<_> = (0..20)
        .map(|i| {
            let request = if i % 2 == 0 { many.clone() } else { long.clone() };
            tokio::spawn(flood(addr, request.into_bytes()))
        })
        .collect();
    for a in attacks {
        assert_rejected("20 concurrent header floods", &a.await.expect("flood"));
    }
    t.assert_healthy("header floods").await;
}

extern "C" {
    #[link_name = "kill"]
    fn sys_kill(pid: i32, sig: i32) -> i32;
}

/// Whether the process has exited (it stays a zombie until the harness reaps it).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(status) => status.lines().any(|l| l.starts_with("State:") && l.contains('Z')),
        Err(_) => true,
    }
}

#[tokio::test]
async fn sigterm_stops_the_daemon_while_hostile_clients_hang_on() {
    let t = Target::start().await;
    let addr = t.d.webhook;
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(addr).await.expect("connect"));
    }
    let request = head(addr, Some(&basic_header_for_tests()), "Content-Length: 100\r\n").into_bytes();
    let slow_head = tokio::spawn(trickle(
        addr,
        request,
        Duration::from_millis(500),
        Duration::from_secs(30),
    ));
    let body = t.body(10);
    let slow_body = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let h = head(
            addr,
            Some(&basic_header_for_tests()),
            &format!("Content-Length: {}\r\n", body.len()),
        );
        let _ = s.write_all(h.as_bytes()).await;
        for &b in body.as_bytes().iter().take(30) {
            if s.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;

    let pid = t.d.pid();
    let started = Instant::now();
    // SAFETY: kill(2) with a valid pid and signal has no memory effects.
    unsafe { sys_kill(pid as i32, 15) };
    let limit = Duration::from_secs(15);
    while !exited(pid) && started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    slow_head.abort();
    slow_body.abort();
    drop(idle);
    eprintln!(
        "SIGTERM with 20 idle, 1 slow-head and 1 slow-body clients: exited={} after {took:?}",
        exited(pid)
    );
    assert!(
        exited(pid),
        "the daemon did not exit within {limit:?} of SIGTERM while clients hung on"
    );
    let log = t.d.log();
    assert!(!log.contains("panicked"), "{log}");
}
