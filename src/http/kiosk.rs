//! The kiosk listener (loopback only): the touch UI itself, its session API, Server-Sent Events
//! with the session's state, orders with their checkout QR, the booth's status.
//! Errors are `ApiError` (`api_error.rs`): HTTP 4xx/5xx with `{"error": "...", "reason": "..."}`.

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
use serde::Deserialize;
use serde_json::{json as j, Map, Value};
use tower_http::timeout::TimeoutLayer;

use super::api_error::{ApiError, Reason};
use super::json;
use super::streams::StreamCap;
use crate::booth::live::LiveHub;
use crate::booth::session::{Input, OrderRequest as OrderRequestKind, Refusal, SessionFiles, Sessions};
use crate::booth::{Booth, OrderError, OrderView};
use crate::config::Language;
use crate::hw::gpio::ButtonEvent;
use crate::layout::qr;
use crate::metrics::Metrics;
use crate::store::Store;

const MAX_BODY_BYTES: usize = 16 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Connections for the API's requests (a kiosk is one browser; the rest is headroom).
const API_CONNECTIONS: usize = 64;
/// `/api/events` streams open at once (one kiosk page needs one; reloads may briefly hold two).
const EVENT_STREAMS: usize = 8;
/// An event stream ends after this and the page's EventSource reconnects (`retry` below).
const EVENT_STREAM_LIFETIME: Duration = Duration::from_secs(600);
const EVENT_RETRY: Duration = Duration::from_secs(1);

/// The UI, embedded so one binary deploys the whole booth.
const UI_FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../assets/ui/index.html"),
    ),
    (
        "i18n.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/ui/i18n.js"),
    ),
    (
        "texts.json",
        "application/json",
        include_str!("../../assets/ui/texts.json"),
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
    (
        "service.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/ui/service.js"),
    ),
    (
        "service-texts.json",
        "application/json",
        include_str!("../../assets/ui/service-texts.json"),
    ),
    (
        "service.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/ui/service.css"),
    ),
];

#[derive(Clone)]
pub struct Kiosk {
    pub booth: Arc<Booth>,
    pub sessions: Sessions,
    pub data_dir: PathBuf,
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    /// The owner's menu (`/api/service/*`); `None` without a PIN.
    pub service: Option<Arc<crate::booth::service_menu::ServiceMenu>>,
    /// The cap on `/api/events` streams (see `http::streams`).
    pub events: StreamCap,
    /// The camera's live view (`/api/camera/live`).
    pub live: LiveHub,
}

impl Kiosk {
    /// The cap for the event streams, apart from the API's connections.
    pub fn events_cap() -> StreamCap {
        StreamCap::new("event", EVENT_STREAMS, EVENT_STREAM_LIFETIME)
    }

    /// The kiosk listener's connection limit: the API's share plus every stream cap (event
    /// streams, live-view viewers), so open streams can never take the API's connections.
    pub fn max_connections(&self) -> usize {
        API_CONNECTIONS + self.events.max() + super::live::MAX_VIEWERS
    }
}

