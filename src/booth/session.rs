//! The kiosk session: one customer's visit as a state machine that lives in the daemon, never in
//! the browser. idle → countdown → capturing (× shots) → review (retake allowed) → choose copies →
//! awaiting payment → printing → done → idle, with an error stage that tells the customer what
//! happens next.
//!
//! One task owns the machine (`SessionManager::run`); the touch screen, the GPIO button and the
//! timers only send it inputs, and an input that is not valid in the current stage does nothing
//! but return an error. Every stage change is written to SQLite before it is shown, so a restart
//! resumes a session that waits for a payment or a print and ends any other cleanly. The current
//! view is published on a `watch` channel that feeds Server-Sent Events.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::health::{Blocker, Health};
use super::{Booth, OrderError, OrderView};
use crate::clock;
use crate::config::{Config, Language};
use crate::hw::camera::{Camera, CameraError};
use crate::hw::gpio::{Gpio, LedMode};
use crate::layout::{compose, template};
use crate::store::sessions::{self, Session, Stage};
use crate::store::{orders, transactions, OrderStatus, Store, StoreError};

/// The composed page of a session, printed by its paid order's job.
pub const PAGE_FILE: &str = "page.png";
const PREVIEW_FILE: &str = "preview.jpg";
/// Payment screen grace after the order's TTL while Payme still holds a transaction (the customer
/// is typing a card code); after it the session ends and a late payment still prints.
const PAYMENT_GRACE_MS: i64 = 120_000;
/// The print-failed screen shows the order number at least this long.
const PRINT_FAILED_SCREEN_S: u32 = 120;
/// How often a waiting stage looks at its order, and idle looks at the printer.
const TICK: Duration = Duration::from_millis(500);

/// Where a session's photos and pages live.
pub fn session_dir(data_dir: &Path, session_id: i64) -> PathBuf {
    data_dir.join("sessions").join(session_id.to_string())
}

/// What the customer asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Start,
    Retake,
    Accept,
    /// Leave the session (before a payment is under way).
    Cancel,
    /// Leave the done or error screen early.
    Dismiss,
    /// The GPIO button: means whatever "go on" means in the current stage.
    Button,
}

enum Command {
    Input(Input, oneshot::Sender<Result<SessionView, SessionError>>),
    Order(u32, oneshot::Sender<Result<OrderView, OrderError>>),
}

/// An input that the current stage does not accept.
#[derive(Debug, Clone, Serialize)]
pub struct SessionError {
    pub code: &'static str,
    pub message: String,
}

