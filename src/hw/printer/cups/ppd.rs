//! Page geometry from the queue's PPD: which media the driver offers, and for the configured media
//! the printable area and resolution, so the page is composed at exactly the size the driver prints.
//!
//! Why it matters: `imagetoraster` ignores the JPEG's dpi and scales the picture to fill the
//! printable area, and Gutenprint then fills its own raster. A DNP DS620's 4x6 printable area is
//! 1240×1844 px at 300 dpi, not 1200×1800, so a 1200×1800 page came out stretched 3 % across and
//! 2 % along; a media name the PPD does not offer silently falls back to the driver's default (B7 on
//! Gutenprint's DNP PPDs). See docs/printers.md.
//!
//! The PPD is read from the CUPS server root (`/etc/cups/ppd/<queue>.ppd`, readable by group `lp`).
//! Only three kinds of lines matter (Adobe PPD spec 4.3, keywords case-sensitive):
//!
//! ```text
//! *PageSize w288h432-div2/2x6*2:   "<</PageSize[297.600 460.800]/ImagingBBox null>>setpagedevice"
//! *ImageableArea w288h432-div2/2x6*2:  "0.000 9.120 297.600 451.680"    (llx lly urx ury, points)
//! *DefaultResolution: 300dpi                                             (or 300x600dpi)
//! ```

use std::path::{Path, PathBuf};

pub use crate::layout::fit::PageGeometry;

/// Where CUPS keeps a queue's PPD.
pub const PPD_DIR: &str = "/etc/cups/ppd";

/// What a PPD says about pages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ppd {
    /// `*PageSize` choices, in file order.
    pub media: Vec<String>,
    /// `*ImageableArea` by media name: lower-left x, y, upper-right x, y in points.
    areas: Vec<(String, [f64; 4])>,
    /// `*DefaultResolution` (`300dpi`, `300x600dpi`).
    pub default_resolution: Option<String>,
    /// `*DefaultPageSize`.
    pub default_media: Option<String>,
}

/// Why no geometry could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PpdError {
    /// The queue has no PPD (a raw or driverless-on-the-fly queue): the layout's own size is used.
    Missing(PathBuf),
    /// The PPD exists but cannot be read (permissions: the service user must be in group `lp`).
    Unreadable(PathBuf, String),
    /// The configured media is not among the queue's.
    UnknownMedia { media: String, offered: Vec<String> },
    /// The PPD has no usable printable area or resolution for the media.
    NoGeometry(String),
}

impl std::fmt::Display for PpdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PpdError::Missing(p) => write!(f, "the queue has no PPD at {}", p.display()),
            PpdError::Unreadable(p, e) => write!(
                f,
                "cannot read the queue's PPD {} ({e}); the service user must be in group lp",
                p.display()
            ),
            PpdError::UnknownMedia { media, offered } => write!(
                f,
                "printer.media {media:?} is not offered by the queue; it offers: {}",
                offered.join(", ")
            ),
            PpdError::NoGeometry(why) => f.write_str(why),
        }
    }
}

/// The PPD path of `queue` under `dir`.
pub fn ppd_path(dir: &Path, queue: &str) -> PathBuf {
    dir.join(format!("{queue}.ppd"))
}

/// Reads and parses the PPD at `path`.
pub fn read(path: &Path) -> Result<Ppd, PpdError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(parse(&String::from_utf8_lossy(&bytes))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(PpdError::Missing(path.to_path_buf())),
        Err(e) => Err(PpdError::Unreadable(path.to_path_buf(), e.to_string())),
    }
}

/// `*Keyword Option/Translation: "value"` → (keyword, option, value). Lines PPD continues over
/// several lines (long PostScript) only matter for their first line, which is all we read.
fn entry(line: &str) -> Option<(&str, &str, &str)> {
    let rest = line.strip_prefix('*')?;
    let (head, value) = rest.split_once(':')?;
    let (keyword, option) = match head.split_once(char::is_whitespace) {
        Some((k, o)) => (k, o.trim()),
        None => (head, ""),
    };
    // The option keyword ends at its translation string.
    let option = option.split('/').next().unwrap_or_default().trim();
    Some((keyword, option, value.trim().trim_matches('"').trim()))
}

/// Parses the lines of a PPD that describe pages. Never panics; unknown lines are skipped.
pub fn parse(text: &str) -> Ppd {
    let mut ppd = Ppd::default();
    for line in text.lines() {
        let Some((keyword, option, value)) = entry(line) else {
            continue;
        };
        match keyword {
            "PageSize" if !option.is_empty() && !ppd.media.iter().any(|m| m == option) => {
                ppd.media.push(option.to_string());
            }
            "ImageableArea" if !option.is_empty() => {
                let numbers: Vec<f64> = value
                    .split_whitespace()
                    .filter_map(|n| n.parse::<f64>().ok())
                    .filter(|n| n.is_finite())
                    .collect();
                if let [llx, lly, urx, ury] = numbers[..] {
                    ppd.areas.push((option.to_string(), [llx, lly, urx, ury]));
                }
            }
            "DefaultResolution" => ppd.default_resolution = Some(value.to_string()),
            "DefaultPageSize" => ppd.default_media = Some(value.to_string()),
            _ => {}
        }
    }
    ppd
}

/// `300dpi` → 300, `300x600dpi` → 300 (the lower: the page is composed in square pixels, and the
/// driver scales it to its raster either way).
pub fn resolution_dpi(value: &str) -> Option<u32> {
    let digits = value.trim().strip_suffix("dpi")?;
    let mut parts = digits.split('x').map(|p| p.trim().parse::<u32>().ok());
    let x = parts.next()??;
    let y = match parts.next() {
        Some(y) => y?,
        None => x,
    };
    let dpi = x.min(y);
    (50..=2400).contains(&dpi).then_some(dpi)
}

