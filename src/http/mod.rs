//! The two HTTP listeners. The webhook listener is what the tunnel exposes, and serves only
//! `POST /payme` and the customers' download links (`/d/`); the kiosk listener stays on loopback
//! and serves the touch UI's API; the optional metrics listener serves only `GET /metrics`.

mod api_error;
mod cap;
mod download;
mod gallery;
mod kiosk;
mod live;
pub mod metrics;
pub mod serve;
mod service;
pub mod streams;
mod webhook;

pub use download::{router as download_router, Downloads};
pub use kiosk::{router as kiosk_router, Kiosk};
pub use webhook::{router as webhook_router, Webhook};

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// A JSON response with the given status.
fn json(status: StatusCode, body: &Value) -> Response {
    // Straight into a buffer, not through `Display`'s formatter (a share of a webhook Check).
    // A `Value` always serialises (string keys, no fallible impls); the fallback is unreachable.
    json_bytes(status, serde_json::to_vec(body).unwrap_or_default())
}

/// A response with the given status and JSON already serialised.
fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        body,
    )
        .into_response()
}
