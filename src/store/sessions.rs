//! Kiosk sessions: one customer's visit, from the start press to the printed photos. Persisted so
//! a restart resumes a session that is waiting for a payment or a print, and ends any other
//! cleanly instead of leaving the screen in a state nobody can leave.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::FromRow;

text_enum! {
    /// Where a session is. `Idle` is never stored: no open session means the booth is idle.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Stage in "sessions.stage" {
        Idle = "idle",
        Countdown = "countdown",
        Capturing = "capturing",
        Review = "review",
        ChooseCopies = "choose_copies",
        AwaitingPayment = "awaiting_payment",
        Printing = "printing",
        Done = "done",
        Error = "error",
    }
}

row_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Session {
        pub id: i64,
        pub stage: Stage,
        pub shots_total: u32,
        pub shots_taken: u32,
        pub retakes_used: u32,
        pub order_id: Option<i64>,
        pub error_code: Option<String>,
        pub error_message: Option<String>,
        pub started_at: i64,
        pub stage_since: i64,
        pub ended_at: Option<i64>,
        pub end_reason: Option<String>,
    }
}

pub fn insert(conn: &Connection, shots_total: u32, now: i64) -> rusqlite::Result<Session> {
    conn.prepare_cached(
        "INSERT INTO sessions (stage, shots_total, started_at, stage_since) VALUES ('countdown', ?1, ?2, ?2)",
    )?
    .execute(params![shots_total, now])?;
    let id = conn.last_insert_rowid();
    get(conn, id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
}

pub fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<Session>> {
    Session::one(conn, "SELECT * FROM sessions WHERE id = ?1", [id])
}

/// The session that has not ended, if any (at most one: the booth has one screen).
pub fn open(conn: &Connection) -> rusqlite::Result<Option<Session>> {
    Session::one(
        conn,
        "SELECT * FROM sessions WHERE ended_at IS NULL ORDER BY id DESC LIMIT 1",
        [],
    )
}

named_enum! {
    /// How a session ended: the funnel that shows where customers drop off
    /// (`photoboothd_sessions_total{outcome}`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Outcome {
        /// Paid and printed.
        Printed = "printed",
        /// Paid, digital copy only.
        Delivered = "delivered",
        /// Printed for an event (prepaid party).
        Event = "event",
        AbandonedReview = "abandoned_review",
        AbandonedCopies = "abandoned_copies",
        /// Left on the payment screen, or the payment expired or was cancelled.
        AbandonedPayment = "abandoned_payment",
        /// The booth's fault: camera, compose or print failure, or a restart mid-session.
        Failed = "failed",
    }
}

impl Outcome {
    /// The outcome of a session that ended in `s.stage`; `order` is its order's kind and stored
    /// status, if it has one.
    pub fn of(s: &Session, order: Option<(&str, &str)>) -> Outcome {
        if s.end_reason.as_deref() == Some(RESTART) {
            return Outcome::Failed;
        }
        match s.stage {
            Stage::Done => match order {
                Some((_, "event")) => Outcome::Event,
                Some(("digital", _)) => Outcome::Delivered,
                _ => Outcome::Printed,
            },
            Stage::Review => Outcome::AbandonedReview,
            Stage::ChooseCopies => Outcome::AbandonedCopies,
            Stage::AwaitingPayment => Outcome::AbandonedPayment,
            Stage::Error => match s.error_code.as_deref() {
                Some("payment_expired" | "payment_cancelled") => Outcome::AbandonedPayment,
                _ => Outcome::Failed,
            },
            Stage::Idle | Stage::Countdown | Stage::Capturing | Stage::Printing => Outcome::Failed,
        }
    }
}

/// The `end_reason` of a session a restart interrupted (the session actor writes it at start-up).
pub const RESTART: &str = "restart";

