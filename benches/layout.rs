//! `cargo bench --bench layout`: how long composing each shipped layout takes from three 12 MP
//! camera JPEGs, the number that decides how long a guest waits between the last shot and the
//! printer starting.
//!
//! The photos are photo-like (gradients, shapes, sensor-like noise; quality 90) so entropy decoding
//! costs what it costs on real shots; flat colours would decode several times faster. They are
//! written to a directory that is printed and kept, so `scripts/bench/compose_pillow.py` can time
//! the same compose in Pillow on the very same files. One composed PNG per layout is written there
//! too, for looking at.
//!
//! Environment: `LAYOUT_BENCH_DIR` (default `$TMPDIR/photoboothd-layout-bench`),
//! `LAYOUT_BENCH_ITERS` (default 15, at least 10).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use image::codecs::jpeg::JpegEncoder;
use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};
use photoboothd::layout::compose::{compose, cover, Context};
use photoboothd::layout::template;

const CAMERA: (u32, u32) = (4056, 3040);
const BOOTH_NAME: &str = "Tashkent Photo Booth";
/// 2026-11-18, fixed so both benches draw the same text.
const TIME_MS: i64 = 1_795_000_000_000;

fn main() {
    let dir = std::env::var_os("LAYOUT_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("photoboothd-layout-bench"));
    let iters: usize = std::env::var("LAYOUT_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15)
        .max(10);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        std::process::exit(1);
    }

    let started = Instant::now();
    let photos: Vec<PathBuf> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3u32)
            .map(|i| {
                let dir = &dir;
                s.spawn(move || write_photo(dir, i))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("photo generator"))
            .collect()
    });
    let bytes: u64 = photos.iter().map(|p| std::fs::metadata(p).map_or(0, |m| m.len())).sum();
    println!(
        "photos: 3 × {}×{} JPEG q90, {:.1} MB total, in {} (generated in {:.1} s)",
        CAMERA.0,
        CAMERA.1,
        bytes as f64 / 1e6,
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    println!("iterations: {iters} per layout (after one warm-up), median and min in ms");
    println!(
        "threads: {} available",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!();

    let ctx = Context {
        booth_name: BOOTH_NAME,
        time_ms: TIME_MS,
        date_text: None,
    };
    println!("| layout | page | median ms | min ms |");
    println!("|---|---|---:|---:|");
    for name in template::names() {
        let t = template::load(name).expect("shipped template");
        let page = compose(&t, &photos, &ctx).expect("compose");
        let out = dir.join(format!("{name}.rust.png"));
        page.save(&out).expect("write composed page");
        let times = time(iters, || {
            std::hint::black_box(compose(&t, &photos, &ctx).expect("compose"));
        });
        println!(
            "| {name} | {}×{} | {:.1} | {:.1} |",
            t.width(),
            t.height(),
            ms(median(&times)),
            ms(times[0])
        );
    }

    // What the compose time is made of: one photo decoded at each DCT scale, against image's own
    // (zune-jpeg) full-size decode, and the resample after it.
    println!();
    println!("| one 12 MP photo | output | median ms |");
    println!("|---|---|---:|");
    let bytes = std::fs::read(&photos[0]).expect("read photo");
    let times = time(iters, || {
        std::hint::black_box(image::load_from_memory(&bytes).expect("decode"));
    });
    println!(
        "| image 0.25 (zune-jpeg) full decode | {}×{} | {:.1} |",
        CAMERA.0,
        CAMERA.1,
        ms(median(&times))
    );
    for eighths in [8u32, 4, 2, 1] {
        let (w, h) = (CAMERA.0 * eighths / 8, CAMERA.1 * eighths / 8);
        let times = time(iters, || {
            let mut d = jpeg_decoder::Decoder::new(bytes.as_slice());
            d.scale(w as u16, h as u16).expect("scale");
            std::hint::black_box(d.decode().expect("decode"));
        });
        println!("| jpeg-decoder at {eighths}/8 | {w}×{h} | {:.1} |", ms(median(&times)));
    }
    // The resample after decoding, for the biggest slot (4x6-single: a 1/2-scale decode, cropped
    // to 1190×1520, to 1080×1380): ours against image's generic resize with both filters.
    let mut d = jpeg_decoder::Decoder::new(bytes.as_slice());
    let (w, h) = d.scale(2028, 1520).expect("scale");
    let half = RgbImage::from_raw(u32::from(w), u32::from(h), d.decode().expect("decode")).expect("rgb");
    let times = time(iters, || {
        std::hint::black_box(cover(&half, 1080, 1380));
    });
    println!(
        "| compose::cover 2028×1520 → 1080×1380 (fixed-point Catmull-Rom) | 1080×1380 | {:.1} |",
        ms(median(&times))
    );
    let crop = imageops::crop_imm(&half, 419, 0, 1190, 1520).to_image();
    for (label, filter) in [
        ("Triangle", FilterType::Triangle),
        ("CatmullRom", FilterType::CatmullRom),
    ] {
        let times = time(iters, || {
            std::hint::black_box(imageops::resize(&crop, 1080, 1380, filter));
        });
        println!(
            "| image::imageops::resize 1190×1520 → 1080×1380, {label} | 1080×1380 | {:.1} |",
            ms(median(&times))
        );
    }
}

/// Runs `f` once to warm up, then `iters` times; returns the sorted durations.
fn time(iters: usize, mut f: impl FnMut()) -> Vec<Duration> {
    f();
    let mut times: Vec<Duration> = (0..iters)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn median(sorted: &[Duration]) -> Duration {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A deterministic photo-like frame: a lit gradient, a few soft shapes ("people"), fine texture
/// and sensor noise, so the entropy coder has real work (≈ 1–2 bits per pixel, like a camera).
fn write_photo(dir: &Path, index: u32) -> PathBuf {
    let (w, h) = CAMERA;
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64 ^ (u64::from(index) + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // Circles: (cx, cy, r, colour).
    let shapes: Vec<(f32, f32, f32, [f32; 3])> = (0..7)
        .map(|_| {
            let r = rand();
            (
                (r % u64::from(w)) as f32,
                ((r >> 16) % u64::from(h)) as f32,
                250.0 + ((r >> 32) % 500) as f32,
                [
                    ((r >> 40) % 256) as f32,
                    ((r >> 48) % 256) as f32,
                    ((r >> 56) % 256) as f32,
                ],
            )
        })
        .collect();
    let tint = [index == 0, index == 1, index == 2].map(|on| if on { 40.0 } else { 0.0 });
    let mut img = RgbImage::new(w, h);
    for (x, y, px) in img.enumerate_pixels_mut() {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let mut c = [
            60.0 + 120.0 * fx + tint[0],
            50.0 + 100.0 * fy + tint[1],
            90.0 + 80.0 * (1.0 - fx) * fy + tint[2],
        ];
        for &(cx, cy, r, col) in &shapes {
            let d2 = (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2);
            if d2 < r * r {
                // Shaded disc: brighter towards its centre.
                let k = 1.0 - (d2 / (r * r)) * 0.5;
                c = col.map(|v| v * k);
            }
        }
        // Fabric-like texture plus per-pixel noise.
        let texture = ((x / 3 + y / 5) % 7) as f32 * 2.0;
        let n = rand();
        for (i, v) in c.iter_mut().enumerate() {
            let noise = ((n >> (i * 8)) & 0x0F) as f32 - 8.0;
            *v += texture + noise;
        }
        *px = Rgb(c.map(|v| v.clamp(0.0, 255.0) as u8));
    }
    let path = dir.join(format!("photo-{}.jpg", index + 1));
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .expect("encode photo");
    std::fs::write(&path, out).expect("write photo");
    path
}
