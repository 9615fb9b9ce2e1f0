//! The QR code of a checkout link as a PNG the kiosk page shows.

use image::{GrayImage, Luma};
use qrcode::{Color, EcLevel, QrCode};

/// Pixels per QR module: big enough for a phone camera a step away on a 7" screen.
const MODULE_PX: u32 = 8;
/// The quiet zone the QR standard asks for, in modules.
const QUIET_MODULES: u32 = 4;

pub fn png(data: &str) -> Result<Vec<u8>, String> {
    // Medium error correction: the link is short and the screen may have glare.
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).map_err(|e| e.to_string())?;
    let modules = code.width() as u32;
    let side = (modules + 2 * QUIET_MODULES) * MODULE_PX;
    let mut img = GrayImage::from_pixel(side, side, Luma([255]));
    for (i, color) in code.to_colors().into_iter().enumerate() {
        if color != Color::Dark {
            continue;
        }
        let (mx, my) = (i as u32 % modules, i as u32 / modules);
        let (x0, y0) = ((mx + QUIET_MODULES) * MODULE_PX, (my + QUIET_MODULES) * MODULE_PX);
        for y in y0..y0 + MODULE_PX {
            for x in x0..x0 + MODULE_PX {
                img.put_pixel(x, y, Luma([0]));
            }
        }
    }
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .map_err(|e| e.to_string())?;
    Ok(out)
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
}
