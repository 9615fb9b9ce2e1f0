//! Composing a print: camera JPEGs into a template's slots, then frame and text, at the printer's
//! native resolution.
//!
//! Cost is mostly JPEG decoding, so each photo is decoded at the smallest DCT scale (1/8, 1/4, 1/2
//! or 1) whose output still covers its slot: a 12 MP shot going into a 520 px slot is decoded at 1/4
//! (1014×760), which skips most of the inverse DCT, the colour conversion and the big resample of a
//! full decode, about halving the time per photo. The entropy decoding before it cannot be scaled
//! and is now the floor (docs/bench/layout.md). The remaining reduction (less than 2×) is a
//! fixed-point Catmull-Rom resample of the centred crop (`cover`). image 0.25's JPEG decoder
//! (zune-jpeg) cannot decode scaled, hence `jpeg-decoder` here.

use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use image::imageops;
use image::metadata::Orientation;
use image::{DynamicImage, Rgb, RgbImage};
use jpeg_decoder::{Decoder, PixelFormat};

use super::template::{Align, Slot, Template, TextKind};
use super::text;

pub use super::template::LayoutError;

/// What varies per print.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// `booth.name` from the config.
    pub booth_name: &'a str,
    /// The time printed by `kind = "date"` items, in milliseconds since the epoch. It is formatted
    /// as UTC: pass the local wall-clock time (UTC ms plus the booth's offset) to print local dates.
    pub time_ms: i64,
    /// Printed by `kind = "date"` items instead of `time_ms` when set (an event's own date).
    pub date_text: Option<&'a str>,
}

/// Camera JPEGs are 3–15 MB; a bigger "photo" is not one, and reading it whole would waste memory.
const MAX_FILE_BYTES: u64 = 64 << 20;

/// The largest photo accepted, checked on the header before decoding: a damaged or hostile header
/// can claim 65535×65535, and a progressive decode would allocate coefficients for all of it.
/// 100 MP is above every camera a booth uses (a 61 MP full-frame body fits).
const MAX_PIXELS: u64 = 100_000_000;

/// The decoder's own cap on its output buffer, a second line behind `MAX_PIXELS`. A 12 MP RGB frame
/// at full scale is 37 MB.
const MAX_DECODED_BYTES: usize = 320 << 20;

/// Composes `photos` (in shot order) into `template` and returns the page.
///
/// Slot *i* gets photo *i mod n*: fewer photos than slots are reused cyclically, more photos than
/// slots leave the extra ones out. Photos are decoded in parallel, one thread per photo up to the
/// core count. Any unreadable or undecodable photo fails the whole page with an error naming it.
pub fn compose(template: &Template, photos: &[impl AsRef<Path>], ctx: &Context<'_>) -> Result<RgbImage, LayoutError> {
    if photos.is_empty() {
        return Err(LayoutError::NoPhotos);
    }
    // One job per photo actually used; each job fills every slot its photo goes into, so a reused
    // photo is decoded once.
    let jobs: Vec<(&Path, Vec<Slot>)> = (0..photos.len().min(template.slots().len()))
        .map(|p| (photos[p].as_ref(), slots_of(template, p, photos.len())))
        .collect();
    let filled = run_jobs(&jobs)?;
    let prepared: Vec<PreparedPhoto> = jobs
        .into_iter()
        .zip(filled)
        .map(|((_, slots), images)| PreparedPhoto {
            slots: slots.into_iter().zip(images).collect(),
        })
        .collect();
    Ok(compose_prepared(template, &prepared, ctx))
}

/// One photo decoded, cropped and scaled into every slot it fills on a page: the slow part of
/// composing. The kiosk session prepares each shot while the customer poses for the next, so the
/// review after the last shot waits only for that shot's decode and the assembly.
pub struct PreparedPhoto {
    slots: Vec<(Slot, RgbImage)>,
}

