//! Text on images, from the bundled DejaVu Sans Bold, cut to Latin, Cyrillic and Uzbek letters with
//! punctuation and currency signs (scripts/subset-font.sh says what is kept and why).

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use image::{Rgb, RgbImage};

static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

fn font() -> Option<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).ok()).as_ref()
}

/// Width in pixels of `text` at `size` px.
pub fn width(text: &str, size: f32) -> f32 {
    let Some(font) = font() else { return 0.0 };
    let scaled = font.as_scaled(PxScale::from(size));
    let mut w = 0.0;
    let mut prev = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            w += scaled.kern(p, id);
        }
        w += scaled.h_advance(id);
        prev = Some(id);
    }
    w
}

/// Draws `text` with its top-left corner at (x, y), blending `color` over the image.
pub fn draw(img: &mut RgbImage, text: &str, x: f32, y: f32, size: f32, color: Rgb<u8>) {
    let Some(font) = font() else { return };
    let scaled = font.as_scaled(PxScale::from(size));
    let baseline = y + scaled.ascent();
    let mut caret = x;
    let mut prev = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            caret += scaled.kern(p, id);
        }
        let glyph = id.with_scale_and_position(PxScale::from(size), ab_glyph::point(caret, baseline));
        caret += scaled.h_advance(id);
        prev = Some(id);
        let Some(outlined) = font.outline_glyph(glyph) else {
            continue;
        };
        let bounds = outlined.px_bounds();
        outlined.draw(|gx, gy, coverage| {
            let px = bounds.min.x as i64 + i64::from(gx);
            let py = bounds.min.y as i64 + i64::from(gy);
            if px < 0 || py < 0 || px >= i64::from(img.width()) || py >= i64::from(img.height()) {
                return;
            }
            let pixel = img.get_pixel_mut(px as u32, py as u32);
            for (channel, target) in pixel.0.iter_mut().zip(color.0) {
                let blended = f32::from(*channel) * (1.0 - coverage) + f32::from(target) * coverage;
                *channel = blended.round().clamp(0.0, 255.0) as u8;
            }
        });
    }
}

/// Draws `text` centred horizontally in an image of width `img.width()`.
pub fn draw_centered(img: &mut RgbImage, text: &str, y: f32, size: f32, color: Rgb<u8>) {
    let x = ((img.width() as f32 - width(text, size)) / 2.0).max(0.0);
    draw(img, text, x, y, size, color);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_latin_and_cyrillic() {
        let mut img = RgbImage::from_pixel(300, 60, Rgb([255, 255, 255]));
        draw(&mut img, "Foto Ёж", 5.0, 5.0, 32.0, Rgb([0, 0, 0]));
        let dark = img.pixels().filter(|p| p.0[0] < 128).count();
        assert!(dark > 200, "only {dark} dark pixels");
        assert!(width("Ёж", 32.0) > 20.0);
    }
}
