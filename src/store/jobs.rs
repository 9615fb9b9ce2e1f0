//! Print jobs. A job is inserted in the same SQLite transaction that performs the payment, so a
//! paid order always has one; the print loop claims jobs from here, never from the wake-up channel.

use rusqlite::{params, Connection, OptionalExtension};

use super::FromRow;

/// The refund rule, kept in this one place: a job goes to the printer only while its order is
/// `paid` or a prepaid event's free `event` order (or, for a reprint the technician forced with `reprint --force`, `refunded`). Every query
/// below that claims, retries or requeues a job includes it, so no caller can forget it.
macro_rules! deliverable {
    () => {
        "EXISTS (SELECT 1 FROM orders o WHERE o.id = print_jobs.order_id
                 AND (o.status IN ('paid', 'event') OR (print_jobs.forced = 1 AND o.status = 'refunded')))"
    };
}

text_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum JobStatus in "print_jobs.status" {
        Queued = "queued",
        Printing = "printing",
        Printed = "printed",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

row_struct! {
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
        /// A reprint of a refunded order the technician forced (`reprint --force`).
        pub forced: bool,
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
    PrintJob::one(
        conn,
        "SELECT * FROM print_jobs WHERE order_id = ?1 AND kind = 'paid'",
        [order_id],
    )
}

/// The longest a queued job is ever put off (the print loop's retry backoff stops here). A job due
/// later than this from now had its time written on a clock ahead of today's: a Pi without a
/// battery clock boots on the last time it saved, up to an hour before a power cut, or the clock
/// was set back. Such a job is due now, not when that hour has passed again.
pub const LONGEST_WAIT_MS: i64 = 60_000;

/// Queues a reprint of an order's page; `forced` lets it print although the order was refunded.
/// Returns the new job's id, or `None` when the refund rule would never let it print: checked in
/// the same write, so a refund that lands after the caller looked leaves no job waiting forever.
pub fn queue_reprint(
    conn: &Connection,
    order_id: i64,
    copies: u32,
    forced: bool,
    now: i64,
) -> rusqlite::Result<Option<i64>> {
    conn.execute(
        "INSERT INTO print_jobs (order_id, kind, copies, status, created_at, updated_at, next_attempt_at, forced)
         VALUES (?1, 'reprint', ?2, 'queued', ?3, ?3, ?3, ?4)",
        params![order_id, copies, now, forced],
    )?;
    let id = conn.last_insert_rowid();
    let undeliverable = conn.execute(
        concat!("DELETE FROM print_jobs WHERE id = ?1 AND NOT ", deliverable!()),
        [id],
    )?;
    Ok((undeliverable == 0).then_some(id))
}

/// Takes the oldest queued job that is due and deliverable and marks it printing, or returns `None`.
pub fn claim_next(conn: &Connection, now: i64) -> rusqlite::Result<Option<PrintJob>> {
    let id: Option<i64> = conn
        .prepare_cached(concat!(
            "SELECT id FROM print_jobs WHERE status = 'queued' AND (next_attempt_at <= ?1 OR next_attempt_at > ?2) AND ",
            deliverable!(),
            " ORDER BY next_attempt_at, id LIMIT 1"
        ))?
        .query_row(params![now, now.saturating_add(LONGEST_WAIT_MS)], |r| r.get(0))
        .optional()?;
    let Some(id) = id else { return Ok(None) };
    conn.prepare_cached(
        "UPDATE print_jobs SET status = 'printing', attempts = attempts + 1, updated_at = ?2 WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    get(conn, id)
}

pub fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<PrintJob>> {
    PrintJob::one(conn, "SELECT * FROM print_jobs WHERE id = ?1", [id])
}

/// When the next deliverable queued job becomes due, if any is queued.
pub fn next_due(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(concat!(
        "SELECT min(next_attempt_at) FROM print_jobs WHERE status = 'queued' AND ",
        deliverable!()
    ))?
    .query_row([], |r| r.get(0))
}

/// Ends a job: printed, or failed until a technician acts. A job a refund cancelled while it was
/// printing stays cancelled unless it did print.
pub fn finish(
    conn: &Connection,
    id: i64,
    status: JobStatus,
    error: Option<&str>,
    may_have_printed: bool,
    now: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE print_jobs SET status = CASE WHEN status = 'cancelled' AND ?2 <> 'printed' THEN 'cancelled' ELSE ?2 END,
                               last_error = ?3, may_have_printed = may_have_printed OR ?4, updated_at = ?5
         WHERE id = ?1",
    )?
    .execute(params![id, status.as_str(), error, may_have_printed, now])?;
    Ok(())
}

/// Puts a job back in the queue after a transient fault, not to be tried before `next_at`; a job
/// whose order is no longer deliverable (refunded meanwhile) is cancelled instead.
pub fn retry_later(
    conn: &Connection,
    id: i64,
    error: &str,
    may_have_printed: bool,
    next_at: i64,
    now: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(concat!(
        "UPDATE print_jobs SET status = CASE WHEN ",
        deliverable!(),
        " THEN 'queued' ELSE 'cancelled' END,
           last_error = ?2, may_have_printed = may_have_printed OR ?3, next_attempt_at = ?4, updated_at = ?5
         WHERE id = ?1 AND status = 'printing'"
    ))?
    .execute(params![id, error, may_have_printed, next_at, now])?;
    Ok(())
}

/// Failed jobs of deliverable orders go back to the queue, due now: after the owner fixed the printer.
pub fn requeue_failed(conn: &Connection, now: i64) -> rusqlite::Result<usize> {
    conn.prepare_cached(concat!(
        "UPDATE print_jobs SET status = 'queued', next_attempt_at = ?1, updated_at = ?1 WHERE status = 'failed' AND ",
        deliverable!()
    ))?
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

/// A refund stops every print of its order that is not on paper yet: queued and failed jobs, and
/// the one printing now, which is marked so its retry, a restart and `printer resume` never send it
/// again (the copy already in the printer cannot be called back). Returns how many were stopped.
pub fn cancel_for_refund(conn: &Connection, order_id: i64, now: i64) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "UPDATE print_jobs SET status = 'cancelled', updated_at = ?2
         WHERE order_id = ?1 AND status IN ('queued', 'failed', 'printing')",
    )?
    .execute(params![order_id, now])
}

