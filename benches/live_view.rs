//! Live view costs (issue 13), printed as Markdown for BENCHMARKS.md:
//!
//! 1. The daemon's CPU per viewer while it relays pre-encoded frames at 30 frames/s: the real
//!    daemon (sim camera, 960×540 frames, `live_idle` so the producer runs with no viewer at all),
//!    its CPU time from /proc over a window with 0, 1, 3 and 6 viewers reading
//!    `/api/camera/live`. Anchor: the same daemon with 0 viewers (the producer alone), same run.
//! 2. The gap between the last live frame and the still on disk, with the fake `rpicam-vid` and
//!    `rpicam-still` of tests/fixtures/camera (no camera here: this is the daemon's part of the
//!    gap, stopping a tool and starting another). Anchor: the same still with no live view.
//!
//! `cargo bench --bench live_view` (WINDOW_S=10 and ROUNDS=20 by default).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::live;
use photoboothd::booth::live::{LiveHub, PausingCamera};
use photoboothd::config;
use photoboothd::daemon::RuntimeInfo;
use photoboothd::hw::camera::{Camera, RpicamCamera, ToolEnv};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        f.get(11).and_then(|s| s.parse().ok()).unwrap_or(0) + f.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    ticks as f64 / 100.0
}

/// All CPU time the machine spent, in seconds (to say how busy it was meanwhile).
fn machine_busy_seconds() -> f64 {
    let cpu = common::machine_cpu_ticks();
    let idle = cpu.get(3).copied().unwrap_or(0) + cpu.get(4).copied().unwrap_or(0);
    (cpu.iter().sum::<u64>() - idle) as f64 / 100.0
}

