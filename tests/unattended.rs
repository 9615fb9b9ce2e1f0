//! A booth left alone for months, against the real daemon: photos have a lifecycle (the janitor,
//! the live-session-only photo API, reprints within `keep_pages_days`), free space and clock
//! blockers, event streams that cannot lock the API out, one validation for `run` and
//! `check-config`, development switches that stay off, and the sandbox said loudly.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// One small shot on the thermal-58 page: quick sessions. Digital copies are off, so a printed
/// session's shots follow the print-only rule (a live download link keeps them: janitor unit tests
/// and tests/digital_copies.rs).
const QUICK: &str = "[camera]\ncountdown_s = 0\nshots = 1\nwidth = 320\nheight = 240\n\
                     [session]\nreview_timeout_s = 60\ncopies_timeout_s = 60\ndone_timeout_s = 2\nerror_timeout_s = 2\n\
                     [digital]\nenabled = false\n";

async fn quick_daemon(extra: &str) -> Daemon {
    let extra = format!("{QUICK}{extra}");
    Daemon::start_with_config(|data| {
        config_text_full(data, "", "layout = \"thermal-58\"").replace("[printer]", &format!("{extra}\n[printer]"))
    })
    .await
}

async fn session(d: &Daemon) -> Value {
    d.session_view().await
}

async fn wait_stage(d: &Daemon, stage: &str) -> Value {
    d.wait_stage(stage).await
}

async fn act(d: &Daemon, action: &str) -> (u16, Value) {
    d.kiosk("POST", &format!("/api/session/{action}"), "").await
}

