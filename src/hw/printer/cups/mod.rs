//! The `cups` printer: dye-sublimation printers (DNP, Mitsubishi, Canon Selphy…) behind a CUPS queue,
//! usually with Gutenprint's driver. See docs/printers.md for the printers tested and the queue
//! settings we recommend.
//!
//! The interface is the CUPS command-line tools (`lp`, `lpstat`, `cancel`, `cupsenable`,
//! `cupsaccept`), not libcups: a Pi cross-build then needs no target C library, and these tools are
//! what an operator uses by hand, so what we see is what they see. Every tool runs through
//! `hw::process` (with `LANG=C` so its output is parseable, and with a timeout so a hung scheduler
//! cannot hang the print loop).
//!
//! This file owns the printer's configuration and the `Printer` trait: status, resume, print. The
//! parts: `job` (one job's lifecycle: submit, wait, give up, adopt after a restart), `parse` (what
//! `lp`, `lpstat` and `cancel` print), `journal` (the restart journal), `page` (the page as the
//! driver gets it: JPEG, resolution), `ppd` (the driver's media and page size), `watch` (what the
//! job being waited for says, for `status()`).

mod job;
mod journal;
mod page;
mod parse;
mod ppd;
mod watch;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use super::{PageGeometry, PrintError, PrintRequest, Printer, PrinterState, PrinterStatus};
use crate::hw::process::{self, RunErrorKind, ToolEnv};
use journal::Journal;
use page::{media_dpi, TempPage};
use parse::{classify, first_line, is_missing_queue, parse_jobs, parse_queue, same_request, Output, QueueView};
pub use ppd::{PpdError, PPD_DIR};
use watch::Watch;
pub use watch::STOPPED_BY_BACKEND;

/// How long to wait for each CUPS tool and for a job; see [`CupsTiming::default`] for the reasons.
#[derive(Debug, Clone)]
pub struct CupsTiming {
    /// One `lp`/`lpstat`/`cancel`/`cupsenable` run; killed after this.
    pub command: Duration,
    /// How often a waiting `print` asks CUPS about its job.
    pub poll: Duration,
    /// A job may take this long, plus `job_per_copy` for each copy, before it is given up.
    pub job_base: Duration,
    pub job_per_copy: Duration,
    /// How long a job waits in a stopped queue (or held) for someone to resume it before it is
    /// cancelled and the attempt fails.
    pub stop_grace: Duration,
}

impl Default for CupsTiming {
    fn default() -> Self {
        CupsTiming {
            // lpstat answers in milliseconds; seconds mean the scheduler is stuck.
            command: Duration::from_secs(15),
            poll: Duration::from_secs(1),
            // A dye-sub can take 60–120 s before it reports the job done (a Selphy makes four passes
            // per print), and the first job after power-on waits for the head to warm up.
            job_base: Duration::from_secs(120),
            job_per_copy: Duration::from_secs(90),
            // Long enough for an attendant standing next to the booth to swap the ribbon and press
            // resume, short enough not to hold the print loop while nobody is there.
            stop_grace: Duration::from_secs(30),
        }
    }
}

impl CupsTiming {
    fn job_timeout(&self, copies: u32) -> Duration {
        self.job_base
            .saturating_add(self.job_per_copy.saturating_mul(copies.max(1)))
    }
}

pub struct CupsPrinter {
    queue: String,
    media: Option<String>,
    options: Vec<String>,
    timing: CupsTiming,
    journal: Journal,
    /// One job at a time, even if two threads call `print`: a dye-sub must not get a second job
    /// while the first prints.
    one_job: Mutex<()>,
    /// The job being waited for and why the queue stopped, for `status()`.
    watch: Watch,
    /// The driver's page for the media, from the queue's PPD; `None` for a queue without one.
    page: Option<PageGeometry>,
}

