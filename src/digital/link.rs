//! The download link's token and its making at payment. Uses only `store` and the OS CSPRNG, so
//! the Payme methods (which must not reach into `booth`) can call it inside their transaction.

use base64::Engine;
use rusqlite::Connection;

use crate::store::links::{self, Link};
use crate::store::orders::{Order, OrderKind};
use crate::store::sessions;

/// 128 random bits: guessing a live token is hopeless, and 22 URL-safe characters fit a small QR.
const TOKEN_BYTES: usize = 16;

/// What the daemon tells the Payme methods about links (`[digital]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Links {
    /// Paid print orders from a session get a free link too (digital copies on).
    pub for_prints: bool,
    /// How long a link lives (`digital.link_hours`).
    pub link_ms: i64,
}

/// A new URL-safe token from the operating system's CSPRNG.
pub fn new_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether `s` could be a token at all; anything else is answered 404 without a lookup. 32
/// characters: an event gallery's token from before galleries used `new_token` (hex).
pub fn plausible_token(s: &str) -> bool {
    (s.len() == 22 || s.len() == 32) && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// Gives a just-paid order its download link when it has one to give: a digital-only order always,
/// a print order made from a kiosk session when `links.for_prints`. `None` from `links` (a
/// merchant built without them) gives none. Runs inside the transaction that performs the payment
/// and writes only when it makes the link.
pub fn attach_link(conn: &Connection, order: &Order, links: Option<Links>, now: i64) -> rusqlite::Result<Option<Link>> {
    let Some(l) = links else { return Ok(None) };
    if order.kind == OrderKind::Print && !l.for_prints {
        return Ok(None);
    }
    let Some(session) = sessions::for_order(conn, order.id)? else {
        return Ok(None);
    };
    let token = new_token().map_err(|e| {
        rusqlite::Error::ToSqlConversionFailure(format!("no randomness for a download token: {e}").into())
    })?;
    let link = Link {
        token,
        order_id: order.id,
        session_id: session.id,
        created_at: now,
        expires_at: now.saturating_add(l.link_ms),
        purged_at: None,
    };
    links::insert(conn, &link)?;
    Ok(Some(link))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_url_safe_and_distinct() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        assert!(plausible_token(&a), "{a}");
        assert!(!plausible_token("../etc/passwd"));
    }
}
