//! `GET /metrics`: the Prometheus text. Served on the kiosk listener, and alone on
//! `[http] metrics_listen` (which serves nothing else, so a fleet's Prometheus can scrape a booth
//! over a VPN without reaching the kiosk API).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;

/// The router of the metrics-only listener: `/metrics`, and 404 for everything else.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(|State(m): State<Arc<Metrics>>| scrape(m)))
        .with_state(metrics)
}

/// Renders the metrics on a blocking thread (they read SQLite).
pub async fn scrape(metrics: Arc<Metrics>) -> Response {
    match tokio::task::spawn_blocking(move || metrics.render()).await {
        Ok(Ok(text)) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            text,
        )
            .into_response(),
        Ok(Err(e)) => failed(e),
        Err(e) => failed(e),
    }
}

fn failed(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "metrics: cannot read the store");
    (StatusCode::INTERNAL_SERVER_ERROR, "cannot read the store\n").into_response()
}
