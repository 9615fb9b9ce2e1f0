//! `POST /payme`: checks the key before anything else (a stranger costs no body read and no blocking
//! thread), then reads the raw body itself (Payme sends `text/json`, and bad JSON must still get a
//! JSON-RPC -32700 with HTTP 200), bounds its size and its arrival time, and hands it to the
//! merchant: point lookups in place, writes and scans on a blocking thread. Every reply on /payme is
//! HTTP 200.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use http_body_util::{BodyExt, Limited};
use serde_json::Value;

use super::{json, json_bytes};
use crate::metrics::Metrics;
use crate::payme::rpc::{self, RpcError};
use crate::payme::{Merchant, Prepared, Reply, MAX_BODY_BYTES};

/// A sender slower than this is not Payme; its connection must not hold a slot for long.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// A request without the right key has its body read (for the id to echo) only up to this size,
/// a few times what Payme sends, and only if it arrives within this time.
const STRANGER_BODY_BYTES: usize = 4 * 1024;
const STRANGER_BODY_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Webhook {
    pub merchant: Arc<Merchant>,
    pub metrics: Arc<Metrics>,
}

pub fn router(state: Webhook) -> Router {
    Router::new()
        .route("/payme", any(payme))
        .fallback(|| async { json(StatusCode::NOT_FOUND, &serde_json::json!({ "error": "not found" })) })
        .with_state(state)
}

async fn payme(State(state): State<Webhook>, request: Request) -> Response {
    let started = Instant::now();
    // Taken apart rather than extracted: the `HeaderMap` extractor clones every header, a visible
    // share of a Check's time (BENCHMARKS.md, issue 17).
    let (parts, body) = request.into_parts();
    let handled = handle(&state.merchant, &parts.method, &parts.headers, body).await;
    state
        .metrics
        .observe_webhook(handled.method, handled.error_code, started.elapsed());
    handled.response
}

/// A reply with what metrics record about it.
struct Handled {
    response: Response,
    method: Option<&'static str>,
    error_code: Option<i64>,
}

/// An error reply before any method ran.
fn refused(error: &RpcError) -> Handled {
    Handled {
        response: ok(&rpc::reply_err(&Value::Null, error)),
        method: None,
        error_code: Some(error.code),
    }
}

async fn handle(merchant: &Arc<Merchant>, method: &Method, headers: &HeaderMap, body: Body) -> Handled {
    if method != Method::POST {
        return refused(&RpcError::not_post());
    }
    let authorization = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    // Credentials before the body: a stranger costs no body read and no blocking thread.
    if !merchant.authorized(authorization) {
        merchant.note_rejected();
        let id = stranger_id(headers, body).await;
        let error = RpcError::unauthorized();
        return Handled {
            response: ok(&rpc::reply_err(&id, &error)),
            method: None,
            error_code: Some(error.code),
        };
    }
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY_BYTES).collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) => {
            // Too large, or the connection broke mid-body. Without a body there is no id to echo.
            tracing::warn!(error = %e, "payme: request body rejected");
            return refused(&RpcError::too_large());
        }
        Err(_) => {
            tracing::warn!("payme: request body did not arrive in time");
            return refused(&RpcError::invalid("body"));
        }
    };
    // Auth, JSON and the envelope are checked here; a point lookup (Check, CheckTransaction) runs
    // in place on a free reader connection. Only writes and scans pay the hop to a blocking thread
    // (a hop per request was half our time per Check: BENCHMARKS.md, "Webhook").
    let call = match merchant.prepare_authorized(&bytes) {
        Prepared::Done(reply) => return finish(reply),
        Prepared::Call(call) => call,
    };
    if let Some(reply) = merchant.call_in_place(&call) {
        return finish(reply);
    }
    let merchant = merchant.clone();
    let reply = match tokio::task::spawn_blocking(move || merchant.call(&call)).await {
        Ok(reply) => reply,
        Err(e) => {
            tracing::error!(error = %e, "payme: handler failed, replying -32400");
            return refused(&RpcError::system());
        }
    };
    finish(reply)
}

fn finish(reply: Reply) -> Handled {
    tracing::debug!(method = reply.method, code = reply.error_code, "payme: replied");
    Handled {
        response: json_bytes(StatusCode::OK, reply.body),
        method: reply.method,
        error_code: reply.error_code,
    }
}

/// The id to echo in a -32504 (Payme expects its id back). Read only from a body that declares a
/// size Payme's requests have and arrives at once; anything else gets `null` without a read.
async fn stranger_id(headers: &HeaderMap, body: Body) -> Value {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_none_or(|n| n > STRANGER_BODY_BYTES) {
        return Value::Null;
    }
    match tokio::time::timeout(STRANGER_BODY_TIMEOUT, Limited::new(body, STRANGER_BODY_BYTES).collect()).await {
        Ok(Ok(collected)) => rpc::Envelope::read(&collected.to_bytes())
            .map(|envelope| envelope.id)
            .unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

fn ok(body: &Value) -> Response {
    json(StatusCode::OK, body)
}
