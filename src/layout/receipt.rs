//! The receipt-style page printed for an order until kiosk sessions supply photos: booth name,
//! order number, copy count, amount and time, sized for an 80 mm thermal roll (576 dots wide).

use image::{Rgb, RgbImage};

use super::fit::PageGeometry;
use super::text;

pub const WIDTH: u32 = 576;
pub const HEIGHT: u32 = 720;

pub struct Receipt<'a> {
    pub booth_name: &'a str,
    pub order_id: i64,
    pub copies: u32,
    pub amount_tiyin: i64,
    /// UTC milliseconds.
    pub paid_at: i64,
}

pub fn render(r: &Receipt<'_>) -> RgbImage {
    let mut img = RgbImage::from_pixel(WIDTH, HEIGHT, Rgb([255, 255, 255]));
    draw(&mut img, r, 1.0, 0.0, 0.0);
    img
}

/// The receipt on a printer's own page (`page`, see `fit`), drawn as large as fits and centred, once
/// in each of `strips` equal strips side by side, so a `-div2` cut falls between two whole receipts
/// instead of through the text.
pub fn render_on(r: &Receipt<'_>, page: PageGeometry, strips: u32) -> RgbImage {
    let (w, h) = (page.width_px.max(1), page.height_px.max(1));
    let strips = strips.clamp(1, w);
    let cell_w = w / strips;
    let k = (cell_w as f32 / WIDTH as f32).min(h as f32 / HEIGHT as f32);
    let mut cell = RgbImage::from_pixel(cell_w, h, Rgb([255, 255, 255]));
    let (ox, oy) = (
        (cell_w as f32 - WIDTH as f32 * k) / 2.0,
        (h as f32 - HEIGHT as f32 * k) / 2.0,
    );
    draw(&mut cell, r, k, ox, oy);
    let mut img = RgbImage::from_pixel(w, h, Rgb([255, 255, 255]));
    for i in 0..strips {
        image::imageops::replace(&mut img, &cell, i64::from(i * cell_w), 0);
    }
    img
}

/// Draws the receipt's 576×720 design scaled by `k`, its top-left corner at (`ox`, `oy`). Text is
/// centred on the image, so `ox` only moves the rule.
fn draw(img: &mut RgbImage, r: &Receipt<'_>, k: f32, ox: f32, oy: f32) {
    let black = Rgb([0, 0, 0]);
    let at = |y: f32| oy + y * k;
    text::draw_centered(img, r.booth_name, at(40.0), 44.0 * k, black);
    let (x0, x1) = ((ox + 40.0 * k) as u32, (ox + (WIDTH - 40) as f32 * k) as u32);
    let (y0, y1) = (at(110.0) as u32, at(114.0).max(at(110.0) + 1.0) as u32);
    for x in x0..x1.min(img.width()) {
        for y in y0..y1.min(img.height()) {
            img.put_pixel(x, y, black);
        }
    }
    text::draw_centered(img, &format!("#{}", r.order_id), at(160.0), 120.0 * k, black);
    text::draw_centered(img, &format!("× {}", r.copies), at(330.0), 56.0 * k, black);
    text::draw_centered(
        img,
        &format!("{} sum", format_sum(r.amount_tiyin)),
        at(430.0),
        44.0 * k,
        black,
    );
    text::draw_centered(img, &format_utc(r.paid_at), at(520.0), 32.0 * k, black);
}

/// `4000000` tiyin → `40 000`; tiyin shown only when there are any (`40 000.50`).
pub fn format_sum(tiyin: i64) -> String {
    let sum = tiyin / 100;
    let digits = sum.abs().to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(' ');
        }
        grouped.push(c);
    }
    if sum < 0 {
        grouped.insert(0, '-');
    }
    match tiyin.abs() % 100 {
        0 => grouped,
        t => format!("{grouped}.{t:02}"),
    }
}

pub use crate::date::format_utc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_money_and_time() {
        for (tiyin, text) in [(4_000_000, "40 000"), (50, "0.50"), (12_345_678_900, "123 456 789")] {
            assert_eq!(format_sum(tiyin), text);
        }
    }

    #[test]
    fn renders_a_page_with_ink() {
        let r = Receipt {
            booth_name: "Test",
            order_id: 7,
            copies: 2,
            amount_tiyin: 4_000_000,
            paid_at: 0,
        };
        let img = render(&r);
        assert_eq!(img.dimensions(), (WIDTH, HEIGHT));
        assert!(img.pixels().filter(|p| p.0[0] < 128).count() > 1000);
    }

    #[test]
    fn on_a_cut_page_each_strip_gets_a_whole_receipt_and_the_cut_line_stays_white() {
        let r = Receipt {
            booth_name: "Test Booth",
            order_id: 12345,
            copies: 2,
            amount_tiyin: 4_000_000,
            paid_at: 0,
        };
        let page = PageGeometry {
            width_px: 1240,
            height_px: 1844,
            dpi: 300,
        };
        let img = render_on(&r, page, 2);
        assert_eq!(img.dimensions(), (1240, 1844));
        let ink = |x0: u32, x1: u32| {
            (x0..x1)
                .flat_map(|x| (0..1844).map(move |y| (x, y)))
                .filter(|&(x, y)| img.get_pixel(x, y).0[0] < 128)
                .count()
        };
        assert_eq!(ink(610, 630), 0, "nothing printed across the centre cut");
        let (left, right) = (ink(0, 620), ink(620, 1240));
        assert!(left > 1000 && left == right, "{left} vs {right}");
    }
}