/// Prepares photo `index` (0-based, in shot order) of `count` for `template`. A photo beyond the
/// template's slots fills nothing and costs nothing.
pub fn prepare_photo(
    template: &Template,
    index: usize,
    count: usize,
    path: &Path,
) -> Result<PreparedPhoto, LayoutError> {
    let slots = slots_of(template, index, count);
    if slots.is_empty() {
        return Ok(PreparedPhoto { slots: Vec::new() });
    }
    let images = fill_slots_guarded(path, &slots)?;
    Ok(PreparedPhoto {
        slots: slots.into_iter().zip(images).collect(),
    })
}

/// Photo `index` of `count` prepared from an image already decoded and upright (the camera's EXIF
/// thumbnail, for the review preview), if the image has at least `scale` times each slot's pixels
/// across its centred crop; `None` when it is too small to look sharp at that scale.
pub fn prepare_decoded(
    template: &Template,
    index: usize,
    count: usize,
    img: &RgbImage,
    scale: f64,
) -> Option<PreparedPhoto> {
    let slots = slots_of(template, index, count);
    let (w, h) = img.dimensions();
    let sharp = slots.iter().all(|s| {
        let (cover_w, cover_h) = cover_size(w, h, s.w, s.h);
        // The crop keeps w/cover_w of the covering size's pixels; at `scale` it must be 1:1 or better.
        f64::from(w) / f64::from(cover_w) >= scale && f64::from(h) / f64::from(cover_h) >= scale
    });
    sharp.then(|| PreparedPhoto {
        slots: slots.iter().map(|s| (*s, cover(img, s.w, s.h))).collect(),
    })
}

/// The page from prepared photos (any order; each knows its slots), with frame and texts.
pub fn compose_prepared(template: &Template, photos: &[PreparedPhoto], ctx: &Context<'_>) -> RgbImage {
    let mut page = assemble(template, photos);
    finish_page(&mut page, template, ctx);
    page
}

/// Slot *i* gets photo *i mod count*: the slots photo `index` fills.
fn slots_of(template: &Template, index: usize, count: usize) -> Vec<Slot> {
    template
        .slots()
        .iter()
        .skip(index)
        .step_by(count.max(1))
        .copied()
        .collect()
}

/// The background cell with every prepared photo in place (no frame or text yet).
fn assemble(template: &Template, photos: &[PreparedPhoto]) -> RgbImage {
    let mut cell = match template.background_image() {
        Some(bg) => bg.clone(),
        None => RgbImage::from_pixel(template.cell_width(), template.height(), template.background()),
    };
    for (slot, img) in photos.iter().flat_map(|p| &p.slots) {
        imageops::replace(&mut cell, img, i64::from(slot.x), i64::from(slot.y));
    }
    cell
}

/// Frame and texts over the cell, then the cell repeated across the page (strips).
fn finish_page(page: &mut RgbImage, template: &Template, ctx: &Context<'_>) {
    if let Some(frame) = template.frame() {
        blend_over(page, frame);
    }
    draw_texts(page, template, ctx);
    if template.repeat_x() > 1 {
        let cell_w = template.cell_width();
        // Background first: a page fitted to an odd driver width has a column no strip covers.
        let mut full = RgbImage::from_pixel(template.width(), template.height(), template.background());
        for i in 0..template.repeat_x() {
            imageops::replace(&mut full, page, i64::from(i * cell_w), 0);
        }
        *page = full;
    }
}

