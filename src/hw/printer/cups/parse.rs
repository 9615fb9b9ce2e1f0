//! What the CUPS tools print, parsed: `lp`'s request id and errors, `cancel`'s verdict on a finished
//! job, `lpstat -l -o` (jobs) and `lpstat -l -p -a` (the queue), and the queue's state for the booth.
//! Pure functions over text; the captured outputs they are tested on are in `tests/fixtures/cups/`.

use crate::hw::printer::{PrintError, PrinterState, PrinterStatus};

/// What a CUPS tool printed.
#[derive(Debug)]
pub(super) struct Output {
    pub(super) success: bool,
    pub(super) stdout: String,
    pub(super) stderr: String,
}

pub(super) fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(no message)")
        .to_string()
}

/// The tools' ways of saying the queue does not exist: lp ("The printer or class does not
/// exist."), lpstat ("Invalid destination name in list"), cupsenable/cupsaccept
/// ("client-error-not-found").
pub(super) fn is_missing_queue(stderr: &str) -> bool {
    let e = stderr.to_ascii_lowercase();
    e.contains("printer or class does not exist")
        || e.contains("invalid destination name")
        || e.contains("unknown destination")
        || e.contains("client-error-not-found")
}

/// Why `lp` refused a job.
pub(super) fn lp_error(queue: &str, stderr: &str) -> PrintError {
    let e = stderr.to_ascii_lowercase();
    let line = first_line(stderr);
    if is_missing_queue(stderr) {
        PrintError::permanent(format!(
            "cups: queue {queue} does not exist (lpstat -p lists the queues)"
        ))
    } else if e.contains("not accepting") {
        // cupsreject, or CUPS after some errors: resume() makes it accept again.
        PrintError::transient(format!("cups: queue {queue} is not accepting jobs: {line}"))
    } else if e.contains("forbidden") || e.contains("not permitted") || e.contains("unauthorized") {
        PrintError::permanent(format!("cups: lp to queue {queue} was refused: {line}"))
    } else if e.contains("unsupported") || e.contains("document-format") {
        PrintError::permanent(format!("cups: queue {queue} does not take the page: {line}"))
    } else {
        // The scheduler is down or busy, the spool is full: no job was made, so a retry is safe.
        PrintError::transient(format!("cups: lp to queue {queue}: {line}"))
    }
}

/// `request id is DNP-42 (1 file(s))` → `DNP-42`.
pub(super) fn parse_request_id(stdout: &str) -> Option<String> {
    let (_, rest) = stdout.split_once("request id is ")?;
    let id = rest.split_whitespace().next()?;
    looks_like_request(id).then(|| id.to_string())
}

/// `queue-123`: queue names may contain `-`, the job number is after the last one.
pub(super) fn looks_like_request(id: &str) -> bool {
    match id.rsplit_once('-') {
        Some((queue, n)) => !queue.is_empty() && !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()),
        None => false,
    }
}

/// CUPS queue names are case-insensitive.
pub(super) fn same_request(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

pub(super) fn request_on_queue(request: &str, queue: &str) -> bool {
    request
        .rsplit_once('-')
        .is_some_and(|(q, _)| q.eq_ignore_ascii_case(queue))
}

/// What `cancel <request>` says about a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ended {
    /// The cancel went through: the job was not finished (and now is cancelled).
    Live,
    Completed,
    Canceled,
    Aborted,
    /// CUPS does not know the job (no job history kept, or the spool was wiped).
    Vanished,
    Unknown(String),
}

pub(super) fn parse_cancel(out: &Output) -> Ended {
    if out.success {
        return Ended::Live;
    }
    let e = out.stderr.to_ascii_lowercase();
    if e.contains("already completed") {
        Ended::Completed
    } else if e.contains("already canceled") || e.contains("already cancelled") {
        Ended::Canceled
    } else if e.contains("already aborted") {
        Ended::Aborted
    } else if e.contains("does not exist") {
        Ended::Vanished
    } else {
        Ended::Unknown(first_line(&out.stderr))
    }
}

