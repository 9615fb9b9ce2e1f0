//! The `sim` camera: a generated test picture instead of a photo, for development and for booths
//! whose camera is not connected yet. It has the configured size, so layouts, encoding and printing
//! are exercised with real 12 MP data, and it shows the shot number and the UTC time in large type,
//! so a print can be matched to its session by eye.
//!
//! Its live view is a loop of `LIVE_LOOP` frames at the live size, drawn and JPEG-encoded once (on
//! the first pass) and then replayed at `live_fps`: a moving picture that costs almost no CPU.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

use image::codecs::jpeg::JpegEncoder;
use image::{Rgb, RgbImage};

use super::{prepare, remove_if_present, Camera, CameraError, CameraErrorKind, LiveControl};
use crate::config;
use crate::layout::text;

/// Close to what a camera's "fine" JPEG weighs, without making the encode slow.
const QUALITY: u8 = 85;

const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const DARK: Rgb<u8> = Rgb([24, 24, 28]);

/// Frames in the live loop: two seconds at 15 frames/s.
const LIVE_LOOP: usize = 30;
const LIVE_QUALITY: u8 = 75;

pub struct SimCamera {
    width: u32,
    height: u32,
    live_size: (u32, u32),
    live_fps: u32,
    /// The encoded live loop, filled on the first pass and kept for later runs.
    live_frames: Mutex<Vec<Bytes>>,
}

impl SimCamera {
    /// At the configured `width` × `height`; the live view at `live_width` × `live_height`.
    pub fn new(c: &config::Camera) -> SimCamera {
        SimCamera::with_size(c.width, c.height).with_live(c.live_width, c.live_height, c.live_fps)
    }

    pub fn with_size(width: u32, height: u32) -> SimCamera {
        // Zero would make an image the JPEG encoder refuses; 1 px is useless but harmless.
        SimCamera {
            width: width.max(1),
            height: height.max(1),
            live_size: (640, 360),
            live_fps: 15,
            live_frames: Mutex::new(Vec::new()),
        }
    }

    /// The live view's frame size and rate.
    pub fn with_live(mut self, width: u32, height: u32, fps: u32) -> SimCamera {
        self.live_size = (width.max(16), height.max(16));
        self.live_fps = fps.clamp(1, 120);
        self
    }

    /// Live frame `n` of the loop: a gradient with a disc circling and a bar sweeping across, so
    /// motion, frame rate and mirroring are plain to see.
    pub fn render_live(&self, n: usize) -> RgbImage {
        let (w, h) = self.live_size;
        let mut img = RgbImage::from_fn(w, h, |x, y| {
            Rgb([(40 + x * 120 / w) as u8, (30 + y * 100 / h) as u8, 110])
        });
        let phase = n as f64 / LIVE_LOOP as f64 * std::f64::consts::TAU;
        let (cx, cy) = (f64::from(w) / 2.0, f64::from(h) / 2.0);
        let r = f64::from(w.min(h)) * 0.3;
        let bar = (n as u64 * u64::from(w) / LIVE_LOOP as u64) as u32;
        fill_rect(&mut img, bar, 0, bar + (w / 40).max(2), h, Rgb([255, 210, 63]));
        fill_disc(
            &mut img,
            (cx + r * phase.cos()) as i64,
            (cy + r * phase.sin()) as i64,
            i64::from(w.min(h) / 10),
            WHITE,
        );
        let size = fit("LIVE → sim", h as f32 / 8.0, w as f32 * 0.8);
        draw_centered(&mut img, "LIVE → sim", h as f32 * 0.06, size, WHITE);
        img
    }

    /// Frame `n` of the loop, encoded the first time it is asked for.
    fn live_frame(&self, n: usize) -> Result<Bytes, CameraError> {
        if let Some(frame) = self.live_frames.lock().unwrap_or_else(|p| p.into_inner()).get(n) {
            return Ok(frame.clone());
        }
        let mut jpeg = Vec::new();
        JpegEncoder::new_with_quality(&mut jpeg, LIVE_QUALITY)
            .encode_image(&self.render_live(n))
            .map_err(|e| CameraError::new(CameraErrorKind::Failed, format!("sim camera: cannot encode: {e}")))?;
        let frame = Bytes::from(jpeg);
        let mut frames = self.live_frames.lock().unwrap_or_else(|p| p.into_inner());
        if frames.len() == n {
            frames.push(frame.clone());
        }
        Ok(frame)
    }

