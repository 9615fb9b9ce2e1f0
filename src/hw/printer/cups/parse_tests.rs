//! The parsers against captured `lpstat`, `lp` and `cancel` output (CUPS 2.4, Debian bookworm,
//! LANG=C) from `tests/fixtures/cups/`.

use super::*;

/// A captured output, by file name.
macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cups/", $name))
    };
}

const IDLE: &str = fixture!("lpstat-idle.txt");
const PRINTING_NO_PAPER: &str = fixture!("lpstat-printing-no-paper.txt");
const DISABLED: &str = fixture!("lpstat-disabled.txt");
const DISABLED_NO_MESSAGE: &str = fixture!("lpstat-disabled-no-message.txt");
const BACKEND_STOPPED: &str = fixture!("lpstat-backend-stopped.txt");
const REJECTING: &str = fixture!("lpstat-rejecting.txt");
const SHORT_DISABLED: &str = fixture!("lpstat-short-disabled.txt");
const JOBS: &str = fixture!("lpstat-jobs.txt");

fn status(queue: &str, out: &str) -> PrinterStatus {
    classify(&parse_queue(queue, out))
}

#[test]
fn idle_queue_is_ready() {
    let view = parse_queue("DNP", IDLE);
    assert!(view.found && view.idle && !view.disabled);
    assert_eq!(view.accepting, Some(true));
    assert_eq!(status("DNP", IDLE), PrinterStatus::new(PrinterState::Ready));
}

#[test]
fn queue_names_match_whole_and_ignore_case() {
    assert_eq!(status("dnp", IDLE).state, PrinterState::Ready);
    // "DN" is the start of "DNP" but another queue.
    assert!(!parse_queue("DN", IDLE).found);
    assert!(!parse_queue("DNP2", IDLE).found);
}

#[test]
fn printing_is_busy_unless_media_is_out() {
    let view = parse_queue("DNP", PRINTING_NO_PAPER);
    assert_eq!(view.printing.as_deref(), Some("DNP-8"));
    assert_eq!(view.message, "waiting for paper");
    let s = classify(&view);
    assert_eq!(s.state, PrinterState::MediaEmpty);
    assert_eq!(
        s.reasons,
        [
            "media-empty-error",
            "marker-supply-low-warning",
            "message: waiting for paper"
        ]
    );
    let plain = PRINTING_NO_PAPER.replace("media-empty-error marker-supply-low-warning", "none");
    assert_eq!(status("DNP", &plain).state, PrinterState::Busy);
    assert!(status("DNP", &plain).state.can_print());
}

#[test]
fn disabled_queue_is_stopped_and_blocks_sessions() {
    let s = status("DNP", DISABLED);
    assert_eq!(s.state, PrinterState::Stopped);
    assert!(!s.state.can_print());
    assert_eq!(s.reasons, ["paused", "message: Paused"]);
    // lpstat's placeholder for an empty message is not a message.
    let s = status("DNP", DISABLED_NO_MESSAGE);
    assert_eq!(s.state, PrinterState::Stopped);
    assert_eq!(s.reasons, ["paused"]);
    // The short form (`lpstat -p`) carries enough too.
    let s = status("DNP", SHORT_DISABLED);
    assert_eq!(s.state, PrinterState::Stopped);
    assert_eq!(
        s.reasons,
        ["paused", "message: capture backend told to fail (simulated ribbon out)"]
    );
}

#[test]
fn backend_errors_mean_offline() {
    let s = status("DNP", BACKEND_STOPPED);
    assert_eq!(s.state, PrinterState::Offline);
    assert!(s.reasons.iter().any(|r| r.contains("stopped due to backend errors")));
    for reason in ["offline-report", "connecting-to-device", "offline-error"] {
        let out = IDLE.replace("Alerts: none", &format!("Alerts: {reason}"));
        assert_eq!(status("DNP", &out).state, PrinterState::Offline, "{reason}");
    }
}

#[test]
fn media_reasons_mean_media_empty_even_when_stopped() {
    for reason in [
        "media-empty-error",
        "media-empty",
        "media-needed-warning",
        "marker-supply-empty-error",
        "input-tray-missing",
    ] {
        let out = DISABLED.replace("Alerts: paused", &format!("Alerts: {reason} paused"));
        let s = status("DNP", &out);
        assert_eq!(s.state, PrinterState::MediaEmpty, "{reason}");
        assert!(s.reasons.contains(&reason.to_string()));
    }
    // Comma-separated lists (other lpstat builds) read the same.
    let out = IDLE.replace("Alerts: none", "Alerts: marker-supply-low-warning,media-needed");
    assert_eq!(status("DNP", &out).state, PrinterState::MediaEmpty);
}

#[test]
fn rejecting_queue_is_stopped() {
    let s = status("DNP", REJECTING);
    assert_eq!(s.state, PrinterState::Stopped);
    assert_eq!(s.reasons, ["cups-not-accepting-jobs", "message: no paper"]);
}

#[test]
fn other_printer_errors_are_errors_warnings_are_not() {
    let jam = IDLE.replace("Alerts: none", "Alerts: media-jam-error");
    assert_eq!(status("DNP", &jam).state, PrinterState::Error);
    let stopped_jam = DISABLED.replace("Alerts: paused", "Alerts: media-jam-error paused");
    assert_eq!(status("DNP", &stopped_jam).state, PrinterState::Error);
    let low = IDLE.replace(
        "Alerts: none",
        "Alerts: marker-supply-low-warning cups-waiting-for-job-completed",
    );
    assert_eq!(status("DNP", &low).state, PrinterState::Ready);
}

