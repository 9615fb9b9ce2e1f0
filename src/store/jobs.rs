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

/// Takes the oldest queued job and marks it printing, or returns `None` when there is none.
pub fn claim_next(conn: &Connection, now: i64) -> rusqlite::Result<Option<PrintJob>> {
    let id: Option<i64> = conn
        .prepare_cached("SELECT id FROM print_jobs WHERE status = 'queued' ORDER BY id LIMIT 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    let Some(id) = id else { return Ok(None) };
    conn.prepare_cached(
        "UPDATE print_jobs SET status = 'printing', attempts = attempts + 1, updated_at = ?2 WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    conn.prepare_cached("SELECT * FROM print_jobs WHERE id = ?1")?
        .query_row([id], PrintJob::from_row)
        .optional()
}

pub fn finish(conn: &Connection, id: i64, status: JobStatus, error: Option<&str>, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE print_jobs SET status = ?2, last_error = ?3, updated_at = ?4 WHERE id = ?1")?
        .execute(params![id, status.as_str(), error, now])?;
    Ok(())
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
                               updated_at = ?1 WHERE status = 'printing'",
    )?
    .execute([now])?;
    Ok(ids)
}
