//! Kiosk sessions: one customer's visit, from the start press to the printed photos. Persisted so
//! a restart resumes a session that is waiting for a payment or a print, and ends any other
//! cleanly instead of leaving the screen in a state nobody can leave.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

/// Where a session is. `Idle` is never stored: no open session means the booth is idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Idle,
    Countdown,
    Capturing,
    Review,
    ChooseCopies,
    AwaitingPayment,
    Printing,
    Done,
    Error,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Idle => "idle",
            Stage::Countdown => "countdown",
            Stage::Capturing => "capturing",
            Stage::Review => "review",
            Stage::ChooseCopies => "choose_copies",
            Stage::AwaitingPayment => "awaiting_payment",
            Stage::Printing => "printing",
            Stage::Done => "done",
            Stage::Error => "error",
        }
    }

    fn parse(s: &str) -> rusqlite::Result<Stage> {
        Ok(match s {
            "idle" => Stage::Idle,
            "countdown" => Stage::Countdown,
            "capturing" => Stage::Capturing,
            "review" => Stage::Review,
            "choose_copies" => Stage::ChooseCopies,
            "awaiting_payment" => Stage::AwaitingPayment,
            "printing" => Stage::Printing,
            "done" => Stage::Done,
            "error" => Stage::Error,
            other => return Err(super::orders::bad_value("sessions.stage", other)),
        })
    }
}

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

impl Session {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Session> {
        Ok(Session {
            id: row.get("id")?,
            stage: Stage::parse(&row.get::<_, String>("stage")?)?,
            shots_total: row.get("shots_total")?,
            shots_taken: row.get("shots_taken")?,
            retakes_used: row.get("retakes_used")?,
            order_id: row.get("order_id")?,
            error_code: row.get("error_code")?,
            error_message: row.get("error_message")?,
            started_at: row.get("started_at")?,
            stage_since: row.get("stage_since")?,
            ended_at: row.get("ended_at")?,
            end_reason: row.get("end_reason")?,
        })
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
    conn.prepare_cached("SELECT * FROM sessions WHERE id = ?1")?
        .query_row([id], Session::from_row)
        .optional()
}

/// The session that has not ended, if any (at most one: the booth has one screen).
pub fn open(conn: &Connection) -> rusqlite::Result<Option<Session>> {
    conn.prepare_cached("SELECT * FROM sessions WHERE ended_at IS NULL ORDER BY id DESC LIMIT 1")?
        .query_row([], Session::from_row)
        .optional()
}

/// Writes the whole mutable part of a session back.
pub fn save(conn: &Connection, s: &Session) -> rusqlite::Result<()> {
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
    Ok(())
}

/// The session an order belongs to, if it was made from one.
pub fn for_order(conn: &Connection, order_id: i64) -> rusqlite::Result<Option<Session>> {
    conn.prepare_cached("SELECT * FROM sessions WHERE order_id = ?1")?
        .query_row([order_id], Session::from_row)
        .optional()
}
