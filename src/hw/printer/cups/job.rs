//! One CUPS job's lifecycle: `lp` submits it, `wait` follows it until CUPS says it is finished (or
//! the queue stays stopped past the grace, or the time runs out), `give_up` cancels it so that a retry
//! cannot print the page twice, and `adopt` takes over a job an earlier attempt (before a restart)
//! sent.
//!
//! `print` waits for its job because dye-subs misbehave when a second job arrives while the first
//! still prints (a Selphy hangs, a CP1500 sits in "processing" for a minute), and only a finished job
//! may be recorded as printed. `may_have_printed` is set when the job had reached the printer (CUPS
//! started processing it) before it was cancelled.

use std::path::Path;
use std::time::Instant;

use super::parse::{
    classify, describe, first_line, is_missing_queue, lp_error, parse_cancel, parse_jobs, parse_request_id,
    request_on_queue, same_request, Ended, JobEntry,
};
use super::watch::{never_reached_device, stuck_reason};
use super::{job_title, CupsPrinter};
use crate::hw::printer::{PrintError, PrintRequest};

enum ListError {
    QueueMissing,
    Other(String),
}

impl CupsPrinter {
    /// The `lp` argument list (without the file), as its own function for the unit tests.
    pub(super) fn lp_args(&self, r: &PrintRequest<'_>) -> Vec<String> {
        let mut args = vec!["-d".to_string(), self.queue.clone(), "-n".into(), r.copies.to_string()];
        if let Some(m) = &self.media {
            args.push("-o".into());
            args.push(format!("media={m}"));
        }
        for option in &self.options {
            args.push("-o".into());
            args.push(option.clone());
        }
        args.push("-t".into());
        args.push(job_title(r.job_id, r.order_id));
        args
    }

    pub(super) fn submit(&self, r: &PrintRequest<'_>, file: &Path) -> Result<String, PrintError> {
        let mut args = self.lp_args(r);
        let file = file.to_string_lossy().into_owned();
        args.push(file);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.run("lp", &args).map_err(|e| {
            // Killed while submitting: the job may or may not be in CUPS now.
            let mut err = PrintError::transient(format!("cups: lp to queue {}: {e}", self.queue));
            err.may_have_printed = e.contains("killed");
            err
        })?;
        if !out.success {
            if is_missing_queue(&out.stderr) && !self.queue_really_missing() {
                return Err(PrintError::transient(format!(
                    "cups: the CUPS scheduler is not running ({})",
                    first_line(&out.stderr)
                )));
            }
            return Err(lp_error(&self.queue, &out.stderr));
        }
        parse_request_id(&out.stdout).ok_or_else(|| {
            // lp said yes but we cannot tell which job it made: it will probably print, so a retry
            // could print twice. A person has to look.
            PrintError::permanent(format!(
                "cups: lp accepted the job but printed no request id: {:?}",
                out.stdout.trim()
            ))
            .maybe_printed(true)
        })
    }

    /// Our job among the queue's unfinished jobs, or `None` once it has left them.
    fn find_unfinished(&self, request: &str) -> Result<Option<JobEntry>, ListError> {
        let out = self
            .run("lpstat", &["-l", "-W", "not-completed", "-o", &self.queue])
            .map_err(ListError::Other)?;
        if !out.success || is_missing_queue(&out.stderr) {
            return Err(if is_missing_queue(&out.stderr) && self.queue_really_missing() {
                ListError::QueueMissing
            } else {
                ListError::Other(first_line(&out.stderr))
            });
        }
        Ok(parse_jobs(&out.stdout)
            .into_iter()
            .find(|j| same_request(&j.id, request)))
    }

    fn in_finished_list(&self, request: &str) -> Result<bool, String> {
        let out = self.run("lpstat", &["-W", "completed", "-o", &self.queue])?;
        if !out.success {
            return Err(first_line(&out.stderr));
        }
        Ok(parse_jobs(&out.stdout).iter().any(|j| same_request(&j.id, request)))
    }

    /// How a job that is known to be finished (completed, cancelled or aborted) ended. lpstat does
    /// not show it (CUPS reports `processing-to-stop-point` for all three), but Cancel-Job on a
    /// finished job fails naming its state, and cannot change a finished job.
    fn finished_how(&self, request: &str) -> Ended {
        match self.run("cancel", &[request]) {
            Ok(out) => parse_cancel(&out),
            Err(e) => Ended::Unknown(e),
        }
    }

    /// Waits for `request` (ours, for `job_id`) to finish; gives it up when the queue stays stopped
    /// or the job stays stuck, or the time runs out. Each poll is noted in the watch, so `status()`
    /// shows a stuck job while it waits.
    pub(super) fn wait(&self, job_id: i64, request: &str, copies: u32) -> Result<(), PrintError> {
        let result = self.wait_for(job_id, request, copies);
        self.watch.job_ended();
        result
    }

