//! The janitor: photos have a lifecycle, so a booth that runs for months never fills its card.
//!
//! It owns `data_dir/sessions/<id>/`: which of a session's files are still needed (`needed`, one
//! pure function over the session's facts) and removing the rest. It runs at start (which also
//! clears a crash's leftovers), every hour, and whenever the session manager ends a session
//! (`Booth::tidy_soon`), so a cancelled session's photos are gone within a moment.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};
use tokio::sync::watch;

use super::session::PAGE_FILE;
use super::Booth;
use crate::clock;
use crate::config::Storage;
use crate::store::orders::{self, StoredStatus};
use crate::store::{transactions, Store, StoreError};

/// How often the janitor looks even when nothing woke it (expiries, `keep_pages_days`).
const EVERY: Duration = Duration::from_secs(3600);
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// What of a session's files must stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needed {
    /// Shots, preview and page: the session is on screen, its order may still be paid, or its
    /// print is still to come.
    Everything,
    /// Only the composed page, for reprints.
    PageOnly,
    Nothing,
}

/// What the janitor knows about one session, read from the store in one go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFacts {
    pub started_at: i64,
    /// `None` while the session is on screen.
    pub ended_at: Option<i64>,
    pub order: Option<OrderFacts>,
    /// When the session's download link expires (digital copies), if it has one not yet purged.
    pub link_expires_at: Option<i64>,
    /// Until when its order's event gallery shows it (`digital::gallery::keeps_until`).
    pub gallery_until: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFacts {
    pub status: StoredStatus,
    pub expires_at: i64,
    pub paid_at: Option<i64>,
    /// A Payme transaction in state 1 or 2 holds the order: a payment may still be performed.
    pub live_tx: bool,
    /// A print job of the order is queued, printing, or failed and waiting for a technician.
    pub print_pending: bool,
}

/// Whether a session's photos are still needed, and which. The one place that decides it: a
/// feature that needs photos longer (a download link) adds its fact here.
pub fn needed(facts: &SessionFacts, storage: &Storage, now: i64) -> Needed {
    if facts.ended_at.is_none() {
        return Needed::Everything;
    }
    if now < facts.started_at.saturating_add(i64::from(storage.keep_hours) * HOUR_MS) {
        return Needed::Everything;
    }
    // A live download link serves every shot and the page until it expires.
    if facts.link_expires_at.is_some_and(|expires| now < expires) {
        return Needed::Everything;
    }
    // So does an event's gallery, for as long as it lives.
    if facts.gallery_until.is_some_and(|until| now < until) {
        return Needed::Everything;
    }
    let Some(order) = &facts.order else {
        // Never ordered: nobody can pay for these photos any more.
        return Needed::Nothing;
    };
    match order.status {
        // Payable until its TTL, or while Payme holds a transaction that may still be performed.
        StoredStatus::Open if order.live_tx || now < order.expires_at => Needed::Everything,
        StoredStatus::Open | StoredStatus::Cancelled => Needed::Nothing,
        StoredStatus::Paid | StoredStatus::Event | StoredStatus::Refunded if order.print_pending => Needed::Everything,
        // A refunded order was paid once: its page stays too (`reprint --force` may print it). An
        // event's free print keeps its page like a paid one, for reprints at the party.
        StoredStatus::Paid | StoredStatus::Event | StoredStatus::Refunded => {
            let paid = order.paid_at.unwrap_or(facts.started_at);
            if now < paid.saturating_add(i64::from(storage.keep_pages_days) * DAY_MS) {
                Needed::PageOnly
            } else {
                Needed::Nothing
            }
        }
    }
}

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub files: u64,
    pub bytes: u64,
}

pub struct Janitor {
    pub store: Arc<Store>,
    pub data_dir: PathBuf,
    pub storage: Storage,
}

