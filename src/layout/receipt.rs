//! The receipt-style page printed for an order until kiosk sessions supply photos: booth name,
//! order number, copy count, amount and time, sized for an 80 mm thermal roll (576 dots wide).

use image::{Rgb, RgbImage};

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
    let black = Rgb([0, 0, 0]);
    let mut img = RgbImage::from_pixel(WIDTH, HEIGHT, Rgb([255, 255, 255]));
    text::draw_centered(&mut img, r.booth_name, 40.0, 44.0, black);
    for x in 40..WIDTH - 40 {
        for y in 110..114 {
            img.put_pixel(x, y, black);
        }
    }
    text::draw_centered(&mut img, &format!("#{}", r.order_id), 160.0, 120.0, black);
    text::draw_centered(&mut img, &format!("× {}", r.copies), 330.0, 56.0, black);
    text::draw_centered(
        &mut img,
        &format!("{} sum", format_sum(r.amount_tiyin)),
        430.0,
        44.0,
        black,
    );
    text::draw_centered(&mut img, &format_utc(r.paid_at), 520.0, 32.0, black);
    img
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
        assert_eq!(format_sum(4_000_000), "40 000");
        assert_eq!(format_sum(50), "0.50");
        assert_eq!(format_sum(12_345_678_900), "123 456 789");
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
}
