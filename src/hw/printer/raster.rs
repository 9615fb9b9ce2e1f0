//! Thermal-printer raster: an RGB page becomes 1-bit rows and then ESC/POS `GS v 0` commands.
//!
//! Pure and free of I/O so that the `escpos` backend, the tests and `benches/raster.rs` all run the
//! same code. The steps are the ones the field notes (section 4.2) found to work on thermal paper:
//! integer luma, autocontrast, Floyd–Steinberg error diffusion. A plain threshold flattens faces.

use image::imageops::{self, FilterType};
use image::{GrayImage, RgbImage};

/// Rows per `GS v 0` command. Cheap printers drop data when one image command is larger than their
/// receive buffer or arrives faster than the head prints; 64 rows (8 mm of paper, 4.6 KB at 576 dots)
/// is what receipt-photobooth found reliable, and it bounds what the printer must hold at once.
pub const BAND_ROWS: u32 = 64;

/// `GS v 0 m`: print a raster bit image, `m = 0` for normal density (no double width or height).
const GS_V0: [u8; 4] = [0x1D, b'v', b'0', 0];

/// A 1-bit image as ESC/POS wants it: rows of `width_bytes` bytes, most significant bit leftmost,
/// a set bit is a black dot. Padding bits at the end of a row are white.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitImage {
    width: u32,
    height: u32,
    width_bytes: usize,
    data: Vec<u8>,
}

impl BitImage {
    /// An all-white image.
    pub fn new(width: u32, height: u32) -> BitImage {
        let width_bytes = (width as usize).div_ceil(8);
        BitImage {
            width,
            height,
            width_bytes,
            data: vec![0; width_bytes * height as usize],
        }
    }

    /// Width in dots.
    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// Bytes per row: the width rounded up to whole bytes.
    pub fn width_bytes(&self) -> usize {
        self.width_bytes
    }

    /// All rows, top to bottom, `width_bytes` each.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    pub fn row(&self, y: u32) -> &[u8] {
        let start = y as usize * self.width_bytes;
        &self.data[start..start + self.width_bytes]
    }

    pub fn is_black(&self, x: u32, y: u32) -> bool {
        self.row(y)[x as usize / 8] & (0x80 >> (x % 8)) != 0
    }

    pub fn count_black(&self) -> u64 {
        self.data.iter().map(|b| u64::from(b.count_ones())).sum()
    }
}

/// Rec. 601 luma in 16-bit fixed point, the same integer formula Pillow's `convert("L")` uses, so the
/// two benchmarks start from identical gray levels.
pub fn to_gray(page: &RgbImage) -> GrayImage {
    let gray: Vec<u8> = page
        .as_raw()
        .chunks_exact(3)
        .map(|p| ((u32::from(p[0]) * 19595 + u32::from(p[1]) * 38470 + u32::from(p[2]) * 7471 + 0x8000) >> 16) as u8)
        .collect();
    // The buffer length is width × height by construction, so this cannot fail; an empty image is
    // the harmless fallback rather than a panic.
    GrayImage::from_raw(page.width(), page.height(), gray).unwrap_or_default()
}

/// Makes the page exactly `width_dots` wide, because the printer prints whatever width it is sent
/// from the left edge: a wider page is scaled down keeping its aspect, a narrower one is centred on
/// white.
pub fn fit_width(gray: GrayImage, width_dots: u32) -> GrayImage {
    let (w, h) = gray.dimensions();
    if w == width_dots {
        return gray;
    }
    if w == 0 || h == 0 || width_dots == 0 {
        return GrayImage::new(width_dots, 0);
    }
    if w > width_dots {
        let new_h = ((u64::from(h) * u64::from(width_dots) + u64::from(w) / 2) / u64::from(w)).max(1) as u32;
        return imageops::resize(&gray, width_dots, new_h, FilterType::Triangle);
    }
    let mut out = GrayImage::from_pixel(width_dots, h, image::Luma([255]));
    let left = ((width_dots - w) / 2) as usize;
    let (src, dst_w) = (gray.as_raw(), width_dots as usize);
    for (src_row, dst_row) in src.chunks_exact(w as usize).zip(out.chunks_exact_mut(dst_w)) {
        dst_row[left..left + w as usize].copy_from_slice(src_row);
    }
    out
}

