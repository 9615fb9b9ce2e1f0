//! The session's rules as a pure function: `transition(state, event, now, ctx)` returns the next
//! state and the actions the actor must perform (write the session, start a capture, create or
//! cancel an order...), or refuses the event and changes nothing. No I/O happens here, so every
//! stage and input is unit-tested below without a store, a camera or a clock.
//!
//! Things only the outside world knows arrive as events: the id of a new session row
//! (`SessionCreated`), a new order (`OrderCreated`), whether an order could be cancelled
//! (`OrderCancelled`), a finished capture, the order's progress (`OrderSeen`).

use crate::booth::health::Blocker;
use crate::config::Config;
use crate::store::sessions::{Session, Stage};
use crate::store::OrderStatus;

use super::{ErrorKind, Input, Refusal, SessionError};

/// Payment screen grace after the order's TTL while Payme still holds a transaction (the customer
/// is typing a card code); after it the session ends and a late payment still prints.
pub const PAYMENT_GRACE_MS: i64 = 120_000;
/// The print-failed screen shows the order number at least this long.
pub const PRINT_FAILED_SCREEN_S: u32 = 120;

/// The flow's knobs, from `[camera]` and `[session]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub shots: u32,
    pub countdown_s: u32,
    pub max_retakes: u32,
    pub review_timeout_s: u32,
    pub copies_timeout_s: u32,
    pub done_timeout_s: u32,
    pub error_timeout_s: u32,
}

impl Rules {
    pub fn from_config(c: &Config) -> Rules {
        Rules {
            shots: c.camera.shots,
            countdown_s: c.camera.countdown_s,
            max_retakes: c.session.max_retakes,
            review_timeout_s: c.session.review_timeout_s,
            copies_timeout_s: c.session.copies_timeout_s,
            done_timeout_s: c.session.done_timeout_s,
            error_timeout_s: c.session.error_timeout_s,
        }
    }

    fn countdown_ends(&self, now: i64) -> i64 {
        now + i64::from(self.countdown_s) * 1000
    }
}

/// What the machine holds between events: the open session (none while idle) and, while counting
/// down, when the countdown ends.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub session: Option<Session>,
    pub countdown_ends_at: Option<i64>,
}

impl State {
    pub fn stage(&self) -> Stage {
        self.session.as_ref().map_or(Stage::Idle, |s| s.stage)
    }

    /// When the current stage acts by itself (the actor then sends `Event::Deadline`).
    pub fn deadline(&self, rules: &Rules) -> Option<i64> {
        let s = self.session.as_ref()?;
        let secs = |n: u32| s.stage_since + i64::from(n) * 1000;
        match s.stage {
            Stage::Countdown => self.countdown_ends_at,
            Stage::Review => Some(secs(rules.review_timeout_s)),
            Stage::ChooseCopies => Some(secs(rules.copies_timeout_s)),
            Stage::Done => Some(secs(rules.done_timeout_s)),
            // A customer whose paid print failed needs time to find staff with the order number.
            Stage::Error if s.error_code.as_deref() == Some(ErrorKind::PrintFailed.as_str()) => {
                Some(secs(rules.error_timeout_s.max(PRINT_FAILED_SCREEN_S)))
            }
            Stage::Error => Some(secs(rules.error_timeout_s)),
            // These end by events (capture done, order state), watched on the actor's tick.
            Stage::Idle | Stage::Capturing | Stage::AwaitingPayment | Stage::Printing => None,
        }
    }
}

/// The order of a session as the tick last read it.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderSeen {
    pub status: OrderStatus,
    pub expires_at: i64,
    /// The print job's last error, for the print-failed screen.
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Input(Input),
    /// The row for a new session was written (answers `Action::CreateSession`).
    SessionCreated(Session),
    /// The kiosk asks for an order of the current session.
    OrderRequested,
    /// The order was created (answers `Action::CreateOrder`).
    OrderCreated(i64),
    /// A free order of a prepaid event was created and queued (answers `Action::CreateOrder`):
    /// no payment screen, straight to printing.
    FreeOrderCreated(i64),
    /// The order was cancelled: no payment was under way (answers `Action::CancelOrder`).
    OrderCancelled,
    /// `State::deadline` has passed.
    Deadline,
    /// A capture finished; for the last shot, `page` is the result of composing the page.
    ShotTaken {
        page: Option<Result<(), String>>,
    },
    ShotFailed(String),
    /// The print page, finished after the review went up, could not be made or saved; no order
    /// can exist yet (an order waits for the page).
    PageFailed(String),
    /// The session's order, read on the tick while awaiting payment or printing.
    OrderSeen(OrderSeen),
}

/// The outside world the rules look at, besides the clock.
#[derive(Debug, Clone)]
pub struct Ctx<'a> {
    pub rules: &'a Rules,
    /// Why a paid session cannot start now, if it cannot.
    pub blocker: Option<Blocker>,
}