/// Runs `fill_slots` for every job on up to `available_parallelism` threads (the Pi has 4 cores,
/// a strip has 3 photos), returning results in job order; the first failing job's error wins.
fn run_jobs(jobs: &[(&Path, Vec<Slot>)]) -> Result<Vec<Vec<RgbImage>>, LayoutError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len());
    let run = |i: usize| fill_slots_guarded(jobs[i].0, &jobs[i].1);
    let mut results: Vec<Option<Result<Vec<RgbImage>, LayoutError>>> = (0..jobs.len()).map(|_| None).collect();
    if threads <= 1 {
        for (i, slot) in results.iter_mut().enumerate() {
            *slot = Some(run(i));
        }
    } else {
        // Work-stealing by index: each thread takes the next undone photo. The calling thread works
        // too, so a 2-photo page spawns one thread.
        let next = AtomicUsize::new(0);
        let work = || {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= jobs.len() {
                    return done;
                }
                done.push((i, run(i)));
            }
        };
        let finished = std::thread::scope(|s| {
            // A thread that cannot be spawned (out of memory or PIDs) only means less parallelism.
            let handles: Vec<_> = (1..threads)
                .filter_map(|_| {
                    std::thread::Builder::new()
                        .name("layout-decode".into())
                        .spawn_scoped(s, work)
                        .ok()
                })
                .collect();
            let mut all = work();
            for h in handles {
                match h.join() {
                    Ok(done) => all.extend(done),
                    Err(_) => return Err(LayoutError::Internal("a photo decoding thread panicked".into())),
                }
            }
            Ok(all)
        })?;
        for (i, r) in finished {
            results[i] = Some(r);
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(LayoutError::Internal("a photo was not decoded".into()))))
        .collect()
}

/// `fill_slots`, with a decoder panic turned into an error: jpeg-decoder is fuzzed, but a panic on
/// a hostile file must still be an error, not a dead print loop or session.
fn fill_slots_guarded(path: &Path, slots: &[Slot]) -> Result<Vec<RgbImage>, LayoutError> {
    catch_unwind(AssertUnwindSafe(|| fill_slots(path, slots))).unwrap_or_else(|_| {
        Err(LayoutError::Photo {
            path: path.to_path_buf(),
            message: "the JPEG decoder panicked on this file".into(),
        })
    })
}

/// Decodes the photo at `path` once, at the smallest DCT scale that covers the largest of `slots`,
/// and returns it cover-cropped to each slot.
fn fill_slots(path: &Path, slots: &[Slot]) -> Result<Vec<RgbImage>, LayoutError> {
    let fail = |message: String| LayoutError::Photo {
        path: path.to_path_buf(),
        message,
    };
    let bytes = read_capped(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let mut decoder = Decoder::new(bytes.as_slice());
    decoder.set_max_decoding_buffer_size(MAX_DECODED_BYTES);
    decoder
        .read_info()
        .map_err(|e| fail(format!("not a readable JPEG: {e}")))?;
    let (raw_w, raw_h, _) = frame(&decoder, "readable").map_err(fail)?;
    if raw_w == 0 || raw_h == 0 {
        return Err(fail(format!("not a readable JPEG: {raw_w}×{raw_h} pixels")));
    }
    if u64::from(raw_w) * u64::from(raw_h) > MAX_PIXELS {
        return Err(fail(format!(
            "{raw_w}×{raw_h} pixels is more than the {MAX_PIXELS} a photo may have"
        )));
    }
    // Phones and DSLRs store portrait shots sideways with an EXIF orientation; slots want them
    // upright, and the scale must be chosen for the upright size.
    let orientation = decoder
        .exif_data()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let sideways = matches!(
        orientation,
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH
    );
    let (up_w, up_h) = if sideways { (raw_h, raw_w) } else { (raw_w, raw_h) };
    let (mut need_w, mut need_h) = slots
        .iter()
        .map(|s| cover_size(up_w, up_h, s.w, s.h))
        .fold((0, 0), |(a, b), (w, h)| (a.max(w), b.max(h)));
    if sideways {
        (need_w, need_h) = (need_h, need_w);
    }
    let eighths = dct_eighths(raw_w, raw_h, need_w, need_h);
    if eighths < 8 {
        // Asking for exactly the scaled size makes jpeg-decoder pick exactly this scale (its own
        // rule, "large enough in at least one axis", would not guarantee cover in both).
        let (w, h) = (scaled(raw_w, eighths), scaled(raw_h, eighths));
        decoder
            .scale(w as u16, h as u16)
            .map_err(|e| fail(format!("not a readable JPEG: {e}")))?;
    }
    let pixels = decoder
        .decode()
        .map_err(|e| fail(format!("not a decodable JPEG: {e}")))?;
    let (w, h, format) = frame(&decoder, "decodable").map_err(fail)?;
    let rgb = to_rgb(format, w, h, pixels).map_err(fail)?;
    let mut img = DynamicImage::ImageRgb8(rgb);
    img.apply_orientation(orientation);
    let img = img.into_rgb8();
    Ok(slots.iter().map(|s| cover(&img, s.w, s.h)).collect())
}

/// jpeg-decoder's pixels as an RGB image. Cameras write 8-bit YCbCr (or grey); CMYK and 16-bit
/// lossless JPEGs come from prepress and medical tools, not from a booth.
pub(super) fn to_rgb(format: PixelFormat, w: u32, h: u32, pixels: Vec<u8>) -> Result<RgbImage, String> {
    match format {
        PixelFormat::RGB24 => RgbImage::from_raw(w, h, pixels),
        PixelFormat::L8 => RgbImage::from_raw(w, h, pixels.iter().flat_map(|&l| [l, l, l]).collect()),
        PixelFormat::CMYK32 => return Err("CMYK JPEGs are not supported".into()),
        PixelFormat::L16 => return Err("16-bit JPEGs are not supported".into()),
    }
    .ok_or_else(|| format!("decoder returned a short image for {w}×{h}"))
}

/// The frame's width, height and pixel format as `decoder` knows them after its last step; `step`
/// ("readable": the header read, "decodable": the pixels) says which in the error when it has none.
fn frame(decoder: &Decoder<&[u8]>, step: &str) -> Result<(u32, u32, PixelFormat), String> {
    let info = decoder
        .info()
        .ok_or_else(|| format!("not a {step} JPEG: no frame header"))?;
    Ok((u32::from(info.width), u32::from(info.height), info.pixel_format))
}

fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "{len} bytes is more than a photo's {MAX_FILE_BYTES}"
        )));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(MAX_FILE_BYTES).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The size a `src_w × src_h` image must be scaled to so that it covers a `w × h` slot.