/// Stretches the 1st..99th percentile of the gray levels to 0..255 (Pillow's `autocontrast(cutoff=1)`).
/// Thermal paper has no midtones to spare: a dim photo otherwise prints as mush. A flat image (one
/// level, such as a blank or mid-gray page) is left alone.
pub fn autocontrast(gray: &mut GrayImage) {
    let mut histogram = [0u64; 256];
    for &v in gray.as_raw() {
        histogram[v as usize] += 1;
    }
    let total: u64 = histogram.iter().sum();
    let cut = total / 100;
    let (Some(lo), Some(hi)) = (
        percentile_from(&histogram, cut, false),
        percentile_from(&histogram, cut, true),
    ) else {
        return;
    };
    if hi <= lo {
        return;
    }
    let (lo, span) = (i32::from(lo), i32::from(hi) - i32::from(lo));
    let mut lut = [0u8; 256];
    for (v, out) in lut.iter_mut().enumerate() {
        *out = (((v as i32 - lo) * 255 + span / 2) / span).clamp(0, 255) as u8;
    }
    for v in gray.iter_mut() {
        *v = lut[*v as usize];
    }
}

/// The first level (from the dark end, or from the light end when `from_top`) that is not within the
/// `cut` most extreme pixels.
fn percentile_from(histogram: &[u64; 256], cut: u64, from_top: bool) -> Option<u8> {
    let mut seen = 0;
    for i in 0..256 {
        let level = if from_top { 255 - i } else { i };
        seen += histogram[level];
        if seen > cut {
            return Some(level as u8);
        }
    }
    None
}

/// The gray page the printer will dither: luma, fitted to the paper, optionally autocontrasted.
pub fn prepare(page: &RgbImage, width_dots: u32, with_autocontrast: bool) -> GrayImage {
    let mut gray = fit_width(to_gray(page), width_dots);
    if with_autocontrast {
        autocontrast(&mut gray);
    }
    gray
}

/// Floyd–Steinberg to 1 bit with serpentine scanning, which keeps the diagonal "worms" plain
/// left-to-right diffusion draws in flat areas off faces.
pub fn dither(gray: &GrayImage) -> BitImage {
    dither_with(gray, true)
}

/// Floyd–Steinberg in integers: errors are kept in sixteenths so the 7/3/5/1 weights never round,
/// and the sum is clamped to 0..=255 (as Pillow does) so solid black and white stay solid and the
/// error cannot run away.
pub fn dither_with(gray: &GrayImage, serpentine: bool) -> BitImage {
    let (w, h) = gray.dimensions();
    let mut out = BitImage::new(w, h);
    if w == 0 || h == 0 {
        return out;
    }
    let width_bytes = out.width_bytes;
    // Error carried into the next row, in sixteenths; one row is enough because each slot is
    // rewritten right after this row has read it.
    let mut below = vec![0i32; w as usize];
    let rows = gray
        .as_raw()
        .chunks_exact(w as usize)
        .zip(out.data.chunks_exact_mut(width_bytes));
    for (y, (src, dst)) in rows.enumerate() {
        if serpentine && y % 2 == 1 {
            diffuse_row::<true>(src, &mut below, dst);
        } else {
            diffuse_row::<false>(src, &mut below, dst);
        }
    }
    out
}

/// One row of error diffusion. The error going right (7/16) and the next row's pending sums stay in
/// registers; `below[x]` is written one pixel behind the read, so a single buffer serves both rows.
#[inline(always)]
fn diffuse_row<const REVERSE: bool>(src: &[u8], below: &mut [i32], dst: &mut [u8]) {
    let w = src.len();
    let (mut ahead, mut pending_behind, mut pending_here) = (0i32, 0i32, 0i32);
    for i in 0..w {
        let x = if REVERSE { w - 1 - i } else { i };
        let v = (i32::from(src[x]) + ((below[x] + ahead + 8) >> 4)).clamp(0, 255);
        let err = if v < 128 {
            dst[x / 8] |= 0x80 >> (x % 8);
            v
        } else {
            v - 255
        };
        // The pixel behind us on the next row is complete now: 1/16 from two back, 5/16 from the
        // previous pixel and 3/16 from this one. At the row's first pixel it lies off the page.
        if i > 0 {
            let behind = if REVERSE { x + 1 } else { x - 1 };
            below[behind] = pending_behind + 3 * err;
        }
        pending_behind = pending_here + 5 * err;
        pending_here = err;
        ahead = 7 * err;
    }
    let last = if REVERSE { 0 } else { w - 1 };
    below[last] = pending_behind;
}

/// The whole page as `GS v 0` commands of at most `band_rows` rows each, one allocation per band.
pub fn gs_v0_bands(bits: &BitImage, band_rows: u32) -> Vec<Vec<u8>> {
    let band_rows = band_rows.clamp(1, u32::from(u16::MAX));
    let mut bands = Vec::with_capacity(bits.height.div_ceil(band_rows) as usize);
    let mut y = 0;
    while y < bits.height {
        let rows = band_rows.min(bits.height - y);
        let mut band = Vec::with_capacity(GS_V0.len() + 4 + rows as usize * bits.width_bytes);
        gs_v0_band(bits, y, rows, &mut band);
        bands.push(band);
        y += rows;
    }
    bands
}