impl SessionError {
    fn new(code: &'static str, message: impl Into<String>) -> SessionError {
        SessionError {
            code,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ErrorView {
    /// `camera_failed`, `payment_expired`, `payment_cancelled`, `print_failed`, `compose_failed`.
    pub code: String,
    pub message: Option<String>,
}

/// Everything the kiosk page needs to draw the current screen.
#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    pub session_id: Option<i64>,
    pub stage: Stage,
    /// The shot being taken (or the last one taken), 1-based.
    pub shot: u32,
    pub shots_total: u32,
    pub countdown_ends_at: Option<i64>,
    /// When the current screen gives up and returns to idle.
    pub deadline: Option<i64>,
    pub retakes_left: u32,
    pub photos: Vec<String>,
    /// The composed print, shown on the review screen.
    pub preview: Option<String>,
    pub order: Option<OrderView>,
    pub error: Option<ErrorView>,
    pub accepting_orders: bool,
    pub blocker: Option<Blocker>,
    pub language: Language,
    /// Whole sum.
    pub price_per_copy: i64,
    pub max_copies: u32,
    /// The daemon's clock, so the page can count down correctly whatever its own clock says.
    pub now: i64,
}

/// The handle the HTTP layer and the button use.
#[derive(Clone)]
pub struct Sessions {
    commands: mpsc::Sender<Command>,
    view: watch::Receiver<SessionView>,
}

impl Sessions {
    pub async fn input(&self, input: Input) -> Result<SessionView, SessionError> {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Input(input, tx)).await.is_err() {
            return Err(SessionError::new("shutting_down", "the booth is shutting down"));
        }
        rx.await
            .unwrap_or_else(|_| Err(SessionError::new("shutting_down", "the booth is shutting down")))
    }

    /// An order for the current session (which must be choosing copies).
    pub async fn order(&self, copies: u32) -> Result<OrderView, OrderError> {
        let (tx, rx) = oneshot::channel();
        let gone = || OrderError::Session(SessionError::new("shutting_down", "the booth is shutting down"));
        if self.commands.send(Command::Order(copies, tx)).await.is_err() {
            return Err(gone());
        }
        rx.await.unwrap_or_else(|_| Err(gone()))
    }

    pub fn view(&self) -> SessionView {
        self.view.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<SessionView> {
        self.view.clone()
    }
}

/// What a capture task hands back.
enum Captured {
    Shot(Result<(), CameraError>),
    /// The last shot, then the composed page.
    Last(Result<(), CameraError>, Option<Result<(), String>>),
}

pub struct SessionManager {
    store: Arc<Store>,
    config: Arc<Config>,
    booth: Arc<Booth>,
    camera: Arc<dyn Camera>,
    gpio: Arc<dyn Gpio>,
    health: Arc<Health>,
    data_dir: PathBuf,
    current: Option<Session>,
    countdown_ends_at: Option<i64>,
    capture: Option<JoinHandle<Captured>>,
    view: watch::Sender<SessionView>,
}

impl SessionManager {
    /// Builds the manager and loads (resuming or ending) the session a restart left behind.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        store: Arc<Store>,
        config: Arc<Config>,
        booth: Arc<Booth>,
        camera: Arc<dyn Camera>,
        gpio: Arc<dyn Gpio>,
        health: Arc<Health>,
        data_dir: PathBuf,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(Sessions, JoinHandle<()>), StoreError> {
        let now = clock::now_ms();
        let current = store.write(|tx| {
            let Some(mut s) = sessions::open(tx)? else {
                return Ok(None);
            };
            if matches!(s.stage, Stage::AwaitingPayment | Stage::Printing) {
                tracing::info!(
                    session_id = s.id,
                    order_id = s.order_id,
                    stage = s.stage.as_str(),
                    "session resumed after restart"
                );
                return Ok(Some(s));
            }
            tracing::warn!(
                session_id = s.id,
                stage = s.stage.as_str(),
                "session ended: interrupted by a restart"
            );
            s.ended_at = Some(now);
            s.end_reason = Some("restart".into());
            sessions::save(tx, &s)?;
            Ok(None)
        })?;
        let (commands_tx, commands_rx) = mpsc::channel(16);
        let (view_tx, view_rx) = watch::channel(idle_view(&config, &health));
        let mut manager = SessionManager {
            store,
            config,
            booth,
            camera,
            gpio,
            health,
            data_dir,
            current,
            countdown_ends_at: None,
            capture: None,
            view: view_tx,
        };
        manager.publish();
        let task = tokio::spawn(manager.run(commands_rx, shutdown));
        Ok((
            Sessions {
                commands: commands_tx,
                view: view_rx,
            },
            task,
        ))
    }

    async fn run(mut self, mut commands: mpsc::Receiver<Command>, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = self
                .deadline()
                .map(|at| Duration::from_millis((at - clock::now_ms()).max(0) as u64));
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Input(input, reply)) => {
                        let result = self.on_input(input).await;
                        let _ = reply.send(result.map(|()| self.view.borrow().clone()));
                    }
                    Some(Command::Order(copies, reply)) => {
                        let _ = reply.send(self.on_order(copies).await);
                    }
                    None => break,
                },
                captured = wait_capture(&mut self.capture) => {
                    self.capture = None;
                    self.on_captured(captured).await;
                }
                _ = sleep_opt(deadline) => self.on_deadline().await,
                _ = tick.tick() => self.on_tick().await,
                _ = shutdown.changed() => break,
            }
        }
        self.gpio.set_led(LedMode::Off);
        self.gpio.set_flash(false);
    }

    fn stage(&self) -> Stage {
        self.current.as_ref().map_or(Stage::Idle, |s| s.stage)
    }

    fn session_dir(&self, id: i64) -> PathBuf {
        session_dir(&self.data_dir, id)
    }

    /// When the current stage acts by itself.
    fn deadline(&self) -> Option<i64> {
        let s = self.current.as_ref()?;
        let t = &self.config.session;
        let secs = |n: u32| s.stage_since + i64::from(n) * 1000;
        match s.stage {
            Stage::Countdown => self.countdown_ends_at,
            Stage::Review => Some(secs(t.review_timeout_s)),
            Stage::ChooseCopies => Some(secs(t.copies_timeout_s)),
            Stage::Done => Some(secs(t.done_timeout_s)),
            // A customer whose paid print failed needs time to find staff with the order number.
            Stage::Error if s.error_code.as_deref() == Some("print_failed") => {
                Some(secs(t.error_timeout_s.max(PRINT_FAILED_SCREEN_S)))
            }
            Stage::Error => Some(secs(t.error_timeout_s)),
            // These end by events (capture done, order state), watched on the tick.
            Stage::Idle | Stage::Capturing | Stage::AwaitingPayment | Stage::Printing => None,
        }
    }

    async fn on_input(&mut self, input: Input) -> Result<(), SessionError> {
        let stage = self.stage();
        let input = match (input, stage) {
            (Input::Button, Stage::Idle) => Input::Start,
            (Input::Button, Stage::Review) => Input::Accept,
            (Input::Button, Stage::Done | Stage::Error) => Input::Dismiss,
            (other, _) => other,
        };
        match (input, stage) {
            (Input::Start, Stage::Idle) => self.begin().await,
            (Input::Retake, Stage::Review) => self.retake().await,
            (Input::Accept, Stage::Review) => self.enter(Stage::ChooseCopies).await.map_err(store_error),
            (Input::Cancel, Stage::Review | Stage::ChooseCopies) => {
                self.end("cancelled by the customer").await.map_err(store_error)
            }
            (Input::Cancel, Stage::AwaitingPayment) => self.cancel_payment().await,
            (Input::Dismiss, Stage::Done | Stage::Error) => self.end("dismissed").await.map_err(store_error),
            (input, stage) => {
                tracing::debug!(?input, stage = stage.as_str(), "input ignored in this stage");
                Err(SessionError::new(
                    "not_now",
                    format!("{input:?} is not possible while {}", stage.as_str()),
                ))
            }
        }
    }

    async fn begin(&mut self) -> Result<(), SessionError> {
        if let Some(blocker) = self.health.blocker() {
            tracing::warn!(
                reason = blocker.reason.as_str(),
                "session not started: {}",
                blocker.message
            );
            return Err(SessionError::new(blocker.reason.as_str(), blocker.message));
        }
        let shots = self.config.camera.shots;
        let now = clock::now_ms();
        let session = self
            .blocking(move |store| store.write(|tx| sessions::insert(tx, shots, now)))
            .await
            .map_err(store_error)?;
        tracing::info!(session_id = session.id, shots, "session started");
        self.current = Some(session);
        self.countdown_ends_at = Some(now + i64::from(self.config.camera.countdown_s) * 1000);
        self.publish();
        Ok(())
    }

    async fn retake(&mut self) -> Result<(), SessionError> {
        let Some(s) = self.current.as_mut() else {
            return Err(SessionError::new("not_now", "no session"));
        };
        if s.retakes_used >= self.config.session.max_retakes {
            return Err(SessionError::new("no_retakes_left", "no retakes left"));
        }
        s.retakes_used += 1;
        s.shots_taken = 0;
        let id = s.id;
        tracing::info!(session_id = id, retake = s.retakes_used, "retake");
        // Old shots must not end up in the new page if a new capture fails half way.
        let _ = std::fs::remove_dir_all(self.session_dir(id));
        self.countdown_ends_at = Some(clock::now_ms() + i64::from(self.config.camera.countdown_s) * 1000);
        self.enter(Stage::Countdown).await.map_err(store_error)
    }

    async fn on_order(&mut self, copies: u32) -> Result<OrderView, OrderError> {
        let Some(session_id) = self
            .current
            .as_ref()
            .filter(|s| s.stage == Stage::ChooseCopies)
            .map(|s| s.id)
        else {
            return Err(OrderError::Session(SessionError::new(
                "not_now",
                format!(
                    "copies can be chosen only on the copies screen, not while {}",
                    self.stage().as_str()
                ),
            )));
        };
        let booth = self.booth.clone();
        let order = tokio::task::spawn_blocking(move || booth.create_order_for(copies, Some(session_id)))
            .await
            .map_err(|e| OrderError::Store(StoreError::Io(std::io::Error::other(e))))??;
        if let Some(s) = self.current.as_mut() {
            s.order_id = Some(order.order_id);
        }
        self.enter(Stage::AwaitingPayment).await?;
        Ok(order)
    }

    async fn cancel_payment(&mut self) -> Result<(), SessionError> {
        let Some(order_id) = self.current.as_ref().and_then(|s| s.order_id) else {
            return self.end("cancelled by the customer").await.map_err(store_error);
        };
        let now = clock::now_ms();
        let cancelled = self
            .blocking(move |store| {
                store.write(|tx| {
                    // A transaction under way means the customer is paying right now: the order
                    // must stay payable, or Payme would debit a card for a cancelled order.
                    if transactions::live_for_order(tx, order_id)?.is_some() {
                        return Ok(false);
                    }
                    orders::close(tx, order_id, orders::StoredStatus::Cancelled, now)?;
                    Ok(true)
                })
            })
            .await
            .map_err(store_error)?;
        if !cancelled {
            return Err(SessionError::new("payment_in_progress", "a payment is in progress"));
        }
        tracing::info!(order_id, "order cancelled by the customer before paying");
        self.end("cancelled by the customer").await.map_err(store_error)
    }

    /// Moves the current session to `stage` and persists it.
    async fn enter(&mut self, stage: Stage) -> Result<(), StoreError> {
        let Some(s) = self.current.as_mut() else { return Ok(()) };
        let from = s.stage;
        s.stage = stage;
        s.stage_since = clock::now_ms();
        if stage != Stage::Error {
            s.error_code = None;
            s.error_message = None;
        }
        let snapshot = s.clone();
        tracing::info!(
            session_id = snapshot.id,
            order_id = snapshot.order_id,
            from = from.as_str(),
            to = stage.as_str(),
            "session stage"
        );
        self.blocking(move |store| store.write(|tx| sessions::save(tx, &snapshot)))
            .await?;
        self.publish();
        Ok(())
    }

    async fn fail(&mut self, code: &str, message: Option<String>) {
        if let Some(s) = self.current.as_mut() {
            s.error_code = Some(code.to_string());
            s.error_message = message.clone();
            tracing::warn!(
                session_id = s.id,
                order_id = s.order_id,
                code,
                message = message.as_deref(),
                "session error"
            );
        }
        if let Err(e) = self.enter(Stage::Error).await {
            tracing::error!(error = %e, "cannot record the session error");
        }
    }

    /// Ends the session and returns to idle.
    async fn end(&mut self, reason: &str) -> Result<(), StoreError> {
        let Some(mut s) = self.current.take() else {
            return Ok(());
        };
        s.ended_at = Some(clock::now_ms());
        s.end_reason = Some(reason.to_string());
        if s.stage == Stage::AwaitingPayment {
            tracing::warn!(
                session_id = s.id,
                order_id = s.order_id,
                "customer left before paying; a payment that still arrives will print"
            );
        }
        tracing::info!(
            session_id = s.id,
            order_id = s.order_id,
            stage = s.stage.as_str(),
            reason,
            "session ended"
        );
        self.countdown_ends_at = None;
        if let Some(capture) = self.capture.take() {
            capture.abort();
        }
        let result = self
            .blocking(move |store| store.write(|tx| sessions::save(tx, &s)))
            .await;
        self.publish();
        result
    }

    async fn on_deadline(&mut self) {
        let result = match self.stage() {
            Stage::Countdown => {
                self.start_capture().await;
                Ok(())
            }
            Stage::Review | Stage::ChooseCopies => self.end("timed out").await,
            Stage::Done => self.end("done").await,
            Stage::Error => self.end("error shown").await,
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "session timeout could not be recorded");
        }
    }

    async fn start_capture(&mut self) {
        let Some(s) = self.current.as_mut() else { return };
        let shot = s.shots_taken + 1;
        let last = shot >= s.shots_total;
        let dir = session_dir(&self.data_dir, s.id);
        self.countdown_ends_at = None;
        if let Err(e) = self.enter(Stage::Capturing).await {
            tracing::error!(error = %e, "cannot record the capture");
        }
        let (camera, gpio, config) = (self.camera.clone(), self.gpio.clone(), self.config.clone());
        gpio.set_flash(true);
        self.capture = Some(tokio::task::spawn_blocking(move || {
            let captured = std::fs::create_dir_all(&dir)
                .map_err(|e| {
                    CameraError::new(
                        crate::hw::camera::CameraErrorKind::Failed,
                        format!("cannot create {}: {e}", dir.display()),
                    )
                })
                .and_then(|()| camera.capture(&dir.join(format!("shot-{shot}.jpg")), shot));
            gpio.set_flash(false);
            if !last || captured.is_err() {
                return if last {
                    Captured::Last(captured, None)
                } else {
                    Captured::Shot(captured)
                };
            }
            Captured::Last(captured, Some(compose_page(&config, &dir, shot)))
        }));
    }

    async fn on_captured(&mut self, captured: Result<Captured, tokio::task::JoinError>) {
        let (shot_result, composed) = match captured {
            Ok(Captured::Shot(r)) => (r, None),
            Ok(Captured::Last(r, c)) => (r, c),
            Err(e) => (
                Err(CameraError::new(
                    crate::hw::camera::CameraErrorKind::Failed,
                    e.to_string(),
                )),
                None,
            ),
        };
        if let Err(e) = shot_result {
            self.health.set_camera_error(Some(e.message.clone()));
            self.fail("camera_failed", Some(e.message)).await;
            return;
        }
        self.health.set_camera_error(None);
        let Some(s) = self.current.as_mut() else { return };
        s.shots_taken += 1;
        tracing::info!(
            session_id = s.id,
            shot = s.shots_taken,
            of = s.shots_total,
            "photo taken"
        );
        match composed {
            None => {
                self.countdown_ends_at = Some(clock::now_ms() + i64::from(self.config.camera.countdown_s) * 1000);
                if let Err(e) = self.enter(Stage::Countdown).await {
                    tracing::error!(error = %e, "cannot record the countdown");
                }
            }
            Some(Ok(())) => {
                if let Err(e) = self.enter(Stage::Review).await {
                    tracing::error!(error = %e, "cannot record the review");
                }
            }
            Some(Err(message)) => self.fail("compose_failed", Some(message)).await,
        }
    }

    /// Follows the order of a session waiting for payment or printing; republishes when the
    /// printer's health changes on the idle screen.
    async fn on_tick(&mut self) {
        let stage = self.stage();
        if !matches!(stage, Stage::AwaitingPayment | Stage::Printing) {
            let changed = {
                let view = self.view.borrow();
                view.blocker != self.health.blocker() || (stage == Stage::Idle && view.order.is_some())
            };
            if changed {
                self.publish();
            }
            return;
        }
        let Some(order_id) = self.current.as_ref().and_then(|s| s.order_id) else {
            return;
        };
        let booth = self.booth.clone();
        let order = match tokio::task::spawn_blocking(move || booth.order(order_id)).await {
            Ok(Ok(Some(order))) => order,
            Ok(Ok(None)) => return,
            Ok(Err(e)) => return tracing::error!(error = %e, "cannot follow the session's order"),
            Err(e) => return tracing::error!(error = %e, "cannot follow the session's order"),
        };
        let result = match (stage, order.status) {
            (_, OrderStatus::Printed) => self.enter(Stage::Done).await,
            (_, OrderStatus::PrintFailed) => {
                let message = order.print.as_ref().and_then(|p| p.last_error.clone());
                self.fail("print_failed", message).await;
                Ok(())
            }
            (Stage::AwaitingPayment, OrderStatus::Paid | OrderStatus::Printing) => self.enter(Stage::Printing).await,
            (Stage::AwaitingPayment, OrderStatus::Expired) => {
                self.fail("payment_expired", None).await;
                Ok(())
            }
            (_, OrderStatus::Refunded | OrderStatus::Cancelled) => {
                self.fail("payment_cancelled", None).await;
                Ok(())
            }
            (Stage::AwaitingPayment, OrderStatus::AwaitingPayment)
                if clock::now_ms() > order.expires_at + PAYMENT_GRACE_MS =>
            {
                self.end("payment not finished in time").await
            }
            _ => {
                // Keep the order (with its print progress) fresh on screen.
                let progress = |o: &OrderView| {
                    (
                        o.status,
                        o.payment_in_progress,
                        o.print.as_ref().map(|p| (p.attempts, p.last_error.clone())),
                    )
                };
                let stale = {
                    let view = self.view.borrow();
                    view.order.as_ref().map(progress) != Some(progress(&order)) || view.blocker != self.health.blocker()
                };
                if stale {
                    self.publish();
                }
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "cannot record the session's progress");
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
    }

    /// Publishes the current view and sets the status LED to match.
    fn publish(&mut self) {
        let mut view = idle_view(&self.config, &self.health);
        if let Some(s) = &self.current {
            view.session_id = Some(s.id);
            view.stage = s.stage;
            view.shot = match s.stage {
                Stage::Countdown | Stage::Capturing => s.shots_taken + 1,
                _ => s.shots_taken,
            };
            view.shots_total = s.shots_total;
            view.countdown_ends_at = self.countdown_ends_at;
            view.deadline = self.deadline();
            view.retakes_left = self.config.session.max_retakes.saturating_sub(s.retakes_used);
            view.photos = (1..=s.shots_taken)
                .map(|n| format!("/api/sessions/{}/shot-{n}.jpg", s.id))
                .collect();
            if matches!(
                s.stage,
                Stage::Review | Stage::ChooseCopies | Stage::AwaitingPayment | Stage::Printing | Stage::Done
            ) {
                view.preview = Some(format!("/api/sessions/{}/{PREVIEW_FILE}", s.id));
            }
            view.order = s.order_id.and_then(|id| self.booth.order(id).ok().flatten());
            if s.stage == Stage::Error {
                view.error = Some(ErrorView {
                    code: s.error_code.clone().unwrap_or_default(),
                    message: s.error_message.clone(),
                });
            }
        }
        let led = match view.stage {
            _ if view.blocker.is_some() => LedMode::FastBlink,
            Stage::Error => LedMode::FastBlink,
            Stage::Idle => LedMode::Steady,
            _ => LedMode::Blink,
        };
        self.gpio.set_led(led);
        self.view.send_replace(view);
    }
}