/// What the actor must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Insert a session row, then send `Event::SessionCreated`.
    CreateSession { shots_total: u32 },
    /// Write this session back (stage changes and endings).
    Save(Session),
    /// Delete the session's shots (a retake: old shots must not end up in the new page).
    RemoveShots(i64),
    /// Take shot `shot`; `last` also composes the page.
    Capture { session_id: i64, shot: u32, last: bool },
    /// Stop a capture under way (the session ended).
    AbortCapture,
    /// Create the session's order, then send `Event::OrderCreated`.
    CreateOrder { session_id: i64 },
    /// Cancel the order unless a payment is under way; if cancelled, send `Event::OrderCancelled`,
    /// otherwise refuse with `Refusal::PaymentInProgress`.
    CancelOrder(i64),
}

/// The next state and what to do to get there.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub state: State,
    pub actions: Vec<Action>,
}

impl Step {
    fn unchanged(state: &State) -> Step {
        Step {
            state: state.clone(),
            actions: Vec::new(),
        }
    }
}

/// The session's rules: `event` at `now` in `state`.
pub fn transition(state: &State, event: Event, now: i64, ctx: &Ctx<'_>) -> Result<Step, SessionError> {
    let stage = state.stage();
    let mut next = Step::unchanged(state);
    match event {
        Event::Input(input) => return on_input(state, input, now, ctx),
        Event::SessionCreated(session) => {
            next.state.countdown_ends_at = Some(ctx.rules.countdown_ends(session.stage_since));
            next.state.session = Some(session);
        }
        Event::OrderRequested => {
            let Some(session_id) = state
                .session
                .as_ref()
                .filter(|s| s.stage == Stage::ChooseCopies)
                .map(|s| s.id)
            else {
                return Err(SessionError::new(
                    Refusal::NotNow,
                    format!(
                        "copies can be chosen only on the copies screen, not while {}",
                        stage.as_str()
                    ),
                ));
            };
            next.actions.push(Action::CreateOrder { session_id });
        }
        Event::OrderCreated(order_id) => {
            if let Some(s) = next.state.session.as_mut() {
                s.order_id = Some(order_id);
            }
            enter(&mut next, Stage::AwaitingPayment, now);
        }
        Event::FreeOrderCreated(order_id) => {
            if let Some(s) = next.state.session.as_mut() {
                s.order_id = Some(order_id);
            }
            enter(&mut next, Stage::Printing, now);
        }
        Event::OrderCancelled => end(&mut next, "cancelled by the customer", now),
        Event::Deadline => match stage {
            Stage::Countdown => start_capture(&mut next, now),
            Stage::Review | Stage::ChooseCopies => end(&mut next, "timed out", now),
            Stage::Done => end(&mut next, "done", now),
            Stage::Error => end(&mut next, "error shown", now),
            _ => {}
        },
        // A capture only finishes while capturing (an ended session aborts its capture).
        Event::ShotFailed(message) if stage == Stage::Capturing => {
            fail(&mut next, ErrorKind::CameraFailed, Some(message), now)
        }
        Event::ShotTaken { page } if stage == Stage::Capturing => shot_taken(&mut next, page, ctx, now),
        Event::ShotFailed(_) | Event::ShotTaken { .. } => {}
        Event::PageFailed(message) if matches!(stage, Stage::Review | Stage::ChooseCopies) => {
            fail(&mut next, ErrorKind::ComposeFailed, Some(message), now)
        }
        Event::PageFailed(_) => {}
        Event::OrderSeen(order) => order_seen(&mut next, stage, order, now),
    }
    Ok(next)
}

fn on_input(state: &State, input: Input, now: i64, ctx: &Ctx<'_>) -> Result<Step, SessionError> {
    let stage = state.stage();
    let input = match (input, stage) {
        (Input::Button, Stage::Idle) => Input::Start,
        (Input::Button, Stage::Review) => Input::Accept,
        (Input::Button, Stage::Done | Stage::Error) => Input::Dismiss,
        (other, _) => other,
    };
    let mut next = Step::unchanged(state);
    match (input, stage) {
        (Input::Start, Stage::Idle) => {
            if let Some(blocker) = &ctx.blocker {
                tracing::warn!(
                    reason = blocker.reason.as_str(),
                    "session not started: {}",
                    blocker.message
                );
                return Err(SessionError::new(
                    Refusal::Blocked(blocker.reason),
                    blocker.message.clone(),
                ));
            }
            next.actions.push(Action::CreateSession {
                shots_total: ctx.rules.shots,
            });
        }
        (Input::Retake, Stage::Review) => {
            let Some(s) = next.state.session.as_mut() else {
                return Err(SessionError::new(Refusal::NotNow, "no session"));
            };
            if s.retakes_used >= ctx.rules.max_retakes {
                return Err(SessionError::new(Refusal::NoRetakesLeft, "no retakes left"));
            }
            s.retakes_used += 1;
            s.shots_taken = 0;
            tracing::info!(session_id = s.id, retake = s.retakes_used, "retake");
            next.actions.push(Action::RemoveShots(s.id));
            next.state.countdown_ends_at = Some(ctx.rules.countdown_ends(now));
            enter(&mut next, Stage::Countdown, now);
        }
        (Input::Accept, Stage::Review) => enter(&mut next, Stage::ChooseCopies, now),
        (Input::Cancel, Stage::Review | Stage::ChooseCopies) => end(&mut next, "cancelled by the customer", now),
        (Input::Cancel, Stage::AwaitingPayment) => match state.session.as_ref().and_then(|s| s.order_id) {
            Some(order_id) => next.actions.push(Action::CancelOrder(order_id)),
            None => end(&mut next, "cancelled by the customer", now),
        },
        (Input::Dismiss, Stage::Done | Stage::Error) => end(&mut next, "dismissed", now),
        (input, stage) => {
            tracing::debug!(?input, stage = stage.as_str(), "input ignored in this stage");
            return Err(SessionError::new(
                Refusal::NotNow,
                format!("{input:?} is not possible while {}", stage.as_str()),
            ));
        }
    }
    Ok(next)
}