impl Ppd {
    /// Whether the driver offers `media` (PPD option keywords are matched exactly, as CUPS does for
    /// `PageSize`; a different case is a different choice).
    pub fn offers(&self, media: &str) -> bool {
        self.media.iter().any(|m| m == media)
    }

    /// The page for `media` at `resolution` (an `-o Resolution=` value) or the PPD's default.
    pub fn geometry(&self, media: &str, resolution: Option<&str>) -> Result<PageGeometry, PpdError> {
        if !self.offers(media) {
            return Err(PpdError::UnknownMedia {
                media: media.to_string(),
                offered: self.media.clone(),
            });
        }
        let [llx, lly, urx, ury] = self
            .areas
            .iter()
            .find(|(m, _)| m == media)
            .map(|(_, a)| *a)
            .ok_or_else(|| PpdError::NoGeometry(format!("the PPD has no *ImageableArea for {media}")))?;
        let resolution = resolution.or(self.default_resolution.as_deref()).unwrap_or("");
        let dpi = resolution_dpi(resolution)
            .ok_or_else(|| PpdError::NoGeometry(format!("the PPD's resolution {resolution:?} is not understood")))?;
        let px = |points: f64| (points * f64::from(dpi) / 72.0).round();
        let (w, h) = (px(urx - llx), px(ury - lly));
        if !(1.0..=20_000.0).contains(&w) || !(1.0..=20_000.0).contains(&h) {
            return Err(PpdError::NoGeometry(format!(
                "the printable area of {media} ({llx} {lly} {urx} {ury}) is not a page"
            )));
        }
        Ok(PageGeometry {
            width_px: w as u32,
            height_px: h as u32,
            dpi,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page lines of Gutenprint 5.3.4's DNP DS620 PPD (Debian bookworm), verbatim.
    const DS620: &str = r#"*OpenUI *PageSize/Media Size: PickOne
*DefaultPageSize: B7
*PageSize B7/3.5x5:	"<</PageSize[261.120 460.800]/ImagingBBox null>>setpagedevice"
*PageSize w288h432/4x6:	"<</PageSize[297.600 460.800]/ImagingBBox null>>setpagedevice"
*PageSize w288h432-div2/2x6*2:	"<</PageSize[297.600 460.800]/ImagingBBox null>>setpagedevice"
*CloseUI: *PageSize
*PageRegion w288h432/4x6:	"<</PageSize[297.600 460.800]/ImagingBBox null>>setpagedevice"
*DefaultImageableArea: B7
*ImageableArea B7/3.5x5:	"0.000 44.640 261.120 416.160"
*ImageableArea w288h432/4x6:	"0.000 9.120 297.600 451.680"
*ImageableArea w288h432-div2/2x6*2:	"0.000 9.120 297.600 451.680"
*DefaultResolution: 300dpi
*Resolution 300dpi/300x300 DPI:	"<</HWResolution[300 300]/cupsCompression 1>>setpagedevice"
*Resolution 300x600dpi/300x600 DPI:	"<</HWResolution[300 600]/cupsCompression 2>>setpagedevice"
"#;

    #[test]
    fn reads_the_ds620_page_at_the_drivers_size() {
        let ppd = parse(DS620);
        assert_eq!(ppd.media, ["B7", "w288h432", "w288h432-div2"]);
        assert_eq!(ppd.default_media.as_deref(), Some("B7"));
        let g = ppd.geometry("w288h432-div2", None).unwrap();
        assert_eq!((g.width_px, g.height_px, g.dpi), (1240, 1844, 300));
        assert_eq!(ppd.geometry("w288h432", Some("300x600dpi")).unwrap().width_px, 1240);
        assert_eq!(ppd.geometry("B7", None).unwrap().height_px, 1548);
    }

    #[test]
    fn a_media_the_queue_does_not_offer_is_refused_with_the_list() {
        let ppd = parse(DS620);
        let err = ppd.geometry("w288h423-div2", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "printer.media \"w288h423-div2\" is not offered by the queue; it offers: B7, w288h432, w288h432-div2"
        );
        assert!(!ppd.offers("W288H432"));
    }

    #[test]
    fn resolutions() {
        assert_eq!(resolution_dpi("300dpi"), Some(300));
        assert_eq!(resolution_dpi("300x600dpi"), Some(300));
        assert_eq!(resolution_dpi("600x300dpi"), Some(300));
        assert_eq!(resolution_dpi("dpi"), None);
        assert_eq!(resolution_dpi("10dpi"), None);
        assert_eq!(resolution_dpi("fast"), None);
    }

    #[test]
    fn odd_ppds_never_panic() {
        for text in [
            "",
            "*",
            "*:",
            "*PageSize",
            "*PageSize :",
            "*ImageableArea x: \"1 2 3\"",
            "*ImageableArea x/y: \"1 2 3 nan\"",
        ] {
            let ppd = parse(text);
            let _ = ppd.geometry("x", None);
        }
        let ppd = parse("*PageSize x: \"\"\n*ImageableArea x: \"0 0 -5 10\"\n*DefaultResolution: 300dpi\n");
        assert!(matches!(ppd.geometry("x", None), Err(PpdError::NoGeometry(_))));
        let ppd = parse("*PageSize x: \"\"\n*ImageableArea x: \"0 0 72 72\"\n");
        assert!(matches!(ppd.geometry("x", None), Err(PpdError::NoGeometry(_))));
    }
}