async fn wait_until(what: &str, d: &Daemon, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "{what} never happened\n{}", d.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn get(d: &Daemon, path: &str) -> u16 {
    photoboothd::client::request(d.kiosk, "GET", path, &[], Vec::new())
        .await
        .unwrap()
        .status
}

/// A session through review to a paid, printed order; returns (session id, order id).
async fn paid_session(d: &Daemon) -> (i64, String) {
    let (status, v) = act(d, "start").await;
    assert_eq!(status, 200, "{v}");
    let session_id = v["session_id"].as_i64().unwrap();
    wait_stage(d, "review").await;
    act(d, "accept").await;
    wait_stage(d, "choose_copies").await;
    let (status, order) = d.kiosk("POST", "/api/generate-qr", r#"{"copies": 1}"#).await;
    assert_eq!(status, 200, "{order}");
    let order_id = order["order_id"].as_i64().unwrap().to_string();
    let amount = order["amount_tiyin"].as_i64().unwrap();
    d.pay(&order_id, amount).await;
    wait_stage(d, "done").await;
    act(d, "dismiss").await;
    wait_stage(d, "idle").await;
    (session_id, order_id)
}

fn session_path(d: &Daemon, id: i64) -> PathBuf {
    d.data_dir().join("sessions").join(id.to_string())
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn a_cancelled_sessions_photos_are_gone_from_disk_and_404_at_once() {
    let d = quick_daemon("").await;
    let (_, v) = act(&d, "start").await;
    let id = v["session_id"].as_i64().unwrap();
    let review = wait_stage(&d, "review").await;
    let shot = review["photos"][0].as_str().unwrap().to_string();
    let preview = review["preview"].as_str().unwrap().to_string();
    assert_eq!(get(&d, &shot).await, 200);
    assert!(session_path(&d, id).join("shot-1.jpg").exists());

    assert_eq!(act(&d, "cancel").await.0, 200);
    // Not the live session any more: its files are nobody's business, even before they go.
    assert_eq!(get(&d, &shot).await, 404);
    assert_eq!(get(&d, &preview).await, 404);
    wait_until("the cancelled session's folder removed", &d, || {
        !session_path(&d, id).exists()
    })
    .await;
    // Its shot, preview and page: counted in the log.
    wait_until("the janitor's log line", &d, || {
        d.log()
            .lines()
            .any(|l| l.contains("janitor removed photos") && l.contains("files=3") && l.contains("bytes="))
    })
    .await;
}

#[tokio::test]
async fn two_hundred_sessions_leave_the_data_directory_bounded() {
    let d = quick_daemon("").await;
    let mut paid = Vec::new();
    for n in 0..200 {
        if n % 40 == 0 {
            paid.push(paid_session(&d).await.0);
            continue;
        }
        let (status, v) = act(&d, "start").await;
        assert_eq!(status, 200, "session {n}: {v}");
        wait_stage(&d, "review").await;
        if n % 2 == 0 {
            // Ordered, then cancelled on the payment screen.
            act(&d, "accept").await;
            wait_stage(&d, "choose_copies").await;
            d.kiosk("POST", "/api/generate-qr", r#"{"copies": 1}"#).await;
            wait_stage(&d, "awaiting_payment").await;
        }
        assert_eq!(act(&d, "cancel").await.0, 200, "session {n}");
        wait_stage(&d, "idle").await;
    }
    let sessions = d.data_dir().join("sessions");
    let mut expected: Vec<String> = paid.iter().map(i64::to_string).collect();
    expected.sort();
    wait_until("only the paid sessions' pages left", &d, || {
        files_in(&sessions) == expected
    })
    .await;
    // Each keeps only its composed page (for reprints); shots and preview went once it printed.
    for id in &paid {
        wait_until("shots of a printed session removed", &d, || {
            files_in(&session_path(&d, *id)) == ["page.png"]
        })
        .await;
    }
    assert_eq!(d.count("SELECT COUNT(*) FROM sessions"), 200);
}

#[tokio::test]
async fn a_reprint_a_day_later_still_prints_and_pages_go_after_keep_pages_days() {
    let mut d = quick_daemon("").await;
    let (session_id, order_id) = paid_session(&d).await;
    let page = session_path(&d, session_id).join("page.png");
    wait_until("shots removed after printing", &d, || {
        files_in(&session_path(&d, session_id)) == ["page.png"]
    })
    .await;

    // A day passes (the order was paid a day ago); the janitor runs at start.
    paid_days_ago(&mut d, &order_id, 1);
    d.restart_same_config().await;
    assert!(page.exists(), "a day-old page must stay for reprints");
    let printed_before = d.prints().len();
    let (ok, out) = cli(&d, &["reprint", &order_id]);
    assert!(ok, "{out}");
    // Printed and recorded (a kill before the record would requeue it, keeping the page).
    wait_until("the reprint printed", &d, || {
        d.prints().len() > printed_before && d.count("SELECT COUNT(*) FROM print_jobs WHERE status = 'printed'") == 2
    })
    .await;

    // Past storage.keep_pages_days (7) the page goes, and a reprint says why it cannot print.
    paid_days_ago(&mut d, &order_id, 8);
    d.restart_same_config().await;
    wait_until("the old page removed", &d, || !session_path(&d, session_id).exists()).await;
    let (ok, out) = cli(&d, &["reprint", &order_id]);
    assert!(!ok && out.contains("no longer kept"), "{out}");
}

/// Stops the daemon and moves the order's payment `days` into the past.
fn paid_days_ago(d: &mut Daemon, order_id: &str, days: i64) {
    d.kill();
    let db = rusqlite::Connection::open(d.data_dir().join(photoboothd::store::DB_FILE)).unwrap();
    db.execute(
        "UPDATE orders SET paid_at = ?1 WHERE id = ?2",
        rusqlite::params![now_ms() - days * 86_400_000, order_id.parse::<i64>().unwrap()],
    )
    .unwrap();
}

fn cli(d: &Daemon, args: &[&str]) -> (bool, String) {
    run_cli(&d.config_path(), args, None)
}

#[tokio::test]
async fn low_disk_and_an_unsynced_clock_are_listed_as_blockers_everywhere() {
    // No disk has 1 PB free; the clock's "synchronized" file does not exist yet.
    let dir = tempfile::tempdir().unwrap();
    let synced = dir.path().join("synchronized");
    let booth = format!(
        "require_synced_clock = true\nclock_synced_file = \"{}\"\n",
        synced.display()
    );
    let d = Daemon::start_with_config(|data| {
        config_text_full(data, "", "")
            .replace("[http]", &format!("{booth}\n[http]"))
            .replace("[printer]", "[storage]\nmin_free_mb = 1000000000\n\n[printer]")
    })
    .await;
    let (_, status) = d.kiosk("GET", "/api/status", "").await;
    let reasons: Vec<&str> = status["blockers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["disk_low", "clock_unsynced"], "{status}");
    assert_eq!(status["blocker"]["reason"], "disk_low");
    assert_eq!(status["accepting_orders"], false);
    assert!(status["blockers"][1]["message"].as_str().unwrap().contains("clock"));

    act(&d, "start").await.refused(503, "disk_low");
    let (code, v) = d.kiosk("POST", "/api/generate-qr", r#"{"copies": 1}"#).await;
    assert_eq!(code, 503, "{v}");

    let (ok, out) = cli(&d, &["status"]);
    assert!(ok, "{out}");
    assert!(out.contains("REFUSED: only") && out.contains("(disk_low)"), "{out}");
    assert!(
        out.contains("not synchronised") && out.contains("(clock_unsynced)"),
        "{out}"
    );
    let metrics = photoboothd::client::request(d.kiosk, "GET", "/metrics", &[], Vec::new())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(text.contains("photoboothd_blocked{reason=\"disk_low\"} 1"), "{text}");
    assert!(
        text.contains("photoboothd_blocked{reason=\"clock_unsynced\"} 1"),
        "{text}"
    );

    // The clock synchronises: that blocker goes by itself.
    std::fs::write(&synced, "").unwrap();
    let (_, status) = d.kiosk("GET", "/api/status", "").await;
    assert_eq!(status["blockers"].as_array().unwrap().len(), 1, "{status}");
}

#[tokio::test]
async fn under_systemd_orders_wait_for_a_synchronised_clock_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("synchronized");
    let booth = format!("clock_synced_file = \"{}\"\n", file.display());
    let text = |data: &Path| config_text_full(data, "", "").replace("[http]", &format!("{booth}\n[http]"));
    let plain = Daemon::start_with_config(text).await;
    assert_eq!(plain.kiosk("GET", "/api/status", "").await.1["accepting_orders"], true);

    let mut systemd = Daemon::start_with_config(text).await;
    systemd.env.push(("INVOCATION_ID".into(), "0123456789abcdef".into()));
    systemd.restart_same_config().await;
    let (_, status) = systemd.kiosk("GET", "/api/status", "").await;
    assert_eq!(status["blocker"]["reason"], "clock_unsynced", "{status}");
}

/// A Pi has no battery clock: after a power cut it boots on the last time it saved (fake-hwclock,
/// timesyncd's clock file), which can be an hour before the cut, and the booth starts before the
/// network time comes (or never, at a venue without internet). A paid job the last run put off
/// for seconds (retry backoff, on the later clock) must not wait for that hour to pass again.
#[tokio::test]
async fn a_job_put_off_by_the_last_run_prints_at_once_when_the_clock_comes_up_behind() {
    let mut d = Daemon::start().await;
    let (order, id) = d.created_order(1).await;
    // The file printer is offline while its folder is a plain file: the paid job waits queued.
    let prints = d.data_dir().join("prints");
    let _ = std::fs::remove_dir_all(&prints);
    std::fs::write(&prints, b"not a folder").unwrap();
    d.wait_accepting(false).await;
    d.perform_tx(&id).await;
    d.kill();
    // What a transient fault leaves: queued, to be retried within the minute on the last run's
    // clock, which this boot's clock reads 30 minutes earlier.
    let put_off = d
        .db_rw()
        .execute(
            "UPDATE print_jobs SET attempts = 1, last_error = 'unplugged mid-job', next_attempt_at = ?1
             WHERE status = 'queued'",
            [now_ms() + 30 * 60_000],
        )
        .unwrap();
    assert_eq!(put_off, 1);
    std::fs::remove_file(&prints).unwrap();
    d.restart_same_config().await;
    d.wait_for_status(&order, "printed").await;
}

/// `systemctl stop` or a package upgrade in the middle of a print (the unit sends SIGTERM to the
/// daemon only): the job on the printer finishes and is recorded before the daemon exits, so the
/// next start does not print it again. Nothing else stops the daemon mid-print gracefully.
#[tokio::test]
async fn sigterm_mid_print_finishes_and_records_the_job_before_the_daemon_exits() {
    let mut d = Daemon::start().await;
    let (order, id) = d.created_order(1).await;
    // The copy is written into a pipe: the print loop waits there, mid-job, until it is read.
    let (job, pipe) = d.pipe_next_print(&order);
    d.perform_tx(&id).await;
    let printing = format!("SELECT count(*) FROM print_jobs WHERE id = {job} AND status = 'printing'");
    wait_until("the job on the printer", &d, || d.count(&printing) == 1).await;
    let sent = Command::new("kill")
        .args(["-TERM", &d.pid().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    wait_until("the daemon shutting down", &d, || d.log().contains("shutting down")).await;
    let page = tokio::task::spawn_blocking(move || std::fs::read(&pipe))
        .await
        .unwrap()
        .unwrap();
    assert!(page.starts_with(b"\x89PNG"), "the copy is not a PNG");
    let exit = d.terminate();
    assert!(exit.success(), "{exit}\n{}", d.log());
    let printed = format!("SELECT count(*) FROM print_jobs WHERE id = {job} AND status = 'printed'");
    // Recorded `printed`: a restart's requeue (of `printing` jobs) leaves it alone.
    assert_eq!(d.count(&printed), 1, "{}", d.log());
    assert_eq!(d.prints().len(), 1, "{:?}", d.prints());
}

#[tokio::test]
async fn sixty_four_idle_event_streams_do_not_delay_the_api() {
    let d = Daemon::start().await;
    let mut streams = Vec::new();
    for _ in 0..64 {
        let mut s = std::net::TcpStream::connect(d.kiosk).unwrap();
        s.write_all(b"GET /api/events HTTP/1.1\r\nhost: booth\r\naccept: text/event-stream\r\n\r\n")
            .unwrap();
        streams.push(s);
    }
    // The API answers while every one of them is held open and never read.
    let status = tokio::time::timeout(
        Duration::from_secs(15),
        photoboothd::client::request(d.kiosk, "GET", "/api/status", &[], Vec::new()),
    )
    .await
    .expect("/api/status must answer while 64 event streams are open")
    .unwrap();
    assert_eq!(status.status, 200);
    // The streams over their own cap were refused at once, and said why.
    let mut refused = 0;
    for s in &mut streams[60..] {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut head = [0u8; 512];
        let n = s.read(&mut head).unwrap_or(0);
        let text = String::from_utf8_lossy(&head[..n]);
        if text.starts_with("HTTP/1.1 503") {
            refused += 1;
        }
    }
    assert!(refused > 0, "event streams beyond their cap must be refused");
    assert!(d.log().contains("too many open streams"), "{}", d.log());
}

/// One bad configuration: the `[payme]` key lines, the `[printer]` table, the kiosk address,
/// extra environment, and what the refusal must name.
struct Bad {
    what: &'static str,
    payme: &'static str,
    printer: &'static str,
    kiosk: &'static str,
    env: &'static [(&'static str, &'static str)],
    names: &'static str,
}

const KEY: &str = "key = \"Key-One-7f3\"";

impl Bad {
    const fn new(what: &'static str, printer: &'static str, names: &'static str) -> Bad {
        Bad {
            what,
            payme: KEY,
            printer,
            kiosk: "127.0.0.1:0",
            env: &[],
            names,
        }
    }

    fn write(&self, dir: &Path) -> PathBuf {
        let text = format!(
            "[booth]\ndata_dir = \"{data}\"\n\n[http]\nkiosk_listen = \"{kiosk}\"\nwebhook_listen = \"127.0.0.1:0\"\n\n\
             [payme]\n{payme}\n\n[printer]\n{printer}\n",
            data = dir.join("data").display(),
            kiosk = self.kiosk,
            payme = self.payme,
            printer = self.printer,
        );
        let path = dir.join("photobooth.toml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// Runs the binary; the last line of stderr of a command that must fail fast.
fn refused(args: &[&str], config: &Path, env: &[(&str, &str)]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_photoboothd"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("PAYME_KEY")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("STATE_DIRECTORY")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            assert!(!status.success(), "{args:?} accepted {}", config.display());
            // The message is the last line (run logs before it).
            return err.lines().last().unwrap_or_default().to_string();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{args:?} started on a bad config {}", config.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn run_and_check_config_refuse_each_bad_config_with_the_same_message() {
    let cases = [
        Bad::new(
            "cups media",
            "backend = \"cups\"\nqueue = \"Q\"\nmedia = \"w288 h432\"",
            "printer.media",
        ),
        Bad::new(
            "cups option",
            "backend = \"cups\"\nqueue = \"Q\"\noptions = [\"a=b c=d\"]",
            "printer.options",
        ),
        Bad::new("cups queue", "backend = \"cups\"\nqueue = \"a/b\"", "printer.queue"),
        Bad::new(
            "escpos device",
            "backend = \"escpos\"\ndevice = \"lp0\"",
            "printer.device",
        ),
        Bad {
            payme: "key_file = \"/nonexistent/payme.key\"",
            ..Bad::new("unreadable key file", "", "/nonexistent/payme.key")
        },
        Bad {
            env: &[("PAYME_KEY", "Key-Two-9c1")],
            ..Bad::new("two keys", "", "two different Payme keys")
        },
        Bad {
            kiosk: "0.0.0.0:0",
            ..Bad::new("kiosk on the network", "", "http.allow_lan")
        },
    ];
    for bad in cases {
        let dir = tempfile::tempdir().unwrap();
        let config = bad.write(dir.path());
        let checked = refused(&["check-config"], &config, bad.env);
        let ran = refused(&["run"], &config, bad.env);
        assert_eq!(checked, ran, "{}: check-config and run must say the same", bad.what);
        assert!(checked.contains(bad.names), "{}: {checked}", bad.what);
        assert!(
            !checked.contains("Key-One") && !checked.contains("Key-Two"),
            "{}: a key leaked: {checked}",
            bad.what
        );
    }
}

#[tokio::test]
async fn development_switches_are_off_unless_the_config_turns_them_on() {
    let d = Daemon::start_with_config(|data| config_text_full(data, "", "").replace("[dev]\nenabled = true", "")).await;
    let (status, v) = d.kiosk("POST", "/api/dev/button", r#"{"event": "press"}"#).await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(session(&d).await["stage"], "idle");
    assert!(!d.log().contains("development switches are on"));
}

#[tokio::test]
async fn the_sandbox_is_said_at_start_in_status_and_by_the_cli() {
    let d = Daemon::start().await;
    let (_, status) = d.kiosk("GET", "/api/status", "").await;
    assert_eq!(status["payme_mode"], "sandbox");
    assert!(d.log().contains("SANDBOX"), "{}", d.log());
    let (ok, out) = cli(&d, &["status"]);
    assert!(ok && out.contains("payme        sandbox"), "{out}");

    let prod = Daemon::start_with_config(|data| {
        config_text_full(data, "checkout_base = \"https://checkout.paycom.uz\"\n", "")
    })
    .await;
    let (_, status) = prod.kiosk("GET", "/api/status", "").await;
    assert_eq!(status["payme_mode"], "production");
    assert!(!prod.log().contains("SANDBOX"), "{}", prod.log());
}
