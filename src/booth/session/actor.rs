//! The one task that owns the session machine (`SessionManager::run`). The touch screen, the GPIO
//! button, the timers, finished captures and the order's progress become `machine::Event`s; the
//! actions the machine returns are performed here: SQLite on blocking threads, the camera and the
//! page composer on blocking threads, the LED and the published view. Nothing here decides what
//! a stage does next; that is `machine::transition`.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::files::{PageJob, SessionFiles};
use super::machine::{self, Action, Ctx, Event, OrderSeen, Rules, State};
use super::view::{digital_offer, SessionView};
use super::{Command, OrderRequest, Refusal, SessionError, Sessions};
use crate::booth::{OrderError, OrderView, Shared};
use crate::clock;
use crate::config::Language;
use crate::hw::camera::{CameraError, CameraErrorKind};
use crate::hw::gpio::LedMode;
use crate::layout::compose::PreparedPhoto;
use crate::store::sessions::{self, Stage};
use crate::store::{orders, transactions, Store, StoreError};

/// How often a waiting stage looks at its order, and idle looks at the printer.
const TICK: Duration = Duration::from_millis(500);

/// What a capture task hands back: the shot, and for the last shot the composed page.
struct Captured {
    /// Which shot (1-based) of which session.
    number: u32,
    session_id: i64,
    shot: Result<(), CameraError>,
    /// The page's preview is written; what is left of the page is run and saved by
    /// `save_page_in_background`.
    page: Option<Result<PageJob, String>>,
}

/// A shot being decoded and fitted into its slots on a blocking thread while the customer poses
/// for the next one (`layout::compose::PreparedPhoto`).
type Preparing = JoinHandle<Result<PreparedPhoto, String>>;

pub struct SessionManager {
    shared: Shared,
    rules: Rules,
    state: State,
    /// The session's order as last read (on a blocking thread), for the view.
    order: Option<OrderView>,
    capture: Option<JoinHandle<Captured>>,
    /// Shot n's preparation at index n-1; emptied when the shots are removed (retake, end).
    preparing: Vec<Option<Preparing>>,
    /// The print page being written after the review went up (the PNG is not on the customer's
    /// path to the review); awaited before an order is made or the shots are replaced.
    page_saving: Option<JoinHandle<Result<(), String>>>,
    view: watch::Sender<SessionView>,
}