/// One job in `lpstat -l -o` output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct JobEntry {
    pub(super) id: String,
    pub(super) user: String,
    /// The `Status:` line (job-printer-state-message), present even when empty.
    pub(super) status: Option<String>,
    /// The `Alerts:` line: job-state-reasons as lpstat shows them.
    pub(super) alerts: Vec<String>,
}

impl JobEntry {
    /// Whether the job has reached the printer at least once. CUPS creates the job's
    /// printer-state-message when it starts processing the job, so lpstat prints a `Status:` line
    /// from then on, even after a stopped queue has put the job back to pending.
    pub(super) fn was_processed(&self) -> bool {
        self.status.is_some()
            || self
                .alerts
                .iter()
                .any(|a| a == "job-printing" || a == "job-transforming")
    }

    /// Held (`lp -H hold`, a default hold, authentication): it will not print until released.
    pub(super) fn is_held(&self) -> bool {
        self.alerts
            .iter()
            .any(|a| a.starts_with("job-hold") || a.contains("held"))
    }
}

/// Parses `lpstat [-l] -o <queue>`:
///
/// ```text
/// DNP-2                   root              1024   Fri Nov 27 18:30:33 2026
///         Status: waiting for paper
///         Alerts: job-printing
///         queued for DNP
/// ```
pub(super) fn parse_jobs(out: &str) -> Vec<JobEntry> {
    let mut jobs: Vec<JobEntry> = Vec::new();
    for line in out.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            let mut words = line.split_whitespace();
            let id = words.next().unwrap_or_default();
            if looks_like_request(id) {
                jobs.push(JobEntry {
                    id: id.to_string(),
                    user: words.next().unwrap_or_default().to_string(),
                    ..JobEntry::default()
                });
            }
            continue;
        }
        let Some(job) = jobs.last_mut() else { continue };
        let text = line.trim();
        if let Some(rest) = text.strip_prefix("Status:") {
            job.status = Some(rest.trim().to_string());
        } else if let Some(rest) = text.strip_prefix("Alerts:") {
            job.alerts = split_keywords(rest);
        }
    }
    jobs
}

/// `media-empty-error marker-supply-low-warning` (space- or comma-separated), without `none`.
fn split_keywords(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty() && *w != "none")
        .map(str::to_string)
        .collect()
}

/// The queue as `lpstat -l -p <queue> -a <queue>` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct QueueView {
    pub(super) found: bool,
    pub(super) idle: bool,
    /// `now printing <request>`.
    pub(super) printing: Option<String>,
    /// `disabled since …`: the queue is stopped (cupsdisable, or CUPS after a backend error).
    pub(super) disabled: bool,
    /// From the `-a` line; `None` when lpstat did not say.
    pub(super) accepting: Option<bool>,
    /// printer-state-reasons (the `Alerts:` line).
    pub(super) reasons: Vec<String>,
    /// printer-state-message, the indented line(s) under the header.
    pub(super) message: String,
}

/// The attribute lines of `lpstat -l -p`; anything indented before them is the state message.
const PRINTER_KEYS: &[&str] = &[
    "Form mounted:",
    "Content types:",
    "Printer types:",
    "Description:",
    "Alerts:",
    "Location:",
    "Connection:",
    "Interface:",
    "On fault:",
    "After fault:",
    "Users allowed:",
    "Users denied:",
    "Forms allowed:",
    "Banner required",
    "Charset sets:",
    "Default pitch:",
    "Default page size:",
    "Default port settings:",
];

/// `line` is `<queue> …` for exactly this queue (not a longer name it is the start of): the rest.
fn after_queue<'a>(line: &'a str, queue: &str) -> Option<&'a str> {
    let head = line.get(..queue.len())?;
    let rest = &line[queue.len()..];
    (head.eq_ignore_ascii_case(queue) && rest.starts_with(char::is_whitespace)).then(|| rest.trim_start())
}