    /// The test picture for `shot` taken at `now_ms` (UTC milliseconds).
    ///
    /// Everything is filled row by row with integer arithmetic (no per-pixel trigonometry or
    /// blending except under the glyphs): at 12 MP that keeps drawing to tens of milliseconds in a
    /// release build, and the JPEG encode dominates.
    pub fn render(&self, shot: u32, now_ms: i64) -> RgbImage {
        let (w, h) = (self.width, self.height);
        let mut img = RgbImage::new(w, h);

        // Background: red rises left to right, green top to bottom (so a flipped or cropped image is
        // obvious), blue changes with the shot number (so consecutive shots look different).
        let blue = [200u8, 60, 140, 20, 230, 100, 170, 40][(shot % 8) as usize];
        let reds: Vec<u8> = (0..u64::from(w)).map(|x| (30 + x * 170 / u64::from(w)) as u8).collect();
        for (y, row) in img.chunks_exact_mut(w as usize * 3).enumerate() {
            let green = (30 + y as u64 * 170 / u64::from(h)) as u8;
            for (px, &red) in row.chunks_exact_mut(3).zip(&reds) {
                px.copy_from_slice(&[red, green, blue]);
            }
        }

        let short = w.min(h);
        let border = (short / 100).max(1);
        fill_rect(&mut img, 0, 0, w, border, WHITE);
        fill_rect(&mut img, 0, h - border, w, h, WHITE);
        fill_rect(&mut img, 0, 0, border, h, WHITE);
        fill_rect(&mut img, w - border, 0, w, h, WHITE);

        // Colour bars along the bottom: a quick check of the printer's colour handling.
        let bars = [
            Rgb([235, 235, 235]),
            Rgb([235, 235, 16]),
            Rgb([16, 235, 235]),
            Rgb([16, 235, 16]),
            Rgb([235, 16, 235]),
            Rgb([235, 16, 16]),
            Rgb([16, 16, 235]),
            Rgb([16, 16, 16]),
        ];
        let bar_top = h.saturating_sub(border + h / 10);
        let inner = w.saturating_sub(2 * border);
        for (i, colour) in bars.iter().enumerate() {
            let x0 = border + inner * i as u32 / bars.len() as u32;
            let x1 = border + inner * (i as u32 + 1) / bars.len() as u32;
            fill_rect(&mut img, x0, bar_top, x1, h - border, *colour);
        }

        // A white ring around a dark disc holding the shot number.
        let (cx, cy) = (i64::from(w / 2), i64::from(h) * 45 / 100);
        let outer = i64::from(short) * 30 / 100;
        let ring = (outer / 10).max(1);
        fill_disc(&mut img, cx, cy, outer, WHITE);
        fill_disc(&mut img, cx, cy, outer - ring, DARK);

        let number = format!("#{shot}");
        let size = fit(&number, (outer - ring) as f32 * 1.1, (outer - ring) as f32 * 1.4);
        draw_centered(&mut img, &number, cy as f32 - size * 0.55, size, WHITE);

        let when = crate::date::format(now_ms, "%Y-%m-%d %H:%M:%S UTC");
        let max_width = w.saturating_sub(2 * border) as f32 * 0.9;
        let size = fit(&when, h as f32 / 14.0, max_width);
        let top = (cy + outer) as f32 + size * 0.25;
        fill_rect(&mut img, 0, top as u32, w, (top + size * 1.2) as u32, DARK);
        draw_centered(&mut img, &when, top, size, WHITE);

        let label = format!("photoboothd sim camera  {w}×{h}");
        let size = fit(&label, h as f32 / 28.0, max_width);
        draw_centered(&mut img, &label, (border * 3) as f32, size, DARK);
        img
    }
}

impl Camera for SimCamera {
    fn backend(&self) -> &'static str {
        "sim"
    }

    fn capture(&self, dest: &Path, shot: u32) -> Result<(), CameraError> {
        let img = self.render(shot, crate::clock::now_ms());
        let part = prepare(dest)?;
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            remove_if_present(&part);
            CameraError::new(
                CameraErrorKind::Failed,
                format!("sim camera: cannot {what} {}: {e}", dest.display()),
            )
        };
        let file = std::fs::File::create(&part).map_err(|e| failed("write", &e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        JpegEncoder::new_with_quality(&mut out, QUALITY)
            .encode_image(&img)
            .map_err(|e| failed("encode", &e))?;
        out.flush().map_err(|e| failed("write", &e))?;
        drop(out);
        std::fs::rename(&part, dest).map_err(|e| failed("write", &e))
    }

    fn live(&self, ctl: &LiveControl) -> Result<(), CameraError> {
        let period = Duration::from_secs(1) / self.live_fps;
        let started = Instant::now();
        for tick in 0u32.. {
            ctl.publish(self.live_frame(tick as usize % LIVE_LOOP)?);
            // Paced from the start, so a slow frame does not slow the rate down for good.
            let due = started + period * (tick + 1);
            if ctl.wait(due.saturating_duration_since(Instant::now())) {
                break;
            }
        }
        Ok(())
    }

    fn live_during_capture(&self) -> bool {
        true
    }
}