impl CupsPrinter {
    /// A printer for `queue`. `media` becomes `-o media=…`; each `options` entry (`name=value`)
    /// becomes `-o name=value`. The values go to `lp` as separate arguments (never through a shell),
    /// and are checked here so that none can smuggle a second CUPS option in.
    pub fn new(queue: &str, media: Option<&str>, options: &[String]) -> Result<CupsPrinter, String> {
        validate_queue(queue)?;
        if let Some(m) = media {
            if m.is_empty() || !m.bytes().all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c)) {
                return Err(format!(
                    "printer.media {m:?} must be a media keyword such as \"w288h432\""
                ));
            }
        }
        for option in options {
            // CUPS splits an option string at spaces (cupsParseOptions), so "a=b c=d" would be two
            // options; quotes and backslashes change that splitting.
            let (name, value) = option.split_once('=').unwrap_or(("", ""));
            if name.is_empty()
                || option.starts_with('-')
                || value.is_empty()
                || option
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "'\"\\".contains(c))
            {
                return Err(format!(
                    "printer.options entry {option:?} must look like name=value, without spaces or quotes"
                ));
            }
        }
        Ok(CupsPrinter {
            queue: queue.to_string(),
            media: media.map(str::to_string),
            options: options.to_vec(),
            timing: CupsTiming::default(),
            journal: Journal::in_memory(),
            one_job: Mutex::new(()),
            watch: Watch::default(),
            page: None,
        })
    }

    /// Reads the queue's PPD from `ppd_dir` (CUPS keeps them in [`PPD_DIR`]): refuses a media the
    /// driver does not offer (naming the ones it does), and takes the driver's printable area for
    /// the media as the page every layout is composed at. A queue without a PPD (raw, driverless)
    /// or an unreadable one keeps the layout's own size, with a warning.
    pub fn with_driver_page(mut self, ppd_dir: &std::path::Path) -> Result<CupsPrinter, String> {
        let path = ppd::ppd_path(ppd_dir, &self.queue);
        let ppd = match ppd::read(&path) {
            Ok(ppd) => ppd,
            Err(e @ PpdError::Missing(_)) => {
                tracing::info!(queue = %self.queue, "cups: {e}; pages keep the layout's size");
                return Ok(self);
            }
            Err(e) => {
                tracing::warn!(queue = %self.queue, "cups: {e}; pages keep the layout's size and media is not checked");
                return Ok(self);
            }
        };
        let media = match (&self.media, &ppd.default_media) {
            (Some(m), _) => m.clone(),
            (None, Some(default)) => {
                tracing::warn!(queue = %self.queue, media = %default, "cups: printer.media is not set; the driver prints its default media (set printer.media)");
                default.clone()
            }
            (None, None) => return Ok(self),
        };
        let resolution = self.options.iter().find_map(|o| o.strip_prefix("Resolution="));
        match ppd.geometry(&media, resolution) {
            Ok(page) => self.page = Some(page),
            Err(e @ PpdError::UnknownMedia { .. }) => return Err(e.to_string()),
            Err(e) => tracing::warn!(queue = %self.queue, "cups: {e}; pages keep the layout's size"),
        }
        Ok(self)
    }

    pub fn with_timing(mut self, timing: CupsTiming) -> CupsPrinter {
        self.timing = timing;
        self
    }

    /// Keeps the job journal in `dir` (created when needed) so it survives a restart; without it the
    /// journal lives in memory only.
    pub fn with_journal_dir(mut self, dir: PathBuf) -> CupsPrinter {
        self.journal = Journal::in_dir(dir);
        self
    }

    pub fn queue(&self) -> &str {
        &self.queue
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<Output, String> {
        run_tool(tool, args, self.timing.command)
    }

    /// The tools look the queue up before anything else, so with the scheduler down they all say
    /// the queue does not exist. This tells the two apart before a job is failed for good.
    fn queue_really_missing(&self) -> bool {
        self.run("lpstat", &["-r"])
            .is_ok_and(|o| o.stdout.contains("scheduler is running"))
    }

    fn queue_view(&self) -> Result<QueueView, StatusProblem> {
        let out = self
            .run("lpstat", &["-l", "-p", &self.queue, "-a", &self.queue])
            .map_err(|e| {
                if e.contains("not found") {
                    StatusProblem::NoTools(e)
                } else {
                    StatusProblem::Scheduler(e)
                }
            })?;
        if is_missing_queue(&out.stderr) {
            return Err(if self.queue_really_missing() {
                StatusProblem::QueueMissing
            } else {
                StatusProblem::Scheduler("the CUPS scheduler is not running".into())
            });
        }
        let view = parse_queue(&self.queue, &out.stdout);
        if !view.found {
            // lpstat says nothing at all when it cannot reach the scheduler: ask it plainly.
            return Err(if !out.stderr.trim().is_empty() && !out.success {
                StatusProblem::Scheduler(first_line(&out.stderr))
            } else if self.queue_really_missing() {
                StatusProblem::QueueMissing
            } else {
                StatusProblem::Scheduler("the CUPS scheduler does not answer".into())
            });
        }
        Ok(view)
    }

    /// `cupsenable` or `cupsaccept`, mapped to a `PrintError`.
    fn admin(&self, tool: &str) -> Result<(), PrintError> {
        let out = self
            .run(tool, &[&self.queue])
            .map_err(|e| PrintError::transient(format!("cups: {tool} {}: {e}", self.queue)))?;
        if out.success {
            return Ok(());
        }
        let err = first_line(&out.stderr);
        let lower = err.to_ascii_lowercase();
        if is_missing_queue(&out.stderr) && self.queue_really_missing() {
            Err(PrintError::permanent(format!(
                "cups: queue {} does not exist",
                self.queue
            )))
        } else if lower.contains("forbidden") || lower.contains("not permitted") || lower.contains("unauthorized") {
            Err(PrintError::permanent(format!(
                "cups: {tool} {} was refused ({err}); the service user must be in the lpadmin group",
                self.queue
            )))
        } else {
            Err(PrintError::transient(format!("cups: {tool} {}: {err}", self.queue)))
        }
    }
}

