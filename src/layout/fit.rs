//! Page geometry: the page the printer's driver really prints, and templates scaled to it.
//!
//! A template is designed at a nominal size (1200×1800 for 4×6 in at 300 dpi). A CUPS driver prints
//! its own printable area instead (a DNP DS620's 4×6 is 1240×1844 px, a SELPHY postcard 1248×1872)
//! and stretches whatever it gets to fill it. So for such a printer every layout is composed at
//! exactly the driver's size: slots, text and images are scaled to the new page, each axis on its
//! own (photos are cover-cropped into their slots, so a slot a few per cent wider costs nothing),
//! and a page of `repeat_x` strips stays `repeat_x` equal strips, keeping a `-div2` cut centred.

use image::imageops::{self, FilterType};

use super::template::{self, LayoutError, Slot, Template, TextItem};

/// The page a printer prints, in its own pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageGeometry {
    pub width_px: u32,
    pub height_px: u32,
    pub dpi: u32,
}

impl PageGeometry {
    /// The same page turned a quarter: drivers rotate a landscape picture onto portrait media.
    pub fn turned(self) -> PageGeometry {
        PageGeometry {
            width_px: self.height_px,
            height_px: self.width_px,
            dpi: self.dpi,
        }
    }

    /// This page in the orientation of a `width`×`height` design.
    pub fn oriented_like(self, width: u32, height: u32) -> PageGeometry {
        let landscape = width > height;
        if landscape == (self.width_px > self.height_px) || self.width_px == self.height_px {
            self
        } else {
            self.turned()
        }
    }
}

impl std::fmt::Display for PageGeometry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{} px at {} dpi", self.width_px, self.height_px, self.dpi)
    }
}

/// Loads the template `name` and, with a page, fits it to that page (in the template's
/// orientation). Without one the template keeps its own size.
pub fn load_for(name: &str, page: Option<PageGeometry>) -> Result<Template, LayoutError> {
    let t = template::load(name)?;
    Ok(match page {
        Some(page) => fit(&t, page.oriented_like(t.width, t.height)),
        None => t,
    })
}

/// Scales a linear position by `num/den`, rounding to the nearest pixel.
fn scale(v: u32, num: u32, den: u32) -> u32 {
    ((u64::from(v) * u64::from(num) + u64::from(den) / 2) / u64::from(den.max(1))) as u32
}

/// `t` redrawn for a page of exactly `page.width_px`×`page.height_px`.
pub fn fit(t: &Template, page: PageGeometry) -> Template {
    let (w, h) = (page.width_px.max(t.repeat_x), page.height_px.max(1));
    if (w, h) == (t.width, t.height) {
        return t.clone();
    }
    let (old_cell, new_cell) = (t.cell_width(), w / t.repeat_x);
    let sx = |v: u32| scale(v, new_cell, old_cell).min(new_cell);
    let sy = |v: u32| scale(v, h, t.height).min(h);
    let slots = t
        .slots
        .iter()
        .map(|s| {
            let (x, y) = (sx(s.x), sy(s.y));
            Slot {
                x,
                y,
                w: sx(s.x + s.w).saturating_sub(x).max(1),
                h: sy(s.y + s.h).saturating_sub(y).max(1),
            }
        })
        .collect();
    // Text grows with the smaller of the two factors, so a line that fitted still fits.
    let (size_num, size_den) = if u64::from(new_cell) * u64::from(t.height) <= u64::from(h) * u64::from(old_cell) {
        (new_cell, old_cell)
    } else {
        (h, t.height)
    };
    let texts = t
        .texts
        .iter()
        .map(|item| TextItem {
            x: sx(item.x),
            y: sy(item.y),
            size: scale(item.size, size_num, size_den).max(1),
            max_width: sx(item.max_width).max(1),
            ..item.clone()
        })
        .collect();
    let resize_rgb = |img: &image::RgbImage| imageops::resize(img, new_cell, h, FilterType::CatmullRom);
    let resize_rgba = |img: &image::RgbaImage| imageops::resize(img, new_cell, h, FilterType::CatmullRom);
    Template {
        name: t.name.clone(),
        width: w,
        height: h,
        dpi: page.dpi,
        repeat_x: t.repeat_x,
        background: t.background,
        background_image: t.background_image.as_ref().map(resize_rgb),
        frame: t.frame.as_ref().map(resize_rgba),
        slots,
        texts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DS620: PageGeometry = PageGeometry {
        width_px: 1240,
        height_px: 1844,
        dpi: 300,
    };

    #[test]
    fn a_strip_keeps_its_centre_cut_and_proportions() {
        let t = template::load("strip-2x6").unwrap();
        let f = fit(&t, DS620);
        assert_eq!((f.width(), f.height(), f.dpi()), (1240, 1844, 300));
        assert_eq!(f.repeat_x(), 2);
        assert_eq!(f.cell_width(), 620, "the cut between the strips is the page's centre");
        // The 40 px side margin of a 600 px strip scales to 41 px of a 620 px strip, both sides.
        let s = f.slots()[0];
        assert_eq!((s.x, s.x + s.w), (41, 579), "41 px margins on both sides of the strip");
        for (a, b) in t.slots().iter().zip(f.slots()) {
            assert!(b.y + b.h <= 1844 && b.x + b.w <= 620);
            assert_eq!(b.y, scale(a.y, 1844, 1800));
        }
        assert!(f.texts()[0].size >= t.texts()[0].size);
    }

    #[test]
    fn landscape_designs_are_fitted_turned() {
        let page = DS620.oriented_like(1800, 1200);
        assert_eq!((page.width_px, page.height_px), (1844, 1240));
        assert_eq!(DS620.oriented_like(1200, 1800), DS620);
    }

    #[test]
    fn the_same_size_is_left_alone() {
        let t = template::load("4x6-single").unwrap();
        let same = PageGeometry {
            width_px: t.width(),
            height_px: t.height(),
            dpi: t.dpi(),
        };
        let f = fit(&t, same);
        assert_eq!(f.slots(), t.slots());
    }
}
