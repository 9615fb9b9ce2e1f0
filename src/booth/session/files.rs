//! The one place that names a session's files: its shots, the composed print page and the small
//! preview, all under `data_dir/sessions/<id>/`. The session writes them, the print loop reads the
//! page, the kiosk API serves the shots and the preview; all three ask here.

use std::path::{Path, PathBuf};

use crate::clock;
use crate::config::Config;
use crate::layout::{compose, fit};

/// The composed page of a session, printed by its paid order's job.
pub const PAGE_FILE: &str = "page.png";
const PREVIEW_FILE: &str = "preview.jpg";
/// The preview's width in pixels: sharp on the review screen of every supported display.
const PREVIEW_WIDTH: u32 = 600;
/// Written first and renamed over `PAGE_FILE`, so a crash never leaves half a page to print.
const PAGE_TMP_FILE: &str = ".page.png.tmp";

/// Where a session's photos and pages live.
pub fn session_dir(data_dir: &Path, session_id: i64) -> PathBuf {
    data_dir.join("sessions").join(session_id.to_string())
}

/// One session's files.
#[derive(Debug, Clone)]
pub struct SessionFiles {
    id: i64,
    dir: PathBuf,
}

impl SessionFiles {
    pub fn new(data_dir: &Path, session_id: i64) -> SessionFiles {
        SessionFiles {
            id: session_id,
            dir: session_dir(data_dir, session_id),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Shot `n` (1-based).
    pub fn shot(&self, n: u32) -> PathBuf {
        self.dir.join(shot_name(n))
    }

    pub fn page(&self) -> PathBuf {
        self.dir.join(PAGE_FILE)
    }

    pub fn preview(&self) -> PathBuf {
        self.dir.join(PREVIEW_FILE)
    }

    /// A file of this session the kiosk may fetch, if `name` is one (a shot or the preview).
    pub fn servable(&self, name: &str) -> Option<PathBuf> {
        let shot = name
            .strip_prefix("shot-")
            .and_then(|rest| rest.strip_suffix(".jpg"))
            .is_some_and(|n| n.parse::<u32>().is_ok());
        (name == PREVIEW_FILE || shot).then(|| self.dir.join(name))
    }

    /// The URL the kiosk page loads shot `n` from.
    pub fn shot_url(&self, n: u32) -> String {
        format!("/api/sessions/{}/{}", self.id, shot_name(n))
    }

    pub fn preview_url(&self) -> String {
        format!("/api/sessions/{}/{PREVIEW_FILE}", self.id)
    }

    /// Prepares shot `n` of `shots` for the configured layout (decoded and fitted into its slots),
    /// the slow part of composing, done while the customer poses for the next shot. Blocking.
    pub fn prepare_shot(&self, config: &Config, n: u32, shots: u32) -> Result<compose::PreparedPhoto, String> {
        let template = fit::load_for(&config.printer.layout, config.printer.page).map_err(|e| e.to_string())?;
        let index = n.saturating_sub(1) as usize;
        compose::prepare_photo(&template, index, shots as usize, &self.shot(n)).map_err(|e| e.to_string())
    }

    /// Composes shots 1..=`shots` into the configured layout and writes the small JPEG preview
    /// the review screen shows; returns the page (at the printer's resolution) for `save_page`,
    /// which the session runs after the review is up. `prepared[i]`, when present, is shot i+1
    /// already prepared; the others are decoded here. At a prepaid event its title and date take
    /// the place of the booth's name and today's date. Blocking.
    pub fn compose_page(
        &self,
        config: &Config,
        event: Option<&crate::booth::event::EventInfo>,
        shots: u32,
        mut prepared: Vec<Option<compose::PreparedPhoto>>,
    ) -> Result<image::RgbImage, String> {
        let template = fit::load_for(&config.printer.layout, config.printer.page).map_err(|e| e.to_string())?;
        prepared.resize_with(shots as usize, || None);
        let photos = (1..=shots)
            .zip(prepared)
            .map(|(n, ready)| match ready {
                Some(photo) => Ok(photo),
                None => compose::prepare_photo(&template, (n - 1) as usize, shots as usize, &self.shot(n))
                    .map_err(|e| e.to_string()),
            })
            .collect::<Result<Vec<_>, String>>()?;
        let title = event.map(|e| e.title.trim()).filter(|t| !t.is_empty());
        let ctx = compose::Context {
            booth_name: title.unwrap_or(&config.booth.name),
            time_ms: config.local_time_ms(clock::now_ms()),
            date_text: event.map(|e| e.date.trim()).filter(|d| !d.is_empty()),
        };
        let page = compose::compose_prepared(&template, &photos, &ctx);
        drop(photos);
        let preview_width = PREVIEW_WIDTH.min(page.width());
        let preview_height =
            (u64::from(page.height()) * u64::from(preview_width) / u64::from(page.width().max(1))) as u32;
        // Our own resampler: image's generic `imageops::resize` took ~30 ms of the wait for a
        // 1200×1800 page, this one a few.
        let preview = compose::cover(&page, preview_width, preview_height.max(1));
        preview
            .save_with_format(self.preview(), image::ImageFormat::Jpeg)
            .map_err(|e| format!("cannot save the preview: {e}"))?;
        Ok(page)
    }

    /// Writes the print page: to a temporary name, then renamed, so a crash never leaves half a
    /// page to print. Blocking.
    pub fn save_page(&self, page: &image::RgbImage) -> Result<(), String> {
        let tmp = self.dir.join(PAGE_TMP_FILE);
        save_png_fast(page, &tmp).map_err(|e| format!("cannot save the page: {e}"))?;
        std::fs::rename(&tmp, self.page()).map_err(|e| format!("cannot save the page: {e}"))
    }
}

/// The page as PNG with fast deflate: it is read once by the print loop from local storage, so a
/// few percent of file size are not worth the 3-4× encoding time of the default level (the page
/// must be on disk before the customer's order is made, a few seconds after the review).
fn save_png_fast(page: &image::RgbImage, path: &Path) -> Result<(), String> {
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    use image::ImageEncoder;
    let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
    let mut out = std::io::BufWriter::new(file);
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Sub)
        .write_image(
            page.as_raw(),
            page.width(),
            page.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| e.to_string())?;
    std::io::Write::flush(&mut out).map_err(|e| e.to_string())
}

fn shot_name(n: u32) -> String {
    format!("shot-{n}.jpg")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_shots_and_the_preview_are_servable() {
        let f = SessionFiles::new(Path::new("/data"), 7);
        assert_eq!(
            f.servable("shot-2.jpg"),
            Some(PathBuf::from("/data/sessions/7/shot-2.jpg"))
        );
        assert_eq!(f.servable("preview.jpg"), Some(f.preview()));
        for name in ["page.png", "shot-x.jpg", "../x", "shot-1.png", ".page.png.tmp"] {
            assert_eq!(f.servable(name), None, "{name}");
        }
        assert_eq!(f.shot_url(1), "/api/sessions/7/shot-1.jpg");
        assert_eq!(f.page(), PathBuf::from("/data/sessions/7/page.png"));
    }
}
