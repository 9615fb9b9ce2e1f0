//! The page as the driver gets it: a temporary JPEG, with the resolution the media implies.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use image::codecs::jpeg::{JpegEncoder, PixelDensity};
use image::RgbImage;

use crate::hw::printer::PrintError;

/// JPEG quality for the page. At 95 with no chroma subsampling (the `image` encoder never
/// subsamples) the difference to the PNG is invisible on a dye-sub, which prints continuous tone.
const JPEG_QUALITY: u8 = 95;

/// The page as a temporary JPEG that is removed on drop.
///
/// JPEG rather than PNG: every route to a dye-sub takes it (Gutenprint through cups-filters,
/// driverless IPP Everywhere/AirPrint queues and the Selphy "HTTP mode" PPD accept image/jpeg, PNG is
/// optional there), it is several times smaller and faster to encode on a Pi, and at quality 95
/// without chroma subsampling it is visually lossless on a continuous-tone print. The JFIF density is
/// set from the media size when it is known, so the filters place the page 1:1 instead of guessing.
pub(super) struct TempPage {
    path: PathBuf,
}

impl TempPage {
    pub(super) fn write(job_id: i64, page: &RgbImage, dpi: Option<u16>) -> Result<TempPage, PrintError> {
        let mut jpeg = Vec::new();
        let mut encoder = JpegEncoder::new_with_quality(&mut jpeg, JPEG_QUALITY);
        if let Some(dpi) = dpi {
            encoder.set_pixel_density(PixelDensity::dpi(dpi));
        }
        encoder
            .encode_image(page)
            .map_err(|e| PrintError::permanent(format!("cups: cannot encode the page as JPEG: {e}")))?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "photoboothd-cups-{}-job{}-{nanos}.jpg",
            std::process::id(),
            job_id
        ));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options.open(&path).and_then(|mut f| f.write_all(&jpeg));
        let page = TempPage { path };
        // A full /tmp may clear up.
        written.map_err(|e| PrintError::transient(format!("cups: cannot write {}: {e}", page.path.display())))?;
        Ok(page)
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempPage {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The page's resolution if it exactly covers `media` (same aspect within 2 %), from the media's
/// size: Gutenprint names in points (`w288h432`, `w288h432-div2`) or PWG self-describing names
/// (`na_index-4x6_4x6in`, `iso_a6_105x148mm`).
pub(super) fn media_dpi(media: &str, width: u32, height: u32) -> Option<u16> {
    let (mw, mh) = media_size_inches(media)?;
    let (page_long, page_short) = (width.max(height) as f64, width.min(height) as f64);
    let (media_long, media_short) = (mw.max(mh), mw.min(mh));
    if page_short <= 0.0 || media_short <= 0.0 {
        return None;
    }
    let along = page_long / media_long;
    let across = page_short / media_short;
    if (along - across).abs() > along * 0.02 {
        return None;
    }
    let dpi = along.round();
    (50.0..=2400.0).contains(&dpi).then_some(dpi as u16)
}

fn media_size_inches(media: &str) -> Option<(f64, f64)> {
    let lower = media.to_ascii_lowercase();
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    for (i, _) in lower.match_indices('w') {
        let rest = &lower[i + 1..];
        let w = digits(rest);
        let Some(after) = rest[w..].strip_prefix('h') else {
            continue;
        };
        let h = digits(after);
        if w > 0 && h > 0 {
            return Some((
                rest[..w].parse::<f64>().ok()? / 72.0,
                after[..h].parse::<f64>().ok()? / 72.0,
            ));
        }
    }
    let last = lower.rsplit('_').next()?;
    let (dims, per_inch) = match (last.strip_suffix("in"), last.strip_suffix("mm")) {
        (Some(d), _) => (d, 1.0),
        (_, Some(d)) => (d, 25.4),
        _ => return None,
    };
    let (a, b) = dims.split_once('x')?;
    let (a, b) = (a.parse::<f64>().ok()? / per_inch, b.parse::<f64>().ok()? / per_inch);
    (a.is_finite() && b.is_finite() && a > 0.0 && b > 0.0).then_some((a, b))
}

/// How many strips the driver cuts the media into: `w288h432-div2` (two 2×6 strips on a 4×6
/// print) is 2, a media without `-divN` is 1.
pub(super) fn strips(media: &str) -> u32 {
    media
        .rsplit_once("-div")
        .and_then(|(_, n)| n.parse::<u32>().ok())
        .filter(|n| (1..=8).contains(n))
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_resolution_from_the_media() {
        assert_eq!(media_dpi("w288h432", 1200, 1800), Some(300));
        assert_eq!(media_dpi("w288h432-div2", 1200, 1800), Some(300));
        // Landscape page on portrait media: the driver rotates it.
        assert_eq!(media_dpi("w288h432", 1800, 1200), Some(300));
        assert_eq!(media_dpi("w288h432", 2400, 3600), Some(600));
        assert_eq!(media_dpi("na_index-4x6_4x6in", 1200, 1800), Some(300));
        assert_eq!(media_dpi("iso_a6_105x148mm", 1240, 1748), Some(300));
        // A 2x6 strip on 4x6 media does not cover it: let CUPS place it.
        assert_eq!(media_dpi("w288h432", 600, 1800), None);
        assert_eq!(media_dpi("Postcard", 1181, 1748), None);
        assert_eq!(media_dpi("w0h432", 1200, 1800), None);
        assert_eq!(media_dpi("w288h432", 0, 0), None);
    }

    #[test]
    fn div_media_are_cut_into_strips() {
        assert_eq!(strips("w288h432-div2"), 2);
        assert_eq!(strips("w432h576-div4"), 4);
        assert_eq!(strips("w288h432"), 1);
        assert_eq!(strips("w288h432-divx"), 1);
        assert_eq!(strips("Postcard"), 1);
    }

    #[test]
    fn jpeg_keeps_the_page_and_its_resolution() {
        let page = RgbImage::from_fn(120, 180, |x, y| image::Rgb([(x * 2) as u8, (y) as u8, 128]));
        let file = TempPage::write(7, &page, Some(300)).unwrap();
        let bytes = std::fs::read(file.path()).unwrap();
        // JFIF APP0 with units = dots per inch and 300 × 300.
        assert_eq!(&bytes[6..11], b"JFIF\0");
        assert_eq!(&bytes[13..18], &[1, 1, 44, 1, 44]);
        let back = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert_eq!(back.dimensions(), page.dimensions());
        let worst = back
            .pixels()
            .zip(page.pixels())
            .flat_map(|(a, b)| (0..3).map(move |i| a[i].abs_diff(b[i])))
            .max();
        assert!(worst.unwrap() <= 8, "JPEG too lossy: {worst:?}");
        let path = file.path().to_path_buf();
        drop(file);
        assert!(!path.exists(), "the temporary page is removed");
    }
}
