//! The `rpicam` camera: a Raspberry Pi camera module through `rpicam-still` (Bookworm), or
//! `libcamera-still` on Bullseye, where the tools had their old names. One process per shot: simple
//! and robust, at the cost of starting the camera each time (about a second on a Pi 4).
//!
//! The live view is `rpicam-vid --codec mjpeg -o -` (frames split from stdout without decoding).
//! The camera serves one process at a time ("Pipeline handler in use by another process"), so the
//! live hub stops it before each still and starts it again after; docs/live-view.md has the gap.

use std::ffi::OsString;
use std::path::Path;

use super::live::LiveControl;
use super::{accept_jpeg, prepare, remove_if_present, Camera, CameraError, CameraErrorKind, CliTool};
use crate::config;
use crate::hw::process::{Finished, ToolEnv};

/// Tried in this order on `PATH`.
const TOOLS: [&str; 2] = ["rpicam-still", "libcamera-still"];
/// The live view tools, in the same order.
const LIVE_TOOLS: [&str; 2] = ["rpicam-vid", "libcamera-vid"];
/// Live JPEG quality: a screen-sized mirror needs no more, and it keeps the encoder's CPU low.
const LIVE_QUALITY: u8 = 70;

/// JPEG quality: visually lossless for a print, about a third of the size of `-q 100`.
const QUALITY: u8 = 93;

pub struct RpicamCamera {
    tool: CliTool,
    width: u32,
    height: u32,
    immediate: bool,
    live_size: (u32, u32),
    live_fps: u32,
}

impl RpicamCamera {
    /// From the `[camera]` section; the tool is looked up on `env.path` and given `env`'s variables
    /// (the daemon's own, `ToolEnv::inherited`; tests use fakes).
    pub fn with_env(c: &config::Camera, env: ToolEnv) -> RpicamCamera {
        RpicamCamera {
            tool: CliTool::new(c, env),
            width: c.width,
            height: c.height,
            immediate: c.immediate,
            live_size: (c.live_width, c.live_height),
            live_fps: c.live_fps,
        }
    }

    /// The live view command line: endless (`-t 0`), MJPEG to stdout, flushed per frame (stdout is
    /// a pipe, so stdio would otherwise buffer it). `extra_args` are for stills and not passed.
    pub fn live_args(&self) -> Vec<OsString> {
        let (w, h) = self.live_size;
        [
            "-n".to_string(),
            "-t".into(),
            "0".into(),
            "--codec".into(),
            "mjpeg".into(),
            "--width".into(),
            w.to_string(),
            "--height".into(),
            h.to_string(),
            "--framerate".into(),
            self.live_fps.to_string(),
            "-q".into(),
            LIVE_QUALITY.to_string(),
            "--flush".into(),
            "-o".into(),
            "-".into(),
        ]
        .map(OsString::from)
        .to_vec()
    }

    fn find(&self, names: [&'static str; 2]) -> Result<(&'static str, std::path::PathBuf), CameraError> {
        names
            .iter()
            .find_map(|name| self.tool.find(name).map(|path| (*name, path)))
            .ok_or_else(|| {
                CameraError::new(
                    CameraErrorKind::NotFound,
                    format!(
                        "neither {} nor {} is on PATH; install rpicam-apps (apt install rpicam-apps)",
                        names[0], names[1]
                    ),
                )
            })
    }

    /// The command line after the program name, writing to `out`.
    pub fn args(&self, out: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            // No preview window: the kiosk browser owns the screen, and under a plain console there
            // is nothing to draw on anyway.
            "-n".into(),
            // Without a short -t the tool first runs a timed preview (5 s by default) before the
            // still: 5 s of shutter lag for nothing, since our countdown happens before the call.
            // With 1 ms it moves to the still capture as soon as the camera is running.
            "-t".into(),
            "1".into(),
        ];
        if self.immediate {
            // Skips the preview phase altogether for the lowest latency, which also leaves the
            // auto exposure and white balance no frames to settle: only right with fixed exposure,
            // gain and white balance in extra_args (rpicam-apps #524).
            args.push("--immediate".into());
        }
        args.extend(
            [
                "--width".to_string(),
                self.width.to_string(),
                "--height".to_string(),
                self.height.to_string(),
                "-q".to_string(),
                QUALITY.to_string(),
                "-e".to_string(),
                "jpg".to_string(),
            ]
            .map(OsString::from),
        );
        args.push("-o".into());
        args.push(out.into());
        // Last, so the operator can override anything above (rpicam-apps takes the last value).
        args.extend(self.tool.extra_args());
        args
    }
}

