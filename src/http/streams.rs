//! Long-lived responses (Server-Sent Events, and later the camera's live view): each kind gets its
//! own small cap, apart from the API's connections, and a maximum lifetime.
//!
//! A stream holds its connection for as long as it is open, so without a cap of its own a few dozen
//! idle event streams (tabs left open, a browser that reconnects without closing) would take every
//! connection slot and lock the kiosk out of its own API. The listener's connection limit is the
//! API's share plus every stream cap (`Kiosk::max_connections`), so streams can never eat into the
//! API's share; a stream over its cap gets 503 at once and its connection closes. The lifetime
//! ends a stream cleanly after a while (the browser's EventSource reconnects by itself), so a
//! half-dead client never keeps a slot for good.

use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};

use super::cap::{Cap, Place};

/// One kind of stream's cap and lifetime.
#[derive(Clone)]
pub struct StreamCap {
    name: &'static str,
    places: Cap,
    lifetime: Duration,
}

impl StreamCap {
    pub fn new(name: &'static str, max: usize, lifetime: Duration) -> StreamCap {
        StreamCap {
            name,
            places: Cap::new(max),
            lifetime,
        }
    }

    /// How many streams of this kind may be open at once (their connections included).
    pub fn max(&self) -> usize {
        self.places.max()
    }

    /// A place for a new stream, held by its body until it ends or the client goes; or the 503 to
    /// answer with (the connection then closes).
    #[allow(clippy::result_large_err)] // the error is the response itself, built once
    pub fn open(&self) -> Result<Place, Response> {
        match self.places.take() {
            Some(place) => Ok(place),
            None => {
                tracing::warn!(
                    stream = self.name,
                    max = self.max(),
                    "too many open streams; refused one"
                );
                let body = serde_json::json!({
                    "error": format!("too many {} streams are open", self.name),
                    "reason": "stream_limit",
                });
                Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    [
                        (header::CONTENT_TYPE, "application/json; charset=UTF-8"),
                        (header::CONNECTION, "close"),
                        (header::RETRY_AFTER, "5"),
                    ],
                    body.to_string(),
                )
                    .into_response())
            }
        }
    }

    /// `stream`, ended after the cap's lifetime, holding `slot` for as long as it lives.
    pub fn bounded<S: Stream + Send + 'static>(&self, slot: Place, stream: S) -> impl Stream<Item = S::Item> + Send {
        stream
            .take_until(Box::pin(tokio::time::sleep(self.lifetime)))
            .map(move |item| {
                let _held = &slot;
                item
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn caps_streams_and_frees_a_slot_when_a_stream_ends() {
        let cap = StreamCap::new("test", 2, Duration::from_millis(20));
        let a = cap.open().ok().unwrap();
        let _b = cap.open().ok().unwrap();
        let refused = cap.open().err().unwrap();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        // An endless stream ends at the lifetime, and its slot comes back.
        let endless = cap.bounded(a, futures_util::stream::pending::<u8>());
        assert_eq!(endless.collect::<Vec<_>>().await, Vec::<u8>::new());
        assert!(cap.open().is_ok());
    }
}