enum StatusProblem {
    QueueMissing,
    NoTools(String),
    Scheduler(String),
}

impl Printer for CupsPrinter {
    fn backend(&self) -> &'static str {
        "cups"
    }

    fn print(&self, r: &PrintRequest<'_>) -> Result<(), PrintError> {
        let _one = self.one_job.lock().unwrap_or_else(|p| p.into_inner());
        if r.copies == 0 {
            // Nothing to put on paper, as with the file printer; lp would refuse `-n 0`.
            return Ok(());
        }
        if let Some(request) = self.journal.get(r.job_id, r.order_id, r.copies) {
            if let Some(result) = self.adopt(r, &request) {
                return result;
            }
        }
        let page_fits = |g: &PageGeometry| {
            let turned = g.turned();
            [(g.width_px, g.height_px), (turned.width_px, turned.height_px)].contains(&r.page.dimensions())
        };
        let dpi = match self.page {
            Some(g) if page_fits(&g) => u16::try_from(g.dpi).ok(),
            _ => self
                .media
                .as_deref()
                .and_then(|m| media_dpi(m, r.page.width(), r.page.height())),
        };
        let file = TempPage::write(r.job_id, r.page, dpi)?;
        let request = self.submit(r, file.path())?;
        // lp has copied the file into the CUPS spool; ours can go.
        drop(file);
        self.journal.put(r.job_id, r.order_id, r.copies, &request);
        tracing::info!(job_id = r.job_id, request, queue = %self.queue, copies = r.copies, "cups: job sent");
        self.wait(r.job_id, &request, r.copies)
    }

    fn status(&self) -> PrinterStatus {
        let view = self.queue_view();
        let mut status = match &view {
            Ok(view) => classify(view),
            Err(problem) => {
                let (state, reason) = match problem {
                    StatusProblem::QueueMissing => (
                        PrinterState::Offline,
                        format!("cups-queue-missing: no queue named {}", self.queue),
                    ),
                    StatusProblem::NoTools(e) => (PrinterState::Offline, format!("cups-client-missing: {e}")),
                    StatusProblem::Scheduler(e) => (
                        PrinterState::SchedulerUnreachable,
                        format!("cups-scheduler-unreachable: {e}"),
                    ),
                };
                PrinterStatus {
                    state,
                    reasons: vec![reason],
                }
            }
        };
        self.watch.overlay(&mut status, view.as_ref().ok());
        status
    }

    fn page_size(&self) -> Option<PageGeometry> {
        self.page
    }

    fn strips(&self) -> u32 {
        self.media.as_deref().map_or(1, page::strips)
    }

    /// Enables the queue, makes it accept jobs, clears error reasons the printer left behind, and
    /// releases our held jobs. Each step is harmless on a queue that is already fine, so calling
    /// this again is safe.
    fn resume(&self) -> Result<Vec<String>, PrintError> {
        self.admin("cupsenable")?;
        self.admin("cupsaccept")?;
        let notes = self.clear_stale_reasons().into_iter().collect();
        let ours = self.journal.requests();
        if ours.is_empty() {
            return Ok(notes);
        }
        let out = match self.run("lpstat", &["-l", "-W", "not-completed", "-o", &self.queue]) {
            Ok(out) if out.success => out,
            // The queue itself is resumed; a held job is released on the next resume.
            _ => return Ok(notes),
        };
        for job in parse_jobs(&out.stdout) {
            let stuck = job.is_held() || job.alerts.iter().any(|a| a == "resources-are-not-ready");
            if stuck && ours.iter().any(|r| same_request(r, &job.id)) {
                match self.run("lp", &["-i", &job.id, "-H", "resume"]) {
                    Ok(o) if o.success => tracing::info!(request = %job.id, "cups: released a held job"),
                    Ok(o) => {
                        tracing::warn!(request = %job.id, error = %first_line(&o.stderr), "cups: cannot release a held job")
                    }
                    Err(e) => tracing::warn!(request = %job.id, error = %e, "cups: cannot release a held job"),
                }
            }
        }
        Ok(notes)
    }
}