/// Jobs left `printing` by a crash go back to the queue (or are cancelled, if their order is no
/// longer deliverable). Returns the ids requeued, for the log.
pub fn requeue_interrupted(conn: &Connection, now: i64) -> rusqlite::Result<Vec<i64>> {
    let ids: Vec<i64> = conn
        .prepare_cached(concat!(
            "SELECT id FROM print_jobs WHERE status = 'printing' AND ",
            deliverable!(),
            " ORDER BY id"
        ))?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    conn.prepare_cached(concat!(
        "UPDATE print_jobs SET status = CASE WHEN ",
        deliverable!(),
        " THEN 'queued' ELSE 'cancelled' END,
           last_error = 'interrupted by a restart; may have printed',
           may_have_printed = 1, next_attempt_at = ?1, updated_at = ?1
         WHERE status = 'printing'"
    ))?
    .execute([now])?;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::orders::{self, StoredStatus};
    use crate::store::Store;

    /// A paid order with its queued job, in a fresh store.
    fn paid(store: &Store) -> (i64, i64) {
        store
            .write(|tx| {
                let order = orders::insert(tx, 1, 100, 0, 1_000)?;
                orders::mark_paid(tx, order.id, 1)?;
                Ok((order.id, insert_paid(tx, order.id, 1, 1)?))
            })
            .unwrap()
    }

    fn refund(store: &Store, order_id: i64) -> usize {
        store
            .write(|tx| {
                orders::close(tx, order_id, StoredStatus::Refunded, 2)?;
                cancel_for_refund(tx, order_id, 2)
            })
            .unwrap()
    }

    fn status(store: &Store, id: i64) -> JobStatus {
        store.read(|c| get(c, id)).unwrap().unwrap().status
    }

    #[test]
    fn a_refund_mid_print_stops_the_retry_and_the_restart_requeue() {
        let (_dir, store) = crate::store::temp_store();
        let (order, job) = paid(&store);
        assert_eq!(store.write(|tx| claim_next(tx, 5)).unwrap().map(|j| j.id), Some(job));
        assert_eq!(refund(&store, order), 1);
        store.write(|tx| retry_later(tx, job, "reset", true, 6, 5)).unwrap();
        assert_eq!(status(&store, job), JobStatus::Cancelled);
        assert_eq!(store.write(|tx| requeue_interrupted(tx, 7)).unwrap(), Vec::<i64>::new());
        assert_eq!(store.write(|tx| claim_next(tx, i64::MAX)).unwrap(), None);
        assert_eq!(store.read(next_due).unwrap(), None);
    }

    #[test]
    fn a_failed_job_of_a_refunded_order_is_never_requeued() {
        let (_dir, store) = crate::store::temp_store();
        let (order, job) = paid(&store);
        store.write(|tx| claim_next(tx, 5)).unwrap();
        store
            .write(|tx| finish(tx, job, JobStatus::Failed, Some("jam"), false, 6))
            .unwrap();
        assert_eq!(refund(&store, order), 1);
        assert_eq!(store.write(|tx| requeue_failed(tx, 7)).unwrap(), 0);
        assert_eq!(store.write(|tx| claim_next(tx, i64::MAX)).unwrap(), None);
    }

    #[test]
    fn the_store_refuses_jobs_of_an_order_that_is_not_paid_whoever_asks() {
        let (_dir, store) = crate::store::temp_store();
        let (order, job) = paid(&store);
        // Even if a job somehow stayed queued (no cancel), the claim itself checks the order.
        store
            .write(|tx| orders::close(tx, order, StoredStatus::Refunded, 2))
            .unwrap();
        assert_eq!(store.write(|tx| claim_next(tx, i64::MAX)).unwrap(), None);
        assert_eq!(status(&store, job), JobStatus::Queued);
        // A forced reprint of the refunded order is the one exception.
        let forced = store.write(|tx| queue_reprint(tx, order, 1, true, 3)).unwrap();
        assert!(forced.is_some());
        assert_eq!(
            store.write(|tx| claim_next(tx, i64::MAX)).unwrap().map(|j| j.id),
            forced
        );
        // Without --force the store takes no reprint of it: one that could never print.
        let unforced = store.write(|tx| queue_reprint(tx, order, 1, false, 4));
        assert_eq!(unforced.unwrap(), None);
    }
}