pub fn router(kiosk: Kiosk) -> Router {
    // SSE streams live for as long as the page is open, so they stay outside the request timeout.
    let events = Router::new()
        .route("/api/events", get(events))
        .with_state(kiosk.clone());
    // So is the live view (MJPEG), with its own cap on viewers.
    let live = super::live::router(kiosk.live.clone());
    Router::new()
        .route("/", get(|| ui(Path("index.html".to_string()))))
        .route("/ui/{file}", get(ui))
        .route("/api/generate-qr", post(generate_qr))
        .route("/api/orders/{id}", get(order))
        .route("/api/orders/{id}/qr.png", get(order_qr))
        .route("/api/orders/{id}/download-qr.png", get(download_qr))
        .route("/api/status", get(status))
        .route("/metrics", get(metrics))
        .route("/api/session", get(session_view))
        .route("/api/session/print", post(session_print))
        .route("/api/session/{action}", post(session_input))
        .route("/api/sessions/{id}/{file}", get(session_file))
        .route("/api/dev/button", post(dev_button))
        .merge(super::service::routes(&kiosk))
        .fallback(|| async { ApiError::not_found("not found") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(kiosk)
        .merge(events)
        .merge(live)
}

/// `{"copies": N, "session_id": ID}` as the kiosk page sends it. Either member may be missing or
/// of another type: that is answered per member (`bad_copies`; a `session_id` that is not an
/// integer is as good as none), not as a malformed body.
#[derive(Deserialize)]
struct OrderRequest {
    #[serde(default, deserialize_with = "lenient")]
    copies: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    session_id: Option<i64>,
    /// `true`: "digital only, no print" (`[digital] price`) instead of `copies`.
    #[serde(default, deserialize_with = "lenient")]
    digital_only: Option<bool>,
    /// The customer's language, which the order's checkout page opens in.
    #[serde(default, deserialize_with = "lenient")]
    language: Option<String>,
}

/// The body a session input may carry: the customer's language.
#[derive(Deserialize)]
struct InputRequest {
    #[serde(default, deserialize_with = "lenient")]
    language: Option<String>,
}

/// `uz`, `ru` or `en`; absent is `None`, anything else a 400.
fn language(code: Option<&str>) -> Result<Option<Language>, ApiError> {
    code.map(|c| {
        Language::from_code(c).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                Reason::BadLanguage,
                "language must be \"uz\", \"ru\" or \"en\"",
            )
        })
    })
    .transpose()
}

/// A member of the wrong JSON type reads as absent.
fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    Ok(serde_json::from_value(Value::deserialize(d)?).ok())
}

/// `{"event": "press" | "hold"}` for the simulated button.
#[derive(Deserialize)]
struct ButtonRequest {
    event: ButtonName,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum ButtonName {
    Press,
    Hold,
}

/// A request body that must be a JSON object of type `T` (not an array read positionally).
fn object_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    let object: Map<String, Value> = serde_json::from_slice(body)?;
    serde_json::from_value(Value::Object(object))
}

/// Runs `f` (SQLite, image work) on a blocking thread; any failure is an internal error.
async fn blocking<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    tokio::task::spawn_blocking(f).await?.map_err(ApiError::internal)
}

async fn ui(Path(file): Path<String>) -> Result<Response, ApiError> {
    let (_, content_type, body) = UI_FILES
        .iter()
        .find(|(name, _, _)| *name == file)
        .ok_or_else(|| ApiError::not_found("not found"))?;
    Ok((
        [
            (header::CONTENT_TYPE, *content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        *body,
    )
        .into_response())
}

/// `{"copies": N}` → an order awaiting payment, with its checkout link and QR. While a kiosk
/// session is at the copies screen the order belongs to it (and prints its photos); with no
/// session (the API used on its own, as in the quick start) it is a stand-alone order.
/// `{"digital_only": true}` orders the session's photos as digital copies only.
async fn generate_qr(State(k): State<Kiosk>, body: Bytes) -> Result<Response, ApiError> {
    let max = k.booth.config().booth.max_copies;
    let parsed: Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::bad_request("the body must be JSON like {\"copies\": 2}"))?;
    // Valid JSON of another shape (an array, a number): there are no copies in it. (Checked here:
    // serde would read `[2]` as a struct in sequence form.)
    if !parsed.is_object() {
        return Err(ApiError::bad_copies(max));
    }
    let request: OrderRequest = serde_json::from_value(parsed).map_err(|e| match e.classify() {
        // Valid JSON of another shape (an array, a number): there are no copies in it.
        serde_json::error::Category::Data => ApiError::bad_copies(max),
        _ => ApiError::bad_request("the body must be JSON like {\"copies\": 2}"),
    })?;
    let digital_only = request.digital_only == Some(true);
    let copies = match request.copies.and_then(|c| u32::try_from(c).ok()) {
        Some(copies) => copies,
        None if digital_only => 1,
        None => return Err(ApiError::bad_copies(max)),
    };
    let what = if digital_only {
        OrderRequestKind::DigitalOnly
    } else {
        OrderRequestKind::Prints(copies)
    };
    // The kiosk sends the language; else the one it last reported with a session input.
    let language = language(request.language.as_deref())?.or_else(|| k.booth.customer_language());
    let current = k.sessions.view();
    let order = match (request.session_id, current.session_id) {
        (Some(asked), Some(open)) if asked != open => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                Reason::NotCurrentSession,
                "that session is not the booth's current session",
            ));
        }
        (Some(_), None) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                Reason::NoSession,
                "no kiosk session is open",
            ))
        }
        (_, Some(_)) => k.sessions.order_what(what, language).await?,
        (None, None) if digital_only => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                Reason::NoSession,
                "digital copies are of a session's photos; no kiosk session is open",
            ))
        }
        (None, None) => {
            let booth = k.booth.clone();
            tokio::task::spawn_blocking(move || booth.create_order(copies, language)).await??
        }
    };
    Ok(json(StatusCode::OK, &j!(order)))
}