/// Appends one `GS v 0` command (`1D 76 30 00 xL xH yL yH` and the rows) for rows
/// `first_row..first_row + rows`, clipped to the image. Widths are printer widths (384, 576 dots);
/// more than 65 535 bytes per row cannot be expressed in `xL xH`.
pub fn gs_v0_band(bits: &BitImage, first_row: u32, rows: u32, out: &mut Vec<u8>) {
    let first_row = first_row.min(bits.height);
    let rows = rows.min(bits.height - first_row).min(u32::from(u16::MAX));
    debug_assert!(bits.width_bytes <= usize::from(u16::MAX));
    let [xl, xh] = (bits.width_bytes as u16).to_le_bytes();
    let [yl, yh] = (rows as u16).to_le_bytes();
    out.extend_from_slice(&GS_V0);
    out.extend_from_slice(&[xl, xh, yl, yh]);
    let start = first_row as usize * bits.width_bytes;
    out.extend_from_slice(&bits.data[start..start + rows as usize * bits.width_bytes]);
}

/// One command of a byte stream this module (and the `escpos` backend) produces, for tests and for
/// checking a captured job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// `ESC @`
    Init,
    /// `GS v 0 m xL xH yL yH d1..dk`
    Raster {
        mode: u8,
        width_bytes: usize,
        rows: usize,
        data: Vec<u8>,
    },
    /// `ESC J n`: feed n motion units.
    Feed(u8),
    /// `GS V m` or `GS V m n`.
    Cut { partial: bool },
}

/// Parses a job stream; anything other than the commands in [`Decoded`] is an error naming the
/// offset, so a stray byte in a job cannot go unnoticed.
pub fn decode_stream(bytes: &[u8]) -> Result<Vec<Decoded>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let need = |n: usize| {
            if rest.len() >= n {
                Ok(())
            } else {
                Err(format!("truncated command at byte {at}"))
            }
        };
        match rest {
            [0x1B, b'@', ..] => {
                out.push(Decoded::Init);
                at += 2;
            }
            [0x1B, b'J', ..] => {
                need(3)?;
                out.push(Decoded::Feed(rest[2]));
                at += 3;
            }
            [0x1D, b'v', b'0', ..] => {
                need(8)?;
                let width_bytes = usize::from(u16::from_le_bytes([rest[4], rest[5]]));
                let rows = usize::from(u16::from_le_bytes([rest[6], rest[7]]));
                let len = width_bytes * rows;
                need(8 + len)?;
                out.push(Decoded::Raster {
                    mode: rest[3],
                    width_bytes,
                    rows,
                    data: rest[8..8 + len].to_vec(),
                });
                at += 8 + len;
            }
            [0x1D, b'V', ..] => {
                need(3)?;
                let m = rest[2];
                match m {
                    0 | 48 => out.push(Decoded::Cut { partial: false }),
                    1 | 49 => out.push(Decoded::Cut { partial: true }),
                    65 | 66 | 97 | 98 | 103 | 104 => {
                        need(4)?;
                        out.push(Decoded::Cut { partial: m & 1 == 0 });
                        at += 1;
                    }
                    _ => return Err(format!("unknown GS V mode {m} at byte {at}")),
                }
                at += 3;
            }
            _ => return Err(format!("unexpected byte 0x{:02X} at byte {at}", rest[0])),
        }
    }
    Ok(out)
}

