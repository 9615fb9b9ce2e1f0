//! The event gallery on the webhook listener, beside the order links of `download.rs` (which
//! finds the token and hands a gallery over): `GET /d/{event token}` (the page),
//! `/d/{event token}/{order}/{file}` (one picture, as an order's link serves it) and
//! `/d/{event token}/photos-N.zip` (every original, streamed as a stored ZIP while it is written,
//! so it never sits in memory; it holds one of the download places until it is done).

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::cap::Place;
use super::download::{html_response, lookup, private, serve_file, Downloads, Slot};
use crate::clock;
use crate::config::Language;
use crate::digital::gallery::{self, Gallery};
use crate::digital::{page, zip, File, Found};

const DAY_MS: i64 = 86_400_000;

/// The gallery's page in the phone's language (a gallery has no one customer's language).
pub(super) fn page(d: &Downloads, g: &Gallery, lang: Language) -> Response {
    let parts = zip::parts(&g.zip_entries(&d.data_dir, &d.booth_name), zip::MAX_BYTES).len();
    let now = clock::now_ms();
    let data = page::GalleryData {
        token: &g.event.token,
        title: if g.event.title.is_empty() {
            &d.booth_name
        } else {
            &g.event.title
        },
        orders: g
            .orders
            .iter()
            .map(|o| (o.order_id, o.files.iter().map(|(f, _)| *f).collect()))
            .collect(),
        zip_parts: parts,
        days_left: gallery::expires_at(&g.event).map(|end| (end - now + DAY_MS - 1) / DAY_MS),
    };
    html_response(StatusCode::OK, page::gallery(&data, lang))
}

/// `photos-N.zip`: the N-th archive of every original, streamed.
pub(super) fn zip(d: &Downloads, g: &Gallery, name: &str, place: Place, lang: Language) -> Response {
    let entries = g.zip_entries(&d.data_dir, &d.booth_name);
    let parts = zip::parts(&entries, zip::MAX_BYTES);
    let Some(range) = gallery::parse_zip_name(name).and_then(|n| parts.get(n - 1)) else {
        return html_response(StatusCode::NOT_FOUND, page::missing(lang));
    };
    let entries = entries[range.clone()].to_vec();
    let length = zip::archive_len(&entries);
    let (event_id, when) = (g.event.id, zip::dos_time(g.event.started_at));
    tracing::info!(
        event_id,
        archive = name,
        files = entries.len(),
        bytes = length,
        "gallery: ZIP download"
    );
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(4);
    tokio::task::spawn_blocking(move || {
        let _place = place;
        let mut sink = |piece: Vec<u8>| {
            tx.blocking_send(Ok(piece))
                .map_err(|_| std::io::Error::other("the client went away"))
        };
        if let Err(e) = zip::write(&entries, when, &mut sink) {
            tracing::warn!(event_id, error = %e, "gallery: ZIP download stopped");
            // Cuts the reply short, so the phone sees a failed download, never a short archive.
            let _ = tx.blocking_send(Err(e));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|piece| (piece, rx)) });
    let mut response = (
        [
            (header::CONTENT_TYPE, "application/zip"),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    let disposition = format!("attachment; filename=\"event-{event_id}-{name}\"");
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    private(response)
}

/// `GET /d/{event token}/{order}/{file}`: one picture of one of the event's orders.
pub(super) async fn file_handler(
    State(d): State<Downloads>,
    Path((token, order, name)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    Slot { lang, place: _place }: Slot,
) -> Response {
    let g = match lookup(&d, token).await {
        Ok(Found::Gallery(g)) => g,
        Ok(Found::Expired) => return html_response(StatusCode::GONE, page::expired(lang)),
        Ok(_) => return html_response(StatusCode::NOT_FOUND, page::missing(lang)),
        Err(status) => return status.into_response(),
    };
    let found = order
        .parse::<i64>()
        .ok()
        .and_then(|id| g.order(id))
        .and_then(|o| File::parse(&name, o.shots).map(|f| (o, f)));
    let Some((o, file)) = found else {
        return html_response(StatusCode::NOT_FOUND, page::missing(lang));
    };
    serve_file(&d, (o.order_id, o.session_id), file, query.as_deref(), lang).await
}
