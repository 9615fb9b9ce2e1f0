//! Live view plumbing shared by the backends: the control a producer thread runs under (frames go
//! out through it, and another thread can stop it), and running a streaming tool whose stdout is
//! MJPEG (`rpicam-vid`, `gphoto2 --capture-movie`), frames split without decoding.

use std::ffi::OsString;
use std::io::Read;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::mjpeg::Splitter;
use super::{CameraError, CameraErrorKind};
use crate::hw::process::{self, Finished, ToolEnv};

/// How long a tool asked to stop (SIGINT, which rpicam-vid and gphoto2 handle by closing the
/// camera cleanly) may take before its process group is killed.
const STOP_GRACE: Duration = Duration::from_millis(1500);
/// How often the producer looks at the stop flag and the stall clock while no frame comes.
const TICK: Duration = Duration::from_millis(100);

type Sink = Box<dyn Fn(Bytes) + Send + Sync>;

/// What a live view producer runs under: `publish` hands a frame out, `stop` (from any thread)
/// ends the run, also interrupting the tool it is running.
pub struct LiveControl {
    stopped: Mutex<bool>,
    wake: Condvar,
    /// The running tool's process group, while it is not reaped (so the id cannot be reused).
    group: Mutex<Option<u32>>,
    sink: Sink,
}

impl LiveControl {
    pub fn new(sink: impl Fn(Bytes) + Send + Sync + 'static) -> LiveControl {
        LiveControl {
            stopped: Mutex::new(false),
            wake: Condvar::new(),
            group: Mutex::new(None),
            sink: Box::new(sink),
        }
    }

    /// One whole JPEG frame.
    pub fn publish(&self, frame: Bytes) {
        (self.sink)(frame);
    }

    pub fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends the run: sets the flag, wakes a waiting producer, asks the running tool to stop.
    pub fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.wake.notify_all();
        if let Some(pgid) = *self.group.lock().unwrap_or_else(|p| p.into_inner()) {
            process::signal_group(pgid, libc::SIGINT);
        }
    }

    /// Sleeps up to `d`; true when the run was stopped (at once, not at the end of `d`).
    pub fn wait(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut stopped = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
        while !*stopped {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            stopped = match self.wake.wait_timeout(stopped, deadline - now) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }

    /// Registers the tool's group; false if the run was stopped meanwhile (the caller kills it).
    fn attach(&self, pgid: u32) -> bool {
        let mut group = self.group.lock().unwrap_or_else(|p| p.into_inner());
        if self.is_stopped() {
            return false;
        }
        *group = Some(pgid);
        true
    }

    fn detach(&self) {
        *self.group.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// How a streaming tool's run ended.
pub enum StreamEnd {
    /// `stop()` was called.
    Stopped,
    /// No frame for `stall`: the group was killed.
    Stalled { frames: u64 },
    /// The tool exited by itself (crashed, camera gone, busy at start).
    Exited { frames: u64, finished: Finished },
}

/// Runs `program args…` and publishes every JPEG frame of its stdout until it ends or `ctl` stops.
pub fn run_stream(
    program: &Path,
    args: &[OsString],
    env: &ToolEnv,
    stall: Duration,
    ctl: &LiveControl,
) -> Result<StreamEnd, CameraError> {
    let (child, stdout) = process::spawn(program, args, env)?;
    let pgid = child.pgid();
    if !ctl.attach(pgid) {
        process::signal_group(pgid, libc::SIGKILL);
    }
    // A bounded hand-over: a consumer that falls behind loses frames, never memory.
    let (tx, rx) = mpsc::sync_channel::<Bytes>(2);
    let reader = thread::Builder::new()
        .name("live-reader".into())
        .spawn(move || read_frames(stdout, &tx));
    let reader = match reader {
        Ok(r) => Some(r),
        Err(e) => {
            ctl.detach();
            process::signal_group(pgid, libc::SIGKILL);
            let _ = child.finish(Duration::ZERO);
            return Err(CameraError::new(
                CameraErrorKind::Failed,
                format!("cannot start a live view reader thread: {e}"),
            ));
        }
    };
    let (mut frames, mut last, mut stop_seen, mut stalled) = (0u64, Instant::now(), None::<Instant>, false);
    loop {
        match rx.recv_timeout(TICK) {
            Ok(frame) => {
                frames += 1;
                last = Instant::now();
                if !ctl.is_stopped() {
                    ctl.publish(frame);
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if ctl.is_stopped() {
                    if stop_seen.get_or_insert_with(Instant::now).elapsed() > STOP_GRACE {
                        process::signal_group(pgid, libc::SIGKILL);
                    }
                } else if !stalled && last.elapsed() > stall {
                    stalled = true;
                    process::signal_group(pgid, libc::SIGKILL);
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    ctl.detach();
    let finished = child.finish(STOP_GRACE);
    if let Some(reader) = reader {
        let _ = reader.join();
    }
    Ok(if ctl.is_stopped() {
        StreamEnd::Stopped
    } else if stalled {
        StreamEnd::Stalled { frames }
    } else {
        StreamEnd::Exited { frames, finished }
    })
}

fn read_frames(mut stdout: impl Read, tx: &mpsc::SyncSender<Bytes>) {
    let mut splitter = Splitter::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stdout.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => splitter.push(&buf[..n], |frame| {
                // Full: the producer is behind; this frame is skipped (the next one is newer).
                let _ = tx.try_send(Bytes::from(frame));
            }),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    if splitter.dropped > 0 {
        tracing::debug!(dropped = splitter.dropped, "live view: broken frames skipped");
    }
}

/// The error for a run that ended without being asked to, from what the tool printed (`classify`
/// is the backend's own reading of its messages).
pub fn ended_error(
    tool: &str,
    end: StreamEnd,
    stall: Duration,
    classify: impl Fn(&Finished) -> CameraError,
) -> Option<CameraError> {
    match end {
        StreamEnd::Stopped => None,
        StreamEnd::Stalled { frames } => Some(CameraError::new(
            CameraErrorKind::Timeout,
            format!(
                "{tool}: no live frame for {} s (after {frames} frames); killed",
                stall.as_secs_f32()
            ),
        )),
        StreamEnd::Exited { frames, finished } => {
            let mut e = classify(&finished);
            e.message = format!("{} (live view, after {frames} frames)", e.message);
            Some(e)
        }
    }
}
