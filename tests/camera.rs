//! The camera backends against fake `rpicam-still`, `libcamera-still` and `gphoto2` scripts
//! (tests/fixtures/camera/). Each test hands its backend an explicit PATH holding only the fixture
//! folders it wants, plus variables steering the fake, through `ToolEnv`: the test process's own
//! environment is never changed, so the tests can run in parallel.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use photoboothd::config::{self, CameraBackend, Config};
use photoboothd::hw::camera::{
    self, Camera, CameraError, CameraErrorKind, Gphoto2Camera, RpicamCamera, SimCamera, ToolEnv,
};
use tempfile::TempDir;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/camera")
}

/// One fake run: its temp dir (argv log, counter, photos) and a marker unique to the test.
struct Fake {
    dir: TempDir,
    marker: String,
}

impl Fake {
    fn new(test: &str) -> Fake {
        Fake {
            dir: tempfile::tempdir().unwrap(),
            marker: format!("{test}-{}", std::process::id()),
        }
    }

    /// PATH = the given fixture folders only (see fake-camera.sh for why that is enough).
    fn env(&self, mode: &str, bins: &[&str]) -> ToolEnv {
        let path = std::env::join_paths(bins.iter().map(|b| fixtures().join(b))).unwrap();
        ToolEnv::with_path(path)
            .var("FAKE_MODE", mode)
            .var("FAKE_DIR", self.dir.path())
            .var("FAKE_MARKER", &self.marker)
    }

    fn dest(&self) -> PathBuf {
        self.dir.path().join("photos/shot-1.jpg")
    }

    /// The arguments of the fake's last run, the tool name first.
    fn argv(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.path().join("argv.txt")).expect("the fake did not run");
        text.lines().map(str::to_string).collect()
    }

    /// How often the fake ran.
    fn runs(&self) -> u32 {
        std::fs::read_to_string(self.dir.path().join("count")).map_or(0, |s| s.trim().parse().unwrap())
    }

    /// Whether any process of the fake is still alive: the helpers carry the marker in their
    /// argv[0], the script itself has the temp dir in its arguments (the output path). Killed
    /// orphans are reaped by init asynchronously, so this polls for a moment; a zombie has an empty
    /// command line and no longer matches `pgrep -f`.
    fn leftovers(&self) -> Option<String> {
        let patterns = [self.marker.clone(), self.dir.path().to_string_lossy().into_owned()];
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let mut alive = String::new();
            for pattern in &patterns {
                let out = Command::new("pgrep")
                    .args(["-a", "-f", pattern])
                    .output()
                    .expect("pgrep");
                alive.push_str(&String::from_utf8_lossy(&out.stdout));
            }
            if alive.is_empty() {
                return None;
            }
            if Instant::now() > deadline {
                return Some(alive);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Captures with `cam`, which must fail with `kind`; the error.
    fn capture_fails(&self, cam: &dyn Camera, kind: CameraErrorKind) -> CameraError {
        let err = cam.capture(&self.dest(), 1).unwrap_err();
        assert_eq!(err.kind, kind, "{err}");
        err
    }

    /// A hung tool was killed at its timeout (long before this test's bound), children and all.
    fn assert_killed_in_time(&self, started: Instant) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
        assert_eq!(self.leftovers(), None, "processes survived the timeout");
    }

    /// The rpicam backend on the fake in `mode`, with the fixture folders `bins` on PATH.
    fn rpicam(&self, mode: &str, bins: &[&str], f: impl FnOnce(&mut config::Camera)) -> RpicamCamera {
        RpicamCamera::with_env(&cam_config(f), self.env(mode, bins))
    }

    /// No photo and no partial file left in the photo folder.
    fn assert_no_photo(&self) {
        let dir = self.dest().parent().unwrap().to_path_buf();
        let left: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "left in {}: {left:?}", dir.display());
    }
}

fn cam_config(f: impl FnOnce(&mut config::Camera)) -> config::Camera {
    let mut c = config::Camera {
        width: 2028,
        height: 1520,
        timeout_s: 10,
        ..config::Config::built_in().unwrap().camera
    };
    f(&mut c);
    c
}

