//! The one place that names a session's files: its shots, the composed print page and the small
//! preview, all under `data_dir/sessions/<id>/`. The session writes them, the print loop reads the
//! page, the kiosk API serves the shots and the preview; all three ask here.

use std::path::{Path, PathBuf};

use crate::clock;
use crate::config::Config;
use crate::layout::{compose, fit, thumbnail};

/// The composed page of a session, printed by its paid order's job.
pub const PAGE_FILE: &str = "page.png";
const PREVIEW_FILE: &str = "preview.jpg";
/// The preview's width in pixels: sharp on the review screen of every supported display.
const PREVIEW_WIDTH: u32 = 600;
/// How far a camera thumbnail may be stretched in the preview: the review screen shows the 600 px
/// preview at about 400 px on a 1024×600 display, so 1.5× still gives a screen pixel a thumbnail
/// pixel. A 320×240 thumbnail fills the strip's and the grid's slots; the single photo of 4x6-single
/// is decoded in full.
const THUMB_MAX_STRETCH: f64 = 1.5;
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
    /// the review screen shows; returns the work that yields the print page (at the printer's
    /// resolution), which the session runs after the review is up, then `save_page`.
    /// `prepared[i]`, when present, is shot i+1 already prepared. A shot not prepared yet (the
    /// last) goes into the preview from its EXIF thumbnail when that is sharp enough at the
    /// preview's scale, and is decoded in full only for the page. At a prepaid event its title and
    /// date take the place of the booth's name and today's date. Blocking.
    pub fn compose_page(
        &self,
        config: &Config,
        event: Option<&crate::booth::event::EventInfo>,
        shots: u32,
        mut prepared: Vec<Option<compose::PreparedPhoto>>,
    ) -> Result<PageJob, String> {
        let template = fit::load_for(&config.printer.layout, config.printer.page).map_err(|e| e.to_string())?;
        let scale = f64::from(PREVIEW_WIDTH) / f64::from(template.width().max(1)) / THUMB_MAX_STRETCH;
        prepared.resize_with(shots as usize, || None);
        let mut from_thumbnail = Vec::new();
        let photos = (1..=shots)
            .zip(prepared)
            .map(|(n, ready)| {
                let index = (n - 1) as usize;
                if let Some(photo) = ready {
                    return Ok(photo);
                }
                let quick = thumbnail::read(&self.shot(n))
                    .and_then(|thumb| compose::prepare_decoded(&template, index, shots as usize, &thumb, scale));
                match quick {
                    Some(photo) => {
                        from_thumbnail.push(index);
                        Ok(photo)
                    }
                    None => compose::prepare_photo(&template, index, shots as usize, &self.shot(n))
                        .map_err(|e| e.to_string()),
                }
            })
            .collect::<Result<Vec<_>, String>>()?;
        let title = event.map(|e| e.title.trim()).filter(|t| !t.is_empty());
        let texts = PageTexts {
            booth_name: title.unwrap_or(&config.booth.name).to_string(),
            time_ms: config.local_time_ms(clock::now_ms()),
            date_text: event.map(|e| e.date.trim().to_string()).filter(|d| !d.is_empty()),
        };
        let page = compose::compose_prepared(&template, &photos, &texts.context());
        self.save_preview(&page)?;
        if from_thumbnail.is_empty() {
            return Ok(PageJob(Box::new(move || Ok(page))));
        }
        drop(page);
        let files = self.clone();
        Ok(PageJob(Box::new(move || {
            let mut photos = photos;
            for index in from_thumbnail {
                let n = index as u32 + 1;
                photos[index] = compose::prepare_photo(&template, index, shots as usize, &files.shot(n))
                    .map_err(|e| e.to_string())?;
            }
            Ok(compose::compose_prepared(&template, &photos, &texts.context()))
        })))
    }

    fn save_preview(&self, page: &image::RgbImage) -> Result<(), String> {
        let preview_width = PREVIEW_WIDTH.min(page.width());
        let preview_height =
            (u64::from(page.height()) * u64::from(preview_width) / u64::from(page.width().max(1))) as u32;
        // Our own resampler: image's generic `imageops::resize` took ~30 ms of the wait for a
        // 1200×1800 page, this one a few.
        compose::cover(page, preview_width, preview_height.max(1))
            .save_with_format(self.preview(), image::ImageFormat::Jpeg)
            .map_err(|e| format!("cannot save the preview: {e}"))
    }

    /// Writes the print page: to a temporary name, then renamed, so a crash never leaves half a
    /// page to print. Blocking.
    pub fn save_page(&self, page: &image::RgbImage) -> Result<(), String> {
        let tmp = self.dir.join(PAGE_TMP_FILE);
        save_png_fast(page, &tmp).map_err(|e| format!("cannot save the page: {e}"))?;
        std::fs::rename(&tmp, self.page()).map_err(|e| format!("cannot save the page: {e}"))
    }
}

/// What is left to make a session's print page once its preview is written: nothing (the page is
/// composed), or the full decode of the shots the preview took from their thumbnails. Blocking.
pub struct PageJob(Box<dyn FnOnce() -> Result<image::RgbImage, String> + Send>);

impl PageJob {
    pub fn run(self) -> Result<image::RgbImage, String> {
        (self.0)()
    }
}

/// The page's texts, owned: the page may be finished on another thread after the preview.
struct PageTexts {
    booth_name: String,
    time_ms: i64,
    date_text: Option<String>,
}

impl PageTexts {
    fn context(&self) -> compose::Context<'_> {
        compose::Context {
            booth_name: &self.booth_name,
            time_ms: self.time_ms,
            date_text: self.date_text.as_deref(),
        }
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
