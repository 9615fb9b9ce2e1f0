//! The `cups` printer against the real CUPS scheduler on this machine.
//!
//! `.ci/cups-setup.sh` installs CUPS, starts cupsd and installs the capture backend
//! (`tests/fixtures/cups/photoboothd-capture`). Each test makes its own queue
//! `photoboothd-test-<pid>-<n>` whose device is that backend: it stores every job's data and the
//! arguments CUPS ran it with (copies, options, title) in a folder of the test's, and can be told to
//! be slow, to report backend messages, or to fail like a printer out of ribbon. The queue is removed
//! when the test ends, pass or fail.
//!
//! Without a running scheduler the tests fail when `CI` is set and are skipped (with a message)
//! otherwise.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use image::{Rgb, RgbImage};
use photoboothd::hw::printer::cups::{CupsPrinter, CupsTiming};
use photoboothd::hw::printer::{PrintError, PrintRequest, Printer, PrinterState, PrinterStatus};

use common::cups::{must, tool as cups, CAPTURE_ROOT};

/// Whether CUPS is there to test against; fails instead when running in CI.
fn cups_available() -> bool {
    common::cups::testable(common::cups::scheduler_problem())
}

/// A queue of our own whose device is the capture backend, removed on drop.
struct TestQueue {
    name: String,
    capture: PathBuf,
}

impl TestQueue {
    /// `None` when the test is skipped.
    fn new() -> Option<TestQueue> {
        if !cups_available() {
            return None;
        }
        let name = common::cups::queue_name("test");
        let capture = Path::new(CAPTURE_ROOT).join(&name);
        std::fs::create_dir_all(&capture).unwrap();
        // cupsd runs the backend as the `lp` user, which must write here; the test reads and writes
        // the knobs.
        set_mode(Path::new(CAPTURE_ROOT), 0o1777);
        set_mode(&capture, 0o777);
        let queue = TestQueue { name, capture };
        let uri = format!("photoboothd-capture:{}", queue.capture.display());
        // `-m raw`: no driver, the data reaches the backend as sent, and options arrive untouched in
        // its argv. (CUPS warns that raw queues are deprecated; they still work in 2.4.)
        must("lpadmin", &["-p", &queue.name, "-E", "-v", &uri, "-m", "raw"]);
        Some(queue)
    }

    fn printer(&self, stop_grace: Duration) -> CupsPrinter {
        CupsPrinter::new(&self.name, Some("w288h432"), &["StpLaminate=Glossy".to_string()])
            .unwrap()
            .with_timing(timing(stop_grace))
    }

    fn knob(&self, name: &str, contents: &str) {
        std::fs::write(self.capture.join(name), contents).unwrap();
    }

    fn clear_knob(&self, name: &str) {
        let _ = std::fs::remove_file(self.capture.join(name));
    }

    /// The jobs the device received, oldest first.
    fn captured(&self) -> Vec<Captured> {
        let mut jobs: Vec<Captured> = std::fs::read_dir(&self.capture)
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let id: u32 = name.strip_prefix("job-")?.strip_suffix(".args")?.parse().ok()?;
                let args = std::fs::read_to_string(e.path()).ok()?;
                let args = args
                    .lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                let data = std::fs::read(self.capture.join(format!("job-{id}.data"))).ok()?;
                Some(Captured { id, args, data })
            })
            .collect();
        jobs.sort_by_key(|j| j.id);
        jobs
    }

    /// Request ids of the queue's jobs that are not finished.
    fn unfinished(&self) -> Vec<String> {
        must("lpstat", &["-W", "not-completed", "-o", &self.name])
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect()
    }

    fn submit_by_hand(&self, title: &str) -> String {
        let file = self.capture.join("by-hand.txt");
        std::fs::write(&file, "submitted by hand\n").unwrap();
        let out = must("lp", &["-d", &self.name, "-t", title, file.to_str().unwrap()]);
        out.split_whitespace()
            .nth(3)
            .expect("lp prints `request id is <id> (1 file(s))`")
            .to_string()
    }
}

impl Drop for TestQueue {
    fn drop(&mut self) {
        // Deleting the queue also cancels its jobs.
        let _ = cups("lpadmin", &["-x", &self.name]);
        let _ = std::fs::remove_dir_all(&self.capture);
    }
}

struct Captured {
    id: u32,
    args: HashMap<String, String>,
    data: Vec<u8>,
}

impl Captured {
    fn arg(&self, name: &str) -> &str {
        self.args.get(name).map(String::as_str).unwrap_or_default()
    }