    fn wait_for(&self, job_id: i64, request: &str, copies: u32) -> Result<(), PrintError> {
        let started = Instant::now();
        let deadline = started + self.timing.job_timeout(copies);
        let mut processed = false;
        let mut refused = false;
        let mut stopped_since: Option<Instant> = None;
        let mut last_hiccup: Option<String> = None;
        loop {
            match self.find_unfinished(request) {
                Ok(Some(job)) => {
                    let view = self.queue_view().ok();
                    if let Some(v) = &view {
                        if v.printing.as_deref().is_some_and(|p| same_request(p, request)) {
                            processed = true;
                        }
                    }
                    self.watch.job_seen(&job, view.as_ref());
                    // A backend that could not reach the device printed nothing, whatever CUPS
                    // started; one that ran and then failed may have printed some of the copies.
                    if never_reached_device(&job) {
                        refused = true;
                    } else if job.was_processed() {
                        processed = true;
                        refused = false;
                    }
                    let blocked = stuck_reason(&job, view.as_ref()).map(|why| match &view {
                        Some(v) if v.disabled => format!(
                            "job {request} is {why}; queue {} stopped ({})",
                            self.queue,
                            describe(&classify(v).reasons)
                        ),
                        _ => format!("job {request} is {why}"),
                    });
                    match blocked {
                        Some(why) => {
                            let since = *stopped_since.get_or_insert_with(Instant::now);
                            if since.elapsed() >= self.timing.stop_grace {
                                let why = format!(
                                    "{why} and was not resumed within {} s",
                                    self.timing.stop_grace.as_secs()
                                );
                                return self.give_up(job_id, request, &why, processed && !refused);
                            }
                        }
                        None => stopped_since = None,
                    }
                }
                Ok(None) => return self.finished(job_id, request, processed),
                Err(ListError::QueueMissing) => {
                    // Deleting a queue cancels its jobs: nothing of ours is left to print.
                    self.journal.remove(job_id);
                    let message = format!("cups: queue {} was deleted while job {request} waited", self.queue);
                    return Err(PrintError::permanent(message).maybe_printed(processed));
                }
                // A scheduler restart or a slow answer: keep asking until the deadline.
                Err(ListError::Other(e)) => last_hiccup = Some(e),
            }
            if Instant::now() >= deadline {
                let mut why = format!("job {request} did not finish within {} s", started.elapsed().as_secs());
                if let Some(e) = last_hiccup {
                    why.push_str(&format!(" (last lpstat error: {e})"));
                }
                return self.give_up(job_id, request, &why, processed && !refused);
            }
            std::thread::sleep(self.timing.poll);
        }
    }

    /// `request` has left the unfinished jobs: find out whether it printed.
    fn finished(&self, job_id: i64, request: &str, processed: bool) -> Result<(), PrintError> {
        // Only a job confirmed in the finished list is probed with `cancel`, so the probe can never
        // cancel a live job that a flaky listing missed.
        let ended = match self.in_finished_list(request) {
            Ok(true) => self.finished_how(request),
            // Gone from both lists: CUPS keeps no history (PreserveJobHistory No) or it was purged.
            // It was ours and left the queue, so it most likely printed.
            Ok(false) => Ended::Vanished,
            Err(e) => Ended::Unknown(e),
        };
        self.journal.remove(job_id);
        match ended {
            Ended::Completed => Ok(()),
            // Lost by CUPS (purged, a wiped spool) or its state unreadable: it may not have printed,
            // and a paid print is never counted done on a guess. The technician looks at the tray
            // and decides (`printer resume` prints it again).
            Ended::Vanished | Ended::Unknown(_) => {
                let why = match &ended {
                    Ended::Unknown(e) => format!("its state cannot be read ({e})"),
                    _ => "CUPS has no record of how it ended".to_string(),
                };
                Err(PrintError::permanent(format!(
                    "cups: job {request} left the queue but {why}: it may not have printed; check the printer, then `photoboothd printer resume` prints it again"
                ))
                .maybe_printed(true))
            }
            // Someone cancelled it in CUPS (web page, `cancel`): they had a reason, so no automatic
            // retry; the technician decides.
            Ended::Canceled => Err(PrintError::permanent(format!(
                "cups: job {request} was cancelled in CUPS by someone else"
            ))
            .maybe_printed(processed)),
            Ended::Aborted => Err(PrintError::permanent(format!(
                "cups: CUPS aborted job {request} (a driver or filter error; see /var/log/cups/error_log)"
            ))
            .maybe_printed(processed)),
            // Cannot happen: `cancel` succeeded on a job listed as finished.
            Ended::Live => Err(PrintError::transient(format!(
                "cups: job {request} was listed finished but was still live; it is cancelled now"
            ))
            .maybe_printed(processed)),
        }
    }