struct Daemon {
    child: Child,
    _dir: tempfile::TempDir,
    kiosk: std::net::SocketAddr,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_daemon() -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("photobooth.toml");
    std::fs::write(
        &config,
        format!(
            "[booth]\ndata_dir = \"{}\"\n[http]\nkiosk_listen = \"127.0.0.1:0\"\nwebhook_listen = \"127.0.0.1:0\"\n\
             [payme]\nkey = \"bench\"\n[printer]\nbackend = \"file\"\n[camera]\nbackend = \"sim\"\nlive_idle = true\nlive_width = 960\nlive_height = 540\nlive_fps = 30\n",
            data.display()
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_photoboothd"))
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run photoboothd");
    // In the struct at once, so its Drop kills and reaps the daemon whatever happens next.
    let mut d = Daemon {
        child,
        _dir: dir,
        kiosk: ([127, 0, 0, 1], 0).into(),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(info) = RuntimeInfo::read(&data).filter(|i| i.pid == d.child.id()) {
            d.kiosk = info.kiosk;
            return d;
        }
        assert!(Instant::now() < deadline, "the daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn cpu_per_viewer(window: Duration) {
    let d = start_daemon();
    let pid = d.child.id();
    // The loop is encoded on its first pass: watch three passes before measuring anything.
    let mut warm = live::LiveReader::connect(d.kiosk).await.expect("a viewer");
    for _ in 0..90 {
        warm.next_frame().await.expect("a frame");
    }
    drop(warm);
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!("### Daemon CPU while relaying 960×540 frames at 30 frames/s\n");
    println!("| viewers | daemon CPU (% of one core) | frames/s per viewer | KiB/s per viewer | other processes (% of one core) | ratio to the anchor |");
    println!("|---|---|---|---|---|---|");
    let mut anchor = None;
    for viewers in [0usize, 1, 3, 6] {
        let mut tasks = Vec::new();
        let stop = Instant::now() + window + Duration::from_secs(1);
        for _ in 0..viewers {
            let mut r = live::LiveReader::connect(d.kiosk).await.expect("a viewer");
            tasks.push(tokio::spawn(async move {
                let (mut frames, mut bytes) = (0u64, 0u64);
                let started = Instant::now() + Duration::from_secs(1);
                while Instant::now() < stop {
                    let Some(f) = r.next_frame().await else { break };
                    if Instant::now() >= started {
                        frames += 1;
                        bytes += f.len() as u64;
                    }
                }
                (frames, bytes)
            }));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (cpu0, busy0, t0) = (cpu_seconds(pid), machine_busy_seconds(), Instant::now());
        let me0 = cpu_seconds(std::process::id());
        tokio::time::sleep(window).await;
        let secs = t0.elapsed().as_secs_f64();
        let daemon = (cpu_seconds(pid) - cpu0) / secs * 100.0;
        let me = (cpu_seconds(std::process::id()) - me0) / secs * 100.0;
        let others = ((machine_busy_seconds() - busy0) / secs * 100.0 - daemon - me).max(0.0);
        let (mut frames, mut bytes) = (0u64, 0u64);
        for t in tasks {
            let (f, b) = t.await.unwrap();
            frames += f;
            bytes += b;
        }
        let per = |x: u64| {
            if viewers == 0 {
                0.0
            } else {
                x as f64 / viewers as f64 / window.as_secs_f64()
            }
        };
        let anchor_cpu = *anchor.get_or_insert(daemon);
        println!(
            "| {viewers} | {daemon:.2} | {:.1} | {:.0} | {others:.0} | {:.2} |",
            per(frames),
            per(bytes) / 1024.0,
            daemon / anchor_cpu.max(0.01)
        );
    }
    println!();
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/camera")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn gap(rounds: usize) {
    let dir = tempfile::tempdir().unwrap();
    let env = ToolEnv::with_path(fixtures().join("rpicam"))
        .var("FAKE_DIR", dir.path())
        .var("FAKE_MARKER", "bench")
        .var("FAKE_LIVE_MODE", "ok");
    let c = config::Config::built_in().unwrap().camera;
    let inner: Arc<dyn Camera> = Arc::new(RpicamCamera::with_env(&c, env));
    let hub = LiveHub::new(inner.clone(), false);
    let camera = Arc::new(PausingCamera {
        inner: inner.clone(),
        hub: hub.clone(),
    });
    let (mut gaps, mut plain) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alone: the still with no live view.
        let dest = dir.path().join(format!("plain-{round}.jpg"));
        let cam = inner.clone();
        let t = Instant::now();
        tokio::task::spawn_blocking(move || cam.capture(&dest, 1))
            .await
            .unwrap()
            .expect("a still");
        plain.push(t.elapsed().as_secs_f64() * 1000.0);

        // With the live view running: wait for frames, then the still.
        let mut viewer = hub.watch();
        for _ in 0..5 {
            viewer.next().await.expect("a frame");
        }
        let dest = dir.path().join(format!("live-{round}.jpg"));
        let cam = camera.clone();
        let done = tokio::task::spawn_blocking(move || {
            cam.capture(&dest, 1).expect("a still during the live view");
            Instant::now()
        })
        .await
        .unwrap();
        let last = hub.last_frame_at().expect("frames came");
        gaps.push(done.saturating_duration_since(last).as_secs_f64() * 1000.0);
        drop(viewer);
    }
    gaps.sort_by(f64::total_cmp);
    plain.sort_by(f64::total_cmp);
    println!("### Gap between the last live frame and the still (fake rpicam-vid / rpicam-still)\n");
    println!("| | median ms | p90 ms | max ms | ratio to the anchor (median) |");
    println!("|---|---|---|---|---|");
    let (gm, pm) = (percentile(&gaps, 0.5), percentile(&plain, 0.5));
    println!(
        "| last live frame → still on disk ({rounds} stills) | {gm:.1} | {:.1} | {:.1} | {:.2} |",
        percentile(&gaps, 0.9),
        gaps[gaps.len() - 1],
        gm / pm
    );
    println!(
        "| anchor: the same still, no live view | {pm:.1} | {:.1} | {:.1} | 1.00 |",
        percentile(&plain, 0.9),
        plain[plain.len() - 1]
    );
    println!();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let window = Duration::from_secs(env_num("WINDOW_S", 10));
    let rounds = env_num("ROUNDS", 20) as usize;
    cpu_per_viewer(window).await;
    gap(rounds).await;
}
