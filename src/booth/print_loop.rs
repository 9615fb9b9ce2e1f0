//! The print loop: takes queued jobs from SQLite and hands them to the printer, one at a time.
//!
//! The channel only says "look now"; the store says what to print. So a wake-up lost to a crash,
//! a full channel or a restart costs nothing: the loop scans the queue at start-up, on every wake
//! and on a short timer, and jobs a crash left half-printed go back to the queue first, flagged
//! "may have printed". Before each job it asks the printer how it is: nothing is sent to a printer
//! that is stopped, empty or offline, and a transient fault puts the job back with backoff instead
//! of dropping it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::health::Health;
use super::session::SessionFiles;
use crate::clock;
use crate::hw::printer::{PrintError, PrintRequest, Printer, PrinterStatus};
use crate::layout::receipt::{self, Receipt};
use crate::store::{jobs, media, orders, sessions, JobStatus, PrintJob, Store};

/// How often the printer's state is checked while nothing else happens; also the longest a job
/// queued by another process (the CLI) waits.
const POLL: Duration = Duration::from_secs(5);
/// How often the printer's state is refreshed while a job is out: a job that gets stuck, or a
/// printer that fails under it, blocks new sessions within seconds instead of after the job is
/// given up.
const WATCH_EVERY: Duration = Duration::from_secs(2);
/// How often a queue the spooler stopped by itself is resumed while paid jobs wait.
const AUTO_RESUME_EVERY: Duration = Duration::from_secs(60);
/// After a store error, wait before trying again rather than spinning.
const STORE_RETRY: Duration = Duration::from_secs(2);
/// While the store keeps failing, its first failure and then one in this many are logged (about a
/// line a minute): a disk can stay full for hours, and journald writes to the same card.
const STORE_LOG_EVERY: u32 = 30;
/// Retry backoff after a transient printer fault: 2 s doubling, capped, forever. A paid job is
/// never dropped for a printer that is merely unplugged or busy.
const BACKOFF_BASE_MS: i64 = 2_000;
const BACKOFF_MAX_MS: i64 = jobs::LONGEST_WAIT_MS;

pub struct PrintLoop {
    pub store: Arc<Store>,
    pub printer: Arc<dyn Printer>,
    pub health: Arc<Health>,
    pub booth_name: String,
    pub warn_below: u32,
    /// Where kiosk sessions keep their composed pages.
    pub data_dir: std::path::PathBuf,
    /// `[digital] qr_on_print`: the download link's QR on session pages.
    pub print_qr: Option<crate::digital::PrintQr>,
}

pub fn backoff_ms(attempts: u32) -> i64 {
    let exp = attempts.saturating_sub(1).min(16);
    (BACKOFF_BASE_MS << exp).min(BACKOFF_MAX_MS)
}

enum Drained {
    /// Nothing due; the next queued job (if any) is due at this time.
    Idle(Option<i64>),
    /// The printer cannot print or just failed: check its state again before the next job.
    PrinterTrouble,
}

impl PrintLoop {
    pub async fn run(self, mut wake: mpsc::Receiver<i64>, mut shutdown: watch::Receiver<bool>) {
        self.requeue_interrupted(&shutdown).await;
        tracing::info!(printer = self.printer.backend(), "print loop started");
        let mut last_auto_resume = None;
        loop {
            self.health.print_loop_beat(clock::mono_ms());
            let wait = match self.check_printer(&mut last_auto_resume).await {
                true => match self.drain(&shutdown).await {
                    Drained::Idle(Some(due)) => {
                        Duration::from_millis((due - clock::now_ms()).clamp(0, POLL.as_millis() as i64) as u64)
                    }
                    Drained::Idle(None) => POLL,
                    Drained::PrinterTrouble => POLL.min(Duration::from_secs(1)),
                },
                false => POLL,
            };
            if *shutdown.borrow() {
                break;
            }
            tokio::select! {
                woken = wake.recv() => {
                    if woken.is_none() { break; }
                }
                _ = shutdown.changed() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!("print loop stopped");
    }

    /// Runs blocking work (store, printer) off the async threads. `None` if the task died.
    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce(&PrintLoop) -> T + Send + 'static) -> Option<T> {
        let me = PrintLoop {
            store: self.store.clone(),
            printer: self.printer.clone(),
            health: self.health.clone(),
            booth_name: self.booth_name.clone(),
            warn_below: self.warn_below,
            data_dir: self.data_dir.clone(),
            print_qr: self.print_qr.clone(),
        };
        match tokio::task::spawn_blocking(move || f(&me)).await {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!(error = %e, "print loop task failed");
                None
            }
        }
    }

