//! Read-only queries for the technician's CLI: order lists, one order's history, daily figures.
//! Kept apart from the tables' own modules because nothing on the money path uses them.

use rusqlite::{params, Connection};
use serde::Serialize;

use super::jobs::PrintJob;

/// Order ids created in `[from, until)` (ms), newest first, at most `limit` (all with `None`).
pub fn order_ids_in(conn: &Connection, from: i64, until: i64, limit: Option<u32>) -> rusqlite::Result<Vec<i64>> {
    // SQLite reads a negative LIMIT as no limit.
    let limit = limit.map_or(-1, i64::from);
    conn.prepare("SELECT id FROM orders WHERE created_at >= ?1 AND created_at < ?2 ORDER BY id DESC LIMIT ?3")?
        .query_map(params![from, until, limit], |r| r.get(0))?
        .collect()
}

/// Every print job of an order (the paid one and any reprints), oldest first.
pub fn jobs_for_order(conn: &Connection, order_id: i64) -> rusqlite::Result<Vec<(String, PrintJob)>> {
    let ids: Vec<(i64, String)> = conn
        .prepare("SELECT id, kind FROM print_jobs WHERE order_id = ?1 ORDER BY id")?
        .query_map([order_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for (id, kind) in ids {
        if let Some(job) = super::jobs::get(conn, id)? {
            out.push((kind, job));
        }
    }
    Ok(out)
}

/// The last performed payments by Payme: (order id, amount in tiyin, perform time), newest first.
/// Simulated ones (`photoboothd pay`) are not payments and are left out.
pub fn last_payments(conn: &Connection, limit: u32) -> rusqlite::Result<Vec<(i64, i64, i64)>> {
    conn.prepare(
        "SELECT order_id, amount, perform_time FROM payme_transactions WHERE perform_time > 0 AND simulated = 0
         ORDER BY perform_time DESC LIMIT ?1",
    )?
    .query_map([limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
    .collect()
}

/// One local day's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Day {
    /// Days since the epoch in the booth's local time.
    pub day: i64,
    pub sessions: i64,
    pub paid_orders: i64,
    pub refunded_orders: i64,
    /// Paid and not refunded, in tiyin.
    pub revenue_tiyin: i64,
    /// Copies printed for paid orders.
    pub prints: i64,
    /// Copies printed free for prepaid events, kept apart from paid ones.
    pub event_prints: i64,
    pub print_failures: i64,
    pub camera_failures: i64,
}

/// Figures per local day for days at or after `since_day`; `offset_ms` turns UTC into local time.
pub fn daily(conn: &Connection, since_day: i64, offset_ms: i64) -> rusqlite::Result<Vec<Day>> {
    let mut days: std::collections::BTreeMap<i64, Day> = std::collections::BTreeMap::new();
    let day_of = "((?1 + {col}) / 86400000)";
    let mut run = |sql: String, apply: &dyn Fn(&mut Day, i64)| -> rusqlite::Result<()> {
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params![offset_ms, since_day], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (day, n) = row?;
            let entry = days.entry(day).or_insert_with(|| Day { day, ..Day::default() });
            apply(entry, n);
        }
        Ok(())
    };
    let grouped = |col: &str, from: &str, filter: &str, value: &str| {
        let d = day_of.replace("{col}", col);
        format!("SELECT {d} AS day, {value} FROM {from} WHERE {col} IS NOT NULL {filter} GROUP BY day HAVING day >= ?2")
    };
    run(grouped("started_at", "sessions", "", "count(*)"), &|d, n| {
        d.sessions = n
    })?;
    // Orders paid by `photoboothd pay` (simulated) are no money: left out of every figure.
    run(
        grouped("paid_at", "orders", "AND simulated = 0", "count(*)"),
        &|d, n| d.paid_orders = n,
    )?;
    run(
        grouped(
            "closed_at",
            "orders",
            "AND status = 'refunded' AND simulated = 0",
            "count(*)",
        ),
        &|d, n| d.refunded_orders = n,
    )?;
    run(
        grouped(
            "paid_at",
            "orders",
            "AND status = 'paid' AND simulated = 0",
            "coalesce(sum(amount_tiyin), 0)",
        ),
        &|d, n| d.revenue_tiyin = n,
    )?;
    let event_order = "order_id IN (SELECT id FROM orders WHERE status = 'event')";
    run(
        grouped(
            "updated_at",
            "print_jobs",
            &format!("AND status = 'printed' AND NOT {event_order}"),
            "coalesce(sum(copies), 0)",
        ),
        &|d, n| d.prints = n,
    )?;
    run(
        grouped(
            "updated_at",
            "print_jobs",
            &format!("AND status = 'printed' AND {event_order}"),
            "coalesce(sum(copies), 0)",
        ),
        &|d, n| d.event_prints = n,
    )?;
    run(
        grouped("updated_at", "print_jobs", "AND status = 'failed'", "count(*)"),
        &|d, n| d.print_failures = n,
    )?;
    run(
        grouped("started_at", "sessions", "AND error_code = 'camera_failed'", "count(*)"),
        &|d, n| d.camera_failures = n,
    )?;
    Ok(days.into_values().collect())
}
