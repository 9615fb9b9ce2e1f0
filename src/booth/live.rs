//! The live view hub: one camera producer shared by every viewer of `GET /api/camera/live`.
//!
//! - **Latest frame only**: frames go into a `watch` channel; a slow viewer skips to the newest
//!   frame, nothing queues per viewer.
//! - **On demand**: the producer runs while someone watches, while a session counts down (so the
//!   first frame is ready when the countdown screen asks), or always with `[camera] live_idle`.
//!   An idle booth otherwise spends nothing on the camera.
//! - **Paused for stills**: a camera that serves one process at a time (rpicam, gphoto2) has its
//!   live view stopped, and the tool reaped, before each still (`PausingCamera`), and started again
//!   after if still wanted.
//! - **Restarted after a crash** with a backoff, on the producer's own thread; a session never waits
//!   for the live view and never fails because of it: the kiosk falls back to a plain countdown.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use super::session::SessionView;
use crate::hw::camera::{Camera, CameraError, LiveControl};
use crate::store::sessions::Stage;

/// The first wait before restarting a live view that failed; doubled up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A run that delivered frames this long counts as healthy: the backoff starts over.
const HEALTHY_RUN: Duration = Duration::from_secs(10);
/// A frame older than this before a still means the live view was not running.
const LIVE_RECENT: Duration = Duration::from_secs(2);

/// One live frame, a whole JPEG; `seq` counts frames since the daemon started.
#[derive(Clone, Debug)]
pub struct Frame {
    pub seq: u64,
    pub jpeg: Bytes,
}

#[derive(Clone)]
pub struct LiveHub {
    inner: Arc<Inner>,
}

struct Inner {
    camera: Arc<dyn Camera>,
    frames: Arc<watch::Sender<Option<Frame>>>,
    seq: Arc<AtomicU64>,
    /// When the last frame came (for the gap before a still).
    last_frame: Arc<Mutex<Option<Instant>>>,
    idle: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    viewers: usize,
    session: bool,
    paused: usize,
    closed: bool,
    producer: Option<Producer>,
    /// A producer told to stop whose thread may still be finishing; the next one joins it first.
    stopping: Option<JoinHandle<()>>,
}

struct Producer {
    ctl: Arc<LiveControl>,
    thread: JoinHandle<()>,
}

impl LiveHub {
    /// `idle`: `[camera] live_idle`, the producer runs even with nobody watching.
    pub fn new(camera: Arc<dyn Camera>, idle: bool) -> LiveHub {
        let (frames, _) = watch::channel(None);
        let hub = LiveHub {
            inner: Arc::new(Inner {
                camera,
                frames: Arc::new(frames),
                seq: Arc::new(AtomicU64::new(0)),
                last_frame: Arc::new(Mutex::new(None)),
                idle,
                state: Mutex::new(State::default()),
            }),
        };
        hub.reconcile();
        hub
    }

    pub fn idle(&self) -> bool {
        self.inner.idle
    }

    /// A new viewer: counts towards demand until dropped.
    pub fn watch(&self) -> Viewer {
        self.update(|s| s.viewers += 1);
        Viewer {
            hub: self.clone(),
            frames: self.inner.frames.subscribe(),
            last_seq: 0,
        }
    }

    /// Whether a session wants the live view now (see `session_wants_live`).
    pub fn set_session(&self, wanted: bool) {
        self.update(|s| s.session = wanted);
    }

    /// Stops the live view and waits until its tool has exited, so the camera is free; resumed
    /// when the guard is dropped. Blocks: call it on a blocking thread.
    pub fn pause(&self) -> PauseGuard {
        let (producer, stopping) = {
            let mut s = self.lock();
            s.paused += 1;
            (s.producer.take(), s.stopping.take())
        };
        if let Some(p) = producer {
            p.ctl.stop();
            let _ = p.thread.join();
        }
        if let Some(t) = stopping {
            let _ = t.join();
        }
        PauseGuard { hub: self.clone() }
    }

    /// Ends the live view for good (daemon shutdown): the producer stops, every viewer's stream
    /// ends. Blocks until the producer's tool has exited.
    pub fn close(&self) {
        let _pause = self.pause();
        self.update(|s| s.closed = true);
        self.inner.frames.send_modify(|_| {});
    }

    /// When the last live frame came, if one ever did.
    pub fn last_frame_at(&self) -> Option<Instant> {
        *lock(&self.inner.last_frame)
    }