fn value_after<'a>(argv: &'a [String], flag: &str) -> Option<&'a str> {
    argv.iter()
        .position(|a| a == flag)
        .and_then(|i| argv.get(i + 1))
        .map(String::as_str)
}

fn assert_is_the_fixture_photo(path: &Path) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!((img.width(), img.height()), (16, 12));
}

// ---- rpicam ----

#[test]
fn rpicam_writes_the_photo_with_the_expected_arguments() {
    let fake = Fake::new("rpicam-ok");
    let c = cam_config(|c| c.extra_args = vec!["--shutter".into(), "10000".into(), "--awb".into(), "daylight".into()]);
    let cam = RpicamCamera::with_env(&c, fake.env("ok", &["rpicam"]));
    assert_eq!(cam.backend(), "rpicam");
    cam.capture(&fake.dest(), 1).unwrap();
    assert_is_the_fixture_photo(&fake.dest());

    let argv = fake.argv();
    assert_eq!(argv[0], "rpicam-still");
    assert!(argv.contains(&"-n".to_string()), "{argv:?}");
    assert_eq!(value_after(&argv, "-t"), Some("1"), "{argv:?}");
    assert_eq!(value_after(&argv, "--width"), Some("2028"), "{argv:?}");
    assert_eq!(value_after(&argv, "--height"), Some("1520"), "{argv:?}");
    assert_eq!(value_after(&argv, "-e"), Some("jpg"), "{argv:?}");
    assert!(!argv.contains(&"--immediate".to_string()), "{argv:?}");
    // The tool writes next to the destination; the backend renames after checking the file.
    let out = PathBuf::from(value_after(&argv, "-o").unwrap());
    assert_eq!(out.parent(), fake.dest().parent());
    assert!(!out.exists(), "the partial file was not renamed");
    assert_eq!(
        argv[argv.len() - 4..],
        ["--shutter", "10000", "--awb", "daylight"],
        "extra_args go last"
    );
}

#[test]
fn rpicam_passes_immediate_only_when_configured() {
    let fake = Fake::new("rpicam-immediate");
    let cam = fake.rpicam("ok", &["rpicam"], |c| c.immediate = true);
    cam.capture(&fake.dest(), 2).unwrap();
    assert!(fake.argv().contains(&"--immediate".to_string()), "{:?}", fake.argv());
}

#[test]
fn rpicam_falls_back_to_libcamera_still() {
    let fake = Fake::new("rpicam-fallback");
    let cam = fake.rpicam("ok", &["libcamera"], |_| {});
    cam.capture(&fake.dest(), 1).unwrap();
    assert_eq!(fake.argv()[0], "libcamera-still");
    assert_is_the_fixture_photo(&fake.dest());
}

#[test]
fn rpicam_still_is_preferred_when_both_are_installed() {
    let fake = Fake::new("rpicam-both");
    // libcamera-still comes first on PATH, but the current name wins wherever it is.
    let cam = fake.rpicam("ok", &["libcamera", "rpicam"], |_| {});
    cam.capture(&fake.dest(), 1).unwrap();
    assert_eq!(fake.argv()[0], "rpicam-still");
}

#[test]
fn rpicam_missing_tool_is_not_found_naming_both() {
    let fake = Fake::new("rpicam-missing");
    let err = fake.capture_fails(&fake.rpicam("ok", &["gphoto2"], |_| {}), CameraErrorKind::NotFound);
    assert!(
        err.message.contains("rpicam-still") && err.message.contains("libcamera-still"),
        "{err}"
    );
    assert_eq!(fake.runs(), 0);
}