    fn options(&self) -> Vec<&str> {
        self.arg("options").split_whitespace().collect()
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    // Not ours to change (CAPTURE_ROOT made by root while we are not): it already is 1777.
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

fn timing(stop_grace: Duration) -> CupsTiming {
    CupsTiming {
        command: Duration::from_secs(10),
        poll: Duration::from_millis(100),
        job_base: Duration::from_secs(30),
        job_per_copy: Duration::from_secs(5),
        stop_grace,
    }
}

/// A page with structure (gradients and a block), so a mix-up or a blank page shows.
fn page(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        if x > width / 4 && x < width / 2 && y > height / 4 && y < height / 2 {
            Rgb([20, 20, 20])
        } else {
            Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 200])
        }
    })
}

fn request(job_id: i64, copies: u32, page: &RgbImage) -> PrintRequest<'_> {
    PrintRequest {
        job_id,
        order_id: 1000 + job_id,
        copies,
        page,
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What a failed print says of itself: whether to retry, whether paper may have come out (the
/// print loop's refund decision rests on it), and words a technician can act on.
fn assert_failure(err: &PrintError, transient: bool, may_have_printed: bool, says: &str) {
    assert_eq!(
        (err.transient, err.may_have_printed),
        (transient, may_have_printed),
        "{err:?}"
    );
    assert!(err.message.contains(says), "{err:?} does not say {says:?}");
}

/// The printer's status is `state` with a reason that contains `reason`; returned for more checks.
fn assert_status(printer: &CupsPrinter, state: PrinterState, reason: &str) -> PrinterStatus {
    let status = printer.status();
    assert_eq!(status.state, state, "{status:?}");
    assert!(
        status.reasons.iter().any(|r| r.contains(reason)),
        "no reason says {reason:?}: {status:?}"
    );
    status
}

/// A job the printer gave up on is cancelled in CUPS: nothing of ours is left queued, and once the
/// queue runs again the job does not come back and print after all (its refund was decided on it).
fn assert_given_up_for_good(q: &TestQueue, printer: &CupsPrinter) {
    assert!(q.unfinished().is_empty(), "the given-up job is cancelled");
    printer.resume().expect("resume");
    assert_eq!(printer.status().state, PrinterState::Ready);
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        q.captured().is_empty(),
        "the cancelled job does not print after the resume"
    );
}

/// Mean absolute difference per channel, for JPEG round trips.
fn mean_difference(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y) as u64)
        .sum();
    total as f64 / a.as_raw().len() as f64
}

#[test]
fn prints_the_page_with_copies_and_media_and_waits_for_the_device() {
    let Some(q) = TestQueue::new() else { return };
    // A slow device: print must not return before it has finished.
    q.knob("delay", "1");
    let printer = q.printer(Duration::from_secs(10));
    let page = page(1200, 1800);
    let started = Instant::now();
    printer.print(&request(41, 2, &page)).expect("print");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "print returned before the device finished"
    );

    let jobs = q.captured();
    assert_eq!(jobs.len(), 1, "exactly one job reaches the device");
    let job = &jobs[0];
    assert_eq!(job.arg("copies"), "2");
    assert!(
        job.options().contains(&"media=w288h432"),
        "options: {}",
        job.arg("options")
    );
    assert!(
        job.options().contains(&"StpLaminate=Glossy"),
        "options: {}",
        job.arg("options")
    );
    assert_eq!(job.arg("title"), "photoboothd job 41 order 1041");
    assert_eq!(job.arg("printer"), q.name);
    assert_eq!(job.arg("content-type"), "image/jpeg");
    // The file is the page: same size, same picture up to JPEG's rounding, at 300 dpi for 4x6.
    let back = image::load_from_memory(&job.data).expect("a JPEG").to_rgb8();
    assert_eq!(back.dimensions(), (1200, 1800));
    assert!(mean_difference(&back, &page) < 2.0);
    assert_eq!(&job.data[13..18], &[1, 1, 44, 1, 44], "JFIF density 300 dpi");

    assert!(q.unfinished().is_empty());
    let status = printer.status();
    assert_eq!(status.state, PrinterState::Ready, "{status:?}");
}

#[test]
fn an_idle_queue_is_ready() {
    let Some(q) = TestQueue::new() else { return };
    let status = q.printer(Duration::from_secs(1)).status();
    assert_eq!(status.state, PrinterState::Ready, "{status:?}");
    assert!(status.reasons.is_empty(), "{status:?}");
    assert!(status.state.can_print());
}

#[test]
fn media_reasons_from_the_printer_show_as_media_empty() {
    let Some(q) = TestQueue::new() else { return };
    q.knob("stderr", "STATE: +media-empty-error\nINFO: Load 4x6 media\n");
    let printer = q.printer(Duration::from_secs(10));
    printer.print(&request(11, 1, &page(300, 450))).expect("print");
    let status = assert_status(&printer, PrinterState::MediaEmpty, "media-empty-error");
    assert!(!status.state.can_print());
}

