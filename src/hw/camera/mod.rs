//! The camera trait and the choice of backend from the configuration. One backend per file:
//! `sim` (a generated picture), `rpicam` (`rpicam-still`), `gphoto2` (a DSLR over USB); the two CLI
//! backends run their tool as one `CliTool` (its settings here) through `hw::process`, the one
//! child-process runner of `hw/`. Each also streams a live view (`live`, frames split by `mjpeg`),
//! which the live hub in `booth::live` runs on a thread of its own.

mod gphoto2;
pub mod live;
mod mjpeg;
mod rpicam;
mod sim;

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::config::{self, CameraBackend, Config};
pub use crate::hw::process::ToolEnv;
use crate::hw::process::{self, Finished, RunError};
pub use gphoto2::Gphoto2Camera;
pub use live::LiveControl;
use live::StreamEnd;
pub use rpicam::RpicamCamera;
pub use sim::SimCamera;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraErrorKind {
    /// The camera is there but busy (gphoto2 "PTP Device Busy"); retrying may help.
    Busy,
    /// USB or transfer trouble (gphoto2 "[-7] I/O problem"); retrying may help.
    Io,
    /// No camera detected, or the tool is not installed.
    NotFound,
    /// The capture process hung and was killed.
    Timeout,
    Failed,
}

#[derive(Debug, Clone)]
pub struct CameraError {
    pub kind: CameraErrorKind,
    pub message: String,
}

impl CameraError {
    pub fn new(kind: CameraErrorKind, message: impl Into<String>) -> CameraError {
        CameraError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for CameraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CameraError {}

impl From<crate::hw::process::RunError> for CameraError {
    fn from(e: crate::hw::process::RunError) -> CameraError {
        use crate::hw::process::RunErrorKind;
        let kind = match e.kind {
            RunErrorKind::NotFound => CameraErrorKind::NotFound,
            RunErrorKind::Timeout => CameraErrorKind::Timeout,
            RunErrorKind::Failed => CameraErrorKind::Failed,
        };
        CameraError::new(kind, e.message)
    }
}

/// A camera backend.
pub trait Camera: Send + Sync {
    /// The backend's name as the configuration spells it.
    fn backend(&self) -> &'static str;
    /// Takes photo number `shot` (1-based) and writes it as a JPEG to `dest`. Blocks, at most
    /// about the configured `timeout_s` per attempt; callers run it on a blocking thread.
    fn capture(&self, dest: &Path, shot: u32) -> Result<(), CameraError>;
    /// Streams the live view: every frame, a whole JPEG, goes to `ctl.publish` until `ctl.stop()`
    /// (then `Ok`) or the stream fails (`Err`; the hub decides about a restart). Blocks; the live
    /// hub runs it on a thread of its own.
    fn live(&self, ctl: &LiveControl) -> Result<(), CameraError>;
    /// Whether a still can be taken while the live view runs. The Pi camera and a USB camera serve
    /// one process at a time, so for them the live view is stopped for each still.
    fn live_during_capture(&self) -> bool {
        false
    }
}

/// The configured backend. The CLI backends look their tool up on this process's `PATH` at each
/// capture, so installing the tool later needs no restart; a missing tool is a `NotFound` capture
/// error, not a start-up failure (the booth can still show its status).
pub fn from_config(config: &Config) -> Box<dyn Camera> {
    let c = &config.camera;
    match c.backend {
        CameraBackend::Sim => Box::new(SimCamera::new(c)),
        CameraBackend::Rpicam => Box::new(RpicamCamera::with_env(c, ToolEnv::inherited())),
        CameraBackend::Gphoto2 => Box::new(Gphoto2Camera::with_env(c, ToolEnv::inherited())),
    }
}

/// What both CLI backends run their tool with, from `[camera]`: where it is looked up (and its
/// variables), how long it may take (a capture, or a live stream without a frame), and the
/// operator's `extra_args`.
struct CliTool {
    env: ToolEnv,
    timeout: Duration,
    extra_args: Vec<String>,
}

impl CliTool {
    fn new(c: &config::Camera, env: ToolEnv) -> CliTool {
        CliTool {
            env,
            timeout: Duration::from_secs(u64::from(c.timeout_s)),
            extra_args: c.extra_args.clone(),
        }
    }

    fn find(&self, name: &str) -> Option<PathBuf> {
        self.env.find(name)
    }

    fn extra_args(&self) -> impl Iterator<Item = OsString> + '_ {
        self.extra_args.iter().map(OsString::from)
    }

    /// One capture, killed at the timeout (`process::run`).
    fn run(&self, program: &Path, args: &[OsString]) -> Result<Finished, RunError> {
        process::run(program, args, &self.env, self.timeout)
    }

    /// The live view until it is stopped, or stalls for the timeout (`live::run_stream`).
    fn stream(&self, program: &Path, args: &[OsString], ctl: &LiveControl) -> Result<StreamEnd, CameraError> {
        live::run_stream(program, args, &self.env, self.timeout, ctl)
    }

    /// Why a stream ended, `None` when it was stopped (`live::ended_error`).
    fn ended_error(
        &self,
        tool: &str,
        end: StreamEnd,
        classify: impl Fn(&Finished) -> CameraError,
    ) -> Option<CameraError> {
        live::ended_error(tool, end, self.timeout, classify)
    }
}

/// Where a CLI tool writes before the result is checked and renamed to `dest`: next to it (same
/// file system, so the rename is atomic), hidden, and still ending in `.jpg` because the tools take
/// the name as given. A reader of `dest` thus never sees half a photo, and a failed capture can never
/// leave an old `dest` looking like a fresh one.
fn partial_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "capture".into());
    dest.with_file_name(format!(".{name}.part.jpg"))
}