/// Writes the whole mutable part of a session back. The save that ends a session also counts its
/// outcome, in the same commit, exactly once (`counters`, name `sessions`).
pub fn save(conn: &Connection, s: &Session) -> rusqlite::Result<()> {
    let ends_now = s.ended_at.is_some()
        && conn
            .prepare_cached("SELECT ended_at IS NULL FROM sessions WHERE id = ?1")?
            .query_row([s.id], |r| r.get::<_, bool>(0))
            .optional()?
            .unwrap_or(false);
    conn.prepare_cached(
        "UPDATE sessions SET stage = ?2, shots_taken = ?3, retakes_used = ?4, order_id = ?5, error_code = ?6,
                             error_message = ?7, stage_since = ?8, ended_at = ?9, end_reason = ?10
         WHERE id = ?1",
    )?
    .execute(params![
        s.id,
        s.stage.as_str(),
        s.shots_taken,
        s.retakes_used,
        s.order_id,
        s.error_code,
        s.error_message,
        s.stage_since,
        s.ended_at,
        s.end_reason
    ])?;
    if ends_now {
        count_outcome(conn, s)?;
    }
    Ok(())
}

fn count_outcome(conn: &Connection, s: &Session) -> rusqlite::Result<()> {
    let order: Option<(String, String)> = match s.order_id {
        Some(id) => conn
            .prepare_cached("SELECT kind, status FROM orders WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?,
        None => None,
    };
    let outcome = Outcome::of(s, order.as_ref().map(|(k, st)| (k.as_str(), st.as_str())));
    super::counters::add(conn, super::counters::SESSIONS, outcome.as_str(), 1)
}

/// The session an order belongs to, if it was made from one.
pub fn for_order(conn: &Connection, order_id: i64) -> rusqlite::Result<Option<Session>> {
    Session::one(conn, "SELECT * FROM sessions WHERE order_id = ?1", [order_id])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::counters;

    fn ended(stage: Stage, error: Option<&str>, reason: &str) -> Session {
        Session {
            id: 1,
            stage,
            shots_total: 3,
            shots_taken: 3,
            retakes_used: 0,
            order_id: None,
            error_code: error.map(str::to_string),
            error_message: None,
            started_at: 0,
            stage_since: 0,
            ended_at: Some(1),
            end_reason: Some(reason.into()),
        }
    }

    #[test]
    fn each_way_a_session_ends_has_its_outcome() {
        let cases = [
            (
                ended(Stage::Done, None, "done"),
                Some(("print", "paid")),
                Outcome::Printed,
            ),
            (
                ended(Stage::Done, None, "done"),
                Some(("digital", "paid")),
                Outcome::Delivered,
            ),
            (
                ended(Stage::Done, None, "done"),
                Some(("print", "event")),
                Outcome::Event,
            ),
            (ended(Stage::Review, None, "timed out"), None, Outcome::AbandonedReview),
            (
                ended(Stage::ChooseCopies, None, "cancelled by the customer"),
                None,
                Outcome::AbandonedCopies,
            ),
            (
                ended(Stage::AwaitingPayment, None, "payment not finished in time"),
                Some(("print", "open")),
                Outcome::AbandonedPayment,
            ),
            (
                ended(Stage::Error, Some("payment_expired"), "error shown"),
                None,
                Outcome::AbandonedPayment,
            ),
            (
                ended(Stage::Error, Some("camera_failed"), "error shown"),
                None,
                Outcome::Failed,
            ),
            (ended(Stage::Review, None, RESTART), None, Outcome::Failed),
        ];
        for (session, order, want) in cases {
            assert_eq!(Outcome::of(&session, order), want, "{session:?}");
        }
    }

    #[test]
    fn ending_a_session_counts_it_once() {
        let (_dir, store) = crate::store::temp_store();
        store
            .write(|tx| {
                let mut s = insert(tx, 3, 0)?;
                s.stage = Stage::Review;
                save(tx, &s)?;
                s.ended_at = Some(5);
                s.end_reason = Some("timed out".into());
                save(tx, &s)?;
                // A later save of the ended session does not count it again.
                save(tx, &s)
            })
            .unwrap();
        let counted = store.read(|c| counters::by_label(c, counters::SESSIONS)).unwrap();
        assert_eq!(counted, vec![("abandoned_review".to_string(), 1)]);
    }
}
