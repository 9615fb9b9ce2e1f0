//! Prepaid events (a wedding, a company party): the row that says an event runs, its cap on
//! prints, its title and date for the layout, and the secret token of its photo gallery. At most
//! one event is open at a time (a unique index); its orders carry its id.

use rusqlite::{params, Connection};
use serde::Serialize;

use super::FromRow;

row_struct! {
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub struct Event {
        pub id: i64,
        pub title: String,
        pub date: String,
        /// Sheets the printer may output for the event; 0 = no cap.
        pub max_prints: u32,
        pub keep_days: u32,
        #[serde(skip)]
        pub token: String,
        /// `config` or `service`: who started it.
        pub source: String,
        pub started_at: i64,
        pub ended_at: Option<i64>,
    }
}

/// What an event is started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent<'a> {
    pub title: &'a str,
    pub date: &'a str,
    pub max_prints: u32,
    pub keep_days: u32,
    pub source: &'static str,
    pub token: &'a str,
}

/// The event that runs now, if any.
pub fn current(conn: &Connection) -> rusqlite::Result<Option<Event>> {
    Event::one(conn, "SELECT * FROM events WHERE ended_at IS NULL", [])
}

pub fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<Event>> {
    Event::one(conn, "SELECT * FROM events WHERE id = ?1", [id])
}

/// The event whose gallery token this is (the gallery's one lookup, by a unique column).
pub fn by_token(conn: &Connection, token: &str) -> rusqlite::Result<Option<Event>> {
    Event::one(conn, "SELECT * FROM events WHERE token = ?1", [token])
}

/// The event's free orders that have photos, oldest first: (order id, session id, shots taken).
pub fn photo_sessions(conn: &Connection, event_id: i64) -> rusqlite::Result<Vec<(i64, i64, u32)>> {
    conn.prepare_cached(
        "SELECT o.id, s.id, s.shots_taken FROM orders o JOIN sessions s ON s.order_id = o.id
         WHERE o.event_id = ?1 AND o.status = 'event' ORDER BY o.id",
    )?
    .query_map([event_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
    .collect()
}

/// Starts an event, ending the one that ran before (a new party replaces the old one).
pub fn start(conn: &Connection, new: &NewEvent<'_>, now: i64) -> rusqlite::Result<Event> {
    end_current(conn, now)?;
    conn.prepare_cached(
        "INSERT INTO events (title, date, max_prints, keep_days, token, source, started_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        new.title,
        new.date,
        new.max_prints,
        new.keep_days,
        new.token,
        new.source,
        now
    ])?;
    get(conn, conn.last_insert_rowid())?.ok_or(rusqlite::Error::QueryReturnedNoRows)
}

/// Follows a changed `[event]` section for the event the config started.
pub fn update(
    conn: &Connection,
    id: i64,
    title: &str,
    date: &str,
    max_prints: u32,
    keep_days: u32,
) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE events SET title = ?2, date = ?3, max_prints = ?4, keep_days = ?5 WHERE id = ?1")?
        .execute(params![id, title, date, max_prints, keep_days])?;
    Ok(())
}

/// Ends the open event, if any. Returns the ended event's id.
pub fn end_current(conn: &Connection, now: i64) -> rusqlite::Result<Option<i64>> {
    let Some(event) = current(conn)? else { return Ok(None) };
    conn.prepare_cached("UPDATE events SET ended_at = ?2 WHERE id = ?1")?
        .execute(params![event.id, now])?;
    Ok(Some(event.id))
}

/// Copies ordered for the event so far: what counts against `max_prints` (sheets promised to the
/// printer, whether already out or still queued).
pub fn prints_ordered(conn: &Connection, event_id: i64) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT coalesce(sum(copies), 0) FROM orders WHERE event_id = ?1 AND status = 'event'")?
        .query_row([event_id], |r| r.get(0))
}

/// Copies of the event's own print jobs that came out of the printer (reprints not included).
pub fn prints_printed(conn: &Connection, event_id: i64) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "SELECT coalesce(sum(j.copies), 0) FROM print_jobs j JOIN orders o ON o.id = j.order_id
         WHERE o.event_id = ?1 AND j.kind = 'paid' AND j.status = 'printed'",
    )?
    .query_row([event_id], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::temp_store;

    fn new(token: &str) -> NewEvent<'_> {
        NewEvent {
            title: "Aziza & Bobur",
            date: "12.06.2026",
            max_prints: 3,
            keep_days: 30,
            source: "service",
            token,
        }
    }

    #[test]
    fn one_event_at_a_time_and_its_orders_count() {
        let (_dir, store) = temp_store();
        store
            .write(|c| {
                assert_eq!(current(c)?, None);
                let first = start(c, &new("t1"), 10)?;
                assert_eq!(current(c)?.map(|e| e.id), Some(first.id));
                // A second start ends the first.
                let second = start(c, &new("t2"), 20)?;
                assert_eq!(get(c, first.id)?.and_then(|e| e.ended_at), Some(20));
                assert_eq!(current(c)?.map(|e| e.id), Some(second.id));
                crate::store::orders::insert_event(c, 2, second.id, 30)?;
                assert_eq!(prints_ordered(c, second.id)?, 2);
                assert_eq!(prints_ordered(c, first.id)?, 0);
                assert_eq!(end_current(c, 40)?, Some(second.id));
                assert_eq!(current(c)?, None);
                Ok(())
            })
            .unwrap();
    }

    /// Whether the database refuses `statements`, run in one write on a fresh store.
    fn refused(statements: &[&str]) -> bool {
        let (_dir, store) = temp_store();
        store
            .write(|c| statements.iter().try_for_each(|sql| c.execute(sql, []).map(drop)))
            .is_err()
    }

    #[test]
    fn the_database_refuses_a_second_open_event() {
        assert!(refused(&[
            "INSERT INTO events (max_prints, keep_days, token, source, started_at) VALUES (0, 1, 'a', 'config', 1)",
            "INSERT INTO events (max_prints, keep_days, token, source, started_at) VALUES (0, 1, 'b', 'config', 1)",
        ]));
    }

    #[test]
    fn a_free_order_must_belong_to_an_event() {
        assert!(refused(&[
            "INSERT INTO orders (copies, price_per_copy_tiyin, amount_tiyin, status, created_at, expires_at)
             VALUES (1, 0, 0, 'paid', 1, 1)"
        ]));
    }
}
