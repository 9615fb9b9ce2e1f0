//! The technician's CLI against a live daemon's store, and the systemd notify protocol.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::*;

fn cli(d: &Daemon, args: &[&str]) -> (bool, String) {
    run_cli(&d.config_path(), args, None)
}

async fn paid_order(d: &Daemon, copies: u32) -> String {
    let (order, amount) = d.new_order(copies).await;
    d.pay(&order, amount).await;
    d.wait_for_status(&order, "printed").await;
    order
}

#[tokio::test]
async fn every_command_works_against_a_live_daemon() {
    let d = Daemon::start().await;
    let order = paid_order(&d, 2).await;
    let (unpaid, _) = d.new_order(1).await;

    let (ok, out) = cli(&d, &["status"]);
    assert!(ok, "{out}");
    assert_contains_all(
        "status",
        &out,
        &[
            "daemon       running",
            "printer      file ready",
            "camera       sim ready",
            "sessions     accepted",
            "0 queued",
        ],
    );
    assert!(out.contains(&format!("order {order}")), "{out}");

    let (ok, out) = cli(&d, &["orders"]);
    assert!(
        ok && out.contains("printed") && out.contains("awaiting_payment"),
        "{out}"
    );
    let (ok, out) = cli(&d, &["orders", "--status", "printed"]);
    assert!(ok && !out.contains("awaiting_payment"), "{out}");
    let (ok, out) = cli(&d, &["orders", "--since", "2999-01-01"]);
    assert!(ok && !out.contains("printed"), "{out}");
    let (ok, out) = cli(&d, &["orders", "--since", "last week"]);
    assert!(!ok && out.contains("not a date"), "{out}");

    let (ok, out) = cli(&d, &["order", &order]);
    assert!(ok, "{out}");
    assert_contains_all(
        "order",
        &out,
        &[
            "created",
            "performed: paid",
            "paid print job",
            "printed after 1 attempt",
        ],
    );
    let (ok, out) = cli(&d, &["order", "99999"]);
    assert!(!ok && out.contains("does not exist"), "{out}");

    let (ok, out) = cli(&d, &["reprint", &unpaid]);
    assert!(!ok && out.contains("never paid"), "{out}");
    let before = d.prints().len();
    let (ok, out) = cli(&d, &["reprint", &order, "--copies", "1"]);
    assert!(ok, "{out}");
    let deadline = Instant::now() + Duration::from_secs(20);
    // The file appears a moment before the job is recorded printed; wait for both.
    while d.prints().len() < before + 1
        || d.count("SELECT count(*) FROM print_jobs WHERE kind = 'reprint' AND status = 'printed'") < 1
    {
        assert!(Instant::now() < deadline, "the reprint never printed:\n{}", d.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        d.count("SELECT count(*) FROM print_jobs WHERE kind = 'reprint' AND status = 'printed'"),
        1
    );

    let (ok, out) = cli(&d, &["stats", "--days", "2"]);
    assert!(ok, "{out}");
    let today = out.lines().last().unwrap_or_default();
    // One paid order of 2 copies plus a 1-copy reprint: 3 prints, 40 000 sum.
    assert!(
        today.contains("40 000") && today.split_whitespace().any(|w| w == "3"),
        "{out}"
    );

    let (ok, out) = cli(&d, &["printer", "test"]);
    assert!(ok && out.contains("test page sent"), "{out}");
    let (ok, out) = cli(&d, &["printer", "resume"]);
    assert!(ok && out.contains("print jobs requeued: 0"), "{out}");
    let (ok, out) = cli(&d, &["check-config"]);
    assert!(ok && out.contains("configuration is valid"), "{out}");

    let metrics = photoboothd::client::request(d.kiosk, "GET", "/metrics", &[], Vec::new())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&metrics.body);
    assert_contains_all(
        "metrics",
        &text,
        &[
            "photoboothd_orders{status=\"paid\"} 1",
            "photoboothd_payments{state=\"2\"} 1",
            "photoboothd_prints_total 3",
            "photoboothd_printer_up 1",
            "photoboothd_webhook_seconds_count{method=\"PerformTransaction\"} 1",
        ],
    );
}

#[tokio::test]
async fn commands_say_clearly_when_the_daemon_is_down_or_the_file_is_missing() {
    let mut d = Daemon::start().await;
    d.terminate();
    let (ok, out) = cli(&d, &["status"]);
    assert!(ok && out.contains("NOT RUNNING"), "{out}");
    let (_, out) = cli(&d, &["pay", "1"]);
    assert!(out.contains("does not exist") || out.contains("cannot reach"), "{out}");
    std::fs::remove_dir_all(d.data_dir()).unwrap();
    for args in [
        &["status"][..],
        &["orders"],
        &["order", "1"],
        &["stats"],
        &["reprint", "1"],
    ] {
        let (ok, out) = cli(&d, args);
        assert!(!ok && out.contains("no database"), "{args:?}: {out}");
    }
}

#[tokio::test]
async fn systemd_sees_ready_and_watchdog_pings() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut d = Daemon::start().await;
    d.env.push(("NOTIFY_SOCKET".into(), socket_path.display().to_string()));
    d.env.push(("WATCHDOG_USEC".into(), "400000".into()));
    d.restart().await;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(seen.iter().any(|m: &String| m.contains("READY=1")) && seen.iter().any(|m| m.contains("WATCHDOG=1"))) {
        assert!(Instant::now() < deadline, "saw only {seen:?}");
        let n = socket.recv(&mut buf).expect("a notify message");
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    // Ready came first, and only after the listeners were bound: the kiosk answers.
    assert!(seen[0].contains("READY=1"), "{seen:?}");
    assert_eq!(d.kiosk("GET", "/api/status", "").await.0, 200);
    d.terminate();
    let mut rest = Vec::new();
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    while let Ok(n) = socket.recv(&mut buf) {
        rest.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        if rest.iter().any(|m| m.contains("STOPPING=1")) {
            break;
        }
    }
    assert!(rest.iter().any(|m| m.contains("STOPPING=1")), "{rest:?}");
}
