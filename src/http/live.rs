//! `GET /api/camera/live`: the live view as MJPEG (`multipart/x-mixed-replace`), which a browser
//! `<img>` shows as it arrives and a `fetch` reader can take apart frame by frame. Every viewer
//! reads the hub's latest frame (no queue per viewer: a slow one skips frames). A long-lived
//! stream, so it lives outside the request timeout and has its own cap on viewers.
//! `GET /api/camera`: what the kiosk page needs to know about the live view.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::StreamExt;
use serde_json::json;

use super::cap::{Cap, Place};
use super::json;
use crate::booth::live::{LiveHub, Viewer};

/// Viewers at once: the kiosk page, a second screen, a technician's browser, with room for a page
/// reload whose old connection has not closed yet.
pub const MAX_VIEWERS: usize = 6;
const BOUNDARY: &str = "frame";

#[derive(Clone)]
struct Live {
    hub: LiveHub,
    viewers: Cap,
}

/// The live routes, without the request timeout (the caller merges them outside it).
pub fn router(hub: LiveHub) -> Router {
    let viewers = Cap::new(MAX_VIEWERS);
    Router::new()
        .route("/api/camera/live", get(stream))
        .route("/api/camera", get(info))
        .with_state(Live { hub, viewers })
}

async fn info(State(live): State<Live>) -> Response {
    json(StatusCode::OK, &json!({ "live_idle": live.hub.idle() }))
}

async fn stream(State(live): State<Live>) -> Response {
    let Some(place) = live.viewers.take() else {
        return json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "error": "too many live view viewers", "reason": "too_many_viewers" }),
        );
    };
    let viewer = live.hub.watch();
    let parts = futures_util::stream::unfold((viewer, place), next_part).flat_map(futures_util::stream::iter);
    (
        [
            (header::CONTENT_TYPE, "multipart/x-mixed-replace; boundary=frame"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(parts),
    )
        .into_response()
}

type Part = [Result<Bytes, std::convert::Infallible>; 3];

/// The next frame as one multipart part: header, the JPEG itself (shared, not copied), CRLF.
async fn next_part((mut viewer, place): (Viewer, Place)) -> Option<(Part, (Viewer, Place))> {
    let frame = viewer.next().await?;
    let head = format!(
        "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        frame.jpeg.len()
    );
    Some((
        [Ok(Bytes::from(head)), Ok(frame.jpeg), Ok(Bytes::from_static(b"\r\n"))],
        (viewer, place),
    ))
}
