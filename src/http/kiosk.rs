//! The kiosk listener (loopback only): the touch UI itself, its session API, Server-Sent Events
//! with the session's state, orders with their checkout QR, the booth's status.
//! Errors are HTTP 4xx/5xx with `{"error": "...", "reason": "..."}`: the kiosk page is ours, not Payme.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json as j, Value};
use tower_http::timeout::TimeoutLayer;

use super::json;
use crate::booth::live::LiveHub;
use crate::booth::session::{self, Input, SessionError, Sessions};
use crate::booth::{Booth, OrderError, OrderView};
use crate::hw::gpio::ButtonEvent;
use crate::layout::qr;
use crate::metrics::Metrics;
use crate::store::Store;

const MAX_BODY_BYTES: usize = 16 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The UI, embedded so one binary deploys the whole booth.
const UI_FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../assets/ui/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/ui/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/ui/style.css"),
    ),
];

#[derive(Clone)]
pub struct Kiosk {
    pub booth: Arc<Booth>,
    pub sessions: Sessions,
    pub data_dir: PathBuf,
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub live: LiveHub,
}

pub fn router(kiosk: Kiosk) -> Router {
    // SSE streams live for as long as the page is open, so they stay outside the request timeout.
    let events = Router::new()
        .route("/api/events", get(events))
        .with_state(kiosk.clone());
    // So is the live view (MJPEG), with its own cap on viewers.
    let live = super::live::router(super::live::Live::new(kiosk.live.clone()));
    Router::new()
        .route("/", get(|| ui(Path("index.html".to_string()))))
        .route("/ui/{file}", get(ui))
        .route("/api/generate-qr", post(generate_qr))
        .route("/api/orders/{id}", get(order))
        .route("/api/orders/{id}/qr.png", get(order_qr))
        .route("/api/status", get(status))
        .route("/metrics", get(metrics))
        .route("/api/session", get(session_view))
        .route("/api/session/{action}", post(session_input))
        .route("/api/sessions/{id}/{file}", get(session_file))
        .route("/api/dev/button", post(dev_button))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "not found") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(kiosk)
        .merge(events)
        .merge(live)
}

fn error(status: StatusCode, reason: &str, message: &str) -> Response {
    json(status, &j!({ "error": message, "reason": reason }))
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "kiosk API failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the booth cannot reach its database; please call staff",
    )
}

fn session_error(e: SessionError) -> Response {
    let status = match e.code {
        "store_failed" => StatusCode::INTERNAL_SERVER_ERROR,
        "shutting_down" | "printer_stopped" | "printer_media_empty" | "printer_offline" | "media_counter_empty" => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::CONFLICT,
    };
    error(status, e.code, &e.message)
}

async fn ui(Path(file): Path<String>) -> Response {
    match UI_FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", "not found"),
    }
}

/// `{"copies": N}` → an order awaiting payment, with its checkout link and QR. While a kiosk
/// session is at the copies screen the order belongs to it (and prints its photos); with no
/// session (the API used on its own, as in the quick start) it is a stand-alone order.
async fn generate_qr(State(k): State<Kiosk>, body: Bytes) -> Response {
    let parsed = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => v,
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the body must be JSON like {\"copies\": 2}",
            )
        }
    };
    let max = k.booth.config().booth.max_copies;
    let Some(copies) = parsed
        .get("copies")
        .and_then(Value::as_u64)
        .and_then(|c| u32::try_from(c).ok())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_copies",
            &format!("copies must be a whole number from 1 to {max}"),
        );
    };
    let requested_session = parsed.get("session_id").and_then(Value::as_i64);
    let current = k.sessions.view();
    let result = match (requested_session, current.session_id) {
        (Some(asked), Some(open)) if asked != open => {
            return error(
                StatusCode::CONFLICT,
                "not_current_session",
                "that session is not the booth's current session",
            );
        }
        (Some(_), None) => return error(StatusCode::CONFLICT, "no_session", "no kiosk session is open"),
        (_, Some(_)) => k.sessions.order(copies).await,
        (None, None) => {
            let booth = k.booth.clone();
            tokio::task::spawn_blocking(move || booth.create_order(copies))
                .await
                .unwrap_or_else(|e| {
                    Err(OrderError::Store(crate::store::StoreError::Io(std::io::Error::other(
                        e,
                    ))))
                })
        }
    };
    order_reply(result, max)
}

fn order_reply(result: Result<OrderView, OrderError>, max: u32) -> Response {
    match result {
        Ok(view) => json(StatusCode::OK, &j!(view)),
        Err(OrderError::InvalidCopies { max }) => error(
            StatusCode::BAD_REQUEST,
            "bad_copies",
            &format!("copies must be a whole number from 1 to {max}"),
        ),
        Err(OrderError::OutOfService(blocker)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            blocker.reason.as_str(),
            &blocker.message,
        ),
        Err(OrderError::Session(e)) => session_error(e),
        Err(OrderError::Store(e)) => {
            let _ = max;
            internal(e)
        }
    }
}

