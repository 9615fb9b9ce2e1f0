//! The ceiling for the webhook benchmark: a bare axum server on the daemon's runtime settings
//! (multi-thread, two workers) that answers every `POST /payme` with a fixed reply. No auth, no
//! JSON parsing, no SQLite: what is left is the HTTP stack itself, so the daemon's rate divided by
//! this one's, in the same run, says how much of the stack's limit our own work leaves.
//!
//!   cargo bench --bench bare_axum --no-run      # builds it (bench profile = release)
//!   BARE_REPLY='{"jsonrpc":"2.0",...}' target/release/deps/bare_axum-*  # prints "listening ADDR"
//!
//! With `BARE_SQLITE=1` each request also does what a CheckPerformTransaction must do in the store
//! and nothing else: one read transaction on a WAL database with one statement (the order by id
//! joined to its live transaction), the daemon's own statement shape. That is the second anchor: the
//! HTTP stack plus the store read no implementation of Check can skip.
//!
//! `scripts/bench/payme_wrk.sh` builds and runs it beside the daemon (BENCHMARKS.md, "Webhook").

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::header;
use axum::routing::post;
use axum::Router;

fn main() {
    // `cargo bench` runs every bench target with `--bench`: this one is a server, not a benchmark.
    if std::env::args().any(|a| a == "--bench") {
        println!("bare_axum: a server for scripts/bench/payme_wrk.sh; nothing to measure on its own");
        return;
    }
    let reply = Bytes::from(
        std::env::var("BARE_REPLY").unwrap_or_else(|_| r#"{"jsonrpc":"2.0","id":1,"result":{"allow":true}}"#.into()),
    );
    let listen = std::env::var("BARE_LISTEN").unwrap_or_else(|_| "127.0.0.1:0".into());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return eprintln!("bare_axum: cannot start the runtime: {e}"),
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(&listen).await {
            Ok(l) => l,
            Err(e) => return eprintln!("bare_axum: cannot listen on {listen}: {e}"),
        };
        if let Ok(addr) = listener.local_addr() {
            println!("listening {addr}");
            let _ = std::io::stdout().flush();
        }
        let store = match std::env::var_os("BARE_SQLITE") {
            Some(_) => match store() {
                Ok(s) => Some(Arc::new(Mutex::new(s))),
                Err(e) => return eprintln!("bare_axum: cannot set up SQLite: {e}"),
            },
            None => None,
        };
        // The body is read (as the daemon reads it) and dropped.
        let app = Router::new().route(
            "/payme",
            post(move |_body: Bytes| {
                let reply = reply.clone();
                let found = store
                    .as_ref()
                    .map(|s| lookup(&s.lock().unwrap_or_else(|p| p.into_inner())));
                async move {
                    if let Some(Err(e)) = found {
                        eprintln!("bare_axum: lookup failed: {e}");
                    }
                    ([(header::CONTENT_TYPE, "application/json; charset=UTF-8")], reply)
                }
            }),
        );
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("bare_axum: {e}");
        }
    });
}

/// A WAL database in a temporary directory with one order and no transaction, as in the bench.
fn store() -> Result<(rusqlite::Connection, tempfile::TempDir), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let conn = rusqlite::Connection::open(dir.path().join("bare.db")).map_err(|e| e.to_string())?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         CREATE TABLE orders (id INTEGER PRIMARY KEY, copies INTEGER, amount_tiyin INTEGER, status TEXT,
                              created_at INTEGER, expires_at INTEGER);
         CREATE TABLE transactions (id INTEGER PRIMARY KEY, order_id INTEGER, state INTEGER, payme_time INTEGER);
         CREATE INDEX transactions_order ON transactions(order_id);
         INSERT INTO orders VALUES (1, 1, 2000000, 'open', 0, 9000000000000);",
    )
    .map_err(|e| e.to_string())?;
    Ok((conn, dir))
}

/// The store work of a Check in the daemon's shape (`store::transactions::order_with_live`): one
/// snapshot, one statement for the order by id and its live transaction.
fn lookup((conn, _): &(rusqlite::Connection, tempfile::TempDir)) -> rusqlite::Result<i64> {
    conn.prepare_cached("BEGIN")?.execute([])?;
    let (amount, live) = conn
        .prepare_cached(
            "SELECT o.amount_tiyin, t.state FROM orders o
             LEFT JOIN transactions t ON t.order_id = o.id AND t.state IN (1, 2)
             WHERE o.id = ?1",
        )?
        .query_row([1], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?)))?;
    conn.prepare_cached("COMMIT")?.execute([])?;
    Ok(amount + live.unwrap_or(0))
}