/// Parses `lpstat -l -p <queue> -a <queue>` (the short `-p` form works too). Never panics; lines it
/// does not know are skipped, and `found` is false when no header for the queue was seen.
///
/// ```text
/// printer DNP now printing DNP-8.  enabled since Fri Nov 27 18:33:06 2026
///         waiting for paper
///         Form mounted:
///         …
///         Alerts: media-empty-error marker-supply-low-warning
///         …
/// DNP accepting requests since Fri Nov 27 18:33:06 2026
/// ```
pub(super) fn parse_queue(queue: &str, out: &str) -> QueueView {
    let mut view = QueueView::default();
    let mut in_block = false;
    let mut in_message = false;
    for line in out.lines() {
        if !line.starts_with(char::is_whitespace) {
            in_block = false;
            in_message = false;
            let printer_rest = line
                .get(..8)
                .filter(|h| h.eq_ignore_ascii_case("printer "))
                .and_then(|_| after_queue(&line[8..], queue));
            if let Some(rest) = printer_rest {
                view.found = true;
                in_block = true;
                in_message = true;
                if rest.starts_with("is idle") {
                    view.idle = true;
                } else if let Some(job) = rest.strip_prefix("now printing") {
                    let job = job.split_whitespace().next().unwrap_or_default().trim_end_matches('.');
                    view.printing = Some(job.to_string());
                } else if rest.starts_with("disabled") {
                    view.disabled = true;
                }
            } else if let Some(rest) = after_queue(line, queue) {
                if rest.starts_with("accepting requests") {
                    view.accepting = Some(true);
                } else if rest.starts_with("not accepting requests") {
                    view.accepting = Some(false);
                }
            }
            continue;
        }
        if !in_block {
            continue;
        }
        let text = line.trim();
        if let Some(rest) = text.strip_prefix("Alerts:") {
            view.reasons = split_keywords(rest);
            in_message = false;
        } else if PRINTER_KEYS.iter().any(|k| text.starts_with(k)) {
            in_message = false;
        } else if in_message && !text.is_empty() && text != "reason unknown" {
            if !view.message.is_empty() {
                view.message.push(' ');
            }
            view.message.push_str(text);
        }
    }
    view
}

/// The queue's state for the booth. Worst first: what a person must fix comes before what merely
/// waits. Media and ribbon problems name the fix (load media) even when they also stopped the queue.
pub(super) fn classify(view: &QueueView) -> PrinterStatus {
    let has = |prefixes: &[&str]| view.reasons.iter().any(|r| prefixes.iter().any(|p| r.starts_with(p)));
    let backend_errors = view
        .message
        .to_ascii_lowercase()
        .contains("stopped due to backend errors");
    let state = if has(&[
        "media-empty",
        "media-needed",
        "marker-supply-empty",
        "input-tray-missing",
    ]) {
        PrinterState::MediaEmpty
    } else if has(&["offline", "connecting-to-device"]) || backend_errors {
        PrinterState::Offline
    } else if view.reasons.iter().any(|r| r.ends_with("-error")) {
        // A printer that reports an error (media-jam-error, door-open-error…) prints nothing until
        // someone acts, even while CUPS still has the queue enabled.
        PrinterState::Error
    } else if view.disabled || view.accepting == Some(false) || view.reasons.iter().any(|r| r == "paused") {
        PrinterState::Stopped
    } else if view.printing.is_some() {
        PrinterState::Busy
    } else if view.idle {
        PrinterState::Ready
    } else {
        PrinterState::Unknown
    };
    let mut reasons = view.reasons.clone();
    if view.disabled && !reasons.iter().any(|r| r == "paused") {
        reasons.push("paused".into());
    }
    if view.accepting == Some(false) {
        reasons.push("cups-not-accepting-jobs".into());
    }
    if !view.message.is_empty() {
        reasons.push(format!("message: {}", view.message));
    }
    PrinterStatus { state, reasons }
}

pub(super) fn describe(reasons: &[String]) -> String {
    if reasons.is_empty() {
        "no reason given".into()
    } else {
        reasons.join(", ")
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