/// No camera, output that is not a JPEG, success without a file: each fails with its kind, says
/// why, and leaves no photo behind.
#[test]
fn rpicam_failures_have_their_kind_and_leave_no_photo() {
    for (mode, kind, needle) in [
        ("nocamera", CameraErrorKind::NotFound, "no cameras available"),
        ("notjpeg", CameraErrorKind::Failed, "not a JPEG"),
        ("nofile", CameraErrorKind::Failed, "wrote no file"),
    ] {
        let fake = Fake::new(&format!("rpicam-{mode}"));
        let err = fake.capture_fails(&fake.rpicam(mode, &["rpicam"], |_| {}), kind);
        assert!(err.message.contains(needle), "{mode}: {err}");
        fake.assert_no_photo();
    }
}

#[test]
fn rpicam_hang_is_killed_at_the_timeout_with_its_children() {
    let fake = Fake::new("rpicam-hang");
    let cam = fake.rpicam("hang", &["rpicam"], |c| c.timeout_s = 1);
    let started = Instant::now();
    fake.capture_fails(&cam, CameraErrorKind::Timeout);
    fake.assert_killed_in_time(started);
    fake.assert_no_photo();
}

#[test]
fn a_process_left_behind_after_success_is_killed() {
    let fake = Fake::new("rpicam-stray");
    let cam = fake.rpicam("stray", &["rpicam"], |_| {});
    let started = Instant::now();
    cam.capture(&fake.dest(), 1).unwrap();
    fake.assert_killed_in_time(started);
    assert_is_the_fixture_photo(&fake.dest());
}

// ---- gphoto2 ----

fn gphoto2(fake: &Fake, mode: &str, f: impl FnOnce(&mut config::Camera)) -> Gphoto2Camera {
    // A millisecond backoff keeps the retry tests fast; the doubling is the same.
    Gphoto2Camera::with_env(&cam_config(f), fake.env(mode, &["gphoto2"])).with_backoff(Duration::from_millis(1))
}

#[test]
fn gphoto2_writes_the_photo_with_the_expected_arguments() {
    let fake = Fake::new("gphoto2-ok");
    let cam = gphoto2(&fake, "ok", |c| {
        c.extra_args = vec!["--set-config".into(), "capturetarget=1".into()]
    });
    assert_eq!(cam.backend(), "gphoto2");
    cam.capture(&fake.dest(), 1).unwrap();
    assert_is_the_fixture_photo(&fake.dest());

    let argv = fake.argv();
    assert_eq!(argv[0], "gphoto2");
    // Config changes come before the capture: gphoto2 runs its actions in command-line order.
    assert_eq!(
        argv[1..4],
        ["--set-config", "capturetarget=1", "--capture-image-and-download"],
        "{argv:?}"
    );
    assert!(argv.contains(&"--force-overwrite".to_string()), "{argv:?}");
    let out = PathBuf::from(value_after(&argv, "--filename").unwrap());
    assert_eq!(out.parent(), fake.dest().parent());
    assert!(!out.exists());
    assert_eq!(fake.runs(), 1);
}

#[test]
fn gphoto2_filename_with_percent_is_escaped() {
    let fake = Fake::new("gphoto2-percent");
    let cam = gphoto2(&fake, "ok", |_| {});
    let dest = fake.dir.path().join("100%/shot.jpg");
    cam.capture(&dest, 1).unwrap();
    assert_is_the_fixture_photo(&dest);
    assert!(value_after(&fake.argv(), "--filename").unwrap().contains("/100%%/"));
}

#[test]
fn gphoto2_no_camera_is_reported_at_once_without_retries() {
    let fake = Fake::new("gphoto2-nocamera");
    let cam = gphoto2(&fake, "nocamera", |c| c.retries = 5);
    let started = Instant::now();
    let err = fake.capture_fails(&cam, CameraErrorKind::NotFound);
    assert!(err.message.contains("No camera found"), "{err}");
    assert_eq!(fake.runs(), 1, "a missing camera must not be retried");
    assert!(started.elapsed() < Duration::from_secs(10));
    fake.assert_no_photo();
}