fn cover_size(src_w: u32, src_h: u32, w: u32, h: u32) -> (u32, u32) {
    let (sw, sh, w, h) = (u64::from(src_w), u64::from(src_h), u64::from(w), u64::from(h));
    if sw * h >= sh * w {
        // Wider than the slot: height decides.
        ((sw * h).div_ceil(sh).max(w) as u32, h as u32)
    } else {
        (w as u32, (sh * w).div_ceil(sw).max(h) as u32)
    }
}

/// The output length of a DCT-scaled decode at `eighths`/8, as libjpeg and jpeg-decoder round it.
fn scaled(len: u32, eighths: u32) -> u32 {
    (len * eighths).div_ceil(8)
}

/// The smallest DCT scale, in eighths (1, 2, 4 or 8), whose output is at least `need_w × need_h`.
fn dct_eighths(w: u32, h: u32, need_w: u32, need_h: u32) -> u32 {
    [1, 2, 4]
        .into_iter()
        .find(|&e| scaled(w, e) >= need_w && scaled(h, e) >= need_h)
        .unwrap_or(8)
}

/// Cover-crop: the centred part of `img` with the `w × h` aspect ratio, resampled (Catmull-Rom)
/// to exactly `w × h`. What `compose` does to each photo after decoding; public for previews.
pub fn cover(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    let (sw, sh) = img.dimensions();
    if (sw, sh) == (w, h) {
        return img.clone();
    }
    // The crop window in source pixels, kept fractional so the crop is exactly centred.
    let (sw_f, sh_f, w_f, h_f) = (f64::from(sw), f64::from(sh), f64::from(w), f64::from(h));
    let (cw, ch) = if sw_f * h_f > sh_f * w_f {
        (sh_f * w_f / h_f, sh_f)
    } else {
        (sw_f, sw_f * h_f / w_f)
    };
    resample(img, ((sw_f - cw) / 2.0, (sh_f - ch) / 2.0, cw, ch), w, h)
}

