//! Session bench: how long the customer waits between the last capture and the review screen with
//! 12 MP shots, and the daemon's peak memory over whole sessions.
//!
//! The release daemon runs with the `rpicam` backend on a stand-in `rpicam-still` (a script first
//! on PATH) that copies a photo-like 4056×3040 JPEG (the Pi HQ camera's full frame) to `-o` and,
//! as its very last act, writes the time it finished. The bench polls `GET /api/session` every
//! millisecond until the stage is `review`: last capture → review is that instant minus the
//! script's. Each shot is decoded and fitted into its slots while the next countdown runs, and the
//! stand-in's JPEGs carry a 320×240 EXIF thumbnail as rpicam-still's do by default, so this wait is
//! the last shot's thumbnail into the preview, the assembly and the preview's JPEG; the full decode
//! of the last shot and the page's PNG follow while the review shows. `BENCH_NO_THUMBNAIL=1` makes
//! shots without one (a camera that embeds none): then the last shot's full decode is in the wait.
//!
//! ```text
//! cargo build --release
//! PHOTOBOOTHD_BIN=target/release/photoboothd cargo bench --bench session
//! BENCH_SESSIONS=10 BENCH_LAYOUT=4x6-grid PHOTOBOOTHD_BIN=... cargo bench --bench session
//! BENCH_NO_THUMBNAIL=1 PHOTOBOOTHD_BIN=... cargo bench --bench session
//! ```
//!
//! Prints per session the wait, then p50/max and the daemon's VmHWM (peak RSS) after all sessions.
//! Traffic goes only to the daemon on 127.0.0.1.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use image::codecs::jpeg::JpegEncoder;
use image::{ImageEncoder, RgbImage};
use photoboothd::client;
use serde_json::Value;

#[path = "../tests/common/mod.rs"]
mod common;
use common::{binary, knob, status_field, Process, TestConfig, START_LIMIT};

const CAMERA: (u32, u32) = (4056, 3040);

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let sessions = knob("--sessions", "BENCH_SESSIONS", 5).max(1) as usize;
    let layout = std::env::var("BENCH_LAYOUT").unwrap_or_else(|_| "strip-2x6".into());
    let dir = tempfile::tempdir().expect("temp dir");
    let photo = dir.path().join("camera.jpg");
    std::fs::write(&photo, photo_like_jpeg()).expect("write the camera photo");
    let bin_dir = dir.path().join("bin");
    std::fs::create_dir_all(&bin_dir).expect("bin dir");
    let stamp = dir.path().join("captured-at");
    let script = bin_dir.join("rpicam-still");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nout=\nwhile [ $# -gt 0 ]; do [ \"$1\" = -o ] && out=$2; shift; done\n\
             cp '{}' \"$out\" || exit 1\ndate +%s%N > '{}'\n",
            photo.display(),
            stamp.display()
        ),
    )
    .expect("write the stand-in rpicam-still");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");

    let data_dir = dir.path().join("data");
    let config = dir.path().join("photobooth.toml");
    let text = TestConfig {
        printer: format!("layout = \"{layout}\"\n"),
        tail: format!(
            "[camera]\nbackend = \"rpicam\"\nshots = 3\ncountdown_s = 1\nwidth = {}\nheight = {}\n\
             [session]\nreview_timeout_s = 60\n",
            CAMERA.0, CAMERA.1
        ),
        ..TestConfig::new(&data_dir)
    }
    .text();
    std::fs::write(&config, text).expect("write the config");
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut daemon = Process::spawn(
        &binary(),
        &config,
        &data_dir,
        &dir.path().join("daemon.log"),
        Some("warn"),
        &[("PATH".into(), path)],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let kiosk = daemon.wait_ready_blocking(START_LIMIT).kiosk;
    println!(
        "photoboothd {} (pid {}), layout {layout}, {sessions} sessions of 3 shots at {}×{}, countdown 1 s",
        binary().display(),
        daemon.pid(),
        CAMERA.0,
        CAMERA.1
    );
    println!("idle: VmRSS {} KiB", status_field(daemon.pid(), "VmRSS").unwrap_or(0));
    let mut waits = Vec::new();
    for n in 1..=sessions {
        let wait = runtime.block_on(one_session(kiosk, &stamp)).unwrap_or_else(|e| {
            panic!("session {n}: {e}\n{}", daemon.log_text());
        });
        println!("session {n}: last capture → review {:.1} ms", wait.as_secs_f64() * 1e3);
        waits.push(wait.as_secs_f64() * 1e3);
    }
    waits.sort_by(f64::total_cmp);
    println!(
        "last capture → review: p50 {:.1} ms, max {:.1} ms over {} sessions",
        common::pct(&waits, 50.0),
        waits[waits.len() - 1],
        waits.len()
    );
    println!(
        "after the sessions: VmRSS {} KiB, VmHWM (peak) {} KiB",
        status_field(daemon.pid(), "VmRSS").unwrap_or(0),
        status_field(daemon.pid(), "VmHWM").unwrap_or(0)
    );
    daemon.terminate();
}