impl Camera for RpicamCamera {
    fn backend(&self) -> &'static str {
        "rpicam"
    }

    fn capture(&self, dest: &Path, _shot: u32) -> Result<(), CameraError> {
        let (tool, program) = self.find(TOOLS)?;
        let part = prepare(dest)?;
        let finished = match self.tool.run(&program, &self.args(&part)) {
            Ok(f) => f,
            Err(e) => {
                remove_if_present(&part);
                return Err(e.into());
            }
        };
        if !finished.status.success() {
            remove_if_present(&part);
            return Err(classify(tool, &finished));
        }
        accept_jpeg(tool, &part, dest)
    }

    fn live(&self, ctl: &LiveControl) -> Result<(), CameraError> {
        let (tool, program) = self.find(LIVE_TOOLS)?;
        let end = self.tool.stream(&program, &self.live_args(), ctl)?;
        match self.tool.ended_error(tool, end, |f| classify(tool, f)) {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}

/// Turns a failed run into an error kind from what the tool printed.
fn classify(tool: &str, f: &Finished) -> CameraError {
    let output = f.all_output().to_lowercase();
    let kind = if output.contains("no cameras available") {
        // "ERROR: *** no cameras available ***": ribbon cable loose, or camera not enabled.
        CameraErrorKind::NotFound
    } else if output.contains("device or resource busy")
        || output.contains("failed to acquire camera")
        || output.contains("in use by another process")
    {
        // Another process (a second daemon, a preview left running) holds the camera.
        CameraErrorKind::Busy
    } else {
        CameraErrorKind::Failed
    };
    let detail = f.last_line();
    let mut message = match kind {
        CameraErrorKind::NotFound => format!("{tool}: no camera detected (check the ribbon cable)"),
        CameraErrorKind::Busy => format!("{tool}: the camera is in use by another process"),
        _ => format!("{tool} failed ({})", f.describe_status()),
    };
    if !detail.is_empty() {
        message.push_str(&format!(": {detail}"));
    }
    CameraError::new(kind, message)
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    use super::*;

    fn camera(immediate: bool, extra: &[&str]) -> RpicamCamera {
        let c = config::Camera {
            width: 2028,
            height: 1520,
            immediate,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            ..config::Config::built_in().unwrap().camera
        };
        RpicamCamera::with_env(&c, ToolEnv::with_path("/nonexistent"))
    }

    #[test]
    fn args_in_order_with_extra_args_last() {
        let args = camera(false, &["--shutter", "8000"]).args(Path::new("/tmp/x.jpg"));
        let args: Vec<_> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "-n",
                "-t",
                "1",
                "--width",
                "2028",
                "--height",
                "1520",
                "-q",
                "93",
                "-e",
                "jpg",
                "-o",
                "/tmp/x.jpg",
                "--shutter",
                "8000"
            ]
        );
        let args = camera(true, &[]).args(Path::new("/tmp/x.jpg"));
        assert_eq!(args[3], "--immediate");
    }

    #[test]
    fn missing_tool_names_both() {
        let dir = tempfile::tempdir().unwrap();
        let err = camera(false, &[]).capture(&dir.path().join("a.jpg"), 1).unwrap_err();
        assert_eq!(err.kind, CameraErrorKind::NotFound);
        assert!(
            err.message.contains("rpicam-still") && err.message.contains("libcamera-still"),
            "{err}"
        );
    }

    #[test]
    fn classifies_stderr() {
        let f = |stderr: &str| Finished {
            status: ExitStatus::from_raw(255 << 8),
            stdout: String::new(),
            stderr: stderr.to_string(),
        };
        let kind = |s: &str| classify("rpicam-still", &f(s)).kind;
        assert_eq!(
            kind("[0:01:02] INFO\nERROR: *** no cameras available ***\n"),
            CameraErrorKind::NotFound
        );
        assert_eq!(
            kind("ERROR: *** failed to acquire camera /base/soc/i2c0mux/i2c@1/imx477@1a ***"),
            CameraErrorKind::Busy
        );
        let err = classify("rpicam-still", &f("ERROR: *** something odd ***"));
        assert_eq!(err.kind, CameraErrorKind::Failed);
        assert!(
            err.message.contains("exit status 255") && err.message.contains("something odd"),
            "{err}"
        );
    }
}