/// Moves the session to `stage` and asks for it to be written.
fn enter(next: &mut Step, stage: Stage, now: i64) {
    let Some(s) = next.state.session.as_mut() else { return };
    s.stage = stage;
    s.stage_since = now;
    if stage != Stage::Error {
        s.error_code = None;
        s.error_message = None;
    }
    next.actions.push(Action::Save(s.clone()));
}

fn fail(next: &mut Step, kind: ErrorKind, message: Option<String>, now: i64) {
    if let Some(s) = next.state.session.as_mut() {
        tracing::warn!(
            session_id = s.id,
            order_id = s.order_id,
            code = kind.as_str(),
            message = message.as_deref(),
            "session error"
        );
        s.error_code = Some(kind.as_str().to_string());
        s.error_message = message;
    }
    enter(next, Stage::Error, now);
}

/// Ends the session (written with its reason) and returns to idle.
fn end(next: &mut Step, reason: &str, now: i64) {
    let Some(mut s) = next.state.session.take() else { return };
    s.ended_at = Some(now);
    s.end_reason = Some(reason.to_string());
    if s.stage == Stage::AwaitingPayment {
        tracing::warn!(
            session_id = s.id,
            order_id = s.order_id,
            "customer left before paying; a payment that still arrives will print"
        );
    }
    tracing::info!(
        session_id = s.id,
        order_id = s.order_id,
        stage = s.stage.as_str(),
        reason,
        "session ended"
    );
    next.state.countdown_ends_at = None;
    next.actions.push(Action::AbortCapture);
    next.actions.push(Action::Save(s));
}

fn start_capture(next: &mut Step, now: i64) {
    let Some(s) = next.state.session.as_ref() else { return };
    let shot = s.shots_taken + 1;
    let capture = Action::Capture {
        session_id: s.id,
        shot,
        last: shot >= s.shots_total,
    };
    next.state.countdown_ends_at = None;
    enter(next, Stage::Capturing, now);
    next.actions.push(capture);
}

fn shot_taken(next: &mut Step, page: Option<Result<(), String>>, ctx: &Ctx<'_>, now: i64) {
    let Some(s) = next.state.session.as_mut() else { return };
    s.shots_taken += 1;
    tracing::info!(
        session_id = s.id,
        shot = s.shots_taken,
        of = s.shots_total,
        "photo taken"
    );
    match page {
        None => {
            next.state.countdown_ends_at = Some(ctx.rules.countdown_ends(now));
            enter(next, Stage::Countdown, now);
        }
        Some(Ok(())) => enter(next, Stage::Review, now),
        Some(Err(message)) => fail(next, ErrorKind::ComposeFailed, Some(message), now),
    }
}

/// Follows the order of a session awaiting payment or printing.
fn order_seen(next: &mut Step, stage: Stage, order: OrderSeen, now: i64) {
    if !matches!(stage, Stage::AwaitingPayment | Stage::Printing) {
        return;
    }
    match (stage, order.status) {
        (_, OrderStatus::Printed | OrderStatus::Delivered) => enter(next, Stage::Done, now),
        (_, OrderStatus::PrintFailed) => fail(next, ErrorKind::PrintFailed, order.last_error, now),
        (Stage::AwaitingPayment, OrderStatus::Paid | OrderStatus::Printing) => enter(next, Stage::Printing, now),
        (Stage::AwaitingPayment, OrderStatus::Expired) => fail(next, ErrorKind::PaymentExpired, None, now),
        (_, OrderStatus::Refunded | OrderStatus::Cancelled) => fail(next, ErrorKind::PaymentCancelled, None, now),
        (Stage::AwaitingPayment, OrderStatus::AwaitingPayment) if now > order.expires_at + PAYMENT_GRACE_MS => {
            end(next, "payment not finished in time", now)
        }
        _ => {}
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