impl CupsPrinter {
    /// A printer error reason (`media-empty-error`…) stays on a CUPS queue after the fault is fixed,
    /// until a job's backend clears it, and the booth sends no job while it sees one. A technician's
    /// resume says the fault is fixed, so the reasons are cleared with
    /// `lpadmin -p QUEUE -o printer-state-reasons=none` (the lpadmin group may), without printing.
    /// Skipped while a job prints: its reasons are live. Returns what it did, for the technician.
    fn clear_stale_reasons(&self) -> Option<String> {
        let view = self.queue_view().ok()?;
        if view.printing.is_some() {
            return None;
        }
        let stale: Vec<&String> = view
            .reasons
            .iter()
            .filter(|r| r.ends_with("-error") || r.starts_with("media-") || r.starts_with("marker-supply-empty"))
            .collect();
        if stale.is_empty() {
            return None;
        }
        let list = stale.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ");
        let out = self.run("lpadmin", &["-p", &self.queue, "-o", "printer-state-reasons=none"]);
        Some(match out {
            Ok(o) if o.success => {
                tracing::warn!(queue = %self.queue, reasons = %list, "cups: cleared stale printer reasons on resume");
                format!("cleared the printer's stale reasons ({list}) without printing")
            }
            Ok(o) => format!(
                "could not clear the printer's stale reasons ({list}): {}; they clear with the next job",
                first_line(&o.stderr)
            ),
            Err(e) => {
                format!("could not clear the printer's stale reasons ({list}): {e}; they clear with the next job")
            }
        })
    }
}

