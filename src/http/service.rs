//! `/api/service/*` on the kiosk listener: the owner's service menu (booth/service_menu.rs). The
//! routes exist only when `[service]` sets a PIN; otherwise they are the kiosk's 404. Unlock gives a
//! token, sent back as `Authorization: Bearer <token>` or the HttpOnly cookie `photobooth_service`;
//! anything else is 401.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json as j, Value};

use super::api_error::{ApiError, Reason};
use super::json;
use super::kiosk::Kiosk;
use crate::booth::event::StartEvent;
use crate::booth::service_menu::{ServiceError, ServiceMenu, UnlockError, TOKEN_IDLE};
use crate::config::check_event_text;

pub const COOKIE: &str = "photobooth_service";
/// The most prints an event may be started with from the screen.
const MAX_EVENT_PRINTS: u64 = 100_000;

/// The service routes, or none at all without a PIN.
pub fn routes(kiosk: &Kiosk) -> Router<Kiosk> {
    if kiosk.service.is_none() {
        return Router::new();
    }
    Router::new()
        .route("/api/service/unlock", post(unlock))
        .route("/api/service/lock", post(lock))
        .route("/api/service/summary", get(summary))
        .route("/api/service/refill", post(refill))
        .route("/api/service/test-print", post(test_print))
        .route("/api/service/resume", post(resume))
        .route("/api/service/reprint", post(reprint))
        .route("/api/service/event/start", post(event_start))
        .route("/api/service/event/stop", post(event_stop))
}

fn not_found() -> Response {
    ApiError::not_found("not found").into_response()
}

fn body_json(body: &Bytes) -> Option<Value> {
    if body.is_empty() {
        return Some(j!({}));
    }
    serde_json::from_slice::<Value>(body).ok().filter(Value::is_object)
}

/// The token from `Authorization: Bearer` or the cookie.
fn token(headers: &HeaderMap) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    bearer.or_else(|| {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == COOKIE)
            .map(|(_, value)| value.to_string())
    })
}

/// The menu when the request carries a live token (its idle time starts again).
fn authorised(k: &Kiosk, headers: &HeaderMap) -> Option<Arc<ServiceMenu>> {
    let menu = k.service.clone()?;
    let t = token(headers)?;
    menu.gate.touch(&t, Instant::now())?;
    Some(menu)
}

fn unauthorized() -> Response {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        Reason::Unauthorized,
        "unlock the service menu with the PIN first",
    )
    .into_response()
}

fn cookie(value: &str, max_age_s: u64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/api/service; Max-Age={max_age_s}"
    ))
    .ok()
}