/// Busy twice, or an I/O error once, then the photo: retried until it comes.
#[test]
fn gphoto2_busy_and_io_errors_are_retried_until_it_succeeds() {
    for (mode, retries, runs) in [("busy-then-ok", 2, 3), ("io-then-ok", 1, 2)] {
        let fake = Fake::new(&format!("gphoto2-{mode}"));
        let cam = gphoto2(&fake, mode, |c| c.retries = retries);
        cam.capture(&fake.dest(), 1).unwrap();
        assert_eq!(fake.runs(), runs, "{mode}");
        assert_is_the_fixture_photo(&fake.dest());
    }
}

#[test]
fn gphoto2_busy_for_ever_is_busy_after_all_attempts() {
    let fake = Fake::new("gphoto2-busy");
    let err = fake.capture_fails(&gphoto2(&fake, "busy", |c| c.retries = 2), CameraErrorKind::Busy);
    // `retries` counts the tries after the first.
    assert_eq!(fake.runs(), 3);
    assert!(
        err.message.contains("PTP Device Busy") && err.message.contains("after 3 attempts"),
        "{err}"
    );
    fake.assert_no_photo();
}

#[test]
fn gphoto2_zero_retries_means_one_attempt() {
    let fake = Fake::new("gphoto2-noretry");
    let cam = gphoto2(&fake, "busy", |c| c.retries = 0);
    assert_eq!(cam.capture(&fake.dest(), 1).unwrap_err().kind, CameraErrorKind::Busy);
    assert_eq!(fake.runs(), 1);
}

#[test]
fn gphoto2_hang_is_killed_and_not_retried() {
    let fake = Fake::new("gphoto2-hang");
    let cam = gphoto2(&fake, "hang", |c| {
        c.timeout_s = 1;
        c.retries = 2;
    });
    let started = Instant::now();
    fake.capture_fails(&cam, CameraErrorKind::Timeout);
    fake.assert_killed_in_time(started);
    assert_eq!(fake.runs(), 1);
    fake.assert_no_photo();
}

#[test]
fn gphoto2_download_that_is_not_a_jpeg_fails() {
    let fake = Fake::new("gphoto2-notjpeg");
    fake.capture_fails(&gphoto2(&fake, "notjpeg", |c| c.retries = 2), CameraErrorKind::Failed);
    assert_eq!(fake.runs(), 1);
    fake.assert_no_photo();
}

#[test]
fn gphoto2_missing_is_not_found() {
    let fake = Fake::new("gphoto2-missing");
    // PATH has the fake rpicam-still only.
    let cam = Gphoto2Camera::with_env(&cam_config(|_| {}), fake.env("ok", &["rpicam"]));
    let err = fake.capture_fails(&cam, CameraErrorKind::NotFound);
    assert!(err.message.contains("gphoto2"), "{err}");
}

// ---- sim ----

#[test]
fn sim_writes_a_jpeg_of_the_configured_size() {
    let dir = tempfile::tempdir().unwrap();
    let cam = SimCamera::new(&cam_config(|c| {
        c.width = 640;
        c.height = 480;
    }));
    assert_eq!(cam.backend(), "sim");
    for shot in 1..=2 {
        let dest = dir.path().join(format!("shot-{shot}.jpg"));
        cam.capture(&dest, shot).unwrap();
        let img = image::open(&dest).unwrap();
        assert_eq!((img.width(), img.height()), (640, 480));
    }
}

#[test]
fn from_config_builds_the_configured_backend() {
    let mut config = Config::built_in().unwrap();
    assert_eq!(config.camera.backend, CameraBackend::Sim);
    config.camera.width = 320;
    config.camera.height = 200;
    let cam = camera::from_config(&config);
    assert_eq!(cam.backend(), "sim");
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("a.jpg");
    cam.capture(&dest, 1).unwrap();
    let img = image::open(&dest).unwrap();
    assert_eq!((img.width(), img.height()), (320, 200));

    config.camera.backend = CameraBackend::Gphoto2;
    assert_eq!(camera::from_config(&config).backend(), "gphoto2");
    config.camera.backend = CameraBackend::Rpicam;
    assert_eq!(camera::from_config(&config).backend(), "rpicam");
}