    /// Refreshes the printer's state and the media counter in `Health`, resumes a queue that
    /// stopped without an error reason, and says whether jobs may be sent now.
    async fn check_printer(&self, last_auto_resume: &mut Option<Instant>) -> bool {
        let due = last_auto_resume.is_none_or(|at| at.elapsed() >= AUTO_RESUME_EVERY);
        let checked = self
            .blocking(move |s| {
                let mut status = s.printer.status();
                let mut resumed = false;
                if due && stopped_by_its_own_error(&status) && s.store.read(jobs::counts).is_ok_and(|c| c.queued > 0) {
                    // CUPS stops a queue after a backend error (ribbon out, cable pulled) and never
                    // restarts it, even once the owner has fixed the printer. With paid jobs
                    // waiting, try again once a minute as an operator would; a queue paused by
                    // hand (`cupsdisable`) is left alone.
                    resumed = true;
                    match s.printer.resume() {
                        Ok(_) => {
                            tracing::warn!(reasons = ?status.reasons, "printer queue was stopped by a printer error; resumed it to retry the waiting jobs");
                            status = s.printer.status();
                        }
                        Err(e) => tracing::warn!(error = %e, "printer queue is stopped and cannot be resumed"),
                    }
                }
                if s.store.write_fault().is_some() {
                    // Nothing else writes while out of service; this is how the booth notices
                    // that space is back.
                    s.store.probe_write();
                }
                let media = s.store.read(media::get);
                (status, media, resumed)
            })
            .await;
        let Some((status, media, resumed)) = checked else {
            return false;
        };
        if resumed {
            *last_auto_resume = Some(Instant::now());
        }
        self.publish(status.clone());
        match media {
            Ok(m) => self.health.set_media(m),
            Err(e) => tracing::error!(error = %e, "cannot read the media counter"),
        }
        // Not `blocker()`: an event whose cap is reached must still print its last orders.
        status.state.can_print() && self.health.print_blocker().is_none()
    }

    /// Puts the printer's state in `Health` (which the kiosk and `/api/status` read), logging changes.
    fn publish(&self, status: PrinterStatus) {
        let previous = self.health.printer_state();
        if previous.as_ref().map(|p| (p.state, &p.reasons)) != Some((status.state, &status.reasons)) {
            if status.state.can_print() {
                tracing::info!(state = ?status.state, reasons = ?status.reasons, "printer state");
            } else {
                tracing::warn!(state = ?status.state, reasons = ?status.reasons, "printer cannot print; paid sessions are refused until it can");
            }
        }
        self.health.set_printer(status);
    }