    /// Frames published so far.
    pub fn frames_published(&self) -> u64 {
        self.inner.seq.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.inner.state)
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.lock());
        self.reconcile();
    }

    /// Starts or stops the producer to match the demand.
    fn reconcile(&self) {
        let mut s = self.lock();
        let wanted = !s.closed && s.paused == 0 && (s.viewers > 0 || s.session || self.inner.idle);
        match (wanted, s.producer.is_some()) {
            (true, false) => {
                let previous = s.stopping.take();
                s.producer = self.spawn(previous);
            }
            (false, true) => {
                if let Some(p) = s.producer.take() {
                    p.ctl.stop();
                    // Not joined here (this may be an async task): the next producer joins it.
                    s.stopping = Some(p.thread);
                }
            }
            _ => {}
        }
    }

    fn spawn(&self, previous: Option<JoinHandle<()>>) -> Option<Producer> {
        let (frames, seq, last) = (
            self.inner.frames.clone(),
            self.inner.seq.clone(),
            self.inner.last_frame.clone(),
        );
        let ctl = Arc::new(LiveControl::new(move |jpeg| {
            let seq = seq.fetch_add(1, Ordering::Relaxed) + 1;
            *lock(&last) = Some(Instant::now());
            frames.send_replace(Some(Frame { seq, jpeg }));
        }));
        let camera = self.inner.camera.clone();
        let run = ctl.clone();
        let thread = std::thread::Builder::new().name("live-view".into()).spawn(move || {
            if let Some(previous) = previous {
                let _ = previous.join();
            }
            produce(camera.as_ref(), &run);
        });
        match thread {
            Ok(thread) => Some(Producer { ctl, thread }),
            Err(e) => {
                tracing::error!(error = %e, "live view: cannot start its thread");
                None
            }
        }
    }
}

/// The producer thread: runs the camera's live view, restarting it with a backoff when it fails,
/// until stopped.
fn produce(camera: &dyn Camera, ctl: &LiveControl) {
    let mut backoff = FIRST_BACKOFF;
    tracing::info!(camera = camera.backend(), "live view started");
    loop {
        let started = Instant::now();
        let result: Result<(), CameraError> = camera.live(ctl);
        if ctl.is_stopped() {
            break;
        }
        if started.elapsed() > HEALTHY_RUN {
            backoff = FIRST_BACKOFF;
        }
        match result {
            Ok(()) => tracing::warn!("live view ended by itself; restarting"),
            Err(e) => tracing::warn!(
                kind = ?e.kind,
                error = %e,
                retry_ms = backoff.as_millis() as u64,
                "live view failed; the kiosk shows the plain countdown until it is back"
            ),
        }
        if ctl.wait(backoff) {
            break;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    tracing::info!("live view stopped");
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One viewer of the live stream.
pub struct Viewer {
    hub: LiveHub,
    frames: watch::Receiver<Option<Frame>>,
    /// The last frame returned: never the same frame twice.
    last_seq: u64,
}

impl Viewer {
    /// The next frame newer than the last one returned; `None` when the hub is closed.
    pub async fn next(&mut self) -> Option<Frame> {
        loop {
            if self.hub.lock().closed {
                return None;
            }
            let frame = self.frames.borrow_and_update().clone();
            if let Some(frame) = frame.filter(|f| f.seq > self.last_seq) {
                self.last_seq = frame.seq;
                return Some(frame);
            }
            self.frames.changed().await.ok()?;
        }
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.hub.update(|s| s.viewers = s.viewers.saturating_sub(1));
    }
}

pub struct PauseGuard {
    hub: LiveHub,
}

impl Drop for PauseGuard {
    fn drop(&mut self) {
        self.hub.update(|s| s.paused = s.paused.saturating_sub(1));
    }
}

/// Whether the session's screen wants the live view: the countdown, and the capture between two
/// shots (so the camera is warm again for the next countdown); not the last capture.
pub fn session_wants_live(view: &SessionView) -> bool {
    match view.stage {
        Stage::Countdown => true,
        Stage::Capturing => view.shot < view.shots_total,
        _ => false,
    }
}

/// Keeps the hub's session demand in step with the session's published view, until shutdown.
pub async fn follow_sessions(
    hub: LiveHub,
    mut views: watch::Receiver<SessionView>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let wanted = session_wants_live(&views.borrow_and_update());
        hub.set_session(wanted);
        tokio::select! {
            changed = views.changed() => if changed.is_err() { break },
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    hub.set_session(false);
}

/// The camera the session manager uses: stills go through the real camera, with the live view
/// paused around each one when the camera cannot do both at once.
pub struct PausingCamera {
    pub inner: Arc<dyn Camera>,
    pub hub: LiveHub,
}

impl Camera for PausingCamera {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn capture(&self, dest: &Path, shot: u32) -> Result<(), CameraError> {
        if self.inner.live_during_capture() {
            return self.inner.capture(dest, shot);
        }
        let asked = Instant::now();
        let _pause = self.hub.pause();
        let still_from = Instant::now();
        let result = self.inner.capture(dest, shot);
        // Only a live view that was really running counts (not one from minutes ago).
        let last = self
            .hub
            .last_frame_at()
            .filter(|at| asked.saturating_duration_since(*at) < LIVE_RECENT);
        if let (Some(last), Ok(())) = (last, &result) {
            tracing::info!(
                shot,
                gap_ms = last.elapsed().as_millis() as u64,
                stop_ms = (still_from - asked).as_millis() as u64,
                still_ms = still_from.elapsed().as_millis() as u64,
                "still taken; gap_ms = last live frame to the still on disk"
            );
        }
        result
    }

    fn live(&self, ctl: &LiveControl) -> Result<(), CameraError> {
        self.inner.live(ctl)
    }

    fn live_during_capture(&self) -> bool {
        self.inner.live_during_capture()
    }
}