#[test]
fn odd_output_never_panics() {
    let odd = [
        "",
        "\n\n",
        "printer",
        "printer ",
        "printer DNP",
        "printer DNP ",
        "printer DNP now printing",
        "printer DNP now printing ",
        "\tAlerts: media-empty-error",
        "DNP",
        "DNP-",
        "DNP-x  root",
        "printer DNP is idle.\n\tAlerts:",
        "printer DNP est inactif.  activée depuis ven. 27 nov. 2026\n",
        "printer ДНП is idle.\n",
        "\u{feff}printer DNP is idle.",
    ];
    for text in odd {
        let _ = status("DNP", text);
        let _ = status("ДНП", text);
        let _ = parse_jobs(text);
    }
    // A header in another language is found but says nothing: Unknown, not a guess.
    let s = status("DNP", "printer DNP est inactif.  activée depuis ven. 27 nov. 2026\n");
    assert_eq!(s.state, PrinterState::Unknown);
    assert!(!parse_queue("DNP", "").found);
    assert_eq!(
        parse_queue("DNP", "printer DNP now printing").printing.as_deref(),
        Some("")
    );
}

#[test]
fn parses_jobs_and_what_they_went_through() {
    let jobs = parse_jobs(JOBS);
    let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, ["DNP-10", "DNP-11", "DNP-12", "DNP-13"]);
    // Reached the backend, then the queue stopped and CUPS put it back.
    assert!(jobs[0].was_processed() && !jobs[0].is_held());
    assert_eq!(jobs[0].alerts, ["printer-stopped"]);
    // Held, never processed.
    assert!(jobs[1].is_held() && !jobs[1].was_processed());
    // Waiting its turn.
    assert!(!jobs[2].is_held() && !jobs[2].was_processed());
    assert!(jobs[2].alerts.is_empty());
    // Printing now; an empty Status: line still counts.
    assert_eq!(jobs[3].status.as_deref(), Some(""));
    assert_eq!(jobs[3].user, "kiosk");
    assert!(jobs[3].was_processed());
    // The short form has no detail lines.
    let short = parse_jobs("DNP-10                  root              1024   Fri Nov 27 18:37:09 2026\n");
    assert_eq!(short.len(), 1);
    assert!(!short[0].was_processed());
}

#[test]
fn request_ids() {
    assert_eq!(
        parse_request_id("request id is DNP-42 (1 file(s))\n").as_deref(),
        Some("DNP-42")
    );
    assert_eq!(
        parse_request_id("request id is photoboothd-test-1a2b-7 (1 file(s))").as_deref(),
        Some("photoboothd-test-1a2b-7")
    );
    assert_eq!(parse_request_id("request id is DNP (1 file(s))"), None);
    assert_eq!(parse_request_id(""), None);
    assert!(same_request("dnp-4", "DNP-4"));
    assert!(!same_request("DNP-4", "DNP-40"));
    assert!(request_on_queue("my-queue-12", "MY-QUEUE"));
    assert!(!request_on_queue("my-queue-12", "my"));
}

fn out(success: bool, stderr: &str) -> Output {
    Output {
        success,
        stdout: String::new(),
        stderr: stderr.into(),
    }
}

#[test]
fn cancel_tells_how_a_job_ended() {
    // The messages of CUPS 2.4's cancel, LANG=C.
    let cases = [
        (
            "cancel: cancel-job failed: Job #1 is already completed - can't cancel.",
            Ended::Completed,
        ),
        (
            "cancel: cancel-job failed: Job #3 is already canceled - can't cancel.",
            Ended::Canceled,
        ),
        (
            "cancel: cancel-job failed: Job #5 is already aborted - can't cancel.",
            Ended::Aborted,
        ),
        ("cancel: cancel-job failed: Job #999 does not exist.", Ended::Vanished),
    ];
    for (stderr, ended) in cases {
        assert_eq!(parse_cancel(&out(false, stderr)), ended, "{stderr}");
    }
    assert_eq!(parse_cancel(&out(true, "")), Ended::Live);
    assert!(matches!(
        parse_cancel(&out(false, "cancel: Unable to connect to server: Connection refused")),
        Ended::Unknown(_)
    ));
}

#[test]
fn lp_errors_are_classified() {
    let missing = lp_error("DNP", "lp: Error - The printer or class does not exist.\n");
    assert!(!missing.transient && !missing.may_have_printed);
    assert!(missing.message.contains("does not exist"));
    let rejecting = lp_error("DNP", "lp: Destination \"DNP\" is not accepting jobs.\n");
    assert!(rejecting.transient);
    let down = lp_error("DNP", "lp: Error - Scheduler not responding.\n");
    assert!(down.transient && !down.may_have_printed);
    let refused = lp_error("DNP", "lp: Forbidden\n");
    assert!(!refused.transient);
    assert!(is_missing_queue("cupsenable: Operation failed: client-error-not-found"));
    assert!(is_missing_queue("lpstat: Invalid destination name in list \"x\"."));
    assert!(!is_missing_queue("lp: Error - Scheduler not responding."));
}
