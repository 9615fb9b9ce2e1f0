//! `GET /d/{token}` and `GET /d/{token}/{file}` on the webhook listener: the customer's download
//! page and its photos. Public (the tunnel forwards `/d/` as well as `/payme`), so every request
//! costs one indexed token lookup, whether the token exists or not, and at most a few downloads
//! run at once: a flood answers 503 at once instead of starving Payme's requests.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::cap::{Cap, Place};
use crate::clock;
use crate::config::Language;
use crate::digital::{self, page, File, Found};
use crate::store::Store;

/// Downloads (and phone-size scalings) at once; the rest are told to come back.
pub const MAX_CONCURRENT: usize = 4;

#[derive(Clone)]
pub struct Downloads {
    pub store: Arc<Store>,
    pub data_dir: PathBuf,
    pub booth_name: String,
    /// The page's language when the phone names none we speak.
    pub language: Language,
    pub places: Cap,
}

impl Downloads {
    pub fn new(store: Arc<Store>, data_dir: PathBuf, booth_name: String, language: Language) -> Downloads {
        Downloads {
            store,
            data_dir,
            booth_name,
            language,
            places: Cap::new(MAX_CONCURRENT),
        }
    }
}

pub fn router(state: Downloads) -> Router {
    Router::new()
        .route("/d/{token}", get(page_handler))
        .route("/d/{token}/{file}", get(file_handler))
        .route("/d/{token}/{order}/{file}", get(super::gallery::file_handler))
        .with_state(state)
}

/// What every download request starts with: one of the places (none free: 503 at once, see
/// [`busy`]) and the page's language, the phone's (`Accept-Language`), else the booth's.
pub(super) struct Slot {
    pub lang: Language,
    pub place: Place,
}

impl FromRequestParts<Downloads> for Slot {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, d: &Downloads) -> Result<Slot, Response> {
        let place = d.places.take().ok_or_else(busy)?;
        let phone = parts.headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
        Ok(Slot {
            lang: page::language(phone, d.language),
            place,
        })
    }
}

async fn page_handler(
    State(d): State<Downloads>,
    Path(token): Path<String>,
    Slot { lang, place: _place }: Slot,
) -> Response {
    // The order's language when the kiosk recorded it, else the phone's, else the booth's.
    match lookup(&d, token).await {
        Ok(Found::Live(link, shots, order_language)) => {
            let lang = order_language.unwrap_or(lang);
            let hours_left = (link.expires_at - clock::now_ms() + 3_599_999) / 3_600_000;
            let html = page::photos(
                &page::PageData {
                    token: &link.token,
                    booth_name: &d.booth_name,
                    shots,
                    hours_left,
                },
                lang,
            );
            html_response(StatusCode::OK, html)
        }
        Ok(Found::Gallery(g)) => super::gallery::page(&d, &g, lang),
        Ok(Found::Expired) => html_response(StatusCode::GONE, page::expired(lang)),
        Ok(Found::Missing) => html_response(StatusCode::NOT_FOUND, page::missing(lang)),
        Err(status) => status.into_response(),
    }
}

async fn file_handler(
    State(d): State<Downloads>,
    Path((token, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    Slot { lang, place }: Slot,
) -> Response {
    let (link, shots) = match lookup(&d, token).await {
        Ok(Found::Live(link, shots, _)) => (link, shots),
        Ok(Found::Gallery(g)) => return super::gallery::zip(&d, &g, &name, place, lang),
        Ok(Found::Expired) => return html_response(StatusCode::GONE, page::expired(lang)),
        Ok(Found::Missing) => return html_response(StatusCode::NOT_FOUND, page::missing(lang)),
        Err(status) => return status.into_response(),
    };
    let Some(file) = File::parse(&name, shots) else {
        return html_response(StatusCode::NOT_FOUND, page::missing(lang));
    };
    serve_file(&d, (link.order_id, link.session_id), file, query.as_deref(), lang).await
}

/// One picture of a session (`?full=1`: the original, `?download=1`: as an attachment), for an
/// order's link and an event's gallery alike.
pub(super) async fn serve_file(
    d: &Downloads,
    (order_id, session_id): (i64, i64),
    file: File,
    query: Option<&str>,
    lang: Language,
) -> Response {
    let flags: Vec<&str> = query.unwrap_or("").split('&').collect();
    let full = flags.contains(&"full=1");
    let attachment = flags.contains(&"download=1");
    let data_dir = d.data_dir.clone();
    let read = tokio::task::spawn_blocking(move || digital::read_file(&data_dir, session_id, file, full)).await;
    let bytes = match read {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            tracing::warn!(order_id, file = %file.url_name(), error = %e, "download: photo unreadable");
            return html_response(StatusCode::NOT_FOUND, page::missing(lang));
        }
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let filename = file.download_name(&d.booth_name, order_id, full);
    let disposition = format!(
        "{}; filename=\"{filename}\"",
        if attachment { "attachment" } else { "inline" }
    );
    let mut response = (
        [
            (header::CONTENT_TYPE, file.content_type(full)),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        bytes,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    private(response)
}

/// `digital::lookup` on a blocking thread; a store failure is 503 (the customer may retry).
pub(super) async fn lookup(d: &Downloads, token: String) -> Result<Found, StatusCode> {
    let (store, data_dir) = (d.store.clone(), d.data_dir.clone());
    let found = tokio::task::spawn_blocking(move || digital::lookup(&store, &data_dir, &token, clock::now_ms())).await;
    match found {
        Ok(Ok(found)) => Ok(found),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "download: store failed");
            Err(StatusCode::SERVICE_UNAVAILABLE)
        }
        Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

pub(super) fn html_response(status: StatusCode, html: String) -> Response {
    private((status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

/// The token is the only secret: keep it out of referrers and search engines.
pub(super) fn private(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert("x-robots-tag", HeaderValue::from_static("noindex"));
    response
}

pub(super) fn busy() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "5")],
        "busy, try again in a few seconds",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With every place taken a request is answered 503 at once (never queued); once a place is
    /// free the same request is looked up (404 for a made-up token).
    #[tokio::test]
    async fn a_flood_is_told_to_come_back_instead_of_queueing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open_in(dir.path()).unwrap());
        let state = Downloads::new(store, dir.path().to_path_buf(), "Booth".into(), Language::En);
        let places = state.places.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router(state)).await });
        let held: Vec<_> = (0..MAX_CONCURRENT).map(|_| places.take().unwrap()).collect();
        let path = "/d/AAAAAAAAAAAAAAAAAAAAAA";
        let busy = crate::client::request(addr, "GET", path, &[], Vec::new())
            .await
            .unwrap();
        assert_eq!((busy.status, busy.header("retry-after")), (503, Some("5")));
        drop(held);
        let missing = crate::client::request(addr, "GET", path, &[], Vec::new())
            .await
            .unwrap();
        assert_eq!(missing.status, 404);
        assert!(String::from_utf8_lossy(&missing.body).contains("This link does not exist"));
    }
}