fn parse_id(id: &str) -> Option<i64> {
    id.parse::<i64>().ok().filter(|id| *id > 0)
}

/// The order the path names (read on a blocking thread), or 404.
async fn find_order(k: &Kiosk, id: &str) -> Result<OrderView, ApiError> {
    let no_such_order = || ApiError::not_found("no such order");
    let id = parse_id(id).ok_or_else(no_such_order)?;
    let booth = k.booth.clone();
    blocking(move || booth.order(id)).await?.ok_or_else(no_such_order)
}

async fn order(State(k): State<Kiosk>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let view = find_order(&k, &id).await?;
    Ok(json(StatusCode::OK, &j!(view)))
}

async fn order_qr(State(k): State<Kiosk>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let view = find_order(&k, &id).await?;
    qr_response(view.checkout_url).await
}

/// The QR of a paid order's download link, for the done screen; 404 while it has none.
async fn download_qr(State(k): State<Kiosk>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let url = find_order(&k, &id)
        .await?
        .download_url
        .ok_or_else(|| ApiError::not_found("this order has no download link"))?;
    qr_response(url).await
}

/// The QR code of `url` as a PNG, drawn off the async threads; the browser may keep it an hour.
async fn qr_response(url: String) -> Result<Response, ApiError> {
    let png = blocking(move || qr::png(&url)).await?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        png,
    )
        .into_response())
}

async fn status(State(k): State<Kiosk>) -> Result<Response, ApiError> {
    let booth = k.booth.clone();
    let status = blocking(move || booth.status()).await?;
    Ok(json(StatusCode::OK, &j!(status)))
}

async fn metrics(State(k): State<Kiosk>) -> Response {
    super::metrics::scrape(k.metrics).await
}

async fn session_view(State(k): State<Kiosk>) -> Response {
    let mut view = k.sessions.view();
    view.now = crate::clock::now_ms();
    // The printer may have changed since the last publish; a poller gets the latest word.
    crate::booth::session::digital_offer(&mut view, &k.booth);
    json(StatusCode::OK, &j!(view))
}

/// `POST /api/session/{start|retake|accept|cancel|dismiss}`: the touch screen's buttons. The body
/// may carry the customer's language (`{"language": "ru"}`), which their order's checkout uses.
async fn session_input(State(k): State<Kiosk>, Path(action): Path<String>, body: Bytes) -> Result<Response, ApiError> {
    if !body.is_empty() {
        let request: InputRequest =
            serde_json::from_slice(&body).map_err(|_| ApiError::bad_request("the body must be JSON or empty"))?;
        if let Some(language) = language(request.language.as_deref())? {
            k.booth.note_language(language);
        }
    }
    let input = Input::from_action(&action).ok_or_else(|| ApiError::not_found("unknown session action"))?;
    let view = k.sessions.input(input).await?;
    Ok(json(StatusCode::OK, &j!(view)))
}

