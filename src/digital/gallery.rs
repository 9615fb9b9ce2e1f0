//! The event gallery: one secret link, `/d/<event token>`, to every photo of every free order of
//! a prepaid event, with a ZIP of all the originals, shown as a QR in the service menu.
//!
//! This module owns what the gallery is: how long it lives (`[event] keep_days` after the event
//! ends; for as long as it runs), which photos it lists (the event's orders' session files that
//! are still on disk), and what its ZIP archives hold. While it lives it keeps its photos: the
//! janitor and the purge of expired per-order links ask `keeps_until` first.

use std::path::Path;

use rusqlite::Connection;

use super::zip;
use super::File;
use crate::booth::session::session_dir;
use crate::store::events::{self, Event};
use crate::store::{orders, Store, StoreError};

const DAY_MS: i64 = 86_400_000;

/// When the gallery stops answering: `keep_days` after the event ended; `None` while it runs.
pub fn expires_at(event: &Event) -> Option<i64> {
    event
        .ended_at
        .map(|ended| ended.saturating_add(i64::from(event.keep_days) * DAY_MS))
}

/// Until when an order's event gallery keeps its photos (`i64::MAX` while the event runs);
/// `None` for an order of no event.
pub fn keeps_until(conn: &Connection, order_id: i64) -> rusqlite::Result<Option<i64>> {
    let Some(event_id) = orders::get(conn, order_id)?.and_then(|o| o.event_id) else {
        return Ok(None);
    };
    Ok(events::get(conn, event_id)?.map(|e| expires_at(&e).unwrap_or(i64::MAX)))
}

/// The gallery's link as the service menu shows it while the event runs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GalleryLink {
    pub url: String,
    /// The link's QR code as a PNG data URL, drawn like every QR the kiosk shows (`layout::qr`).
    pub qr_png: Option<String>,
    /// Days it is kept after the event ends.
    pub keep_days: u32,
}

/// `{base}/d/{token}` of `event`, with its QR code.
pub fn link(base: &str, event: &Event) -> GalleryLink {
    use base64::Engine;
    let url = format!("{}/d/{}", base.trim_end_matches('/'), event.token);
    let qr_png = match crate::layout::qr::png(&url) {
        Ok(png) => Some(format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(png)
        )),
        Err(e) => {
            tracing::warn!(event_id = event.id, error = %e, "cannot draw the gallery's QR code");
            None
        }
    };
    GalleryLink {
        url,
        qr_png,
        keep_days: event.keep_days,
    }
}

/// One order's photos in the gallery: the files of its session still on disk, with their sizes.
#[derive(Debug, Clone)]
pub struct OrderPhotos {
    pub order_id: i64,
    pub session_id: i64,
    pub shots: u32,
    pub files: Vec<(File, u64)>,
}

/// A live gallery: its event and its photos, oldest order first.
#[derive(Debug, Clone)]
pub struct Gallery {
    pub event: Event,
    pub orders: Vec<OrderPhotos>,
}

/// What an event token finds.
pub enum Lookup {
    Live(Gallery),
    Expired,
    Missing,
}

/// The event of `token` and, while its gallery lives, its photos. Blocking (SQLite, file sizes).
pub fn find(store: &Store, data_dir: &Path, token: &str, now: i64) -> Result<Lookup, StoreError> {
    let Some(event) = store.read(|c| events::by_token(c, token))? else {
        return Ok(Lookup::Missing);
    };
    if expires_at(&event).is_some_and(|end| now >= end) {
        return Ok(Lookup::Expired);
    }
    let sessions = store.read(|c| events::photo_sessions(c, event.id))?;
    let orders = sessions
        .into_iter()
        .map(|(order_id, session_id, shots)| {
            let dir = session_dir(data_dir, session_id);
            let files = std::iter::once(File::Page)
                .chain((1..=shots).map(File::Photo))
                .filter_map(|f| std::fs::metadata(f.source(&dir)).ok().map(|m| (f, m.len())))
                .collect();
            OrderPhotos {
                order_id,
                session_id,
                shots,
                files,
            }
        })
        .filter(|o: &OrderPhotos| !o.files.is_empty())
        .collect();
    Ok(Lookup::Live(Gallery { event, orders }))
}

impl Gallery {
    pub fn order(&self, order_id: i64) -> Option<&OrderPhotos> {
        self.orders.iter().find(|o| o.order_id == order_id)
    }

    /// Every original as a ZIP entry, named as a single download of it is
    /// (`test-booth-12-photo-1.jpg`).
    pub fn zip_entries(&self, data_dir: &Path, booth_name: &str) -> Vec<zip::Entry> {
        self.orders
            .iter()
            .flat_map(|o| {
                let dir = session_dir(data_dir, o.session_id);
                o.files.iter().map(move |&(file, size)| zip::Entry {
                    name: file.download_name(booth_name, o.order_id, true),
                    path: file.source(&dir),
                    size,
                })
            })
            .collect()
    }
}

/// The archives "download all" offers, `photos-1.zip` and on (`zip::parts`): `photos-N.zip` → N.
pub fn parse_zip_name(name: &str) -> Option<usize> {
    let n: usize = name.strip_prefix("photos-")?.strip_suffix(".zip")?.parse().ok()?;
    (n >= 1).then_some(n)
}

pub fn zip_name(part: usize) -> String {
    format!("photos-{part}.zip")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gallery_lives_while_the_event_runs_and_keep_days_after() {
        let mut e = Event {
            id: 1,
            title: String::new(),
            date: String::new(),
            max_prints: 0,
            keep_days: 30,
            token: "t".into(),
            source: "service".into(),
            started_at: 0,
            ended_at: None,
        };
        assert_eq!(expires_at(&e), None);
        e.ended_at = Some(1_000);
        assert_eq!(expires_at(&e), Some(1_000 + 30 * DAY_MS));
    }

    #[test]
    fn zip_names() {
        assert_eq!(parse_zip_name(&zip_name(2)), Some(2));
        assert_eq!(parse_zip_name("photos-0.zip"), None);
        assert_eq!(parse_zip_name("page.jpg"), None);
    }
}
