//! Camera-like JPEGs for tests and benches: an EXIF APP1 segment with a thumbnail, as
//! `rpicam-still` writes by default (`--thumb 320:240:70`) and most cameras do.

use image::codecs::jpeg::JpegEncoder;
use image::{ImageEncoder, RgbImage};

/// The EXIF (TIFF) data to give `JpegEncoder::set_exif_metadata`: IFD0 holds `orientation` (tag
/// 0x0112), IFD1 the thumbnail (`thumb` as a quality-70 JPEG), little-endian as the Pi's camera
/// stack writes it.
pub fn exif_with_thumbnail(thumb: &RgbImage, orientation: u16) -> Vec<u8> {
    let mut small = Vec::new();
    JpegEncoder::new_with_quality(&mut small, 70)
        .write_image(
            thumb.as_raw(),
            thumb.width(),
            thumb.height(),
            image::ExtendedColorType::Rgb8,
        )
        .expect("encode the thumbnail");
    let entry = |tag: u16, kind: u16, value: u32| {
        let mut e = Vec::with_capacity(12);
        e.extend(tag.to_le_bytes());
        e.extend(kind.to_le_bytes());
        e.extend(1u32.to_le_bytes());
        e.extend(value.to_le_bytes());
        e
    };
    // Header (8) + IFD0 (2 + 12 + 4) at 8 + IFD1 (2 + 24 + 4) at 26 = the thumbnail at 56.
    let mut tiff = b"II\x2a\0".to_vec();
    tiff.extend(8u32.to_le_bytes());
    tiff.extend(1u16.to_le_bytes());
    tiff.extend(entry(0x0112, 3, u32::from(orientation)));
    tiff.extend(26u32.to_le_bytes());
    tiff.extend(2u16.to_le_bytes());
    tiff.extend(entry(0x0201, 4, 56));
    tiff.extend(entry(0x0202, 4, small.len() as u32));
    tiff.extend(0u32.to_le_bytes());
    tiff.extend(&small);
    tiff
}
