//! Digital copies: the customer's photos on their phone through a private link.
//!
//! This module owns the link's life: the token (`link.rs`, made in the commit that performs the
//! payment, so a print can carry it), what a token finds, the files a link serves and their
//! phone-sized copies, and the end of a link (its photos are deleted once it has expired and no
//! print or event gallery still needs them). An event's gallery (`gallery.rs`, its ZIP in
//! `zip.rs`) shares the `/d/<token>` namespace. The HTTP side is `http/download.rs` and
//! `http/gallery.rs`; the pages' words are `page.rs`.

pub mod config;
pub mod gallery;
pub mod link;
pub mod page;
pub mod zip;

pub use link::{attach_link, new_token, plausible_token, Links};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::booth::session::{session_dir, PAGE_FILE};
use crate::clock;
use crate::config::Language;
use crate::store::links::{self, Link};
use crate::store::{jobs, orders, sessions, JobStatus, Store};

/// The longest side of the phone-sized copies (the booth's uplink is often 4G).
pub const PHONE_PX: u32 = 1600;
/// How often expired links are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// `[digital] qr_on_print`: how the download link's QR goes on this booth's printed pages.
#[derive(Debug, Clone)]
pub struct PrintQr {
    /// Links are `{base}/d/{token}`.
    pub base: String,
    pub dpi: u32,
    pub repeat_x: u32,
    /// A roll printer (thermal): the page grows by a band instead of covering a corner.
    pub extend: bool,
}

impl PrintQr {
    /// `Some` when the QR is to be printed and links work (`base`).
    pub fn from_config(config: &crate::config::Config, base: Option<&str>) -> Option<PrintQr> {
        if !config.digital.qr_on_print {
            return None;
        }
        let base = base?;
        let template = crate::layout::template::load(&config.printer.layout).ok()?;
        Some(PrintQr {
            base: base.to_string(),
            dpi: template.dpi(),
            repeat_x: template.repeat_x(),
            extend: config.printer.backend == crate::config::PrinterBackend::Escpos,
        })
    }

    /// The page with the order's live link stamped on it; the page as it was when the order has
    /// no live link (or the QR cannot be made: a print is never lost to its QR).
    pub fn apply(&self, store: &Store, order_id: i64, page: image::RgbImage) -> image::RgbImage {
        let now = clock::now_ms();
        let link = match store.read(|c| links::for_order(c, order_id)) {
            Ok(Some(link)) if !link.expired(now) => link,
            _ => return page,
        };
        let url = format!("{}/d/{}", self.base, link.token);
        match crate::layout::qr::stamp(&page, &url, self.dpi, self.repeat_x, self.extend) {
            Ok(stamped) => stamped,
            Err(e) => {
                tracing::warn!(order_id, error = %e, "cannot put the download QR on the print");
                page
            }
        }
    }
}

/// One downloadable file of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum File {
    /// The composed page.
    Page,
    /// Shot `n` (1-based).
    Photo(u32),
}

impl File {
    /// `page.jpg` or `photo-N.jpg`, as the URLs name them.
    pub fn parse(name: &str, shots: u32) -> Option<File> {
        if name == "page.jpg" {
            return Some(File::Page);
        }
        let n: u32 = name.strip_prefix("photo-")?.strip_suffix(".jpg")?.parse().ok()?;
        (1..=shots).contains(&n).then_some(File::Photo(n))
    }

    pub fn url_name(self) -> String {
        match self {
            File::Page => "page.jpg".into(),
            File::Photo(n) => format!("photo-{n}.jpg"),
        }
    }

    /// The file the session wrote (full size).
    pub(crate) fn source(self, dir: &Path) -> PathBuf {
        match self {
            File::Page => dir.join(PAGE_FILE),
            File::Photo(n) => dir.join(format!("shot-{n}.jpg")),
        }
    }

    /// The cached phone-sized copy.
    fn phone_copy(self, dir: &Path) -> PathBuf {
        match self {
            File::Page => dir.join("phone-page.jpg"),
            File::Photo(n) => dir.join(format!("phone-shot-{n}.jpg")),
        }
    }

    /// The name a phone saves it under: `photo-booth-12-page.jpg`.
    pub fn download_name(self, booth_name: &str, order_id: i64, full: bool) -> String {
        let slug: String = booth_name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let slug = slug.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-");
        let slug = if slug.is_empty() {
            "photobooth".to_string()
        } else {
            slug
        };
        let ext = if full && self == File::Page { "png" } else { "jpg" };
        match self {
            File::Page => format!("{slug}-{order_id}-page.{ext}"),
            File::Photo(n) => format!("{slug}-{order_id}-photo-{n}.{ext}"),
        }
    }

    pub fn content_type(self, full: bool) -> &'static str {
        if full && self == File::Page {
            "image/png"
        } else {
            "image/jpeg"
        }
    }
}