    /// Awaits `printing` while refreshing the printer's state every `WATCH_EVERY`.
    async fn watching<T>(&self, printing: impl std::future::Future<Output = T>) -> T {
        tokio::pin!(printing);
        let mut tick = tokio::time::interval(WATCH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        // The first tick is immediate; the state was read just before the job was claimed.
        tick.tick().await;
        loop {
            tokio::select! {
                out = &mut printing => return out,
                _ = tick.tick() => {
                    if let Some(status) = self.blocking(|s| s.printer.status()).await {
                        self.publish(status);
                    }
                }
            }
        }
    }

    /// Prints due jobs until none is left, the printer has trouble, or shutdown starts.
    async fn drain(&self, shutdown: &watch::Receiver<bool>) -> Drained {
        let mut store_failures = 0;
        while !*shutdown.borrow() {
            let claimed = self
                .blocking(|s| {
                    s.store.write(|tx| {
                        let now = clock::now_ms();
                        Ok(match jobs::claim_next(tx, now)? {
                            Some(job) => Ok(job),
                            None => Err(jobs::next_due(tx)?),
                        })
                    })
                })
                .await;
            let job = match claimed {
                Some(Ok(Ok(job))) => job,
                Some(Ok(Err(next_due))) => return Drained::Idle(next_due),
                Some(Err(e)) => {
                    self.store_failed(&mut store_failures, |n| {
                        tracing::error!(error = %e, failures = n, "print loop cannot read the queue");
                    })
                    .await;
                    continue;
                }
                None => return Drained::PrinterTrouble,
            };
            if !self.print(job, shutdown).await {
                return Drained::PrinterTrouble;
            }
        }
        Drained::Idle(None)
    }

    /// Jobs a crash left `printing` go back to the queue before anything is claimed. A store that
    /// takes no writes at start (a full disk) is waited for: a job left `printing` never prints.
    async fn requeue_interrupted(&self, shutdown: &watch::Receiver<bool>) {
        let mut store_failures = 0;
        while !*shutdown.borrow() {
            match self
                .blocking(|s| s.store.write(|tx| jobs::requeue_interrupted(tx, clock::now_ms())))
                .await
            {
                Some(Ok(ids)) => {
                    if !ids.is_empty() {
                        tracing::warn!(
                            ?ids,
                            "print jobs interrupted by a restart are queued again; they may have printed already"
                        );
                    }
                    return;
                }
                Some(Err(e)) => {
                    self.store_failed(&mut store_failures, |n| {
                        tracing::error!(error = %e, failures = n, "cannot requeue interrupted print jobs; retrying");
                    })
                    .await;
                }
                None => return,
            }
        }
    }

    /// One more store failure in a row (`failures` counts them): `log` says so for the first and
    /// then one in `STORE_LOG_EVERY`, then this waits before the next try. The loop is waiting for
    /// the disk, not stuck: it tells the watchdog so, since a restart would forget how the print it
    /// holds ended.
    async fn store_failed(&self, failures: &mut u32, log: impl FnOnce(u32)) {
        *failures += 1;
        if *failures % STORE_LOG_EVERY == 1 {
            log(*failures);
        }
        self.health.print_loop_beat(clock::mono_ms());
        tokio::time::sleep(STORE_RETRY).await;
    }

    /// Prints one claimed job and records the outcome. False when the printer failed.
    async fn print(&self, job: PrintJob, shutdown: &watch::Receiver<bool>) -> bool {
        tracing::info!(
            order_id = job.order_id,
            job_id = job.id,
            copies = job.copies,
            attempt = job.attempts,
            may_have_printed = job.may_have_printed,
            "printing"
        );
        if job.forced {
            tracing::warn!(
                order_id = job.order_id,
                job_id = job.id,
                "printing a reprint of a REFUNDED order, forced with `photoboothd reprint --force`"
            );
        }
        let job_id = job.id;
        self.health.print_started(clock::mono_ms());
        let outcome = self.watching(self.blocking(move |s| s.render_and_print(&job))).await;
        self.health.print_finished(clock::mono_ms());
        let Some((job, outcome)) = outcome else { return false };
        let now = clock::now_ms();
        let ok = outcome.is_ok();
        // The outcome must reach the store: a job left `printing` would never be retried (if it
        // failed) or would print again after a restart (if it succeeded). A full or read-only disk
        // clears up, so keep trying until it does or the daemon stops.
        let mut store_failures = 0;
        let saved = loop {
            let (job, outcome) = (job.clone(), outcome.clone());
            let attempt = self
                .blocking(move |s| s.store.write(|tx| record(tx, job, outcome, now)))
                .await;
            match attempt {
                Some(Err(e)) if !*shutdown.borrow() => {
                    self.store_failed(&mut store_failures, |n| {
                        tracing::error!(job_id, error = %e, failures = n, "cannot record the print result; retrying");
                    })
                    .await;
                }
                other => break other,
            }
        };
        match saved {
            Some(Ok((job, Ok(()), media))) => {
                tracing::info!(order_id = job.order_id, job_id = job.id, copies = job.copies, "printed");
                if let Some(m) = media {
                    self.health.set_media(Some(m));
                    if m.remaining < i64::from(self.warn_below) {
                        tracing::warn!(
                            media_left = m.remaining,
                            capacity = m.capacity,
                            "printer media is running low"
                        );
                    }
                }
            }
            Some(Ok((job, Err(e), _))) if e.transient => tracing::warn!(order_id = job.order_id, job_id = job.id,
                attempt = job.attempts, retry_in_ms = backoff_ms(job.attempts), may_have_printed = e.may_have_printed,
                error = %e, "print failed; will retry"),
            Some(Ok((job, Err(e), _))) => tracing::error!(order_id = job.order_id, job_id = job.id,
                may_have_printed = e.may_have_printed, error = %e,
                "print failed and needs a technician (`photoboothd printer resume` requeues it)"),
            Some(Err(e)) => tracing::error!(job_id, error = %e, "cannot record the print result"),
            None => {}
        }
        ok
    }

    fn render_and_print(&self, job: &PrintJob) -> (PrintJob, Result<(), PrintError>) {
        let order = match self.store.read(|c| orders::get(c, job.order_id)) {
            Ok(Some(order)) => order,
            Ok(None) => return (job.clone(), Err(PrintError::permanent("the job's order is missing"))),
            Err(e) => {
                return (
                    job.clone(),
                    Err(PrintError::transient(format!("cannot read the order: {e}"))),
                )
            }
        };
        let page = match self.session_page(&order) {
            Ok(Some(page)) => match &self.print_qr {
                Some(qr) => qr.apply(&self.store, order.id, page),
                None => page,
            },
            Ok(None) => {
                let r = Receipt {
                    booth_name: &self.booth_name,
                    order_id: order.id,
                    copies: order.copies,
                    amount_tiyin: order.amount_tiyin,
                    paid_at: order.paid_at.unwrap_or(order.created_at),
                };
                // At the driver's page size when it has one, so nothing stretches it.
                match self.printer.page_size() {
                    Some(page) => receipt::render_on(&r, page, self.printer.strips()),
                    None => receipt::render(&r),
                }
            }
            Err(e) => return (job.clone(), Err(e)),
        };
        let request = PrintRequest {
            job_id: job.id,
            order_id: order.id,
            copies: job.copies,
            page: &page,
        };
        (job.clone(), self.printer.print(&request))
    }
}

/// Writes a print's outcome: printed (and counted off the media), back to the queue with
/// backoff, or failed for a technician.
type Recorded = (PrintJob, Result<(), PrintError>, Option<media::Media>);

fn record(
    tx: &rusqlite::Connection,
    job: PrintJob,
    outcome: Result<(), PrintError>,
    now: i64,
) -> rusqlite::Result<Recorded> {
    match &outcome {
        Ok(()) => {
            jobs::finish(tx, job.id, JobStatus::Printed, None, false, now)?;
            let media = media::consume(tx, job.copies, now)?;
            Ok((job, outcome, media))
        }
        Err(e) if e.transient => {
            let next = now + backoff_ms(job.attempts);
            jobs::retry_later(tx, job.id, &e.message, e.may_have_printed, next, now)?;
            Ok((job, outcome, None))
        }
        Err(e) => {
            jobs::finish(tx, job.id, JobStatus::Failed, Some(&e.message), e.may_have_printed, now)?;
            Ok((job, outcome, None))
        }
    }
}

impl PrintLoop {
    /// The page a kiosk session composed for this order; `None` for an order made without a
    /// session (the API or `pay` on their own), which prints a receipt-style page instead.
    fn session_page(&self, order: &orders::Order) -> Result<Option<image::RgbImage>, PrintError> {
        let session = self
            .store
            .read(|c| sessions::for_order(c, order.id))
            .map_err(|e| PrintError::transient(format!("cannot read the order's session: {e}")))?;
        let Some(session) = session else { return Ok(None) };
        if let (Some(ended), Some(paid)) = (session.ended_at, order.paid_at) {
            if ended < paid {
                tracing::warn!(
                    order_id = order.id,
                    session_id = session.id,
                    "payment arrived after the customer left; printing the session anyway"
                );
            }
        }
        let path = SessionFiles::new(&self.data_dir, session.id).page();
        image::open(&path)
            .map(|img| Some(img.to_rgb8()))
            .map_err(|e| PrintError::permanent(format!("cannot read the session's page {}: {e}", path.display())))
    }
}

/// A queue the spooler stopped itself after the printer failed, as opposed to one paused by hand:
/// the printer says so (older CUPS), or the CUPS backend saw it stop under our job (CUPS 2.4 puts
/// the reason on the job, not the printer).
fn stopped_by_its_own_error(status: &PrinterStatus) -> bool {
    !status.state.can_print()
        && status
            .reasons
            .iter()
            .any(|r| r.contains("stopped due to backend errors") || r == crate::hw::printer::cups::STOPPED_BY_BACKEND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_resume_is_for_queues_the_printer_stopped() {
        let stopped = |reasons: &[&str]| PrinterStatus {
            state: crate::hw::printer::PrinterState::Stopped,
            reasons: reasons.iter().map(|r| r.to_string()).collect(),
        };
        assert!(stopped_by_its_own_error(&stopped(&[
            "paused",
            crate::hw::printer::cups::STOPPED_BY_BACKEND
        ])));
        assert!(stopped_by_its_own_error(&stopped(&[
            "message: Printer stopped due to backend errors; please consult the error_log file for details."
        ])));
        assert!(!stopped_by_its_own_error(&stopped(&["paused", "message: Paused"])));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_ms(1), 2_000);
        assert_eq!(backoff_ms(2), 4_000);
        assert_eq!(backoff_ms(5), 32_000);
        assert_eq!(backoff_ms(6), 60_000);
        assert_eq!(backoff_ms(1000), 60_000);
    }
}