/// The job title CUPS shows (`lpq`, the web page): our job id first, so a title cut short still
/// names it.
fn job_title(job_id: i64, order_id: i64) -> String {
    format!("photoboothd job {job_id} order {order_id}")
}

/// CUPS queue names: printable, no spaces, `/`, `#`, `\` or quotes, at most 127 bytes. A leading `-`
/// is refused too, so the name can never read as an option.
fn validate_queue(queue: &str) -> Result<(), String> {
    let ok = !queue.is_empty()
        && queue.len() <= 127
        && !queue.starts_with('-')
        && queue.chars().all(|c| c.is_ascii_graphic() && !"/#\\'\",".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!("printer.queue {queue:?} is not a CUPS queue name"))
    }
}

/// Runs a CUPS tool through the `hw` runner, killing it after `timeout`. The error is a message.
fn run_tool(tool: &str, args: &[&str], timeout: Duration) -> Result<Output, String> {
    let env = tool_env();
    let program = env
        .find(tool)
        .ok_or_else(|| format!("{tool} not found (install cups-client)"))?;
    match process::run(&program, args, &env, timeout) {
        Ok(done) => Ok(Output {
            success: done.status.success(),
            stdout: done.stdout,
            stderr: done.stderr,
        }),
        Err(e) => Err(match e.kind {
            RunErrorKind::NotFound => format!("{tool} not found (install cups-client)"),
            // Hung: a scheduler that accepts the connection and never answers.
            RunErrorKind::Timeout => format!(
                "{tool} did not answer within {:.1} s and was killed",
                timeout.as_secs_f32()
            ),
            RunErrorKind::Failed => e.message,
        }),
    }
}

/// This process's `PATH`, then the sbin folders: `cupsenable` and `cupsaccept` live in `/usr/sbin`,
/// which is not on an ordinary user's `PATH` on Debian.
fn tool_env() -> ToolEnv {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from));
    match std::env::join_paths(dirs) {
        Ok(path) => ToolEnv::with_path(path),
        Err(_) => ToolEnv::with_path("/usr/sbin:/usr/bin:/sbin:/bin"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn configuration_that_could_inject_options_is_refused() {
        assert!(CupsPrinter::new("DNP", Some("w288h432 fit-to-page"), &[]).is_err());
        assert!(CupsPrinter::new("DNP", Some(""), &[]).is_err());
        for bad in ["a=b c=d", "a='b'", "=x", "x=", "-o", "noequals", "a=b\\ c"] {
            assert!(CupsPrinter::new("DNP", None, &[bad.to_string()]).is_err(), "{bad}");
        }
        for bad in ["", "-d", "a b", "a/b", "a#b", "ДНП"] {
            assert!(CupsPrinter::new(bad, None, &[]).is_err(), "{bad:?}");
        }
        assert!(CupsPrinter::new(
            "Canon_SELPHY_CP1500",
            Some("na_index-4x6_4x6in"),
            &["fit-to-page=true".into()]
        )
        .is_ok());
    }

    #[test]
    fn timeout_grows_with_copies() {
        let t = CupsTiming::default();
        assert_eq!(t.job_timeout(1), Duration::from_secs(210));
        assert_eq!(t.job_timeout(4), Duration::from_secs(480));
        assert_eq!(t.job_timeout(0), t.job_timeout(1));
    }

    #[test]
    fn hung_tools_are_killed() {
        let started = Instant::now();
        let err = run_tool("sleep", &["10"], Duration::from_millis(200)).unwrap_err();
        assert!(err.contains("killed"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let out = run_tool(
            "sh",
            &["-c", "echo $LANG $LC_ALL; echo oops >&2; exit 3"],
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(!out.success);
        assert_eq!(out.stdout.trim(), "C C");
        assert_eq!(out.stderr.trim(), "oops");
        assert!(run_tool("photoboothd-no-such-tool", &[], Duration::from_secs(1))
            .unwrap_err()
            .contains("not found"));
    }
}
