//! Print jobs. A job is inserted in the same SQLite transaction that performs the payment, so a
//! paid order always has one; the print loop claims jobs from here, never from the wake-up channel.

use rusqlite::{params, Connection, OptionalExtension, Row};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Queued,
    Printing,
    Printed,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Printing => "printing",
            JobStatus::Printed => "printed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> rusqlite::Result<JobStatus> {
        Ok(match s {
            "queued" => JobStatus::Queued,
            "printing" => JobStatus::Printing,
            "printed" => JobStatus::Printed,
            "failed" => JobStatus::Failed,
            "cancelled" => JobStatus::Cancelled,
            other => return Err(super::orders::bad_value("print_jobs.status", other)),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintJob {
    pub id: i64,
    pub order_id: i64,
    pub copies: u32,
    pub status: JobStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Not claimed before this time (retry backoff).
    pub next_attempt_at: i64,
    /// A failure hit mid-job earlier: some copies may already be on paper.
    pub may_have_printed: bool,
}

impl PrintJob {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<PrintJob> {
        Ok(PrintJob {
            id: row.get("id")?,
            order_id: row.get("order_id")?,
            copies: row.get("copies")?,
            status: JobStatus::parse(&row.get::<_, String>("status")?)?,
            attempts: row.get("attempts")?,
            last_error: row.get("last_error")?,
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
            next_attempt_at: row.get("next_attempt_at")?,
            may_have_printed: row.get("may_have_printed")?,
        })
    }
}

/// Queues the one print job of a paid order.
pub fn insert_paid(conn: &Connection, order_id: i64, copies: u32, now: i64) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO print_jobs (order_id, kind, copies, status, created_at, updated_at)
         VALUES (?1, 'paid', ?2, 'queued', ?3, ?3)",
    )?
    .execute(params![order_id, copies, now])?;
    Ok(conn.last_insert_rowid())
}

pub fn paid_job_for_order(conn: &Connection, order_id: i64) -> rusqlite::Result<Option<PrintJob>> {
    conn.prepare_cached("SELECT * FROM print_jobs WHERE order_id = ?1 AND kind = 'paid'")?
        .query_row([order_id], PrintJob::from_row)
        .optional()
}

/// Takes the oldest queued job that is due and marks it printing, or returns `None`.
pub fn claim_next(conn: &Connection, now: i64) -> rusqlite::Result<Option<PrintJob>> {
    let id: Option<i64> = conn
        .prepare_cached(
            "SELECT id FROM print_jobs WHERE status = 'queued' AND next_attempt_at <= ?1
             ORDER BY next_attempt_at, id LIMIT 1",
        )?
        .query_row([now], |r| r.get(0))
        .optional()?;
    let Some(id) = id else { return Ok(None) };
    conn.prepare_cached(
        "UPDATE print_jobs SET status = 'printing', attempts = attempts + 1, updated_at = ?2 WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    get(conn, id)
}

pub fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<PrintJob>> {
    conn.prepare_cached("SELECT * FROM print_jobs WHERE id = ?1")?
        .query_row([id], PrintJob::from_row)
        .optional()
}

/// When the next queued job becomes due, if any is queued.
pub fn next_due(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT min(next_attempt_at) FROM print_jobs WHERE status = 'queued'")?
        .query_row([], |r| r.get(0))
}

/// Ends a job: printed, or failed until a technician acts.
pub fn finish(
    conn: &Connection,
    id: i64,
    status: JobStatus,
    error: Option<&str>,
    may_have_printed: bool,
    now: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE print_jobs SET status = ?2, last_error = ?3, may_have_printed = may_have_printed OR ?4,
                               updated_at = ?5 WHERE id = ?1",
    )?
    .execute(params![id, status.as_str(), error, may_have_printed, now])?;
    Ok(())
}

/// Puts a job back in the queue after a transient fault, not to be tried before `next_at`.
pub fn retry_later(
    conn: &Connection,
    id: i64,
    error: &str,
    may_have_printed: bool,
    next_at: i64,
    now: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE print_jobs SET status = 'queued', last_error = ?2, may_have_printed = may_have_printed OR ?3,
                               next_attempt_at = ?4, updated_at = ?5
         WHERE id = ?1 AND status = 'printing'",
    )?
    .execute(params![id, error, may_have_printed, next_at, now])?;
    Ok(())
}

/// Failed jobs go back to the queue, due now: after the owner fixed the printer.
pub fn requeue_failed(conn: &Connection, now: i64) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE print_jobs SET status = 'queued', next_attempt_at = ?1, updated_at = ?1 WHERE status = 'failed'",
    )?
    .execute([now])
}

/// Jobs by status, for status displays.
pub fn counts(conn: &Connection) -> rusqlite::Result<JobCounts> {
    conn.prepare_cached(
        "SELECT coalesce(sum(status = 'queued'), 0), coalesce(sum(status = 'printing'), 0),
                coalesce(sum(status = 'failed'), 0) FROM print_jobs",
    )?
    .query_row([], |r| {
        Ok(JobCounts {
            queued: r.get(0)?,
            printing: r.get(1)?,
            failed: r.get(2)?,
        })
    })
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct JobCounts {
    pub queued: i64,
    pub printing: i64,
    pub failed: i64,
}

/// A refund stops a job that has not started printing. Returns whether one was cancelled.
pub fn cancel_unprinted(conn: &Connection, order_id: i64, now: i64) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE print_jobs SET status = 'cancelled', updated_at = ?2
             WHERE order_id = ?1 AND status = 'queued'",
        )?
        .execute(params![order_id, now])?;
    Ok(n > 0)
}

/// Jobs left `printing` by a crash go back to the queue. Returns their ids for the log.
pub fn requeue_interrupted(conn: &Connection, now: i64) -> rusqlite::Result<Vec<i64>> {
    let ids: Vec<i64> = conn
        .prepare_cached("SELECT id FROM print_jobs WHERE status = 'printing' ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    conn.prepare_cached(
        "UPDATE print_jobs SET status = 'queued', last_error = 'interrupted by a restart; may have printed',
                               may_have_printed = 1, next_attempt_at = ?1, updated_at = ?1
         WHERE status = 'printing'",
    )?
    .execute([now])?;
    Ok(ids)
}
