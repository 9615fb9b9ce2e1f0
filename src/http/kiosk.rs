//! The kiosk API on the loopback listener: create an order with its checkout QR, follow it.
//! Errors are HTTP 4xx/5xx with `{"error": "..."}`: the kiosk page is ours, not Payme.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json as j, Value};
use tower_http::timeout::TimeoutLayer;

use super::json;
use crate::booth::{Booth, OrderError};
use crate::layout::qr;

const MAX_BODY_BYTES: usize = 16 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

pub fn router(booth: Arc<Booth>) -> Router {
    Router::new()
        .route("/api/generate-qr", post(generate_qr))
        .route("/api/orders/{id}", get(order))
        .route("/api/orders/{id}/qr.png", get(order_qr))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not found") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(booth)
}

fn error(status: StatusCode, message: &str) -> Response {
    json(status, &j!({ "error": message }))
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "kiosk API failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the booth cannot reach its database; please call staff",
    )
}

/// `{"copies": N}` → a new order awaiting payment, with its checkout link and QR.
async fn generate_qr(State(booth): State<Arc<Booth>>, body: Bytes) -> Response {
    let copies = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => v.get("copies").and_then(Value::as_u64),
        Err(_) => return error(StatusCode::BAD_REQUEST, "the body must be JSON like {\"copies\": 2}"),
    };
    let max = booth.config().booth.max_copies;
    let Some(copies) = copies.and_then(|c| u32::try_from(c).ok()) else {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("copies must be a whole number from 1 to {max}"),
        );
    };
    match tokio::task::spawn_blocking(move || booth.create_order(copies)).await {
        Ok(Ok(view)) => json(StatusCode::OK, &j!(view)),
        Ok(Err(OrderError::InvalidCopies { max })) => error(
            StatusCode::BAD_REQUEST,
            &format!("copies must be a whole number from 1 to {max}"),
        ),
        Ok(Err(OrderError::Store(e))) => internal(e),
        Err(e) => internal(e),
    }
}

fn parse_id(id: &str) -> Option<i64> {
    id.parse::<i64>().ok().filter(|id| *id > 0)
}

async fn order(State(booth): State<Arc<Booth>>, Path(id): Path<String>) -> Response {
    let Some(id) = parse_id(&id) else {
        return error(StatusCode::NOT_FOUND, "no such order");
    };
    match tokio::task::spawn_blocking(move || booth.order(id)).await {
        Ok(Ok(Some(view))) => json(StatusCode::OK, &j!(view)),
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, "no such order"),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

async fn order_qr(State(booth): State<Arc<Booth>>, Path(id): Path<String>) -> Response {
    let Some(id) = parse_id(&id) else {
        return error(StatusCode::NOT_FOUND, "no such order");
    };
    let rendered =
        tokio::task::spawn_blocking(move || booth.order(id).map(|view| view.map(|v| qr::png(&v.checkout_url)))).await;
    match rendered {
        Ok(Ok(Some(Ok(png)))) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "image/png"),
                (header::CACHE_CONTROL, "private, max-age=3600"),
            ],
            png,
        )
            .into_response(),
        Ok(Ok(Some(Err(e)))) => internal(e),
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, "no such order"),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}