/// The raster commands of a job as `(width_bytes, rows, data)`, in order.
pub fn decode_gs_v0(bytes: &[u8]) -> Result<Vec<(usize, usize, Vec<u8>)>, String> {
    Ok(decode_stream(bytes)?
        .into_iter()
        .filter_map(|c| match c {
            Decoded::Raster {
                width_bytes,
                rows,
                data,
                ..
            } => Some((width_bytes, rows, data)),
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Luma, Rgb};

    fn flat(w: u32, h: u32, level: u8) -> GrayImage {
        GrayImage::from_pixel(w, h, Luma([level]))
    }

    fn black_fraction(bits: &BitImage) -> f64 {
        bits.count_black() as f64 / (f64::from(bits.width()) * f64::from(bits.height()))
    }

    #[test]
    fn mid_gray_is_about_half_black() {
        for serpentine in [true, false] {
            let bits = dither_with(&flat(576, 200, 128), serpentine);
            let f = black_fraction(&bits);
            assert!((0.48..=0.52).contains(&f), "serpentine={serpentine}: {f}");
        }
    }

    #[test]
    fn tone_is_preserved_across_levels() {
        for level in [16u8, 64, 96, 160, 200, 240] {
            let f = black_fraction(&dither(&flat(384, 200, level)));
            let want = 1.0 - f64::from(level) / 255.0;
            assert!((f - want).abs() < 0.015, "level {level}: {f} black, want {want}");
        }
    }

    #[test]
    fn white_is_white_and_black_is_black() {
        assert_eq!(dither(&flat(576, 100, 255)).count_black(), 0);
        let black = dither(&flat(576, 100, 0));
        assert_eq!(black.count_black(), 576 * 100);
        assert!(black.data().iter().all(|&b| b == 0xFF));
    }

    #[test]
    fn row_padding_stays_white() {
        let bits = dither(&flat(10, 3, 0));
        assert_eq!(bits.width_bytes(), 2);
        for y in 0..3 {
            assert_eq!(bits.row(y), [0xFF, 0xC0]);
        }
    }

    #[test]
    fn printer_widths_give_48_and_72_bytes_per_row() {
        assert_eq!(BitImage::new(384, 1).width_bytes(), 48);
        assert_eq!(BitImage::new(576, 1).width_bytes(), 72);
    }

    #[test]
    fn bands_split_rows_and_carry_headers() {
        let bits = dither(&flat(576, 150, 100));
        let bands = gs_v0_bands(&bits, 64);
        assert_eq!(bands.len(), 3);
        let rows: Vec<usize> = bands
            .iter()
            .map(|b| usize::from(u16::from_le_bytes([b[6], b[7]])))
            .collect();
        assert_eq!(rows, [64, 64, 22]);
        for band in &bands {
            assert_eq!(&band[..6], &[0x1D, 0x76, 0x30, 0x00, 72, 0]);
            assert_eq!(band.len(), 8 + 72 * usize::from(u16::from_le_bytes([band[6], band[7]])));
        }
        let joined: Vec<u8> = bands.concat();
        let decoded = decode_gs_v0(&joined).unwrap();
        let data: Vec<u8> = decoded.iter().flat_map(|(_, _, d)| d.iter().copied()).collect();
        assert_eq!(data, bits.data());
    }

    #[test]
    fn band_edge_cases() {
        let bits = BitImage::new(384, 128);
        assert_eq!(gs_v0_bands(&bits, 64).len(), 2);
        // Zero would loop forever; it is taken as one row per band.
        assert_eq!(gs_v0_bands(&BitImage::new(8, 3), 0).len(), 3);
        assert!(gs_v0_bands(&BitImage::new(384, 0), 64).is_empty());
        let mut out = Vec::new();
        gs_v0_band(&bits, 120, 64, &mut out);
        assert_eq!(out[6..8], [8, 0]);
    }

    #[test]
    fn decoder_rejects_garbage_and_truncation() {
        assert!(decode_stream(&[0x1D, b'v', b'0', 0, 1, 0, 2, 0, 0xFF]).is_err());
        assert!(decode_stream(&[0x42]).is_err());
        assert_eq!(
            decode_stream(&[0x1B, b'@', 0x1B, b'J', 24, 0x1D, b'V', b'A', 0, 0x1D, b'V', 1]).unwrap(),
            [
                Decoded::Init,
                Decoded::Feed(24),
                Decoded::Cut { partial: false },
                Decoded::Cut { partial: true }
            ]
        );
    }

    #[test]
    fn luma_matches_pillow() {
        let page = RgbImage::from_fn(4, 1, |x, _| {
            [Rgb([255, 0, 0]), Rgb([0, 255, 0]), Rgb([0, 0, 255]), Rgb([255; 3])][x as usize]
        });
        assert_eq!(to_gray(&page).as_raw(), &[76, 150, 29, 255]);
    }

    #[test]
    fn wide_pages_scale_down_and_narrow_pages_centre() {
        let wide = fit_width(flat(1152, 400, 0), 576);
        assert_eq!(wide.dimensions(), (576, 200));
        let narrow = fit_width(flat(100, 10, 0), 384);
        assert_eq!(narrow.dimensions(), (384, 10));
        assert_eq!(narrow.get_pixel(141, 5).0, [255]);
        assert_eq!(narrow.get_pixel(142, 5).0, [0]);
        assert_eq!(narrow.get_pixel(241, 5).0, [0]);
        assert_eq!(narrow.get_pixel(242, 5).0, [255]);
        assert_eq!(fit_width(GrayImage::new(0, 0), 384).dimensions(), (384, 0));
    }

    #[test]
    fn autocontrast_stretches_and_leaves_flat_pages() {
        let mut ramp = GrayImage::from_fn(101, 1, |x, _| Luma([100 + (x / 2) as u8]));
        autocontrast(&mut ramp);
        assert_eq!(ramp.get_pixel(0, 0).0, [0]);
        assert_eq!(ramp.get_pixel(100, 0).0, [255]);
        for level in [0u8, 128, 255] {
            let mut page = flat(50, 50, level);
            autocontrast(&mut page);
            assert!(page.iter().all(|&v| v == level));
        }
    }
}
