//! The print loop: takes queued jobs from SQLite and hands them to the printer.
//!
//! The channel only says "look now"; the store says what to print. So a wake-up lost to a crash,
//! a full channel or a restart costs nothing: the loop scans the queue at start-up, on every wake
//! and on a slow timer, and jobs a crash left half-printed go back to the queue first.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::clock;
use crate::hw::printer::{PrintRequest, Printer};
use crate::layout::receipt::{self, Receipt};
use crate::store::{jobs, orders, JobStatus, PrintJob, Store};

/// A belt-and-braces rescan, in case a job is queued by another process (the CLI).
const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// After a store error, wait before trying again rather than spinning.
const STORE_RETRY: Duration = Duration::from_secs(2);

pub struct PrintLoop {
    pub store: Arc<Store>,
    pub printer: Arc<dyn Printer>,
    pub booth_name: String,
}

impl PrintLoop {
    pub async fn run(self, mut wake: mpsc::Receiver<i64>, mut shutdown: watch::Receiver<bool>) {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.write(|tx| jobs::requeue_interrupted(tx, clock::now_ms())))
            .await
        {
            Ok(Ok(ids)) if !ids.is_empty() => {
                tracing::warn!(
                    ?ids,
                    "print jobs interrupted by a restart are queued again; they may have printed already"
                );
            }
            Ok(Err(e)) => tracing::error!(error = %e, "cannot requeue interrupted print jobs"),
            _ => {}
        }
        tracing::info!(printer = self.printer.backend(), "print loop started");
        loop {
            self.drain(&shutdown).await;
            tokio::select! {
                woken = wake.recv() => {
                    if woken.is_none() { break; }
                }
                _ = shutdown.changed() => break,
                _ = tokio::time::sleep(SWEEP_EVERY) => {}
            }
        }
        tracing::info!("print loop stopped");
    }

    /// Prints queued jobs until none is left or shutdown starts.
    async fn drain(&self, shutdown: &watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            let store = self.store.clone();
            let claimed =
                tokio::task::spawn_blocking(move || store.write(|tx| jobs::claim_next(tx, clock::now_ms()))).await;
            let job = match claimed {
                Ok(Ok(Some(job))) => job,
                Ok(Ok(None)) => return,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "print loop cannot read the queue");
                    tokio::time::sleep(STORE_RETRY).await;
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "print loop task failed");
                    return;
                }
            };
            self.print(job).await;
        }
    }

    async fn print(&self, job: PrintJob) {
        tracing::info!(
            order_id = job.order_id,
            job_id = job.id,
            copies = job.copies,
            attempt = job.attempts,
            "printing"
        );
        let store = self.store.clone();
        let printer = self.printer.clone();
        let booth_name = self.booth_name.clone();
        let job_for_print = job.clone();
        let outcome = tokio::task::spawn_blocking(move || -> Result<(), String> {
            let order = store
                .read(|c| orders::get(c, job_for_print.order_id))
                .map_err(|e| e.to_string())?
                .ok_or("the job's order is missing")?;
            let page = receipt::render(&Receipt {
                booth_name: &booth_name,
                order_id: order.id,
                copies: order.copies,
                amount_tiyin: order.amount_tiyin,
                paid_at: order.paid_at.unwrap_or(order.created_at),
            });
            printer
                .print(&PrintRequest {
                    job_id: job_for_print.id,
                    order_id: order.id,
                    copies: job_for_print.copies,
                    page: &page,
                })
                .map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(format!("print task failed: {e}")));

        let (status, error) = match &outcome {
            Ok(()) => (JobStatus::Printed, None),
            Err(e) => (JobStatus::Failed, Some(e.as_str())),
        };
        let store = self.store.clone();
        let error_owned = error.map(str::to_string);
        let saved = tokio::task::spawn_blocking(move || {
            store.write(|tx| jobs::finish(tx, job.id, status, error_owned.as_deref(), clock::now_ms()))
        })
        .await;
        match (&outcome, saved) {
            (Ok(()), Ok(Ok(()))) => {
                tracing::info!(order_id = job.order_id, job_id = job.id, copies = job.copies, "printed")
            }
            (Err(e), Ok(Ok(()))) => {
                tracing::error!(order_id = job.order_id, job_id = job.id, error = %e, "print failed")
            }
            (_, Ok(Err(e))) => {
                tracing::error!(order_id = job.order_id, job_id = job.id, error = %e, "cannot record the print result")
            }
            (_, Err(e)) => {
                tracing::error!(order_id = job.order_id, job_id = job.id, error = %e, "cannot record the print result")
            }
        }
    }
}
