//! What `status()` knows beyond `lpstat -p`: how the job `print` is waiting for is doing, and why
//! the queue stopped.
//!
//! CUPS shows a failing dye-sub on the job more than on the printer: with Debian's default
//! `ErrorPolicy retry-job` a backend that fails leaves the printer `idle` and the job `pending-held`
//! (`resources-are-not-ready`) for minutes; with `stop-printer` the queue stops and the job says
//! `printer-stopped`. The wait loop notes each poll here, so that while a job is out the booth's
//! status (and so its blockers) follows the job within a poll, and the print loop can tell a queue
//! our backend stopped (which it may resume) from one paused by hand (which it leaves alone).

use std::sync::{Mutex, MutexGuard};

use super::parse::{JobEntry, QueueView};
use crate::hw::printer::{PrinterState, PrinterStatus};

/// The reason `status()` adds while the queue is stopped because our job's backend failed; the
/// print loop's auto-resume looks for it.
pub const STOPPED_BY_BACKEND: &str = "cups-stopped-by-backend";

#[derive(Debug, Default)]
struct State {
    /// The job being waited for, and why it is stuck if it is.
    job: Option<(String, Option<String>)>,
    /// The queue was seen enabled while the job was out.
    saw_enabled: bool,
    /// The queue stopped while our job was out (CUPS's `stop-printer` after a backend error).
    stopped_by_backend: bool,
}

#[derive(Debug, Default)]
pub(super) struct Watch {
    state: Mutex<State>,
}

/// Why a job will not print by itself soon, from its `Alerts:` (job-state-reasons) and the queue.
pub(super) fn stuck_reason(job: &JobEntry, view: Option<&QueueView>) -> Option<String> {
    let has = |k: &str| job.alerts.iter().any(|a| a.contains(k));
    let status = job.status.as_deref().filter(|s| !s.is_empty());
    let detail = status.map(|s| format!(" ({s})")).unwrap_or_default();
    if job.is_held() {
        Some(format!("held{detail}"))
    } else if has("resources-are-not-ready") {
        Some(format!(
            "held by CUPS after its backend failed: resources-are-not-ready{detail}"
        ))
    } else if has("stopped") || view.is_some_and(|v| v.disabled) {
        Some(format!("stopped{detail}"))
    } else {
        None
    }
}

/// Whether the job's backend refused it before anything reached the device: CUPS holds such a job
/// as `resources-are-not-ready`, and the backend says it could not open or reach the device.
pub(super) fn never_reached_device(job: &JobEntry) -> bool {
    let status = job.status.as_deref().unwrap_or_default().to_ascii_lowercase();
    job.alerts.iter().any(|a| a == "resources-are-not-ready")
        || ["unable to open", "unable to connect", "no such file", "not connected"]
            .iter()
            .any(|s| status.contains(s))
}

impl Watch {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One poll of the wait loop: the job as listed, and the queue if it could be read.
    pub(super) fn job_seen(&self, job: &JobEntry, view: Option<&QueueView>) {
        let mut st = self.state();
        st.job = Some((job.id.clone(), stuck_reason(job, view)));
        match view.map(|v| v.disabled) {
            Some(false) => st.saw_enabled = true,
            Some(true) if st.saw_enabled => st.stopped_by_backend = true,
            _ => {}
        }
        if job.was_processed() && job.alerts.iter().any(|a| a == "printer-stopped") {
            st.stopped_by_backend = true;
        }
        if job
            .status
            .as_deref()
            .is_some_and(|s| s.contains("stopped due to backend errors"))
        {
            st.stopped_by_backend = true;
        }
    }

    /// The job is no longer being waited for.
    pub(super) fn job_ended(&self) {
        let mut st = self.state();
        st.job = None;
        st.saw_enabled = false;
    }