impl Janitor {
    /// Sweeps now, then every hour and whenever the booth asks, until shutdown.
    pub async fn run(self, booth: Arc<Booth>, mut shutdown: watch::Receiver<bool>) {
        let me = Arc::new(self);
        loop {
            let sweeper = me.clone();
            match tokio::task::spawn_blocking(move || sweeper.sweep(clock::now_ms())).await {
                Ok(Ok(swept)) if swept.files > 0 => {
                    tracing::info!(
                        files = swept.files,
                        bytes = swept.bytes,
                        "janitor removed photos no longer needed"
                    );
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "janitor cannot read the store"),
                Err(e) => tracing::error!(error = %e, "janitor failed"),
            }
            tokio::select! {
                _ = booth.tidied() => {}
                _ = tokio::time::sleep(EVERY) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// One pass over `data_dir/sessions`. Blocking (SQLite, file system).
    pub fn sweep(&self, now: i64) -> Result<Swept, StoreError> {
        let root = self.data_dir.join("sessions");
        let Ok(entries) = std::fs::read_dir(&root) else {
            return Ok(Swept::default());
        };
        let mut swept = Swept::default();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let id = name.to_str().and_then(|n| n.parse::<i64>().ok());
            let facts = match id {
                Some(id) => self.store.read(|c| session_facts(c, id))?,
                // Not ours (or a half-made entry): nothing reads it.
                None => None,
            };
            let verdict = facts
                .as_ref()
                .map_or(Needed::Nothing, |f| needed(f, &self.storage, now));
            let live = facts.as_ref().is_some_and(|f| f.ended_at.is_none());
            remove_unneeded(&entry.path(), verdict, live, &mut swept);
        }
        Ok(swept)
    }
}

/// The facts `needed` decides on; `None` if the store has no such session (a leftover).
pub fn session_facts(conn: &Connection, session_id: i64) -> rusqlite::Result<Option<SessionFacts>> {
    let Some(s) = crate::store::sessions::get(conn, session_id)? else {
        return Ok(None);
    };
    let order = match s.order_id {
        Some(order_id) => order_facts(conn, order_id)?,
        None => None,
    };
    let link_expires_at = conn
        .prepare_cached("SELECT max(expires_at) FROM download_links WHERE session_id = ?1 AND purged_at IS NULL")?
        .query_row([session_id], |r| r.get::<_, Option<i64>>(0))?;
    let gallery_until = match s.order_id {
        Some(order_id) => crate::digital::gallery::keeps_until(conn, order_id)?,
        None => None,
    };
    Ok(Some(SessionFacts {
        started_at: s.started_at,
        ended_at: s.ended_at,
        order,
        link_expires_at,
        gallery_until,
    }))
}

fn order_facts(conn: &Connection, order_id: i64) -> rusqlite::Result<Option<OrderFacts>> {
    let Some(order) = orders::get(conn, order_id)? else {
        return Ok(None);
    };
    let live_tx = transactions::live_for_order(conn, order_id)?.is_some();
    let print_pending = conn
        .prepare_cached(
            "SELECT 1 FROM print_jobs WHERE order_id = ?1 AND status IN ('queued', 'printing', 'failed') LIMIT 1",
        )?
        .query_row([order_id], |_| Ok(()))
        .optional()?
        .is_some();
    Ok(Some(OrderFacts {
        status: order.status,
        expires_at: order.expires_at,
        paid_at: order.paid_at,
        live_tx,
        print_pending,
    }))
}

/// Removes what `verdict` says is not needed; in a session that is not on screen, also the hidden
/// half-written files a crash mid-capture or mid-compose leaves.
fn remove_unneeded(dir: &Path, verdict: Needed, live: bool, swept: &mut Swept) {
    if verdict == Needed::Nothing {
        remove_path(dir, swept);
        return;
    }
    if live {
        return;
    }
    let Ok(files) = std::fs::read_dir(dir) else { return };
    for file in files.flatten() {
        let name = file.file_name();
        let name = name.to_string_lossy();
        let leftover = name.starts_with('.');
        if leftover || (verdict == Needed::PageOnly && name != PAGE_FILE) {
            remove_path(&file.path(), swept);
        }
    }
}

fn remove_path(path: &Path, swept: &mut Swept) {
    let (files, bytes) = measure(path);
    let removed = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match removed {
        Ok(()) => {
            swept.files += files;
            swept.bytes += bytes;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "janitor cannot remove"),
    }
}

/// Files and bytes under `path` (one level of folders is all a session has).
fn measure(path: &Path) -> (u64, u64) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return (0, 0);
    };
    if !meta.is_dir() {
        return (1, meta.len());
    }
    std::fs::read_dir(path)
        .map(|rd| {
            rd.flatten().fold((0, 0), |(n, b), e| {
                let (fn_, fb) = measure(&e.path());
                (n + fn_, b + fb)
            })
        })
        .unwrap_or((0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn storage() -> Storage {
        crate::config::Config::built_in().unwrap().storage
    }

    fn ended(order: Option<OrderFacts>) -> SessionFacts {
        SessionFacts {
            started_at: NOW - HOUR_MS,
            ended_at: Some(NOW - HOUR_MS / 2),
            order,
            link_expires_at: None,
            gallery_until: None,
        }
    }

    #[test]
    fn a_live_download_link_keeps_every_photo_until_it_expires() {
        let s = storage();
        let mut paid = order(StoredStatus::Paid);
        paid.paid_at = Some(NOW - HOUR_MS);
        let mut facts = ended(Some(paid));
        assert_eq!(needed(&facts, &s, NOW), Needed::PageOnly, "printed: the shots may go");
        facts.link_expires_at = Some(NOW + HOUR_MS);
        assert_eq!(
            needed(&facts, &s, NOW),
            Needed::Everything,
            "the link still serves the shots"
        );
        facts.link_expires_at = Some(NOW - 1);
        assert_eq!(
            needed(&facts, &s, NOW),
            Needed::PageOnly,
            "expired: back to the paid rule"
        );
    }

    #[test]
    fn an_event_gallery_keeps_every_photo_while_it_lives() {
        let s = storage();
        let mut facts = ended(Some(order(StoredStatus::Event)));
        facts.started_at = NOW - 40 * DAY_MS;
        assert_eq!(
            needed(&facts, &s, NOW),
            Needed::Nothing,
            "no gallery: the page's days are over"
        );
        facts.gallery_until = Some(i64::MAX);
        assert_eq!(needed(&facts, &s, NOW), Needed::Everything, "the event still runs");
        facts.gallery_until = Some(NOW - 1);
        assert_eq!(needed(&facts, &s, NOW), Needed::Nothing, "the gallery has ended");
    }

    fn order(status: StoredStatus) -> OrderFacts {
        OrderFacts {
            status,
            expires_at: NOW - 1,
            paid_at: None,
            live_tx: false,
            print_pending: false,
        }
    }

    #[test]
    fn unpaid_sessions_lose_everything_once_nobody_can_pay() {
        let s = storage();
        assert_eq!(needed(&ended(None), &s, NOW), Needed::Nothing);
        assert_eq!(
            needed(&ended(Some(order(StoredStatus::Cancelled))), &s, NOW),
            Needed::Nothing
        );
        assert_eq!(
            needed(&ended(Some(order(StoredStatus::Open))), &s, NOW),
            Needed::Nothing
        );
        // Still payable: before its TTL, or while Payme holds a transaction past it.
        let mut open = order(StoredStatus::Open);
        open.expires_at = NOW + 1;
        assert_eq!(needed(&ended(Some(open.clone())), &s, NOW), Needed::Everything);
        open.expires_at = NOW - 1;
        open.live_tx = true;
        assert_eq!(needed(&ended(Some(open)), &s, NOW), Needed::Everything);
    }

    #[test]
    fn paid_sessions_keep_the_page_for_reprints_then_nothing() {
        let s = storage();
        let mut paid = order(StoredStatus::Paid);
        paid.paid_at = Some(NOW - HOUR_MS);
        paid.print_pending = true;
        assert_eq!(needed(&ended(Some(paid.clone())), &s, NOW), Needed::Everything);
        paid.print_pending = false;
        assert_eq!(needed(&ended(Some(paid.clone())), &s, NOW), Needed::PageOnly);
        assert_eq!(
            needed(&ended(Some(paid.clone())), &s, NOW + 6 * DAY_MS),
            Needed::PageOnly
        );
        assert_eq!(
            needed(&ended(Some(paid.clone())), &s, NOW + 7 * DAY_MS),
            Needed::Nothing
        );
        paid.status = StoredStatus::Refunded;
        assert_eq!(needed(&ended(Some(paid)), &s, NOW), Needed::PageOnly);
    }

    #[test]
    fn live_sessions_and_keep_hours_keep_everything() {
        let mut s = storage();
        let mut live = ended(None);
        live.ended_at = None;
        assert_eq!(needed(&live, &s, NOW + 30 * DAY_MS), Needed::Everything);
        s.keep_hours = 2;
        assert_eq!(needed(&ended(None), &s, NOW), Needed::Everything);
        assert_eq!(needed(&ended(None), &s, NOW + HOUR_MS), Needed::Nothing);
    }

    #[test]
    fn removes_what_is_not_needed_and_counts_it() {
        let dir = tempfile::tempdir().unwrap();
        let session = dir.path().join("7");
        std::fs::create_dir_all(&session).unwrap();
        for (name, len) in [
            ("shot-1.jpg", 10),
            ("preview.jpg", 5),
            (PAGE_FILE, 20),
            (".page.png.tmp", 3),
        ] {
            std::fs::write(session.join(name), vec![0u8; len]).unwrap();
        }
        let mut swept = Swept::default();
        remove_unneeded(&session, Needed::PageOnly, false, &mut swept);
        assert_eq!(swept, Swept { files: 3, bytes: 18 });
        assert!(session.join(PAGE_FILE).exists());
        remove_unneeded(&session, Needed::Nothing, false, &mut swept);
        assert_eq!(swept, Swept { files: 4, bytes: 38 });
        assert!(!session.exists());
    }
}