impl SessionManager {
    /// Builds the manager and loads (resuming or ending) the session a restart left behind.
    /// Called at start-up, before anything is served, so its SQLite calls may block.
    pub fn start(shared: Shared, shutdown: watch::Receiver<bool>) -> Result<(Sessions, JoinHandle<()>), StoreError> {
        let now = clock::now_ms();
        let session = shared.store.write(|tx| {
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
            s.end_reason = Some(sessions::RESTART.into());
            sessions::save(tx, &s)?;
            Ok(None)
        })?;
        let order = match session.as_ref().and_then(|s| s.order_id) {
            Some(id) => shared.booth.order(id)?,
            None => None,
        };
        let config = shared.config.clone();
        let mut idle =
            SessionView::idle(&config, shared.booth.session_blocker(), now).with_event(shared.health.event());
        digital_offer(&mut idle, &shared.booth);
        let (commands_tx, commands_rx) = mpsc::channel(16);
        let (view_tx, view_rx) = watch::channel(idle);
        let mut manager = SessionManager {
            rules: Rules::from_config(&config),
            shared,
            state: State {
                session,
                countdown_ends_at: None,
            },
            order,
            capture: None,
            preparing: Vec::new(),
            page_saving: None,
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
                .state
                .deadline(&self.rules)
                .map(|at| Duration::from_millis((at - clock::now_ms()).max(0) as u64));
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Input(input, reply)) => {
                        let result = self.handle(Event::Input(input)).await;
                        let _ = reply.send(result.map(|()| self.view.borrow().clone()));
                    }
                    Some(Command::Order(what, language, reply)) => {
                        let _ = reply.send(self.on_order(what, language, false).await);
                    }
                    Some(Command::EventPrint(copies, reply)) => {
                        let _ = reply.send(self.on_order(OrderRequest::Prints(copies), None, true).await);
                    }
                    None => break,
                },
                captured = wait_task(&mut self.capture) => {
                    self.capture = None;
                    self.on_captured(captured).await;
                }
                saved = wait_task(&mut self.page_saving) => {
                    self.page_saving = None;
                    if let Err(e) = saved.map_err(|e| e.to_string()).and_then(|saved| saved) {
                        if let Err(e) = self.handle(Event::PageFailed(e)).await {
                            tracing::error!(error = %e.message, "cannot record the page failure");
                        }
                    }
                }
                _ = sleep_opt(deadline) => {
                    if let Err(e) = self.handle(Event::Deadline).await {
                        tracing::error!(error = %e.message, "session timeout could not be recorded");
                    }
                }
                _ = tick.tick() => self.on_tick().await,
                _ = shutdown.changed() => break,
            }
        }
        // A page being written finishes before the daemon stops (a few milliseconds).
        let _ = self.page_saved().await;
        self.shared.gpio.set_led(LedMode::Off);
        self.shared.gpio.set_flash(false);
    }

    /// Runs `event` (and the events its actions answer with) through the machine, performs the
    /// actions and publishes the view if anything changed. A refusal changes nothing.
    async fn handle(&mut self, event: Event) -> Result<(), SessionError> {
        let before = self.state.clone();
        let mut outcome = Ok(());
        let mut next = Some(event);
        while let Some(event) = next.take() {
            let ctx = Ctx {
                rules: &self.rules,
                blocker: self.shared.booth.session_blocker(),
            };
            let step = match machine::transition(&self.state, event, clock::now_ms(), &ctx) {
                Ok(step) => step,
                Err(refused) => {
                    outcome = Err(refused);
                    break;
                }
            };
            log_stage_change(&self.state, &step.state);
            self.state = step.state;
            for action in step.actions {
                match self.perform(action).await {
                    Ok(follow) => next = next.or(follow),
                    Err(e) => outcome = Err(e),
                }
            }
        }
        if self.state != before {
            self.publish();
        }
        outcome
    }

    /// Does what the machine asked; an answer the machine needs comes back as the next event.
    async fn perform(&mut self, action: Action) -> Result<Option<Event>, SessionError> {
        match action {
            Action::CreateSession { shots_total } => {
                self.forget_prepared();
                let now = clock::now_ms();
                let session = self
                    .blocking(move |store| store.write(|tx| sessions::insert(tx, shots_total, now)))
                    .await
                    .map_err(store_error)?;
                tracing::info!(session_id = session.id, shots = shots_total, "session started");
                self.order = None;
                Ok(Some(Event::SessionCreated(session)))
            }
            Action::Save(session) => {
                let ended = session.ended_at.is_some();
                self.blocking(move |store| store.write(|tx| sessions::save(tx, &session)))
                    .await
                    .map_err(store_error)?;
                if ended {
                    // An ended session's photos may not be needed any more: the janitor decides.
                    self.shared.booth.tidy_soon();
                }
                Ok(None)
            }
            Action::RemoveShots(session_id) => {
                self.forget_prepared();
                // A page still being written would land in the directory removed here.
                let _ = self.page_saved().await;
                let files = SessionFiles::new(&self.shared.data_dir, session_id);
                let _ = tokio::fs::remove_dir_all(files.dir()).await;
                Ok(None)
            }
            Action::Capture { session_id, shot, last } => {
                // The earlier shots were prepared during the countdowns; their tasks are done (or
                // nearly), so this wait is short and the last capture composes at once.
                let prepared = if last { self.take_prepared().await } else { Vec::new() };
                // The previous page's write must not rename over the page composed next.
                let _ = self.page_saved().await;
                self.start_capture(session_id, shot, last, prepared);
                Ok(None)
            }
            Action::AbortCapture => {
                if let Some(capture) = self.capture.take() {
                    capture.abort();
                }
                Ok(None)
            }
            Action::CancelOrder(order_id) => self.cancel_order(order_id).await,
            // Only `on_order` asks for an order, and performs it itself (it returns the order).
            Action::CreateOrder { .. } => Ok(None),
        }
    }

    /// An order for the session at the copies screen: a Payme order awaiting payment or, at a
    /// prepaid event (`free`), a free one already queued for printing. Its view is the reply.
    async fn on_order(
        &mut self,
        what: OrderRequest,
        language: Option<Language>,
        free: bool,
    ) -> Result<OrderView, OrderError> {
        let ctx = Ctx {
            rules: &self.rules,
            blocker: self.shared.booth.session_blocker(),
        };
        let step = machine::transition(&self.state, Event::OrderRequested, clock::now_ms(), &ctx)
            .map_err(OrderError::Session)?;
        let Some(Action::CreateOrder { session_id }) = step.actions.first().cloned() else {
            return Err(OrderError::Session(SessionError::new(
                Refusal::NotNow,
                "no order to create",
            )));
        };
        // The page is on disk before any order that prints it exists. A failure arriving here
        // (before the run loop saw it) ends the session the same way: the compose error screen,
        // no order, nothing charged; a second tap must not find the session still at the copies.
        if let Err(e) = self.page_saved().await {
            if let Err(recorded) = self.handle(Event::PageFailed(e)).await {
                tracing::error!(error = %recorded.message, "cannot record the page failure");
            }
            return Err(OrderError::Session(SessionError::new(
                Refusal::NotNow,
                "the photos could not be prepared; nothing was charged",
            )));
        }
        let booth = self.shared.booth.clone();
        let order = tokio::task::spawn_blocking(move || match (what, free) {
            (OrderRequest::Prints(copies), true) => booth.create_event_order_for(copies, Some(session_id)),
            (OrderRequest::Prints(copies), false) => booth.create_order_for(copies, Some(session_id), language),
            (OrderRequest::DigitalOnly, _) => booth.create_digital_order_for(session_id, language),
        })
        .await
        .map_err(|e| OrderError::Store(StoreError::Io(std::io::Error::other(e))))??;
        self.order = Some(order.clone());
        let created = match free {
            true => Event::FreeOrderCreated(order.order_id),
            false => Event::OrderCreated(order.order_id),
        };
        self.handle(created).await.map_err(OrderError::Session)?;
        Ok(order)
    }

    /// Cancels the order unless Payme holds a transaction for it: then the customer is paying
    /// right now, and the order must stay payable or Payme would debit a card for a cancelled order.
    async fn cancel_order(&self, order_id: i64) -> Result<Option<Event>, SessionError> {
        let now = clock::now_ms();
        let closed = self
            .blocking(move |store| {
                store.write(|tx| {
                    if transactions::live_for_order(tx, order_id)?.is_some() {
                        return Ok(None);
                    }
                    orders::close(tx, order_id, orders::StoredStatus::Cancelled, now).map(Some)
                })
            })
            .await
            .map_err(store_error)?;
        match closed {
            None => {
                return Err(SessionError::new(
                    Refusal::PaymentInProgress,
                    "a payment is in progress",
                ))
            }
            Some(true) => tracing::info!(order_id, "order cancelled by the customer before paying"),
            // Paid and refunded before the screen noticed: the refund stands.
            Some(false) => tracing::info!(
                order_id,
                "customer left; the order had already ended (refunded or cancelled)"
            ),
        }
        Ok(Some(Event::OrderCancelled))
    }

    /// Prepares a shot just taken for the page, on a blocking thread, while the next countdown runs.
    fn prepare_in_background(&mut self, session_id: i64, number: u32) {
        let Some(shots) = self
            .state
            .session
            .as_ref()
            .filter(|s| s.id == session_id)
            .map(|s| s.shots_total)
        else {
            return;
        };
        let files = SessionFiles::new(&self.shared.data_dir, session_id);
        let config = self.shared.config.clone();
        let index = number.saturating_sub(1) as usize;
        if self.preparing.len() <= index {
            self.preparing.resize_with(index + 1, || None);
        }
        if let Some(old) = self.preparing[index].take() {
            old.abort();
        }
        self.preparing[index] = Some(tokio::task::spawn_blocking(move || {
            files.prepare_shot(&config, number, shots)
        }));
    }

    /// The prepared shots so far, in shot order; a failed or missing one is `None` (the composer
    /// then decodes that shot itself and reports its error).
    async fn take_prepared(&mut self) -> Vec<Option<PreparedPhoto>> {
        let mut ready = Vec::with_capacity(self.preparing.len());
        for task in std::mem::take(&mut self.preparing) {
            ready.push(match task {
                Some(task) => task.await.ok().and_then(Result::ok),
                None => None,
            });
        }
        ready
    }

    /// Finishes and writes the page on a blocking thread; the review is already showing its preview.
    fn save_page_in_background(&mut self, session_id: i64, page: PageJob) {
        let files = SessionFiles::new(&self.shared.data_dir, session_id);
        self.page_saving = Some(tokio::task::spawn_blocking(move || files.save_page(&page.run()?)));
    }

    /// Waits for the page write in flight, if any, and says how it went.
    async fn page_saved(&mut self) -> Result<(), String> {
        match self.page_saving.take() {
            Some(task) => task.await.map_err(|e| e.to_string())?,
            None => Ok(()),
        }
    }

    fn forget_prepared(&mut self) {
        for task in self.preparing.drain(..).flatten() {
            task.abort();
        }
    }

    fn start_capture(&mut self, session_id: i64, shot: u32, last: bool, prepared: Vec<Option<PreparedPhoto>>) {
        let files = SessionFiles::new(&self.shared.data_dir, session_id);
        let (camera, gpio, config) = (
            self.shared.camera.clone(),
            self.shared.gpio.clone(),
            self.shared.config.clone(),
        );
        let event = self.shared.health.event();
        gpio.set_flash(true);
        self.capture = Some(tokio::task::spawn_blocking(move || {
            let shot_result = std::fs::create_dir_all(files.dir())
                .map_err(|e| {
                    CameraError::new(
                        CameraErrorKind::Failed,
                        format!("cannot create {}: {e}", files.dir().display()),
                    )
                })
                .and_then(|()| camera.capture(&files.shot(shot), shot));
            gpio.set_flash(false);
            let page =
                (last && shot_result.is_ok()).then(|| files.compose_page(&config, event.as_ref(), shot, prepared));
            Captured {
                number: shot,
                session_id,
                shot: shot_result,
                page,
            }
        }));
    }

    async fn on_captured(&mut self, captured: Result<Captured, tokio::task::JoinError>) {
        let (shot, page) = match captured {
            Ok(c) => {
                if c.shot.is_ok() && c.page.is_none() {
                    self.prepare_in_background(c.session_id, c.number);
                }
                let page = c
                    .page
                    .map(|page| page.map(|page| self.save_page_in_background(c.session_id, page)));
                (c.shot, page)
            }
            Err(e) => (Err(CameraError::new(CameraErrorKind::Failed, e.to_string())), None),
        };
        let event = match shot {
            Err(e) => {
                self.shared.health.set_camera_error(Some(e.message.clone()));
                Event::ShotFailed(e.message)
            }
            Ok(()) => {
                self.shared.health.set_camera_error(None);
                Event::ShotTaken { page }
            }
        };
        if let Err(e) = self.handle(event).await {
            tracing::error!(error = %e.message, "cannot record the capture");
        }
    }

    /// Follows the order of a session waiting for payment or printing; republishes when the
    /// printer's health or the order's progress changes.
    async fn on_tick(&mut self) {
        let stage = self.state.stage();
        let order_id = self.state.session.as_ref().and_then(|s| s.order_id);
        let (true, Some(order_id)) = (matches!(stage, Stage::AwaitingPayment | Stage::Printing), order_id) else {
            let changed = {
                let view = self.view.borrow();
                view.blocker != self.shared.booth.session_blocker()
                    || view.print_blocker != self.shared.health.blocker()
                    || view.event != self.shared.health.event()
                    || (stage == Stage::Idle && view.order.is_some())
            };
            if changed {
                self.publish();
            }
            return;
        };
        let booth = self.shared.booth.clone();
        let order = match tokio::task::spawn_blocking(move || booth.order(order_id)).await {
            Ok(Ok(Some(order))) => order,
            Ok(Ok(None)) => return,
            Ok(Err(e)) => return tracing::error!(error = %e, "cannot follow the session's order"),
            Err(e) => return tracing::error!(error = %e, "cannot follow the session's order"),
        };
        let seen = OrderSeen {
            status: order.status,
            expires_at: order.expires_at,
            last_error: order.print.as_ref().and_then(|p| p.last_error.clone()),
        };
        let stale = {
            let view = self.view.borrow();
            view.order.as_ref().map(progress) != Some(progress(&order))
                || view.blocker != self.shared.booth.session_blocker()
        };
        self.order = Some(order);
        let before = self.state.clone();
        if let Err(e) = self.handle(Event::OrderSeen(seen)).await {
            tracing::error!(error = %e.message, "cannot record the session's progress");
        }
        // Keep the order (with its print progress) fresh on screen.
        if self.state == before && stale {
            self.publish();
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.shared.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
    }

    /// Publishes the current view and sets the status LED to match. Reads nothing from SQLite.
    fn publish(&mut self) {
        let mut view = SessionView::of(
            &self.state,
            &self.shared.config,
            &self.shared.data_dir,
            self.shared.booth.session_blocker(),
            self.order.clone(),
            clock::now_ms(),
        )
        .with_event(self.shared.health.event());
        digital_offer(&mut view, &self.shared.booth);
        let led = match view.stage {
            _ if view.blocker.is_some() => LedMode::FastBlink,
            Stage::Error => LedMode::FastBlink,
            Stage::Idle => LedMode::Steady,
            _ => LedMode::Blink,
        };
        self.shared.gpio.set_led(led);
        self.view.send_replace(view);
    }
}

/// What of an order the screen shows while waiting: a change is worth a new view.
fn progress(o: &OrderView) -> impl PartialEq {
    (
        o.status,
        o.payment_in_progress,
        o.print.as_ref().map(|p| (p.attempts, p.last_error.clone())),
    )
}

fn log_stage_change(from: &State, to: &State) {
    let Some(s) = &to.session else { return };
    if from.session.as_ref().map(|f| f.stage) != Some(s.stage) && from.session.is_some() {
        tracing::info!(
            session_id = s.id,
            order_id = s.order_id,
            from = from.stage().as_str(),
            to = s.stage.as_str(),
            "session stage"
        );
    }
}

fn store_error(e: StoreError) -> SessionError {
    tracing::error!(error = %e, "session store error");
    SessionError::new(Refusal::StoreFailed, "the booth cannot reach its database")
}

/// The task's result once it finishes; never, when there is none.
async fn wait_task<T>(task: &mut Option<JoinHandle<T>>) -> Result<T, tokio::task::JoinError> {
    match task {
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