#[test]
fn a_stopped_queue_blocks_sessions_and_resume_prints_the_waiting_job() {
    let Some(q) = TestQueue::new() else { return };
    let printer = Arc::new(q.printer(Duration::from_secs(60)));
    must("cupsdisable", &[&q.name]);
    let status = assert_status(&printer, PrinterState::Stopped, "paused");
    assert!(!status.state.can_print(), "a stopped queue must block new sessions");

    // A job sent now stays queued in CUPS, and print keeps waiting for it.
    let waiting = {
        let printer = printer.clone();
        std::thread::spawn(move || printer.print(&request(7, 1, &page(300, 450))))
    };
    wait_until("the job is queued", Duration::from_secs(10), || {
        q.unfinished().len() == 1
    });
    std::thread::sleep(Duration::from_millis(800));
    assert!(q.captured().is_empty(), "nothing prints on a stopped queue");
    assert!(!waiting.is_finished(), "print waits while the queue is stopped");

    printer.resume().expect("resume");
    waiting.join().unwrap().expect("the waiting job prints after resume");
    assert_eq!(q.captured().len(), 1);
    assert_eq!(printer.status().state, PrinterState::Ready);
    // Resuming a queue that runs is harmless.
    printer.resume().expect("resume again");
    assert_eq!(printer.status().state, PrinterState::Ready);
}

#[test]
fn a_queue_left_stopped_gives_the_job_up_and_cancels_it() {
    let Some(q) = TestQueue::new() else { return };
    let printer = q.printer(Duration::from_millis(500));
    must("cupsdisable", &[&q.name]);
    let page = page(300, 450);
    let err = printer
        .print(&request(8, 1, &page))
        .expect_err("the queue stays stopped");
    // The job never reached the printer.
    assert_failure(&err, true, false, "stopped");
    assert_given_up_for_good(&q, &printer);
    // The retry prints it once.
    printer.print(&request(8, 1, &page)).expect("the retry");
    assert_eq!(q.captured().len(), 1);
}

#[test]
fn ribbon_out_mid_job_stops_the_queue_and_may_have_printed() {
    let Some(q) = TestQueue::new() else { return };
    // The backend fails like a dye-sub out of ribbon: CUPS stops the queue and puts the job back.
    q.knob("fail", "");
    let printer = q.printer(Duration::from_millis(800));
    let err = printer
        .print(&request(9, 1, &page(300, 450)))
        .expect_err("the queue stopped");
    // The job had reached the printer.
    assert_failure(&err, true, true, "stopped");
    // The backend's own message is shown.
    assert_status(&printer, PrinterState::Stopped, "simulated ribbon out");
    q.clear_knob("fail");
    assert_given_up_for_good(&q, &printer);
}

#[test]
fn resume_releases_our_held_job() {
    let Some(q) = TestQueue::new() else { return };
    let printer = Arc::new(q.printer(Duration::from_secs(60)));
    must("cupsdisable", &[&q.name]);
    let waiting = {
        let printer = printer.clone();
        std::thread::spawn(move || printer.print(&request(10, 1, &page(300, 450))))
    };
    wait_until("the job is queued", Duration::from_secs(10), || {
        q.unfinished().len() == 1
    });
    let id = q.unfinished().remove(0);
    must("lp", &["-i", &id, "-H", "hold"]);
    printer.resume().expect("resume");
    waiting.join().unwrap().expect("released and printed");
    assert_eq!(q.captured().len(), 1);
}

#[test]
fn a_rejecting_queue_is_stopped_until_resumed() {
    let Some(q) = TestQueue::new() else { return };
    let printer = q.printer(Duration::from_secs(10));
    must("cupsreject", &["-r", "out of ribbon", &q.name]);
    assert_status(&printer, PrinterState::Stopped, "cups-not-accepting-jobs");
    let page = page(300, 450);
    let err = printer.print(&request(12, 1, &page)).expect_err("rejected");
    assert_failure(&err, true, false, "not accepting jobs");
    printer.resume().unwrap();
    assert_eq!(printer.status().state, PrinterState::Ready);
    printer.print(&request(12, 1, &page)).expect("accepted again");
    assert_eq!(q.captured().len(), 1);
}

#[test]
fn a_missing_queue_is_offline_and_permanent() {
    if !cups_available() {
        return;
    }
    let printer = CupsPrinter::new(&format!("photoboothd-test-missing-{}", std::process::id()), None, &[])
        .unwrap()
        .with_timing(timing(Duration::from_secs(1)));
    assert_status(&printer, PrinterState::Offline, "cups-queue-missing");
    let err = printer.print(&request(13, 1, &page(30, 45))).expect_err("no queue");
    assert_failure(&err, false, false, "does not exist");
    assert!(!printer.resume().expect_err("no queue").transient);
}

