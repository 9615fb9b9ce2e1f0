//! The media counter: prints left on the roll or pack. Dye-sub drivers report paper-out late or
//! never, so the booth counts for itself and stops taking paid sessions at zero.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Media {
    pub capacity: i64,
    pub remaining: i64,
    pub loaded_at: i64,
}

pub fn get(conn: &Connection) -> rusqlite::Result<Option<Media>> {
    conn.prepare_cached("SELECT capacity, remaining, loaded_at FROM media WHERE id = 1")?
        .query_row([], |r| {
            Ok(Media {
                capacity: r.get(0)?,
                remaining: r.get(1)?,
                loaded_at: r.get(2)?,
            })
        })
        .optional()
}

/// Matches the counter to the configured capacity at start-up: a first start loads a full roll, a
/// changed capacity keeps what is left (but never more than the new capacity), and capacity 0
/// switches counting off.
pub fn ensure(conn: &Connection, capacity: u32, now: i64) -> rusqlite::Result<Option<Media>> {
    if capacity == 0 {
        // Only write when there is something to remove: start-up must not need a free disk page.
        if get(conn)?.is_some() {
            conn.execute("DELETE FROM media", [])?;
        }
        return Ok(None);
    }
    conn.prepare_cached(
        "INSERT INTO media (id, capacity, remaining, loaded_at, updated_at) VALUES (1, ?1, ?1, ?2, ?2)
         ON CONFLICT (id) DO UPDATE SET capacity = excluded.capacity,
             remaining = min(remaining, excluded.capacity), updated_at = excluded.updated_at",
    )?
    .execute(params![capacity, now])?;
    get(conn)
}

/// The owner loaded a new roll or pack.
pub fn refill(conn: &Connection, capacity: u32, now: i64) -> rusqlite::Result<Option<Media>> {
    if capacity == 0 {
        return Ok(None);
    }
    conn.prepare_cached(
        "INSERT INTO media (id, capacity, remaining, loaded_at, updated_at) VALUES (1, ?1, ?1, ?2, ?2)
         ON CONFLICT (id) DO UPDATE SET capacity = excluded.capacity, remaining = excluded.capacity,
             loaded_at = excluded.loaded_at, updated_at = excluded.updated_at",
    )?
    .execute(params![capacity, now])?;
    get(conn)
}

/// Counts `prints` off the counter (never below zero); a no-op when media is not counted.
pub fn consume(conn: &Connection, prints: u32, now: i64) -> rusqlite::Result<Option<Media>> {
    conn.prepare_cached("UPDATE media SET remaining = max(remaining - ?1, 0), updated_at = ?2 WHERE id = 1")?
        .execute(params![prints, now])?;
    get(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_down_refills_and_follows_capacity() {
        let (_dir, store) = crate::store::temp_store();
        store
            .write(|c| {
                assert_eq!(ensure(c, 0, 1)?, None);
                assert_eq!(ensure(c, 10, 1)?.map(|m| m.remaining), Some(10));
                assert_eq!(consume(c, 4, 2)?.map(|m| m.remaining), Some(6));
                // A restart with the same capacity keeps the count.
                assert_eq!(ensure(c, 10, 3)?.map(|m| m.remaining), Some(6));
                // A smaller capacity caps it.
                assert_eq!(ensure(c, 5, 3)?.map(|m| m.remaining), Some(5));
                assert_eq!(consume(c, 9, 4)?.map(|m| m.remaining), Some(0));
                assert_eq!(refill(c, 5, 5)?.map(|m| (m.remaining, m.loaded_at)), Some((5, 5)));
                Ok(())
            })
            .unwrap();
    }
}