    /// Cancels `request` so that a later attempt cannot print the page a second time, and returns
    /// the transient error the print loop retries on.
    fn give_up(&self, job_id: i64, request: &str, why: &str, processed: bool) -> Result<(), PrintError> {
        let outcome = match self.run("cancel", &[request]) {
            Ok(out) => parse_cancel(&out),
            Err(e) => Ended::Unknown(e),
        };
        match outcome {
            // It finished between our last look and the cancel: it printed.
            Ended::Completed => {
                self.journal.remove(job_id);
                Ok(())
            }
            Ended::Live | Ended::Canceled | Ended::Aborted | Ended::Vanished => {
                self.journal.remove(job_id);
                Err(PrintError {
                    message: format!("cups: {why}; cancelled job {request} so a retry prints it once"),
                    transient: true,
                    may_have_printed: processed,
                })
            }
            // Still in CUPS and may print when the queue resumes. The journal keeps it, so the next
            // attempt waits for this job instead of sending another.
            Ended::Unknown(e) => Err(PrintError {
                message: format!("cups: {why}; cannot cancel job {request} ({e}): it may still print"),
                transient: true,
                may_have_printed: true,
            }),
        }
    }

    /// A journal entry says an earlier attempt already sent this job: wait for that one or learn how
    /// it ended. `None` means it is gone without printing and the page must be sent again.
    pub(super) fn adopt(&self, r: &PrintRequest<'_>, request: &str) -> Option<Result<(), PrintError>> {
        if !request_on_queue(request, &self.queue) {
            tracing::warn!(request, queue = %self.queue, "cups: the journal names a job on another queue; ignored");
            self.journal.remove(r.job_id);
            return None;
        }
        match self.find_unfinished(request) {
            Ok(Some(_)) => {
                tracing::info!(
                    job_id = r.job_id,
                    request,
                    "cups: waiting for the job an earlier attempt sent"
                );
                Some(self.wait(r.job_id, request, r.copies))
            }
            Ok(None) => {
                let ended = match self.in_finished_list(request) {
                    Ok(true) => self.finished_how(request),
                    Ok(false) => Ended::Vanished,
                    Err(e) => Ended::Unknown(e),
                };
                match ended {
                    Ended::Completed => {
                        tracing::info!(job_id = r.job_id, request, "cups: an earlier attempt's job has printed");
                        self.journal.remove(r.job_id);
                        Some(Ok(()))
                    }
                    // Cancelled, aborted or unknown to CUPS (a wiped spool): nothing will print it.
                    Ended::Canceled | Ended::Aborted | Ended::Vanished | Ended::Live => {
                        self.journal.remove(r.job_id);
                        None
                    }
                    Ended::Unknown(e) => Some(Err(PrintError {
                        message: format!("cups: cannot learn how job {request} of an earlier attempt ended: {e}"),
                        transient: true,
                        may_have_printed: true,
                    })),
                }
            }
            Err(ListError::QueueMissing) => {
                self.journal.remove(r.job_id);
                Some(Err(PrintError::permanent(format!(
                    "cups: queue {} does not exist",
                    self.queue
                ))))
            }
            Err(ListError::Other(e)) => Some(Err(PrintError {
                message: format!("cups: cannot check job {request} of an earlier attempt: {e}"),
                transient: true,
                may_have_printed: true,
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use image::RgbImage;

    use super::*;

    #[test]
    fn lp_arguments_carry_copies_media_options_and_ids() {
        let printer = CupsPrinter::new("DNP_DS620", Some("w288h432-div2"), &["StpLaminate=Glossy".into()]).unwrap();
        let page = RgbImage::new(1, 1);
        let args = printer.lp_args(&PrintRequest {
            job_id: 41,
            order_id: 7,
            copies: 3,
            page: &page,
        });
        assert_eq!(
            args,
            [
                "-d",
                "DNP_DS620",
                "-n",
                "3",
                "-o",
                "media=w288h432-div2",
                "-o",
                "StpLaminate=Glossy",
                "-t",
                "photoboothd job 41 order 7"
            ]
        );
        let bare = CupsPrinter::new("q", None, &[]).unwrap();
        assert_eq!(
            bare.lp_args(&PrintRequest {
                job_id: 1,
                order_id: 2,
                copies: 1,
                page: &page
            }),
            ["-d", "q", "-n", "1", "-t", "photoboothd job 1 order 2"]
        );
    }
}