/// Makes sure `dest`'s folder exists and no stale partial file is lying around.
fn prepare(dest: &Path) -> Result<PathBuf, CameraError> {
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            CameraError::new(
                CameraErrorKind::Failed,
                format!("cannot create {}: {e}", parent.display()),
            )
        })?;
    }
    let part = partial_path(dest);
    remove_if_present(&part);
    Ok(part)
}

fn remove_if_present(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "camera: cannot remove a partial capture");
        }
    }
}

/// Checks that the tool really wrote a JPEG to `part` and moves it to `dest`. An exit status of 0
/// is not enough: gphoto2 can "succeed" having downloaded a RAW file, and a full disk can leave an
/// empty file. On failure the partial file is removed.
fn accept_jpeg(tool: &str, part: &Path, dest: &Path) -> Result<(), CameraError> {
    let checked = check_jpeg(part)
        .map_err(|why| CameraError::new(CameraErrorKind::Failed, format!("{tool} reported success but {why}")));
    if let Err(e) = checked {
        remove_if_present(part);
        return Err(e);
    }
    std::fs::rename(part, dest).map_err(|e| {
        remove_if_present(part);
        CameraError::new(
            CameraErrorKind::Failed,
            format!("cannot move the photo to {}: {e}", dest.display()),
        )
    })
}

/// `Ok` when `path` starts with the JPEG start-of-image marker (FF D8 FF).
fn check_jpeg(path: &Path) -> Result<(), String> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("wrote no file".into()),
        Err(e) => return Err(format!("its file cannot be read: {e}")),
    };
    let mut magic = [0u8; 3];
    let mut read = 0;
    while read < magic.len() {
        match file.read(&mut magic[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) => return Err(format!("its file cannot be read: {e}")),
        }
    }
    match &magic[..read] {
        [0xFF, 0xD8, 0xFF] => Ok(()),
        [] => Err("wrote an empty file".into()),
        other => Err(format!(
            "the file is not a JPEG (starts with {}); is the camera set to RAW?",
            other.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_path_is_a_hidden_sibling() {
        assert_eq!(
            partial_path(Path::new("/a/b/shot-1.jpg")),
            Path::new("/a/b/.shot-1.jpg.part.jpg")
        );
    }

    #[test]
    fn jpeg_check_reads_the_magic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.jpg");
        assert_eq!(check_jpeg(&p).unwrap_err(), "wrote no file");
        std::fs::write(&p, b"").unwrap();
        assert_eq!(check_jpeg(&p).unwrap_err(), "wrote an empty file");
        std::fs::write(&p, b"II*\0raw").unwrap();
        assert!(check_jpeg(&p).unwrap_err().contains("49 49 2a"));
        std::fs::write(&p, [0xFF, 0xD8, 0xFF, 0xE0]).unwrap();
        assert!(check_jpeg(&p).is_ok());
    }

    #[test]
    fn accept_moves_a_jpeg_and_drops_anything_else() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("sub/photo.jpg");
        let part = prepare(&dest).unwrap();
        std::fs::write(&part, b"nope").unwrap();
        let err = accept_jpeg("tool", &part, &dest).unwrap_err();
        assert_eq!(err.kind, CameraErrorKind::Failed);
        assert!(!part.exists() && !dest.exists());
        std::fs::write(&part, [0xFF, 0xD8, 0xFF, 0xD9]).unwrap();
        accept_jpeg("tool", &part, &dest).unwrap();
        assert!(!part.exists() && dest.exists());
    }

    #[test]
    fn from_config_picks_the_backend() {
        let mut config = Config::built_in().unwrap();
        for (backend, name) in [
            (CameraBackend::Sim, "sim"),
            (CameraBackend::Rpicam, "rpicam"),
            (CameraBackend::Gphoto2, "gphoto2"),
        ] {
            config.camera.backend = backend;
            assert_eq!(from_config(&config).backend(), name);
        }
    }
}