#[test]
fn a_stuck_job_times_out_and_is_cancelled() {
    let Some(q) = TestQueue::new() else { return };
    q.knob("delay", "30");
    let printer = q.printer(Duration::from_secs(10)).with_timing(CupsTiming {
        job_base: Duration::from_secs(1),
        job_per_copy: Duration::ZERO,
        ..timing(Duration::from_secs(10))
    });
    let started = Instant::now();
    let err = printer.print(&request(14, 1, &page(30, 45))).expect_err("too slow");
    assert!(started.elapsed() < Duration::from_secs(10));
    // It was at the printer when given up.
    assert_failure(&err, true, true, "did not finish");
    wait_until("the job is cancelled", Duration::from_secs(10), || {
        q.unfinished().is_empty()
    });
}

#[test]
fn after_a_restart_the_job_already_in_cups_is_not_sent_again() {
    let Some(q) = TestQueue::new() else { return };
    let journal = tempfile::tempdir().unwrap();
    let page = page(30, 45);

    // A job sent before a crash, still queued, with its journal entry.
    must("cupsdisable", &[&q.name]);
    let left = q.submit_by_hand("left by the crash");
    std::fs::write(journal.path().join("job-77"), format!("{left}\n")).unwrap();
    must("cupsenable", &[&q.name]);
    let printer = q
        .printer(Duration::from_secs(10))
        .with_journal_dir(journal.path().to_path_buf());
    printer
        .print(&request(77, 1, &page))
        .expect("waits for the job in CUPS");
    let jobs = q.captured();
    assert_eq!(jobs.len(), 1, "not sent a second time");
    assert_eq!(jobs[0].arg("title"), "left by the crash");
    assert!(
        !journal.path().join("job-77").exists(),
        "the finished job leaves the journal"
    );

    // The job had already printed before the restart: nothing to do.
    std::fs::write(journal.path().join("job-78"), format!("{left}\n")).unwrap();
    printer.print(&request(78, 1, &page)).expect("already printed");
    assert_eq!(q.captured().len(), 1);

    // The job left behind was cancelled: it is sent again.
    must("cupsdisable", &[&q.name]);
    let cancelled = q.submit_by_hand("cancelled");
    must("cancel", &[&cancelled]);
    must("cupsenable", &[&q.name]);
    std::fs::write(journal.path().join("job-79"), format!("{cancelled}\n")).unwrap();
    printer.print(&request(79, 1, &page)).expect("sent again");
    let jobs = q.captured();
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[1].arg("title"), "photoboothd job 79 order 1079");
}

/// The daemon on a CUPS queue whose `lpstat` answers as `completed_list` says when asked for the
/// finished jobs (everything else goes to the real `lpstat`): CUPS losing a job, or its history
/// being unreadable. The paid order must end `print_failed`, never `printed`.
async fn paid_order_on_cups_that_cannot_say_how_the_job_ended(completed_list: &str) {
    let Some(q) = TestQueue::new() else { return };
    let real = ["/usr/bin/lpstat", "/usr/sbin/lpstat", "/bin/lpstat"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("lpstat");
    let tools = tempfile::tempdir().unwrap();
    let wrapper = tools.path().join("lpstat");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\ncase \" $* \" in *\" -W completed \"*) {completed_list} ;; esac\nexec {real} \"$@\"\n"),
    )
    .unwrap();
    set_mode(&wrapper, 0o755);
    let path = format!(
        "{}:{}",
        tools.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let printer = format!("backend = \"cups\"\nqueue = \"{}\"\n", q.name);
    let d = common::Daemon::start_with_config_env(vec![("PATH".into(), path)], |data| {
        common::config_text(data, "").replace("backend = \"file\"\n", &printer)
    })
    .await;
    let (order, amount) = d.new_order(1).await;
    let id = common::payme_id(7);
    d.create_tx(&id, &order, amount).await;
    d.perform_tx(&id).await;
    let v = d.wait_for_status(&order, "print_failed").await;
    assert!(
        v["print"]["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("may not have printed"),
        "{v}"
    );
}

#[tokio::test]
async fn a_job_cups_loses_is_print_failed_not_printed() {
    // CUPS keeps no record of the job: gone from the unfinished and the finished lists alike.
    paid_order_on_cups_that_cannot_say_how_the_job_ended("exit 0").await;
}

#[tokio::test]
async fn a_job_whose_end_cannot_be_read_is_print_failed_not_printed() {
    paid_order_on_cups_that_cannot_say_how_the_job_ended("echo 'lpstat: Internal Server Error' >&2; exit 1").await;
}