/// `POST /api/session/print {"copies": N}`: at a prepaid event, prints the session's page for free
/// (409 `not_event` outside an event, where prints are paid through `generate-qr`).
async fn session_print(State(k): State<Kiosk>, body: Bytes) -> Result<Response, ApiError> {
    let max = k.booth.config().booth.max_copies;
    let request: OrderRequest = serde_json::from_slice(&body)
        .map_err(|_| ApiError::bad_request("the body must be JSON like {\"copies\": 2}"))?;
    let copies = request
        .copies
        .and_then(|c| u32::try_from(c).ok())
        .ok_or_else(|| ApiError::bad_copies(max))?;
    if k.booth.health().event().is_none() {
        return Err(OrderError::NotEvent.into());
    }
    let order = k.sessions.event_print(copies).await?;
    Ok(json(StatusCode::OK, &j!(order)))
}

/// The live session's photos and preview; only names the session manager writes are served.
/// Any other session's files are 404: a past customer's photos are nobody's business.
async fn session_file(State(k): State<Kiosk>, Path((id, file)): Path<(String, String)>) -> Result<Response, ApiError> {
    let no_such_file = || ApiError::not_found("no such file");
    let id = parse_id(&id)
        .filter(|id| k.sessions.view().session_id == Some(*id))
        .ok_or_else(no_such_file)?;
    let path = SessionFiles::new(&k.data_dir, id)
        .servable(&file)
        .ok_or_else(no_such_file)?;
    let bytes = tokio::fs::read(&path).await.map_err(|_| no_such_file())?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        bytes,
    )
        .into_response())
}

/// Server-Sent Events: the session view as JSON on every change, plus keep-alives. Capped apart
/// from the API and ended after a while (the page reconnects at once, told by `retry`).
async fn events(State(k): State<Kiosk>) -> Response {
    let slot = match k.events.open() {
        Ok(slot) => slot,
        Err(refused) => return refused,
    };
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
        let event = if first { event.retry(EVENT_RETRY) } else { event };
        Some((Ok::<_, Infallible>(event), (rx, false)))
    });
    Sse::new(k.events.bounded(slot, stream))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// A button event for development and tests; exists only with `[dev] enabled` and the simulated
