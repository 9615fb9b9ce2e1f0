//! Thermal raster speed: an 80 mm print (576 dots wide, 1600 rows) from RGB to `GS v 0` bands.
//!
//! `cargo bench --bench raster` prints the median of many runs. The page is a photo strip built from
//! `RASTER_BENCH_PHOTO` (any JPEG or PNG) when set, else a generated photo-like page. It is saved as
//! `target/raster-bench-page.png` so `scripts/bench/raster_pillow.py` times Pillow on the same pixels.
//! `RASTER_BENCH_ITERS` overrides the number of timed runs.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};
use photoboothd::hw::printer::raster;

const WIDTH: u32 = 576;
const HEIGHT: u32 = 1600;
const WARMUP: usize = 10;

fn main() {
    let iterations: usize = std::env::var("RASTER_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let (page, source) = match std::env::var_os("RASTER_BENCH_PHOTO") {
        Some(path) => {
            let photo = image::open(&path)
                .unwrap_or_else(|e| panic!("cannot read {path:?}: {e}"))
                .to_rgb8();
            (
                strip_from_photo(&photo),
                format!("photo strip from {}", PathBuf::from(path).display()),
            )
        }
        None => (
            synthetic_page(),
            "generated page (gradients, noise, discs, bars)".to_string(),
        ),
    };
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/raster-bench-page.png");
    if let Err(e) = page.save(&out) {
        eprintln!("cannot save {}: {e}", out.display());
    }
    println!("page: {WIDTH}x{HEIGHT}, {source}; saved as {}", out.display());
    println!("{iterations} timed runs after {WARMUP} warm-up runs; milliseconds per page\n");

    let bits = raster::dither(&raster::prepare(&page, WIDTH, true));
    let bands = raster::gs_v0_bands(&bits, raster::BAND_ROWS);
    let percent_black = |b: &raster::BitImage| b.count_black() as f64 * 100.0 / f64::from(WIDTH * HEIGHT);
    let plain = raster::dither_with(&raster::to_gray(&page), false);
    println!(
        "as printed: {:.1}% black, {} bands, {} bytes of GS v 0; plain dither without autocontrast: {:.1}% black",
        percent_black(&bits),
        bands.len(),
        bands.iter().map(Vec::len).sum::<usize>(),
        percent_black(&plain)
    );
    // The dots as the printer would lay them down, for a person to judge the dither.
    let dots = image::GrayImage::from_fn(WIDTH, HEIGHT, |x, y| {
        image::Luma([if bits.is_black(x, y) { 0 } else { 255 }])
    });
    let dots_path = out.with_file_name("raster-bench-dots.png");
    if dots.save(&dots_path).is_ok() {
        println!("dots as printed saved as {}", dots_path.display());
    }
    println!();

    report("gray + dither, plain scan (Pillow's work)", iterations, || {
        black_box(raster::dither_with(&raster::to_gray(black_box(&page)), false));
    });
    report("gray + dither, serpentine", iterations, || {
        black_box(raster::dither(&raster::to_gray(black_box(&page))));
    });
    report("full: gray + autocontrast + dither + GS v 0 bands", iterations, || {
        let bits = raster::dither(&raster::prepare(black_box(&page), WIDTH, true));
        black_box(raster::gs_v0_bands(&bits, raster::BAND_ROWS));
    });
}

fn report(label: &str, iterations: usize, mut run: impl FnMut()) {
    for _ in 0..WARMUP {
        run();
    }
    let mut times: Vec<Duration> = (0..iterations.max(1))
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed()
        })
        .collect();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p90 = times[(times.len() * 9 / 10).min(times.len() - 1)];
    println!(
        "{label:<52} median {:>7.3}  min {:>7.3}  p90 {:>7.3}",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(p90)
    );
}

/// Frames of the photo, scaled to the paper width, stacked with white gaps like a booth strip.
fn strip_from_photo(photo: &RgbImage) -> RgbImage {
    let frame_h = (u64::from(photo.height()) * u64::from(WIDTH) / u64::from(photo.width().max(1))).max(1) as u32;
    let frame = imageops::resize(photo, WIDTH, frame_h, FilterType::Triangle);
    let mut page = RgbImage::from_pixel(WIDTH, HEIGHT, Rgb([255, 255, 255]));
    let mut y = 16;
    while y < HEIGHT {
        imageops::replace(&mut page, &frame, 0, i64::from(y));
        y += frame_h + 16;
    }
    page
}

/// Smooth gradients (where dithering patterns show), sensor-like noise (what makes error diffusion
/// branchy), skin-toned discs and hard black bars like text.
fn synthetic_page() -> RgbImage {
    let mut state: u32 = 0x9E37_79B9;
    RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let noise = (state % 25) as i32 - 12;
        let (fx, fy) = (x as i32, y as i32);
        let disc = |cx: i32, cy: i32, r: i32| (fx - cx).pow(2) + (fy - cy).pow(2) < r * r;
        let base = if y % 400 < 24 && x % 90 < 60 {
            [10, 10, 10]
        } else if disc(288, 260, 150) || disc(150, 800, 110) || disc(420, 1300, 130) {
            [225, 175, 145]
        } else {
            [
                (x * 255 / WIDTH) as i32,
                (y * 255 / HEIGHT) as i32,
                255 - (x * 255 / WIDTH) as i32,
            ]
        };
        Rgb(base.map(|c| (c + noise).clamp(0, 255) as u8))
    })
}