fn parse_id(id: &str) -> Option<i64> {
    id.parse::<i64>().ok().filter(|id| *id > 0)
}

async fn order(State(k): State<Kiosk>, Path(id): Path<String>) -> Response {
    let Some(id) = parse_id(&id) else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such order");
    };
    let booth = k.booth.clone();
    match tokio::task::spawn_blocking(move || booth.order(id)).await {
        Ok(Ok(Some(view))) => json(StatusCode::OK, &j!(view)),
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, "not_found", "no such order"),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

async fn order_qr(State(k): State<Kiosk>, Path(id): Path<String>) -> Response {
    let Some(id) = parse_id(&id) else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such order");
    };
    let booth = k.booth.clone();
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
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, "not_found", "no such order"),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

async fn status(State(k): State<Kiosk>) -> Response {
    let booth = k.booth.clone();
    match tokio::task::spawn_blocking(move || booth.status()).await {
        Ok(Ok(status)) => json(StatusCode::OK, &j!(status)),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

async fn metrics(State(k): State<Kiosk>) -> Response {
    let rendered = tokio::task::spawn_blocking(move || k.metrics.render(&k.store, k.booth.health())).await;
    match rendered {
        Ok(Ok(text)) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            text,
        )
            .into_response(),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

async fn session_view(State(k): State<Kiosk>) -> Response {
    let mut view = k.sessions.view();
    view.now = crate::clock::now_ms();
    // The printer may have changed since the last publish; a poller gets the latest word.
    view.blocker = k.booth.health().blocker();
    view.accepting_orders = view.blocker.is_none();
    json(StatusCode::OK, &j!(view))
}

/// `POST /api/session/{start|retake|accept|cancel|dismiss}`: the touch screen's buttons.
async fn session_input(State(k): State<Kiosk>, Path(action): Path<String>) -> Response {
    let input = match action.as_str() {
        "start" => Input::Start,
        "retake" => Input::Retake,
        "accept" => Input::Accept,
        "cancel" => Input::Cancel,
        "dismiss" => Input::Dismiss,
        _ => return error(StatusCode::NOT_FOUND, "not_found", "unknown session action"),
    };
    match k.sessions.input(input).await {
        Ok(view) => json(StatusCode::OK, &j!(view)),
        Err(e) => session_error(e),
    }
}

/// A session's photos and preview; only names the session manager writes are served.
async fn session_file(State(k): State<Kiosk>, Path((id, file)): Path<(String, String)>) -> Response {
    let Some(id) = parse_id(&id) else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such file");
    };
    let allowed = file == "preview.jpg"
        || file
            .strip_prefix("shot-")
            .and_then(|rest| rest.strip_suffix(".jpg"))
            .is_some_and(|n| n.parse::<u32>().is_ok());
    if !allowed {
        return error(StatusCode::NOT_FOUND, "not_found", "no such file");
    }
    let path = session::session_dir(&k.data_dir, id).join(&file);
    match tokio::fs::read(&path).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => error(StatusCode::NOT_FOUND, "not_found", "no such file"),
    }
}

/// Server-Sent Events: the session view as JSON on every change, plus keep-alives.
async fn events(State(k): State<Kiosk>) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let rx = k.sessions.subscribe();
    let stream = futures_util::stream::unfold((rx, true), |(mut rx, first)| async move {
        if !first && rx.changed().await.is_err() {
            return None;
        }
        let mut view = rx.borrow_and_update().clone();
        view.now = crate::clock::now_ms();
        let event = Event::default()
            .event("session")
            .json_data(&view)
            .unwrap_or_else(|_| Event::default());
        Some((Ok(event), (rx, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// A button event for development and tests; exists only with the simulated GPIO backend.
/// Body: `{"event": "press"}` (the default) or `{"event": "hold"}`.
async fn dev_button(State(k): State<Kiosk>, body: Bytes) -> Response {
    let Some(sim) = k.booth.gpio().as_sim() else {
        return error(StatusCode::NOT_FOUND, "not_found", "only with gpio.backend = \"sim\"");
    };
    let event = if body.is_empty() {
        Some(ButtonEvent::Press)
    } else {
        match serde_json::from_slice::<Value>(&body)
            .ok()
            .as_ref()
            .and_then(|v| v.get("event"))
            .and_then(Value::as_str)
        {
            Some("press") => Some(ButtonEvent::Press),
            Some("hold") => Some(ButtonEvent::Hold),
            _ => None,
        }
    };
    let Some(event) = event else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the body must be {\"event\": \"press\"} or {\"event\": \"hold\"}",
        );
    };
    if sim.press(event) {
        json(StatusCode::OK, &j!({ "event": event }))
    } else {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the booth is shutting down",
        )
    }
}
