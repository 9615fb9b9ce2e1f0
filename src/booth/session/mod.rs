//! The kiosk session: one customer's visit as a state machine that lives in the daemon, never in
//! the browser. idle → countdown → capturing (× shots) → review (retake allowed) → choose copies →
//! awaiting payment → printing → done → idle, with an error stage that tells the customer what
//! happens next.
//!
//! - `machine.rs`: the rules, as a pure function `transition(state, event, now) -> (state,
//!   actions)`; no I/O, unit-tested stage by stage.
//! - `actor.rs`: the one task that owns the machine (`SessionManager`), feeds it inputs from the
//!   touch screen, the GPIO button, timers and the order's progress, and performs its actions
//!   (SQLite on blocking threads, the camera, composing the page).
//! - `view.rs`: what the screen gets (`SessionView`), published on a `watch` channel that feeds
//!   Server-Sent Events.
//! - `files.rs`: where a session's shots, page and preview live; the print loop and the HTTP layer
//!   name them through it too.
//!
//! An input that is not valid in the current stage changes nothing but returns an error. Every
//! stage change is written to SQLite before it is shown, so a restart resumes a session that waits
//! for a payment or a print and ends any other cleanly.

mod actor;
pub mod files;
pub mod machine;
mod view;

use serde::{Serialize, Serializer};
use tokio::sync::{mpsc, oneshot, watch};

pub use actor::SessionManager;
pub use files::{session_dir, SessionFiles, PAGE_FILE};
pub use view::{ErrorView, SessionView};

use super::health::BlockReason;
use super::{OrderError, OrderView};
use crate::config::Language;

/// What the customer asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Start,
    Retake,
    Accept,
    /// Leave the session (before a payment is under way).
    Cancel,
    /// Leave the done or error screen early.
    Dismiss,
    /// The GPIO button: means whatever "go on" means in the current stage.
    Button,
}

impl Input {
    /// The touch screen's button names (`POST /api/session/{action}`); the GPIO button has none.
    pub fn from_action(action: &str) -> Option<Input> {
        Some(match action {
            "start" => Input::Start,
            "retake" => Input::Retake,
            "accept" => Input::Accept,
            "cancel" => Input::Cancel,
            "dismiss" => Input::Dismiss,
            _ => return None,
        })
    }
}

/// Why the session refused an input; serialises to the code the kiosk page matches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The current stage does not take this input.
    NotNow,
    NoRetakesLeft,
    /// Payme holds a transaction for the order: the customer is paying, it cannot be cancelled.
    PaymentInProgress,
    /// SQLite could not record the change.
    StoreFailed,
    ShuttingDown,
    /// The booth cannot finish a paid session now (printer, media, store...).
    Blocked(BlockReason),
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::NotNow => "not_now",
            Refusal::NoRetakesLeft => "no_retakes_left",
            Refusal::PaymentInProgress => "payment_in_progress",
            Refusal::StoreFailed => "store_failed",
            Refusal::ShuttingDown => "shutting_down",
            Refusal::Blocked(reason) => reason.as_str(),
        }
    }
}

impl Serialize for Refusal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// An input that the session did not take, and why in words (for logs and the technician).
#[derive(Debug, Clone, Serialize)]
pub struct SessionError {
    pub code: Refusal,
    pub message: String,
}

impl SessionError {
    pub fn new(code: Refusal, message: impl Into<String>) -> SessionError {
        SessionError {
            code,
            message: message.into(),
        }
    }

    fn shutting_down() -> SessionError {
        SessionError::new(Refusal::ShuttingDown, "the booth is shutting down")
    }
}

/// What went wrong in a session that the error screen explains; stored in `sessions.error_code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    CameraFailed,
    ComposeFailed,
    PaymentExpired,
    PaymentCancelled,
    PrintFailed,
    /// A stored code this build does not know; the screen shows its generic text.
    Other,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::CameraFailed => "camera_failed",
            ErrorKind::ComposeFailed => "compose_failed",
            ErrorKind::PaymentExpired => "payment_expired",
            ErrorKind::PaymentCancelled => "payment_cancelled",
            ErrorKind::PrintFailed => "print_failed",
            ErrorKind::Other => "other",
        }
    }

    pub fn parse(code: &str) -> ErrorKind {
        [
            ErrorKind::CameraFailed,
            ErrorKind::ComposeFailed,
            ErrorKind::PaymentExpired,
            ErrorKind::PaymentCancelled,
            ErrorKind::PrintFailed,
        ]
        .into_iter()
        .find(|k| k.as_str() == code)
        .unwrap_or(ErrorKind::Other)
    }
}

enum Command {
    Input(Input, oneshot::Sender<Result<SessionView, SessionError>>),
    /// Copies and the customer's language (for the checkout page).
    Order(u32, Option<Language>, oneshot::Sender<Result<OrderView, OrderError>>),
}

/// The handle the HTTP layer and the button use.
#[derive(Clone)]
pub struct Sessions {
    commands: mpsc::Sender<Command>,
    view: watch::Receiver<SessionView>,
}

impl Sessions {
    pub async fn input(&self, input: Input) -> Result<SessionView, SessionError> {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Input(input, tx)).await.is_err() {
            return Err(SessionError::shutting_down());
        }
        rx.await.unwrap_or_else(|_| Err(SessionError::shutting_down()))
    }

    /// An order for the current session (which must be choosing copies), in the customer's language.
    pub async fn order(&self, copies: u32, language: Option<Language>) -> Result<OrderView, OrderError> {
        let (tx, rx) = oneshot::channel();
        let gone = || OrderError::Session(SessionError::shutting_down());
        if self.commands.send(Command::Order(copies, language, tx)).await.is_err() {
            return Err(gone());
        }
        rx.await.unwrap_or_else(|_| Err(gone()))
    }

    pub fn view(&self) -> SessionView {
        self.view.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<SessionView> {
        self.view.clone()
    }
}
