//! The owner's figures for a time window (the service menu's "today" and "this month"): sessions,
//! paid orders and revenue, refunds, prints, and an event's free prints kept apart from paid ones.
//! Read-only; nothing on the money path uses it.

use rusqlite::{params, Connection};
use serde::Serialize;

/// Figures for `from <= t < to` (UTC ms).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Period {
    pub from: i64,
    pub to: i64,
    pub sessions: i64,
    /// Orders Payme paid in the window (refunded later or not); simulated ones (`photoboothd pay`)
    /// are never counted here.
    pub paid_orders: i64,
    /// Paid and not refunded, in tiyin.
    pub revenue_tiyin: i64,
    pub refunds: i64,
    /// Copies printed for paid orders (reprints included).
    pub prints: i64,
    /// Free orders and copies printed for prepaid events (reprints included).
    pub event_orders: i64,
    pub event_prints: i64,
}

pub fn period(conn: &Connection, from: i64, to: i64) -> rusqlite::Result<Period> {
    let one =
        |sql: &str| -> rusqlite::Result<i64> { conn.prepare_cached(sql)?.query_row(params![from, to], |r| r.get(0)) };
    let printed = |event: bool| {
        format!(
            "SELECT coalesce(sum(j.copies), 0) FROM print_jobs j JOIN orders o ON o.id = j.order_id
             WHERE j.status = 'printed' AND j.updated_at >= ?1 AND j.updated_at < ?2 AND (o.status = 'event') = {event}"
        )
    };
    Ok(Period {
        from,
        to,
        sessions: one("SELECT count(*) FROM sessions WHERE started_at >= ?1 AND started_at < ?2")?,
        // Orders paid by `photoboothd pay` (simulated) are no money, as in `reports::daily`.
        paid_orders: one("SELECT count(*) FROM orders WHERE paid_at >= ?1 AND paid_at < ?2 AND simulated = 0")?,
        revenue_tiyin: one(
            "SELECT coalesce(sum(amount_tiyin), 0) FROM orders
             WHERE status = 'paid' AND paid_at >= ?1 AND paid_at < ?2 AND simulated = 0",
        )?,
        refunds: one(
            "SELECT count(*) FROM orders WHERE status = 'refunded' AND closed_at >= ?1 AND closed_at < ?2 AND simulated = 0",
        )?,
        prints: one(&printed(false))?,
        event_orders: one("SELECT count(*) FROM orders WHERE status = 'event' AND created_at >= ?1 AND created_at < ?2")?,
        event_prints: one(&printed(true))?,
    })
}

/// The newest order ids, newest first.
pub fn last_order_ids(conn: &Connection, limit: u32) -> rusqlite::Result<Vec<i64>> {
    conn.prepare_cached("SELECT id FROM orders ORDER BY id DESC LIMIT ?1")?
        .query_map([limit], |r| r.get(0))?
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{events, jobs, orders};

    #[test]
    fn event_prints_are_kept_apart_from_paid_ones() {
        let (_dir, store) = crate::store::temp_store();
        store
            .write(|c| {
                let paid = orders::insert(c, 2, 100, 10, 1_000)?;
                orders::mark_paid(c, paid.id, 11)?;
                let job = jobs::insert_paid(c, paid.id, 2, 11)?;
                jobs::finish(c, job, jobs::JobStatus::Printed, None, false, 12)?;
                let new = events::NewEvent {
                    title: "",
                    date: "",
                    max_prints: 0,
                    keep_days: 1,
                    source: "config",
                    token: "t",
                };
                let ev = events::start(c, &new, 10)?;
                let free = orders::insert_event(c, 3, ev.id, 13)?;
                let job = jobs::insert_paid(c, free.id, 3, 13)?;
                jobs::finish(c, job, jobs::JobStatus::Printed, None, false, 14)?;
                let p = period(c, 0, 100)?;
                assert_eq!(
                    (p.paid_orders, p.revenue_tiyin, p.prints, p.event_orders, p.event_prints),
                    (1, 200, 2, 1, 3)
                );
                assert_eq!(
                    period(c, 100, 200)?,
                    Period {
                        from: 100,
                        to: 200,
                        ..Period::default()
                    }
                );
                assert_eq!(last_order_ids(c, 10)?, vec![free.id, paid.id]);
                Ok(())
            })
            .unwrap();
    }
}