/// Text too small to read is skipped (tiny test sizes), which also keeps a zero font size away
/// from the rasteriser.
fn draw_centered(img: &mut RgbImage, s: &str, y: f32, size: f32, colour: Rgb<u8>) {
    if size >= 4.0 {
        text::draw_centered(img, s, y, size, colour);
    }
}

/// The font size for `text` at `wanted` px, shrunk so the text is at most `max_width` wide.
fn fit(text: &str, wanted: f32, max_width: f32) -> f32 {
    let wide = text::width(text, wanted);
    if wide > max_width && wide > 0.0 {
        wanted * max_width / wide
    } else {
        wanted
    }
}

/// Fills `[x0, x1) × [y0, y1)`, clipped to the image, one row slice at a time.
fn fill_rect(img: &mut RgbImage, x0: u32, y0: u32, x1: u32, y1: u32, colour: Rgb<u8>) {
    let (w, h) = img.dimensions();
    let (x1, y1) = (x1.min(w), y1.min(h));
    if x0 >= x1 || y0 >= y1 {
        return;
    }
    let stride = w as usize * 3;
    let buf: &mut [u8] = img;
    for y in y0..y1 {
        let row = &mut buf[y as usize * stride..][x0 as usize * 3..x1 as usize * 3];
        for px in row.chunks_exact_mut(3) {
            px.copy_from_slice(&colour.0);
        }
    }
}

/// Fills the disc of radius `r` around (cx, cy): one square root per row, then a span fill.
fn fill_disc(img: &mut RgbImage, cx: i64, cy: i64, r: i64, colour: Rgb<u8>) {
    if r <= 0 {
        return;
    }
    let h = i64::from(img.height());
    for y in (cy - r).max(0)..(cy + r + 1).min(h) {
        let dy = y - cy;
        let half = ((r * r - dy * dy) as f64).sqrt() as i64;
        let x0 = (cx - half).max(0) as u32;
        let x1 = (cx + half + 1).max(0) as u32;
        fill_rect(img, x0, y as u32, x1, y as u32 + 1, colour);
    }
}

#[cfg(test)]
mod tests {
    use super::super::partial_path;
    use super::*;

    #[test]
    fn renders_the_size_and_differs_by_shot() {
        let cam = SimCamera::with_size(320, 240);
        let a = cam.render(1, 0);
        let b = cam.render(2, 0);
        assert_eq!(a.dimensions(), (320, 240));
        assert_ne!(a.as_raw(), b.as_raw());
        // The shot number is drawn in white inside the dark disc.
        let centre = a.get_pixel(160, 108);
        let lit = (120..200)
            .flat_map(|x| (70..140).map(move |y| (x, y)))
            .filter(|&(x, y)| a.get_pixel(x, y).0[0] > 200);
        assert!(lit.count() > 100, "no digits around the centre ({centre:?})");
    }

    #[test]
    fn odd_sizes_do_not_panic() {
        for (w, h) in [(1, 1), (64, 10_000), (10_000, 64), (65, 67)] {
            let img = SimCamera::with_size(w, h).render(3, 1_700_000_000_000);
            assert_eq!(img.dimensions(), (w, h));
        }
    }

    #[test]
    fn capture_writes_a_decodable_jpeg() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("shots/1.jpg");
        SimCamera::with_size(400, 300).capture(&dest, 1).unwrap();
        let img = image::open(&dest).unwrap();
        assert_eq!((img.width(), img.height()), (400, 300));
        assert!(!partial_path(&dest).exists());
    }

    /// `cargo test --release --lib sim_full_frame -- --ignored --nocapture` prints the time of a
    /// 12 MP capture; not a timed assertion, machines differ too much.
    #[test]
    #[ignore]
    fn sim_full_frame_timing() {
        let dir = tempfile::tempdir().unwrap();
        let cam = SimCamera::with_size(4056, 3040);
        let started = std::time::Instant::now();
        let img = cam.render(1, crate::clock::now_ms());
        let rendered = started.elapsed();
        drop(img);
        let started = std::time::Instant::now();
        cam.capture(&dir.path().join("full.jpg"), 1).unwrap();
        let total = started.elapsed();
        let size = std::fs::metadata(dir.path().join("full.jpg")).unwrap().len();
        println!("render {rendered:?}, render+encode+write {total:?}, {size} bytes");
    }
}
