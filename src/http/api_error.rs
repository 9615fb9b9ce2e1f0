//! The kiosk API's errors as one type: an HTTP status, a stable `reason` code the kiosk page
//! matches on (`assets/ui/app.js`), and a sentence for people. It renders itself as
//! `{"error": "...", "reason": "..."}` (`IntoResponse`), so handlers return `Result<_, ApiError>`
//! and use `?`. The kiosk page is ours, not Payme's: these are plain HTTP errors.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use crate::booth::health::BlockReason;
use crate::booth::session::{Refusal, SessionError};
use crate::booth::OrderError;

/// The `reason` codes of the kiosk API, serialised as the kiosk page matches them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    NotFound,
    /// The body is not the JSON the endpoint takes.
    BadRequest,
    BadCopies,
    /// `language` is not one of the kiosk's languages (uz, ru, en).
    BadLanguage,
    /// `session_id` names a session that is not the booth's current one.
    NotCurrentSession,
    NoSession,
    /// SQLite or a blocking task failed; details are logged, not shown.
    Internal,
    /// The kiosk session refused (its own codes, blockers included).
    #[serde(untagged)]
    Session(Refusal),
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub reason: Reason,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, reason: Reason, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            reason,
            message: message.into(),
        }
    }

    pub fn not_found(message: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, Reason::NotFound, message)
    }

    pub fn bad_request(message: &str) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, Reason::BadRequest, message)
    }

    pub fn bad_copies(max: u32) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            Reason::BadCopies,
            format!("copies must be a whole number from 1 to {max}"),
        )
    }

    /// Logs what failed; the customer gets a sentence without details.
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "kiosk API failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Reason::Internal,
            "the booth cannot reach its database; please call staff",
        )
    }

    /// The booth cannot take a paid session: 503, or 500 when the cause is the store itself.
    fn blocked(reason: BlockReason, message: String) -> ApiError {
        let status = match reason {
            BlockReason::StoreFailed => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError::new(status, Reason::Session(Refusal::Blocked(reason)), message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        super::json(self.status, &json!({ "error": self.message, "reason": self.reason }))
    }
}

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> ApiError {
        let status = match e.code {
            Refusal::Blocked(reason) => return ApiError::blocked(reason, e.message),
            Refusal::StoreFailed => StatusCode::INTERNAL_SERVER_ERROR,
            Refusal::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            // The screen changed under the tap; the next view shows where the session is.
            Refusal::NotNow | Refusal::NoRetakesLeft | Refusal::PaymentInProgress => StatusCode::CONFLICT,
        };
        ApiError::new(status, Reason::Session(e.code), e.message)
    }
}

impl From<OrderError> for ApiError {
    fn from(e: OrderError) -> ApiError {
        match e {
            OrderError::InvalidCopies { max } => ApiError::bad_copies(max),
            OrderError::OutOfService(blocker) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Reason::Session(Refusal::Blocked(blocker.reason)),
                blocker.message,
            ),
            OrderError::Session(e) => e.into(),
            OrderError::Store(e) => ApiError::internal(e),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> ApiError {
        ApiError::internal(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::booth::health::Blocker;

    #[test]
    fn statuses_and_reasons_are_what_the_kiosk_page_expects() {
        let refusal = |code| ApiError::from(SessionError::new(code, "x"));
        let cases = [
            (refusal(Refusal::NotNow), 409, "not_now"),
            (refusal(Refusal::NoRetakesLeft), 409, "no_retakes_left"),
            (refusal(Refusal::PaymentInProgress), 409, "payment_in_progress"),
            (refusal(Refusal::StoreFailed), 500, "store_failed"),
            (refusal(Refusal::ShuttingDown), 503, "shutting_down"),
            (
                refusal(Refusal::Blocked(BlockReason::PrinterOffline)),
                503,
                "printer_offline",
            ),
            (
                refusal(Refusal::Blocked(BlockReason::MediaCounterEmpty)),
                503,
                "media_counter_empty",
            ),
            (refusal(Refusal::Blocked(BlockReason::StoreFailed)), 500, "store_failed"),
            (
                OrderError::OutOfService(Blocker {
                    reason: BlockReason::StoreFailed,
                    message: "x".into(),
                })
                .into(),
                503,
                "store_failed",
            ),
            (OrderError::InvalidCopies { max: 4 }.into(), 400, "bad_copies"),
            (ApiError::not_found("x"), 404, "not_found"),
        ];
        for (e, status, reason) in cases {
            let got = serde_json::to_value(e.reason).unwrap();
            assert_eq!((e.status.as_u16(), got.as_str()), (status, Some(reason)), "{e:?}");
        }
    }
}
