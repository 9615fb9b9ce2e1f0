//! What the booth's Prometheus counters count, read from the record so they survive restarts and
//! only go up: money from the Payme transactions (rows are never deleted), prints from the print
//! jobs, and the `counters` table for events no other table keeps for ever (how each session
//! ended). A counter row is bumped in the same commit as the event it counts.

use rusqlite::{params, Connection};

use super::orders::OrderKind;

/// `counters.name` of the session funnel (`photoboothd_sessions_total{outcome}`).
pub const SESSIONS: &str = "sessions";

/// The Payme transactions that count as money taken: performed (state 2, or -2 once refunded),
/// and real: `photoboothd pay` transactions are simulated and never count. Every money figure
/// below reads through this one filter.
const COUNTED_TX: &str = "t.perform_time > 0 AND t.simulated = 0";

/// Adds `by` to a counter.
pub fn add(conn: &Connection, name: &str, label: &str, by: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO counters (name, label, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value",
    )?
    .execute(params![name, label, by])?;
    Ok(())
}

/// A counter's value per label.
pub fn by_label(conn: &Connection, name: &str) -> rusqlite::Result<Vec<(String, i64)>> {
    conn.prepare_cached("SELECT label, value FROM counters WHERE name = ?1 ORDER BY label")?
        .query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// The money and print totals behind the owner's metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Tiyin ever paid, per order kind (refunded payments included: revenue = paid − refunded).
    pub paid_tiyin: Vec<(OrderKind, i64)>,
    pub refunded_tiyin: i64,
    /// When the last counted payment was performed (UTC ms); 0 before the first.
    pub last_payment_at: i64,
    /// Copies printed for event orders (prepaid parties, amount 0).
    pub event_prints: i64,
}

pub fn totals(conn: &Connection) -> rusqlite::Result<Totals> {
    let mut paid: Vec<(OrderKind, i64)> = OrderKind::ALL.iter().map(|k| (*k, 0)).collect();
    let sql = format!(
        "SELECT o.kind, coalesce(sum(t.amount), 0) FROM payme_transactions t JOIN orders o ON o.id = t.order_id
         WHERE {COUNTED_TX} GROUP BY o.kind"
    );
    let rows: Vec<(String, i64)> = conn
        .prepare_cached(&sql)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (kind, sum) in rows {
        if let Some(entry) = paid.iter_mut().find(|(k, _)| k.as_str() == kind) {
            entry.1 = sum;
        }
    }
    let (refunded_tiyin, last_payment_at) = conn.query_row(
        &format!(
            "SELECT coalesce(sum(CASE WHEN t.state = -2 THEN t.amount ELSE 0 END), 0), coalesce(max(t.perform_time), 0)
             FROM payme_transactions t WHERE {COUNTED_TX}"
        ),
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    // Event orders (issue #15) are stored with status 'event'; until they exist this is 0.
    let event_prints = conn.query_row(
        "SELECT coalesce(sum(j.copies), 0) FROM print_jobs j JOIN orders o ON o.id = j.order_id
         WHERE j.status = 'printed' AND o.status = 'event'",
        [],
        |r| r.get(0),
    )?;
    Ok(Totals {
        paid_tiyin: paid,
        refunded_tiyin,
        last_payment_at,
        event_prints,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_per_label() {
        let (_dir, store) = crate::store::temp_store();
        store
            .write(|tx| {
                add(tx, SESSIONS, "printed", 1)?;
                add(tx, SESSIONS, "printed", 1)?;
                add(tx, SESSIONS, "failed", 1)?;
                Ok(())
            })
            .unwrap();
        let got = store.read(|c| by_label(c, SESSIONS)).unwrap();
        assert_eq!(got, vec![("failed".into(), 1), ("printed".into(), 2)]);
        let t = store.read(totals).unwrap();
        assert_eq!(t.paid_tiyin, vec![(OrderKind::Print, 0), (OrderKind::Digital, 0)]);
        assert_eq!((t.refunded_tiyin, t.last_payment_at, t.event_prints), (0, 0, 0));
    }
}