/// Fixed-point precision of resampling weights: 255 · 2^14 · (sum of |weights| < 1.5) stays far
/// inside an i32 accumulator, and 1/16384 is finer than any 8-bit step.
const WEIGHT_BITS: u32 = 14;
const WEIGHT_ONE: i32 = 1 << WEIGHT_BITS;

/// The Catmull-Rom cubic (Keys, a = −0.5): the resample after DCT scaling. Bicubic rather than
/// Triangle because the remaining reduction is under 2×, where Triangle visibly softens faces on a
/// 300 dpi print and Catmull-Rom keeps them crisp; it costs a few ms per slot against tens for
/// decoding (see docs/bench/layout.md). It is also what Pillow's `ImageOps.fit` uses (BICUBIC), so
/// the comparison bench does the same work.
fn catmull_rom(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        (1.5 * x - 2.5) * x * x + 1.0
    } else if x < 2.0 {
        ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0
    } else {
        0.0
    }
}

/// For each output pixel along one axis: the first source pixel, how many source pixels it reads
/// and their weights (`stride` slots per output pixel, the unused ones zero).
struct Taps {
    first: Vec<usize>,
    len: Vec<usize>,
    stride: usize,
    weights: Vec<i32>,
}

/// Weights that map the source span `[from, from + span)` of an axis `src_len` long onto `dst_len`
/// pixels. When shrinking, the kernel is widened by the reduction so every source pixel counts
/// (antialiasing); taps reaching past the crop read the pixels beyond it, as Pillow's `box` does,
/// and are only cut at the image edge.
fn taps(src_len: usize, from: f64, span: f64, dst_len: usize) -> Taps {
    let scale = span / dst_len as f64;
    let widen = scale.max(1.0);
    let support = 2.0 * widen;
    let stride = support.ceil() as usize * 2 + 1;
    let mut t = Taps {
        first: Vec::with_capacity(dst_len),
        len: Vec::with_capacity(dst_len),
        stride,
        weights: vec![0; dst_len * stride],
    };
    let mut w = vec![0.0f64; stride];
    for i in 0..dst_len {
        let center = from + (i as f64 + 0.5) * scale;
        let lo = ((center - support + 0.5).floor().max(0.0) as usize).min(src_len - 1);
        let hi = ((center + support + 0.5).floor().max(0.0) as usize).clamp(lo + 1, src_len.min(lo + stride));
        let mut sum = 0.0;
        for (k, wk) in w.iter_mut().enumerate().take(hi - lo) {
            *wk = catmull_rom(((lo + k) as f64 + 0.5 - center) / widen);
            sum += *wk;
        }
        let row = &mut t.weights[i * stride..i * stride + (hi - lo)];
        if sum.abs() < 1e-9 {
            row[0] = WEIGHT_ONE;
        } else {
            for (fixed, wk) in row.iter_mut().zip(&w) {
                *fixed = (wk / sum * f64::from(WEIGHT_ONE)).round() as i32;
            }
            // Rounding leftovers go to the heaviest tap so a flat area stays exactly flat.
            let total: i32 = row.iter().sum();
            if let Some(max) = row.iter_mut().max() {
                *max += WEIGHT_ONE - total;
            }
        }
        t.first.push(lo);
        t.len.push(hi - lo);
    }
    t
}

fn to_u8(acc: i32) -> u8 {
    (acc >> WEIGHT_BITS).clamp(0, 255) as u8
}