fn idle_view(config: &Config, health: &Health) -> SessionView {
    let blocker = health.blocker();
    SessionView {
        session_id: None,
        stage: Stage::Idle,
        shot: 0,
        shots_total: config.camera.shots,
        countdown_ends_at: None,
        deadline: None,
        retakes_left: config.session.max_retakes,
        photos: Vec::new(),
        preview: None,
        order: None,
        error: None,
        accepting_orders: blocker.is_none(),
        blocker,
        language: config.booth.language,
        price_per_copy: config.booth.price_per_copy,
        max_copies: config.booth.max_copies,
        now: clock::now_ms(),
    }
}

/// Composes the session's shots into the configured layout: the print page (PNG, lossless, at
/// the printer's resolution) and a small JPEG preview for the review screen.
fn compose_page(config: &Config, dir: &Path, shots: u32) -> Result<(), String> {
    let template = template::load(&config.printer.layout).map_err(|e| e.to_string())?;
    let photos: Vec<PathBuf> = (1..=shots).map(|n| dir.join(format!("shot-{n}.jpg"))).collect();
    let ctx = compose::Context {
        booth_name: &config.booth.name,
        time_ms: config.local_time_ms(clock::now_ms()),
    };
    let page = compose::compose(&template, &photos, &ctx).map_err(|e| e.to_string())?;
    let tmp = dir.join(".page.png.tmp");
    page.save_with_format(&tmp, image::ImageFormat::Png)
        .map_err(|e| format!("cannot save the page: {e}"))?;
    std::fs::rename(&tmp, dir.join(PAGE_FILE)).map_err(|e| format!("cannot save the page: {e}"))?;
    let preview_width = 600.min(page.width());
    let preview_height = (u64::from(page.height()) * u64::from(preview_width) / u64::from(page.width().max(1))) as u32;
    let preview = image::imageops::resize(
        &page,
        preview_width,
        preview_height.max(1),
        image::imageops::FilterType::Triangle,
    );
    preview
        .save_with_format(dir.join(PREVIEW_FILE), image::ImageFormat::Jpeg)
        .map_err(|e| format!("cannot save the preview: {e}"))
}

fn store_error(e: StoreError) -> SessionError {
    tracing::error!(error = %e, "session store error");
    SessionError::new("store_failed", "the booth cannot reach its database")
}

async fn wait_capture(capture: &mut Option<JoinHandle<Captured>>) -> Result<Captured, tokio::task::JoinError> {
    match capture {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}

async fn sleep_opt(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
