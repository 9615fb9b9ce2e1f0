//! QR codes: the checkout link (and the download link) as a PNG the kiosk page shows, and the
//! download link stamped small on a printed page (`[digital] qr_on_print`).

use image::{GrayImage, Luma, Rgb, RgbImage};
use qrcode::{Color, EcLevel, QrCode};

/// Pixels per QR module: big enough for a phone camera a step away on a 7" screen.
const MODULE_PX: u32 = 8;
/// The quiet zone the QR standard asks for, in modules.
const QUIET_MODULES: u32 = 4;

pub fn png(data: &str) -> Result<Vec<u8>, String> {
    let img = render(data, MODULE_PX)?;
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// The code as a grey image with its quiet zone, `module_px` pixels per module.
fn render(data: &str, module_px: u32) -> Result<GrayImage, String> {
    // Medium error correction: the link is short and the screen (or the paper) may have glare.
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).map_err(|e| e.to_string())?;
    let modules = code.width() as u32;
    let side = (modules + 2 * QUIET_MODULES) * module_px;
    let mut img = GrayImage::from_pixel(side, side, Luma([255]));
    for (i, color) in code.to_colors().into_iter().enumerate() {
        if color != Color::Dark {
            continue;
        }
        let (mx, my) = (i as u32 % modules, i as u32 / modules);
        let (x0, y0) = ((mx + QUIET_MODULES) * module_px, (my + QUIET_MODULES) * module_px);
        for y in y0..y0 + module_px {
            for x in x0..x0 + module_px {
                img.put_pixel(x, y, Luma([0]));
            }
        }
    }
    Ok(img)
}

/// The printed QR's side: about 16 mm, which a phone reads from a hand's length.
const PRINT_QR_MM: u32 = 16;

/// The download link's QR on a printed page. On a page of fixed size (dye-sub media) it goes in
/// the bottom-right corner of each strip (`repeat_x` strips side by side, each cut apart); on a
/// roll (`extend`, thermal) the page grows by a white band with the QR at its centre, so no photo
/// is covered.
pub fn stamp(page: &RgbImage, data: &str, dpi: u32, repeat_x: u32, extend: bool) -> Result<RgbImage, String> {
    let target = (dpi.max(100) * PRINT_QR_MM * 10 / 254).max(40);
    let probe = render(data, 1)?;
    let module_px = (target / probe.width().max(1)).max(2);
    let qr = render(data, module_px)?;
    let side = qr.width();
    let (w, h) = page.dimensions();
    if extend {
        let band = side + side / 8;
        let mut out = RgbImage::from_pixel(w, h + band, Rgb([255, 255, 255]));
        image::imageops::replace(&mut out, page, 0, 0);
        let x = i64::from(w.saturating_sub(side) / 2);
        image::imageops::replace(&mut out, &gray_to_rgb(&qr), x, i64::from(h));
        return Ok(out);
    }
    let mut out = page.clone();
    let strip = (w / repeat_x.max(1)).max(1);
    let margin = i64::from(side / 16);
    let qr_rgb = gray_to_rgb(&qr);
    for i in 0..repeat_x.max(1) {
        let x = i64::from(strip * (i + 1)) - i64::from(side) - margin;
        let y = i64::from(h) - i64::from(side) - margin;
        image::imageops::replace(&mut out, &qr_rgb, x.max(0), y.max(0));
    }
    Ok(out)
}

fn gray_to_rgb(img: &GrayImage) -> RgbImage {
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let v = img.get_pixel(x, y).0[0];
        Rgb([v, v, v])
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_a_square_png_with_a_quiet_zone() {
        let png = super::png("https://test.paycom.uz/bT0xO2FjLm9yZGVyX2lkPTE7YT0x").unwrap();
        let img = image::load_from_memory(&png).unwrap().to_luma8();
        assert_eq!(img.width(), img.height());
        assert_eq!(img.get_pixel(0, 0).0[0], 255);
        // The top-left finder pattern starts right after the quiet zone.
        assert_eq!(img.get_pixel(4 * 8, 4 * 8).0[0], 0);
    }

    #[test]
    fn stamps_each_strip_or_extends_a_roll() {
        let page = image::RgbImage::from_pixel(1200, 1800, image::Rgb([200, 10, 10]));
        let url = "https://booth-1.example.com/d/AAAAAAAAAAAAAAAAAAAAAA";
        let stamped = super::stamp(&page, url, 300, 2, false).unwrap();
        assert_eq!(stamped.dimensions(), (1200, 1800));
        // Each strip's bottom-right corner is now white quiet zone, the top-left untouched.
        assert_eq!(stamped.get_pixel(595, 1795).0, [200, 10, 10]);
        assert_eq!(stamped.get_pixel(585, 1785).0, [255, 255, 255]);
        assert_eq!(stamped.get_pixel(1185, 1785).0, [255, 255, 255]);
        assert_eq!(stamped.get_pixel(10, 10).0, [200, 10, 10]);
        let roll = image::RgbImage::from_pixel(384, 900, image::Rgb([0, 0, 0]));
        let longer = super::stamp(&roll, url, 203, 1, true).unwrap();
        assert_eq!(longer.width(), 384);
        assert!(longer.height() > 900 + 100);
        assert_eq!(longer.get_pixel(0, 899).0, [0, 0, 0]);
    }
}