/// Separable fixed-point convolution of the `window` (x, y, w, h in source pixels) of `src` to
/// `w × h`, horizontal pass first. image's `imageops::resize` does the same job through generic
/// f32 pixel access and took ~70 ms for the 4x6-single slot; this is the Pillow approach, with
/// integer weights and plain row loops the compiler vectorises.
fn resample(src: &RgbImage, window: (f64, f64, f64, f64), w: u32, h: u32) -> RgbImage {
    let (sw, sh) = (src.width() as usize, src.height() as usize);
    let (w, h) = (w as usize, h as usize);
    let xt = taps(sw, window.0, window.2, w);
    let yt = taps(sh, window.1, window.3, h);
    // Only the source rows the vertical pass reads go through the horizontal pass.
    let row_lo = yt.first.iter().copied().min().unwrap_or(0);
    let row_hi = yt.first.iter().zip(&yt.len).map(|(f, l)| f + l).max().unwrap_or(0);

    let raw = src.as_raw();
    let mut tmp = vec![0u8; (row_hi - row_lo) * w * 3];
    for (y, out) in (row_lo..row_hi).zip(tmp.chunks_exact_mut(w * 3)) {
        let row = &raw[y * sw * 3..(y + 1) * sw * 3];
        for (x, px) in out.chunks_exact_mut(3).enumerate() {
            let (first, len) = (xt.first[x], xt.len[x]);
            let weights = &xt.weights[x * xt.stride..x * xt.stride + len];
            let mut acc = [1 << (WEIGHT_BITS - 1); 3];
            for (s, &wt) in row[first * 3..(first + len) * 3].chunks_exact(3).zip(weights) {
                acc[0] += i32::from(s[0]) * wt;
                acc[1] += i32::from(s[1]) * wt;
                acc[2] += i32::from(s[2]) * wt;
            }
            px.copy_from_slice(&acc.map(to_u8));
        }
    }

    let mut out = vec![0u8; w * h * 3];
    let mut acc = vec![0i32; w * 3];
    for (y, dst) in out.chunks_exact_mut(w * 3).enumerate() {
        acc.fill(1 << (WEIGHT_BITS - 1));
        let (first, len) = (yt.first[y], yt.len[y]);
        for (k, &wt) in yt.weights[y * yt.stride..y * yt.stride + len].iter().enumerate() {
            let r = first + k - row_lo;
            for (a, &v) in acc.iter_mut().zip(&tmp[r * w * 3..(r + 1) * w * 3]) {
                *a += i32::from(v) * wt;
            }
        }
        for (d, &a) in dst.iter_mut().zip(&acc) {
            *d = to_u8(a);
        }
    }
    // The buffer is exactly w × h × 3 by construction.
    RgbImage::from_raw(w as u32, h as u32, out).unwrap_or_default()
}

/// Alpha-blends an RGBA overlay of the same size over `img`.
fn blend_over(img: &mut RgbImage, overlay: &image::RgbaImage) {
    for (dst, src) in img.pixels_mut().zip(overlay.pixels()) {
        let a = u32::from(src.0[3]);
        if a == 0 {
            continue;
        }
        for c in 0..3 {
            let mixed = (u32::from(dst.0[c]) * (255 - a) + u32::from(src.0[c]) * a + 127) / 255;
            dst.0[c] = mixed as u8;
        }
    }
}

