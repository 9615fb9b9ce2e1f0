//! A camera JPEG's own EXIF thumbnail, decoded and upright: what the review screen's preview is
//! made from for the last shot, so the customer sees the page as soon as the shot is taken. The
//! full-size decode of a 12 MP shot takes 100 ms and more (its entropy decoding cannot be scaled);
//! the thumbnail, which `rpicam-still` writes by default (320×240) and most cameras embed, takes
//! well under a millisecond. The print itself is always composed from the full photo.
//!
//! Only the file's first segments are read: EXIF lives in an APP1 segment before the image data,
//! and one segment is at most 64 KiB. Anything malformed is `None`; the caller then decodes the
//! photo itself.

use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use image::metadata::Orientation;
use image::{DynamicImage, RgbImage};
use jpeg_decoder::Decoder;

use super::compose;

/// Enough for SOI, a JFIF APP0 and a full APP1: EXIF must come before the image data.
const HEAD_BYTES: u64 = 160 * 1024;
/// A thumbnail bigger than this is not an EXIF thumbnail (they fit in one 64 KiB segment).
const MAX_THUMB_PIXELS: u32 = 1024 * 1024;

/// The EXIF thumbnail of the JPEG at `path`, decoded and turned upright, if it has a readable one.
pub fn read(path: &Path) -> Option<RgbImage> {
    let mut head = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(HEAD_BYTES)
        .read_to_end(&mut head)
        .ok()?;
    let tiff = exif_segment(&head)?;
    let (bytes, orientation) = parse_tiff(tiff)?;
    // A hostile thumbnail must not take the session down with a decoder panic.
    let img = catch_unwind(AssertUnwindSafe(|| decode(bytes))).ok()??;
    let mut img = DynamicImage::ImageRgb8(img);
    img.apply_orientation(orientation);
    Some(img.into_rgb8())
}

/// The TIFF structure inside the file's `Exif` APP1 segment.
fn exif_segment(jpeg: &[u8]) -> Option<&[u8]> {
    if jpeg.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut at = 2;
    loop {
        let marker = *jpeg.get(at + 1)?;
        if *jpeg.get(at)? != 0xFF || marker == 0xDA || marker == 0xD9 {
            return None; // not a marker, or the image data starts: no EXIF before it
        }
        let len = usize::from(u16::from_be_bytes([*jpeg.get(at + 2)?, *jpeg.get(at + 3)?]));
        let payload = jpeg.get(at + 4..at + 2 + len.max(2))?;
        if marker == 0xE1 {
            if let Some(tiff) = payload.strip_prefix(b"Exif\0\0") {
                return Some(tiff);
            }
        }
        at += 2 + len;
    }
}

/// The thumbnail's JPEG bytes (IFD1's JPEGInterchangeFormat and its length) and the photo's
/// orientation (IFD0's tag 0x0112), which the thumbnail shares.
fn parse_tiff(tiff: &[u8]) -> Option<(&[u8], Orientation)> {
    let big = match tiff.get(..4)? {
        [b'M', b'M', 0, 42] => true,
        [b'I', b'I', 42, 0] => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b = [*tiff.get(at)?, *tiff.get(at + 1)?];
        Some(if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = tiff.get(at..at + 4)?.try_into().ok()?;
        Some(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    // An IFD: a count, 12-byte entries (tag, type, count, value), then the next IFD's offset.
    let entries = |ifd: usize| -> Option<(Vec<(u16, u32)>, usize)> {
        let n = usize::from(u16_at(ifd)?);
        let tags = (0..n)
            .map(|i| {
                let e = ifd + 2 + 12 * i;
                let value = if u16_at(e + 2)? == 3 {
                    u32::from(u16_at(e + 8)?)
                } else {
                    u32_at(e + 8)?
                };
                Some((u16_at(e)?, value))
            })
            .collect::<Option<Vec<_>>>()?;
        Some((tags, u32_at(ifd + 2 + 12 * n)? as usize))
    };
    let (ifd0, ifd1) = entries(u32_at(4)? as usize)?;
    let orientation = ifd0
        .iter()
        .find(|(tag, _)| *tag == 0x0112)
        .and_then(|(_, v)| Orientation::from_exif(u8::try_from(*v).ok()?))
        .unwrap_or(Orientation::NoTransforms);
    if ifd1 == 0 {
        return None;
    }
    let (ifd1, _) = entries(ifd1)?;
    let find = |tag: u16| ifd1.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v as usize);
    let (offset, len) = (find(0x0201)?, find(0x0202)?);
    Some((tiff.get(offset..offset.checked_add(len)?)?, orientation))
}

fn decode(bytes: &[u8]) -> Option<RgbImage> {
    let mut decoder = Decoder::new(bytes);
    decoder.read_info().ok()?;
    let info = decoder.info()?;
    if u32::from(info.width) * u32::from(info.height) > MAX_THUMB_PIXELS {
        return None;
    }
    let (w, h, format) = (u32::from(info.width), u32::from(info.height), info.pixel_format);
    compose::to_rgb(format, w, h, decoder.decode().ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_exif_is_none_not_a_panic() {
        assert!(exif_segment(b"").is_none());
        assert!(exif_segment(&[0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, b'E']).is_none());
        assert!(exif_segment(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2]).is_none());
        for tiff in [
            &b"MM\0\x2a\0\0\0\x08\xff\xff"[..],
            b"II\x2a\0\x08\0\0\0\x01\0",
            b"XX",
            b"",
        ] {
            assert!(parse_tiff(tiff).is_none());
        }
        // IFD1 points past the end of the segment.
        let mut tiff = b"II\x2a\0\x08\0\0\0\0\0\x0e\0\0\0".to_vec();
        tiff.extend([2, 0, 0x01, 0x02, 4, 0, 1, 0, 0, 0, 0xff, 0, 0, 0]);
        tiff.extend([0x02, 0x02, 4, 0, 1, 0, 0, 0, 0xff, 0, 0, 0, 0, 0, 0, 0]);
        assert!(parse_tiff(&tiff).is_none());
    }
}
