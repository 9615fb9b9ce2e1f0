//! The thermal raster path, both ways.
//!
//! 1. The whole input, as bytes a printer job might hold, goes to `decode_stream`: it must return
//!    `Ok` or `Err`, never panic, and never claim more raster data than the input had.
//! 2. The input also describes a small RGB page: byte 0 the width (0..=127), or bytes 0-1 the width
//!    (0..=1024) when byte 1 has its top bit set; byte 2 the height (0..=96); byte 3 the printer
//!    width (384, 576, 0..=64 dots, or the page's own width) and autocontrast; byte 4 the rows per
//!    band; the rest are pixels, repeated as needed. The page goes through `prepare` → `dither` →
//!    `gs_v0_bands`, framed as a real job (`ESC @`, bands, `ESC J`, `GS V A 0`), and
//!    `decode_stream` of that job must give back exactly the bit image. The dither is also
//!    compared bit for bit with a plain full-matrix Floyd–Steinberg written here.

#![no_main]

use image::{GrayImage, RgbImage};
use libfuzzer_sys::fuzz_target;
use photoboothd::hw::printer::raster::{self, BitImage, Decoded};

/// Floyd–Steinberg with a full error matrix, in sixteenths, with the same rounding and clamping
/// the optimised single-buffer version documents.
fn reference_dither(gray: &GrayImage, serpentine: bool) -> Vec<u8> {
    let (w, h) = (gray.width() as usize, gray.height() as usize);
    let wb = w.div_ceil(8);
    let mut out = vec![0u8; wb * h];
    let mut err = vec![vec![0i32; w]; h + 1];
    for y in 0..h {
        let reverse = serpentine && y % 2 == 1;
        for i in 0..w {
            let x = if reverse { w - 1 - i } else { i };
            let v = (i32::from(gray.as_raw()[y * w + x]) + ((err[y][x] + 8) >> 4)).clamp(0, 255);
            let e = if v < 128 {
                out[y * wb + x / 8] |= 0x80 >> (x % 8);
                v
            } else {
                v - 255
            };
            let ahead = if reverse {
                x.checked_sub(1)
            } else {
                Some(x + 1).filter(|&a| a < w)
            };
            let behind = if reverse {
                Some(x + 1).filter(|&b| b < w)
            } else {
                x.checked_sub(1)
            };
            if let Some(a) = ahead {
                err[y][a] += 7 * e;
                err[y + 1][a] += e;
            }
            if let Some(b) = behind {
                err[y + 1][b] += 3 * e;
            }
            err[y + 1][x] += 5 * e;
        }
    }
    out
}

fn check_padding(bits: &BitImage) {
    let spare = bits.width_bytes() * 8 - bits.width() as usize;
    if spare == 0 || bits.width_bytes() == 0 {
        return;
    }
    let mask = (1u8 << spare) - 1;
    for y in 0..bits.height() {
        assert_eq!(
            bits.row(y)[bits.width_bytes() - 1] & mask,
            0,
            "padding bits set in row {y}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    // 1. Arbitrary bytes as a job stream.
    if let Ok(commands) = raster::decode_stream(data) {
        let raster_bytes: usize = commands
            .iter()
            .map(|c| match c {
                Decoded::Raster {
                    width_bytes,
                    rows,
                    data,
                    ..
                } => {
                    assert_eq!(data.len(), width_bytes * rows);
                    data.len()
                }
                _ => 0,
            })
            .sum();
        assert!(raster_bytes <= data.len());
    }

    // 2. A page through the encoder and back.
    if data.len() < 5 {
        return;
    }
    // Mostly small pages (fast runs); with the top bit of byte 1, up to 1024 wide (the scaled path).
    let width = if data[1] & 0x80 != 0 {
        u32::from(u16::from_le_bytes([data[0], data[1] & 0x7f])) % 1025
    } else {
        u32::from(data[0]) % 128
    };
    let height = u32::from(data[2]) % 97;
    let width_dots = match data[3] & 3 {
        0 => 384,
        1 => 576,
        2 => u32::from(data[3] >> 2),
        _ => width,
    };
    let with_autocontrast = data[3] & 0x80 != 0;
    let band_rows = u32::from(data[4]);
    let pixels = &data[5..];
    let page = RgbImage::from_fn(width, height, |x, y| {
        let at = ((y * width + x) * 3) as usize;
        let px = |k: usize| {
            if pixels.is_empty() {
                0
            } else {
                pixels[(at + k) % pixels.len()]
            }
        };
        image::Rgb([px(0), px(1), px(2)])
    });

    let gray = raster::prepare(&page, width_dots, with_autocontrast);
    if width > 0 && height > 0 && width_dots > 0 {
        assert_eq!(gray.width(), width_dots, "page not fitted to the paper");
    }
    let bits = raster::dither(&gray);
    assert_eq!((bits.width(), bits.height()), gray.dimensions());
    assert_eq!(bits.width_bytes(), (gray.width() as usize).div_ceil(8));
    let plain = raster::dither_with(&gray, false);
    // The default (serpentine) scan and the plain one both match the reference, padding included.
    for (dithered, serpentine) in [(&bits, true), (&plain, false)] {
        check_padding(dithered);
        assert_eq!(
            dithered.data(),
            reference_dither(&gray, serpentine),
            "dither (serpentine: {serpentine}) differs from the reference"
        );
    }

    let bands = raster::gs_v0_bands(&bits, band_rows);
    let per_band = band_rows.clamp(1, u32::from(u16::MAX)) as usize;
    let mut job = vec![0x1B, b'@'];
    for band in &bands {
        job.extend_from_slice(band);
    }
    job.extend_from_slice(&[0x1B, b'J', 120, 0x1D, b'V', b'A', 0]);

    let decoded = raster::decode_stream(&job).unwrap_or_else(|e| panic!("our own job does not decode: {e}"));
    assert_eq!(decoded.first(), Some(&Decoded::Init));
    assert_eq!(decoded.len(), bands.len() + 3, "{} bands", bands.len());
    assert_eq!(decoded[decoded.len() - 2], Decoded::Feed(120));
    assert_eq!(decoded[decoded.len() - 1], Decoded::Cut { partial: false });
    let mut joined = Vec::with_capacity(bits.data().len());
    let mut rows_total = 0;
    for command in &decoded[1..decoded.len() - 2] {
        let Decoded::Raster {
            mode,
            width_bytes,
            rows,
            data,
        } = command
        else {
            panic!("unexpected command {command:?} between the bands");
        };
        assert_eq!(*mode, 0);
        assert_eq!(*width_bytes, bits.width_bytes());
        assert!(*rows >= 1 && *rows <= per_band, "band of {rows} rows, limit {per_band}");
        rows_total += rows;
        joined.extend_from_slice(data);
    }
    assert_eq!(rows_total, bits.height() as usize);
    assert_eq!(joined, bits.data(), "decoded raster differs from the bit image");
    let via_helper: Vec<u8> = raster::decode_gs_v0(&job)
        .expect("decode_gs_v0")
        .into_iter()
        .flat_map(|(_, _, d)| d)
        .collect();
    assert_eq!(via_helper, bits.data());
});