fn draw_texts(cell: &mut RgbImage, template: &Template, ctx: &Context<'_>) {
    for item in template.texts() {
        let content = match &item.kind {
            TextKind::BoothName => ctx.booth_name.trim().to_string(),
            TextKind::Date { format } => match ctx.date_text {
                Some(text) => text.trim().to_string(),
                None => crate::date::format(ctx.time_ms, format),
            },
            TextKind::Literal(s) => s.clone(),
        };
        if content.is_empty() {
            continue;
        }
        // A long booth name is drawn smaller rather than cut off or run into the margin; it stays
        // centred on its line so the layout does not shift.
        let mut size = item.size as f32;
        let mut width = text::width(&content, size);
        if width > item.max_width as f32 {
            let smaller = (size * item.max_width as f32 / width).floor().max(1.0);
            width = text::width(&content, smaller);
            size = smaller;
        }
        let y = item.y as f32 + (item.size as f32 - size) / 2.0;
        let x = match item.align {
            Align::Left => item.x as f32,
            Align::Center => item.x as f32 - width / 2.0,
            Align::Right => item.x as f32 - width,
        };
        text::draw(cell, &content, x.max(0.0), y, size, Rgb(item.color.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cover_size_covers_both_axes() {
        assert_eq!(cover_size(4056, 3040, 520, 460), (614, 460));
        // 4056×3040 is a hair wider than 4:3, so the height decides and the width rounds up.
        assert_eq!(cover_size(4056, 3040, 544, 408), (545, 408));
        assert_eq!(cover_size(4056, 3040, 1080, 1380), (1842, 1380));
        assert_eq!(cover_size(3040, 4056, 535, 700), (535, 714));
    }

    #[test]
    fn picks_the_smallest_dct_scale_that_covers() {
        // 12 MP into the strip's 520×460 slot: 1/8 is 507×380, too small; 1/4 is 1014×760.
        assert_eq!(dct_eighths(4056, 3040, 614, 460), 2);
        // thermal-58's 360×270 slot fits 1/8.
        assert_eq!(dct_eighths(4056, 3040, 360, 270), 1);
        // 4x6-single's 1080×1380 slot needs 1842×1380: 1/2 is 2028×1520.
        assert_eq!(dct_eighths(4056, 3040, 1842, 1380), 4);
        assert_eq!(dct_eighths(4056, 3040, 3000, 2500), 8);
        assert_eq!(scaled(4056, 1), 507);
        assert_eq!(scaled(4057, 1), 508);
    }

    #[test]
    fn cover_crops_the_centre() {
        // Left third red, middle green, right third blue: a square slot keeps the green middle.
        let img = RgbImage::from_fn(300, 100, |x, _| match x / 100 {
            0 => Rgb([255, 0, 0]),
            1 => Rgb([0, 255, 0]),
            _ => Rgb([0, 0, 255]),
        });
        let out = cover(&img, 50, 50);
        assert_eq!(out.dimensions(), (50, 50));
        assert!(out.pixels().all(|p| p.0[1] > 200 && p.0[0] < 40 && p.0[2] < 40));
        let same = cover(&img, 300, 100);
        assert_eq!(same, img);
    }

    #[test]
    fn resample_matches_image_catmull_rom() {
        // A smooth but busy image: the fixed-point resampler must agree with image's f32
        // Catmull-Rom to within rounding, shrinking and enlarging.
        let img = RgbImage::from_fn(403, 301, |x, y| {
            let (fx, fy) = (x as f32 / 20.0, y as f32 / 15.0);
            Rgb([
                (128.0 + 100.0 * fx.sin()) as u8,
                (128.0 + 100.0 * (fx + fy).cos()) as u8,
                (x * 255 / 403) as u8,
            ])
        });
        for (w, h) in [(250, 187), (160, 120), (600, 448), (403, 301)] {
            let ours = resample(&img, (0.0, 0.0, 403.0, 301.0), w, h);
            let theirs = imageops::resize(&img, w, h, image::imageops::FilterType::CatmullRom);
            let diffs: Vec<i32> = ours
                .as_raw()
                .iter()
                .zip(theirs.as_raw())
                .map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs())
                .collect();
            let mean = diffs.iter().sum::<i32>() as f64 / diffs.len() as f64;
            let max = diffs.iter().copied().max().unwrap_or(0);
            assert!(mean < 0.2 && max <= 2, "{w}×{h}: mean {mean:.2}, max {max}");
        }
        // Flat stays exactly flat.
        let flat = RgbImage::from_pixel(333, 222, Rgb([255, 7, 128]));
        let out = resample(&flat, (10.5, 3.25, 300.0, 200.0), 97, 61);
        assert!(out.pixels().all(|p| p.0 == [255, 7, 128]));
    }

    #[test]
    fn blends_a_frame_by_alpha() {
        let mut img = RgbImage::from_pixel(2, 1, Rgb([200, 100, 0]));
        let frame = image::RgbaImage::from_raw(2, 1, vec![0, 0, 0, 0, 0, 0, 255, 128]).unwrap();
        blend_over(&mut img, &frame);
        assert_eq!(img.get_pixel(0, 0).0, [200, 100, 0]);
        assert_eq!(img.get_pixel(1, 0).0, [100, 50, 128]);
    }
}