/// GPIO backend. Body: `{"event": "press"}` (the default) or `{"event": "hold"}`.
async fn dev_button(State(k): State<Kiosk>, body: Bytes) -> Result<Response, ApiError> {
    if !k.booth.config().dev.enabled {
        return Err(ApiError::not_found("only with [dev] enabled = true"));
    }
    let sim = k
        .booth
        .gpio()
        .as_sim()
        .ok_or_else(|| ApiError::not_found("only with gpio.backend = \"sim\""))?;
    let event = if body.is_empty() {
        ButtonEvent::Press
    } else {
        let request = object_body::<ButtonRequest>(&body)
            .map_err(|_| ApiError::bad_request("the body must be {\"event\": \"press\"} or {\"event\": \"hold\"}"))?;
        match request.event {
            ButtonName::Press => ButtonEvent::Press,
            ButtonName::Hold => ButtonEvent::Hold,
        }
    };
    if !sim.press(event) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Reason::Session(Refusal::ShuttingDown),
            "the booth is shutting down",
        ));
    }
    Ok(json(StatusCode::OK, &j!({ "event": event })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The UI's text tables (`assets/ui/*texts.json`, read by `i18n.js`) are JSON objects, and
    /// every language has every text English has, in the same form: a plural object with its
    /// variable and an `other` form, the same error codes with as many lines, and the same
    /// `{placeholders}` (a missing one would show as `{n}` on the screen).
    #[test]
    fn every_ui_text_table_gives_every_language_every_text() {
        let tables: Vec<_> = UI_FILES.iter().filter(|(name, _, _)| name.ends_with(".json")).collect();
        assert_eq!(tables.len(), 2);
        for (name, _, body) in tables {
            let table: Map<String, Value> = serde_json::from_str(body).unwrap_or_else(|e| panic!("{name}: {e}"));
            let keys = |lang: &str| -> BTreeSet<String> {
                table[lang]
                    .as_object()
                    .map(|t| t.keys().cloned().collect())
                    .unwrap_or_default()
            };
            assert!(!keys("en").is_empty(), "{name}");
            for lang in ["uz", "ru"] {
                assert_eq!(keys(lang), keys("en"), "{name}: {lang}");
                let mut problems = Vec::new();
                same_form(&format!("{name}: {lang}"), &table["en"], &table[lang], &mut problems);
                assert!(problems.is_empty(), "{problems:#?}");
            }
        }
    }

    /// Where `text` (one language's) differs in form from `en`, one line each into `problems`.
    /// A text may be one string or plural forms in either language (Uzbek needs none for any
    /// number, Russian more than English), but its placeholders are English's.
    fn same_form(path: &str, en: &Value, text: &Value, problems: &mut Vec<String>) {
        let plural = |v: &Value| v.get("plural").is_some();
        let is_text = |v: &Value| v.is_string() || plural(v);
        match (en, text) {
            (Value::Array(a), Value::Array(b)) if a.len() != b.len() => {
                problems.push(format!("{path}: {} lines, English has {}", b.len(), a.len()));
            }
            (Value::Object(a), Value::Object(b)) if !plural(en) && !plural(text) => {
                let keys = |o: &Map<String, Value>| o.keys().cloned().collect::<BTreeSet<_>>();
                if keys(a) != keys(b) {
                    problems.push(format!("{path}: keys {:?}, English has {:?}", keys(b), keys(a)));
                }
                for (k, v) in a {
                    if let Some(w) = b.get(k) {
                        same_form(&format!("{path}.{k}"), v, w, problems);
                    }
                }
            }
            _ if (is_text(en) && is_text(text)) || (en.is_array() && text.is_array()) => {
                if [en, text]
                    .iter()
                    .any(|v| plural(v) && !v.get("other").is_some_and(Value::is_string))
                {
                    problems.push(format!("{path}: plural forms need an `other` form"));
                }
                // Each form on its own: a form that drops `{n}` would read oddly for its numbers.
                let english = placeholders(en);
                for form in forms(text) {
                    let own = placeholders(form);
                    if own != english {
                        problems.push(format!("{path}: placeholders {own:?}, English has {english:?}"));
                    }
                }
            }
            _ => problems.push(format!("{path}: not the same kind of value as in English")),
        }
    }

    /// A text's forms: itself, or each of its plural forms.
    fn forms(v: &Value) -> Vec<&Value> {
        match v {
            Value::Object(o) => o.iter().filter(|(k, _)| *k != "plural").map(|(_, f)| f).collect(),
            _ => vec![v],
        }
    }

    /// The `{name}` placeholders in a text, or in every line of a list of texts.
    fn placeholders(v: &Value) -> BTreeSet<String> {
        let texts: Vec<&str> = match v {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            // Plural forms: every form's, not the name of the number they follow.
            Value::Object(forms) => forms
                .iter()
                .filter(|(k, _)| *k != "plural")
                .filter_map(|(_, v)| v.as_str())
                .collect(),
            _ => Vec::new(),
        };
        texts
            .iter()
            .flat_map(|t| {
                t.split('{')
                    .skip(1)
                    .filter_map(|rest| rest.split_once('}'))
                    .map(|(n, _)| n.to_string())
            })
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .collect()
    }
}
