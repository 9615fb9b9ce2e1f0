//! The ceiling for the webhook benchmark: a bare axum server on the daemon's runtime settings
//! (multi-thread, two workers) that answers every `POST /payme` with a fixed reply. No auth, no
//! JSON parsing, no SQLite: what is left is the HTTP stack itself, so the daemon's rate divided by
//! this one's, in the same run, says how much of the stack's limit our own work leaves.
//!
//!   cargo bench --bench bare_axum --no-run      # builds it (bench profile = release)
//!   BARE_REPLY='{"jsonrpc":"2.0",...}' target/release/deps/bare_axum-*  # prints "listening ADDR"
//!
//! `scripts/bench/payme_wrk.sh` builds and runs it beside the daemon (BENCHMARKS.md, "Webhook").

use std::io::Write;

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
        // The body is read (as the daemon reads it) and dropped.
        let app = Router::new().route(
            "/payme",
            post(move |_body: Bytes| {
                let reply = reply.clone();
                async move { ([(header::CONTENT_TYPE, "application/json; charset=UTF-8")], reply) }
            }),
        );
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("bare_axum: {e}");
        }
    });
}