/// The bytes of `file` of a session: the original with `full`, else the phone-sized JPEG (made
/// once and kept beside the original). Blocking (disk, image scaling).
pub fn read_file(data_dir: &Path, session_id: i64, file: File, full: bool) -> std::io::Result<Vec<u8>> {
    let dir = session_dir(data_dir, session_id);
    let source = file.source(&dir);
    if full {
        return std::fs::read(source);
    }
    let cached = file.phone_copy(&dir);
    if let Ok(bytes) = std::fs::read(&cached) {
        return Ok(bytes);
    }
    let img = image::open(&source).map_err(std::io::Error::other)?;
    let small = if img.width().max(img.height()) > PHONE_PX {
        img.resize(PHONE_PX, PHONE_PX, image::imageops::FilterType::Triangle)
    } else {
        img
    };
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&small.to_rgb8())
        .map_err(std::io::Error::other)?;
    // Write then rename, so a concurrent reader never sees half a file.
    let tmp = dir.join(format!(".{}.tmp", file.url_name()));
    if std::fs::write(&tmp, &out)
        .and_then(|()| std::fs::rename(&tmp, &cached))
        .is_err()
    {
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(out)
}

/// What a token finds.
pub enum Found {
    /// A live link, its session's number of shots and the order's language (if the kiosk sent it).
    Live(Link, u32, Option<Language>),
    /// An event's gallery (`gallery.rs`): every photo of the event.
    Gallery(Box<gallery::Gallery>),
    /// It worked once; its photos are (being) deleted.
    Expired,
    /// Never was, or taken away by a refund.
    Missing,
}

/// The one indexed lookup by token, then (for a live link) the session's shot count; a token
/// that is no order's link may be an event's gallery (`gallery::find`). An expired link's photos
/// are deleted on the spot if no print or live gallery still needs them. Blocking.
pub fn lookup(store: &Store, data_dir: &Path, token: &str, now: i64) -> Result<Found, crate::store::StoreError> {
    if !plausible_token(token) {
        return Ok(Found::Missing);
    }
    let Some(link) = store.read(|c| links::by_token(c, token))? else {
        // Not an order's link: perhaps an event's gallery.
        return Ok(match gallery::find(store, data_dir, token, now)? {
            gallery::Lookup::Live(g) => Found::Gallery(Box::new(g)),
            gallery::Lookup::Expired => Found::Expired,
            gallery::Lookup::Missing => Found::Missing,
        });
    };
    if link.expired(now) {
        if link.purged_at.is_none() {
            purge_expired(store, data_dir, now)?;
        }
        return Ok(Found::Expired);
    }
    let shots = store
        .read(|c| sessions::get(c, link.session_id))?
        .map_or(0, |s| s.shots_taken);
    let language = store
        .read(|c| orders::get(c, link.order_id))?
        .and_then(|o| o.language)
        .and_then(|code| Language::from_code(&code));
    Ok(Found::Live(link, shots, language))
}

/// Deletes the photos of expired links that no print and no live event gallery still needs, and
/// marks them purged.
/// Returns how many links were purged. Blocking.
pub fn purge_expired(store: &Store, data_dir: &Path, now: i64) -> Result<usize, crate::store::StoreError> {
    let expired = store.read(|c| links::expired_unpurged(c, now, 100))?;
    let mut purged = 0;
    for link in expired {
        let print_pending = store
            .read(|c| jobs::paid_job_for_order(c, link.order_id))?
            .is_some_and(|j| matches!(j.status, JobStatus::Queued | JobStatus::Printing | JobStatus::Failed));
        if print_pending {
            continue;
        }
        // An event's live gallery still shows these photos: the link ends, the files stay (the
        // janitor removes them once the gallery has ended too).
        if store
            .read(|c| gallery::keeps_until(c, link.order_id))?
            .is_some_and(|until| now < until)
        {
            store.write(|tx| links::mark_purged(tx, &link.token, now))?;
            continue;
        }
        let dir = session_dir(data_dir, link.session_id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(session_id = link.session_id, error = %e, "cannot delete an expired link's photos");
                continue;
            }
        }
        store.write(|tx| links::mark_purged(tx, &link.token, now))?;
        tracing::info!(
            order_id = link.order_id,
            session_id = link.session_id,
            "download link expired; its photos are deleted"
        );
        purged += 1;
    }
    Ok(purged)
}

/// Purges expired links now and every few minutes until shutdown.
pub async fn sweep(store: Arc<Store>, data_dir: PathBuf, mut shutdown: watch::Receiver<bool>) {
    loop {
        let (s, d) = (store.clone(), data_dir.clone());
        match tokio::task::spawn_blocking(move || purge_expired(&s, &d, clock::now_ms())).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot purge expired download links"),
            Err(e) => tracing::warn!(error = %e, "cannot purge expired download links"),
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_checked_and_sensible() {
        assert_eq!(File::parse("page.jpg", 3), Some(File::Page));
        assert_eq!(File::parse("photo-3.jpg", 3), Some(File::Photo(3)));
        assert_eq!(File::parse("photo-4.jpg", 3), None);
        assert_eq!(File::parse("photo-0.jpg", 3), None);
        assert_eq!(File::parse("../page.png", 3), None);
        assert_eq!(
            File::Photo(2).download_name("Toshkent Photo Booth!", 12, false),
            "toshkent-photo-booth-12-photo-2.jpg"
        );
        assert_eq!(File::Page.download_name("Фото", 3, true), "photobooth-3-page.png");
    }
}