    /// Adds what the job and the stop's cause say to a status read from `lpstat -p` (`view`, when
    /// the queue could be read).
    pub(super) fn overlay(&self, status: &mut PrinterStatus, view: Option<&QueueView>) {
        let mut st = self.state();
        if view.is_some_and(|v| !v.disabled) {
            st.stopped_by_backend = false;
        }
        if st.stopped_by_backend {
            status.reasons.push(STOPPED_BY_BACKEND.to_string());
        }
        if let Some((request, Some(why))) = &st.job {
            // A more specific printer state (media empty, an error) stays: it names the fix.
            if status.state.can_print() {
                status.state = PrinterState::JobStuck;
            }
            status.reasons.push(format!("cups-job-stuck: {request} {why}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(alerts: &[&str], status: Option<&str>) -> JobEntry {
        JobEntry {
            id: "DNP-4".into(),
            user: "kiosk".into(),
            status: status.map(str::to_string),
            alerts: alerts.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn view(disabled: bool) -> QueueView {
        QueueView {
            found: true,
            idle: !disabled,
            disabled,
            ..QueueView::default()
        }
    }

    #[test]
    fn a_job_held_after_its_backend_failed_is_stuck_and_never_reached_the_device() {
        let held = job(&["resources-are-not-ready"], Some("capture backend told to exit 1"));
        assert!(stuck_reason(&held, Some(&view(false)))
            .unwrap()
            .contains("resources-are-not-ready"));
        assert!(never_reached_device(&held));
        let w = Watch::default();
        w.job_seen(&held, Some(&view(false)));
        let mut s = PrinterStatus::new(PrinterState::Ready);
        w.overlay(&mut s, Some(&view(false)));
        assert_eq!(s.state, PrinterState::JobStuck);
        assert!(s.reasons[0].starts_with("cups-job-stuck: DNP-4 held by CUPS"), "{s:?}");
        // A media error on the printer names the fix and stays the state.
        let mut s = PrinterStatus::new(PrinterState::MediaEmpty);
        w.overlay(&mut s, Some(&view(false)));
        assert_eq!(s.state, PrinterState::MediaEmpty);
        w.job_ended();
        let mut s = PrinterStatus::new(PrinterState::Ready);
        w.overlay(&mut s, Some(&view(false)));
        assert_eq!(s, PrinterStatus::new(PrinterState::Ready));
    }

    #[test]
    fn a_queue_that_stops_under_our_job_was_stopped_by_its_backend() {
        let w = Watch::default();
        let printing = job(&["job-printing"], Some(""));
        w.job_seen(&printing, Some(&view(false)));
        let waiting = job(&["none"], None);
        w.job_seen(&waiting, Some(&view(true)));
        w.job_ended();
        let mut s = PrinterStatus::new(PrinterState::Stopped);
        w.overlay(&mut s, Some(&view(true)));
        assert!(s.reasons.contains(&STOPPED_BY_BACKEND.to_string()));
        // Once the queue runs again the mark goes.
        w.overlay(&mut PrinterStatus::new(PrinterState::Ready), Some(&view(false)));
        let mut s = PrinterStatus::new(PrinterState::Stopped);
        w.overlay(&mut s, Some(&view(true)));
        assert!(s.reasons.is_empty());
        // A queue already stopped when the job arrived was not stopped by it...
        let w = Watch::default();
        w.job_seen(&waiting, Some(&view(true)));
        let mut s = PrinterStatus::new(PrinterState::Stopped);
        w.overlay(&mut s, Some(&view(true)));
        assert!(!s.reasons.contains(&STOPPED_BY_BACKEND.to_string()));
        // ...unless the job itself says the printer stopped under it.
        w.job_seen(&job(&["printer-stopped"], Some("ribbon out")), Some(&view(true)));
        let mut s = PrinterStatus::new(PrinterState::Stopped);
        w.overlay(&mut s, Some(&view(true)));
        assert!(s.reasons.contains(&STOPPED_BY_BACKEND.to_string()));
    }

    #[test]
    fn held_and_stopped_jobs_are_stuck_waiting_ones_are_not() {
        assert!(stuck_reason(&job(&["job-hold-until-specified"], None), None).is_some());
        assert!(stuck_reason(&job(&["printer-stopped"], Some("x")), None).is_some());
        assert!(stuck_reason(&job(&["none"], None), Some(&view(true))).is_some());
        assert_eq!(
            stuck_reason(&job(&["job-printing"], Some("")), Some(&view(false))),
            None
        );
        assert_eq!(stuck_reason(&job(&[], None), None), None);
        assert!(!never_reached_device(&job(&["printer-stopped"], Some("ribbon out"))));
    }
}
