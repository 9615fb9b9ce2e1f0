//! Download links of digital copies: a random token per paid session order, made in the commit
//! that performs the payment, removed by a refund, and marked purged once its photos are deleted
//! after it expired.

use rusqlite::{params, Connection};

use super::FromRow;

row_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Link {
        pub token: String,
        pub order_id: i64,
        pub session_id: i64,
        pub created_at: i64,
        pub expires_at: i64,
        pub purged_at: Option<i64>,
    }
}

impl Link {
    pub fn expired(&self, now: i64) -> bool {
        now >= self.expires_at
    }
}

pub fn insert(conn: &Connection, link: &Link) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO download_links (token, order_id, session_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        link.token,
        link.order_id,
        link.session_id,
        link.created_at,
        link.expires_at
    ])?;
    Ok(())
}

/// The one lookup a download does: by primary key.
pub fn by_token(conn: &Connection, token: &str) -> rusqlite::Result<Option<Link>> {
    Link::one(conn, "SELECT * FROM download_links WHERE token = ?1", [token])
}

pub fn for_order(conn: &Connection, order_id: i64) -> rusqlite::Result<Option<Link>> {
    Link::one(conn, "SELECT * FROM download_links WHERE order_id = ?1", [order_id])
}

/// A refund takes the link away. Returns whether there was one.
pub fn remove_for_order(conn: &Connection, order_id: i64) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM download_links WHERE order_id = ?1")?
        .execute([order_id])?
        > 0)
}

/// Expired links whose photos are still on disk, oldest first.
pub fn expired_unpurged(conn: &Connection, now: i64, limit: u32) -> rusqlite::Result<Vec<Link>> {
    Link::all(
        conn,
        "SELECT * FROM download_links WHERE purged_at IS NULL AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2",
        params![now, limit],
    )
}

pub fn mark_purged(conn: &Connection, token: &str, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE download_links SET purged_at = ?2 WHERE token = ?1")?
        .execute(params![token, now])?;
    Ok(())
}

/// Whether a live (unexpired) link still needs this session's photos.
pub fn session_needed(conn: &Connection, session_id: i64, now: i64) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM download_links WHERE session_id = ?1 AND expires_at > ?2)")?
        .query_row(params![session_id, now], |r| r.get(0))
}