async fn unlock(State(k): State<Kiosk>, body: Bytes) -> Response {
    let Some(menu) = k.service.clone() else {
        return not_found();
    };
    let Some(pin) = body_json(&body).and_then(|v| v.get("pin").and_then(Value::as_str).map(str::to_string)) else {
        return ApiError::bad_request("the body must be JSON like {\"pin\": \"0123\"}").into_response();
    };
    match menu.gate.unlock(&pin, Instant::now()) {
        Ok((token, expires_at)) => {
            let mut response = json(StatusCode::OK, &j!({ "token": token, "expires_at": expires_at }));
            if let Some(c) = cookie(&token, TOKEN_IDLE.as_secs()) {
                response.headers_mut().insert(header::SET_COOKIE, c);
            }
            response
        }
        Err(UnlockError::WrongPin { tries_left }) => json(
            StatusCode::FORBIDDEN,
            &j!({ "error": "wrong PIN", "reason": Reason::WrongPin, "tries_left": tries_left }),
        ),
        Err(UnlockError::LockedOut { retry_after_s }) => {
            let mut response = json(
                StatusCode::TOO_MANY_REQUESTS,
                &j!({
                    "error": "too many wrong PINs; try again later",
                    "reason": Reason::LockedOut,
                    "retry_after_s": retry_after_s
                }),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
            response
        }
        Err(UnlockError::NoRandomness) => ApiError::internal("no randomness for a token").into_response(),
    }
}

async fn lock(State(k): State<Kiosk>, headers: HeaderMap) -> Response {
    let Some(menu) = authorised(&k, &headers) else {
        return unauthorized();
    };
    if let Some(t) = token(&headers) {
        menu.gate.lock(&t);
    }
    let mut response = json(StatusCode::OK, &j!({ "locked": true }));
    if let Some(c) = cookie("", 0) {
        response.headers_mut().insert(header::SET_COOKIE, c);
    }
    response
}

/// Runs an authorised action on a blocking thread and turns its result into a reply.
async fn act<T: serde::Serialize + Send + 'static>(
    k: Kiosk,
    headers: HeaderMap,
    f: impl FnOnce(&ServiceMenu) -> Result<T, ServiceError> + Send + 'static,
) -> Response {
    let Some(menu) = authorised(&k, &headers) else {
        return unauthorized();
    };
    match tokio::task::spawn_blocking(move || f(&menu)).await {
        Ok(Ok(value)) => json(StatusCode::OK, &j!(value)),
        Ok(Err(e)) => service_error(e),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

fn service_error(e: ServiceError) -> Response {
    match e {
        ServiceError::BadRequest(message) => ApiError::new(StatusCode::BAD_REQUEST, Reason::BadRequest, message),
        ServiceError::NotFound => ApiError::not_found("no such order"),
        ServiceError::Refunded(message) => ApiError::new(StatusCode::CONFLICT, Reason::Refunded, message),
        ServiceError::NotPaid(message) => ApiError::new(StatusCode::CONFLICT, Reason::NotPaid, message),
        ServiceError::Store(e) => ApiError::internal(e),
    }
    .into_response()
}

async fn summary(State(k): State<Kiosk>, headers: HeaderMap) -> Response {
    act(k, headers, |m| m.summary()).await
}

async fn refill(State(k): State<Kiosk>, headers: HeaderMap) -> Response {
    act(k, headers, |m| {
        m.refill()
            .map(|media| j!({ "media_left": media.map(|m| m.remaining), "media_capacity": media.map(|m| m.capacity) }))
    })
    .await
}

/// 202: the page is composed and printed in the background; 409 while one is under way.
async fn test_print(State(k): State<Kiosk>, headers: HeaderMap) -> Response {
    let Some(menu) = authorised(&k, &headers) else {
        return unauthorized();
    };
    if menu.start_test_print() {
        json(StatusCode::ACCEPTED, &j!({ "started": true }))
    } else {
        ApiError::new(StatusCode::CONFLICT, Reason::Busy, "a test page is being printed").into_response()
    }
}

async fn resume(State(k): State<Kiosk>, headers: HeaderMap) -> Response {
    act(k, headers, |m| {
        m.resume()
            .map(|r| j!({ "requeued": r.requeued, "printer_error": r.printer_error }))
    })
    .await
}

async fn reprint(State(k): State<Kiosk>, headers: HeaderMap, body: Bytes) -> Response {
    let order_id = body_json(&body)
        .and_then(|v| v.get("order_id").and_then(Value::as_i64))
        .filter(|id| *id > 0);
    act(k, headers, move |m| {
        let Some(order_id) = order_id else {
            return Err(ServiceError::BadRequest(
                "the body must be JSON like {\"order_id\": 12}".into(),
            ));
        };
        m.reprint(order_id)
            .map(|job_id| j!({ "order_id": order_id, "job_id": job_id }))
    })
    .await
}

/// `{"max_prints": N, "title": "...", "date": "..."}`; title and date may be left out.
fn parse_event(body: &Bytes) -> Result<StartEvent, ServiceError> {
    let bad = ServiceError::BadRequest;
    let v = body_json(body).ok_or_else(|| bad("the body must be a JSON object".into()))?;
    let max_prints = match v.get("max_prints") {
        None => 0,
        Some(n) => n.as_u64().filter(|n| *n <= MAX_EVENT_PRINTS).ok_or_else(|| {
            bad(format!(
                "max_prints must be a whole number from 0 (no cap) to {MAX_EVENT_PRINTS}"
            ))
        })?,
    };
    let text = |key: &str| -> Result<String, ServiceError> {
        let value = match v.get(key) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.trim().to_string(),
            Some(_) => return Err(bad(format!("{key} must be a string"))),
        };
        check_event_text(key, &value).map_err(bad)?;
        Ok(value)
    };
    Ok(StartEvent {
        title: text("title")?,
        date: text("date")?,
        max_prints: max_prints as u32,
    })
}

async fn event_start(State(k): State<Kiosk>, headers: HeaderMap, body: Bytes) -> Response {
    let parsed = parse_event(&body);
    act(k, headers, move |m| m.start_event(&parsed?)).await
}

async fn event_stop(State(k): State<Kiosk>, headers: HeaderMap) -> Response {
    act(k, headers, |m| {
        m.stop_event().map(|ended| j!({ "ended_event_id": ended }))
    })
    .await
}