/// One session from start to review; returns the time from the last capture's end to review.
async fn one_session(kiosk: SocketAddr, stamp: &Path) -> Result<Duration, String> {
    let _ = std::fs::remove_file(stamp);
    let view = post(kiosk, "/api/session/start").await?;
    if view["stage"] == "idle" || view["stage"] == "error" {
        return Err(format!("the session did not start: {view}"));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stage_seen = String::new();
    while Instant::now() < deadline {
        let view = get(kiosk, "/api/session").await?;
        let stage = view["stage"].as_str().unwrap_or("").to_string();
        if stage == "review" {
            let reviewed_ns = wall_ns();
            let captured_ns: u128 = std::fs::read_to_string(stamp)
                .map_err(|e| format!("the stand-in camera left no time stamp: {e}"))?
                .trim()
                .parse()
                .map_err(|e| format!("bad time stamp: {e}"))?;
            post(kiosk, "/api/session/cancel").await?;
            wait_idle(kiosk).await?;
            return Ok(Duration::from_nanos(reviewed_ns.saturating_sub(captured_ns) as u64));
        }
        if stage == "error" {
            return Err(format!("the session failed: {view}"));
        }
        stage_seen = stage;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Err(format!("no review within 60 s (stage {stage_seen})"))
}

async fn wait_idle(kiosk: SocketAddr) -> Result<(), String> {
    for _ in 0..2000 {
        if get(kiosk, "/api/session").await?["stage"] == "idle" {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err("the session did not end".into())
}

async fn get(kiosk: SocketAddr, path: &str) -> Result<Value, String> {
    let r = client::request(kiosk, "GET", path, &[], Vec::new())
        .await
        .map_err(|e| e.to_string())?;
    r.json().map_err(|e| e.to_string())
}

async fn post(kiosk: SocketAddr, path: &str) -> Result<Value, String> {
    let r = client::request(
        kiosk,
        "POST",
        path,
        &[("content-type", "application/json")],
        b"{}".to_vec(),
    )
    .await
    .map_err(|e| e.to_string())?;
    r.json().map_err(|e| e.to_string())
}

fn wall_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// A 12 MP JPEG that costs what a camera's does to decode: smooth gradients with fine noise (a flat
/// colour would compress to almost nothing and decode unrealistically fast). About 3 MB at q 90.
fn photo_like_jpeg() -> Vec<u8> {
    let (w, h) = CAMERA;
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let img = RgbImage::from_fn(w, h, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = (seed & 31) as u32;
        image::Rgb([
            ((x * 255 / w + n) % 256) as u8,
            ((y * 255 / h + n) % 256) as u8,
            (((x + y) * 128 / (w + h) + 64 + n) % 256) as u8,
        ])
    });
    let mut out = Vec::new();
    let mut encoder = JpegEncoder::new_with_quality(&mut out, 90);
    if std::env::var_os("BENCH_NO_THUMBNAIL").is_none() {
        // rpicam-still's default `--thumb 320:240:70`: the review preview is made from it.
        let thumb = image::imageops::thumbnail(&img, 320, 240);
        encoder
            .set_exif_metadata(common::jpeg::exif_with_thumbnail(&thumb, 1))
            .expect("EXIF");
    }
    encoder
        .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
        .expect("encode the photo");
    out
}
