//! The refund rule against the real daemon: a refund stops every print of its order, whatever
//! state its job is in, and each test looks at what reached the printer (files from the file
//! printer, jobs received by a network ESC/POS printer), not only at job rows.
//!
//! Each test ends the same way: a second order is paid and printed, the queue is left to drain,
//! and only then is the printer's output counted. A refunded job that could still be sent would
//! have been sent by then, so no test depends on how long it waits.

mod common;

use std::time::Duration;

use common::fake_escpos::FakeEscpos;
use common::*;
use serde_json::json;

/// Check and Create for a new order of one copy; returns the order id and its Payme id.
async fn created_order(d: &Daemon) -> (String, String) {
    let (order, amount) = d.new_order(1).await;
    let id = payme_id(order.parse().unwrap());
    let v = d
        .rpc(
            "CheckPerformTransaction",
            json!({ "amount": amount, "account": account(&order) }),
        )
        .await;
    assert_eq!(v["result"]["allow"], true, "{v}");
    d.create_tx(&id, &order, amount).await;
    (order, id)
}

async fn refund(d: &Daemon, payme_id: &str) {
    let v = d.rpc("CancelTransaction", json!({ "id": payme_id, "reason": 5 })).await;
    assert_eq!(v["result"]["state"], -2, "{v}");
}

/// Pays a second order, waits for it to print and for the queue to drain; returns its id.
async fn second_order_printed(d: &Daemon) -> String {
    let (order, id) = created_order(d).await;
    d.perform_tx(&id).await;
    d.wait_for_status(&order, "printed").await;
    d.wait_queue_idle().await;
    order
}

fn assert_only_order_printed(d: &Daemon, order: &str) {
    let prints = d.prints();
    assert!(!prints.is_empty(), "nothing printed:\n{}", d.log());
    for name in &prints {
        assert!(
            name.starts_with(&format!("order-{order}-")),
            "a refunded order printed: {prints:?}\n{}",
            d.log()
        );
    }
}

/// The file printer cannot print while its folder is a plain file (it reports offline).
fn unplug_file_printer(d: &Daemon) {
    let prints = d.data_dir().join("prints");
    let _ = std::fs::remove_dir_all(&prints);
    std::fs::write(&prints, b"not a folder").unwrap();
}

fn plug_file_printer(d: &Daemon) {
    std::fs::remove_file(d.data_dir().join("prints")).unwrap();
}

/// A paid order whose job waits in the queue because the printer is offline.
async fn paid_while_offline(d: &Daemon) -> (String, String) {
    let (order, id) = created_order(d).await;
    unplug_file_printer(d);
    d.wait_accepting(false).await;
    // The customer already confirmed in the app: Perform succeeds, the job waits for the printer.
    d.perform_tx(&id).await;
    assert_eq!(
        d.count(&format!(
            "SELECT count(*) FROM print_jobs WHERE order_id = {order} AND status = 'queued'"
        )),
        1
    );
    (order, id)
}

/// A paid order whose job failed while the printer was offline, then refunded; the printer is
/// back. Returns the order's id.
async fn refunded_failed_job(d: &Daemon) -> String {
    let (order, id) = paid_while_offline(d).await;
    fail_job(d, &order);
    refund(d, &id).await;
    plug_file_printer(d);
    order
}

/// Marks the order's job failed, as a permanent printer fault would (the print loop does not
/// touch it while the printer is offline).
fn fail_job(d: &Daemon, order: &str) {
    let n = d
        .db_rw()
        .execute(
            "UPDATE print_jobs SET status = 'failed', last_error = 'jam' WHERE order_id = ?1",
            [order],
        )
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn a_queued_job_of_a_refunded_order_never_prints() {
    let d = Daemon::start().await;
    let (_, id) = paid_while_offline(&d).await;
    refund(&d, &id).await;
    plug_file_printer(&d);
    d.wait_accepting(true).await;
    let second = second_order_printed(&d).await;
    assert_only_order_printed(&d, &second);
}

#[tokio::test]
async fn a_failed_job_of_a_refunded_order_is_not_requeued_by_printer_resume() {
    let d = Daemon::start().await;
    let order = refunded_failed_job(&d).await;
    let (ok, out) = d.cli(&["printer", "resume"]);
    assert!(ok, "{out}");
    d.wait_accepting(true).await;
    let second = second_order_printed(&d).await;
    assert_only_order_printed(&d, &second);
    assert_eq!(
        d.count(&format!(
            "SELECT count(*) FROM print_jobs WHERE order_id = {order} AND status = 'cancelled'"
        )),
        1
    );
}

#[tokio::test]
async fn a_failed_job_of_a_refunded_order_is_not_requeued_by_a_button_hold() {
    let d = Daemon::start().await;
    refunded_failed_job(&d).await;
    let (status, v) = d
        .kiosk("POST", "/api/dev/button", &json!({ "event": "hold" }).to_string())
        .await;
    assert!(status < 300, "{v}");
    // The hold is handled on its own task: wait for its log line before judging its effect.
    poll(
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async { d.log() },
        |log| log.contains("service: printer resumed"),
        |log| format!("the hold did nothing:\n{log}"),
    )
    .await;
    d.wait_accepting(true).await;
    let second = second_order_printed(&d).await;
    assert_only_order_printed(&d, &second);
}

async fn escpos_daemon(printer: &FakeEscpos) -> Daemon {
    let toml = printer.printer_toml();
    Daemon::start_with_config(|data| config_text(data, "").replace("backend = \"file\"\n", &toml)).await
}

/// Pays an order, waits until the printer holds its job mid-print, and refunds it.
async fn refunded_while_printing(d: &Daemon, printer: &FakeEscpos) {
    let (order, id) = created_order(d).await;
    d.perform_tx(&id).await;
    assert!(printer.wait_held(), "the print never started:\n{}", d.log());
    d.wait_for_status(&order, "printing").await;
    refund(d, &id).await;
}

#[tokio::test]
async fn a_job_refunded_while_printing_is_not_retried_after_a_transient_error() {
    let printer = FakeEscpos::start(true);
    let d = escpos_daemon(&printer).await;
    refunded_while_printing(&d, &printer).await;
    // The printer drops the connection mid-job: a transient fault that would normally retry.
    printer.release();
    second_order_printed(&d).await;
    assert_eq!(printer.jobs(), 2, "the refunded job was sent again:\n{}", d.log());
}

#[tokio::test]
async fn a_job_refunded_while_printing_is_not_requeued_at_restart() {
    let printer = FakeEscpos::start(true);
    let mut d = escpos_daemon(&printer).await;
    refunded_while_printing(&d, &printer).await;
    // A power cut mid-print, then the daemon starts again.
    d.kill();
    printer.release();
    d.restart_same_config().await;
    second_order_printed(&d).await;
    assert_eq!(printer.jobs(), 2, "the refunded job was sent again:\n{}", d.log());
}

#[tokio::test]
async fn reprint_refuses_a_refunded_order_unless_forced_and_a_never_paid_one_always() {
    let d = Daemon::start().await;
    let (order, id) = created_order(&d).await;
    d.perform_tx(&id).await;
    d.wait_for_status(&order, "printed").await;
    refund(&d, &id).await;
    let printed = d.prints().len();

    let (ok, out) = d.cli(&["reprint", &order]);
    assert!(!ok && out.contains("refunded") && out.contains("--force"), "{out}");
    assert_eq!(d.count("SELECT count(*) FROM print_jobs WHERE kind = 'reprint'"), 0);

    let (unpaid, _) = d.new_order(1).await;
    let (ok, out) = d.cli(&["reprint", &unpaid, "--force"]);
    assert!(!ok && out.contains("never paid"), "{out}");
    assert_eq!(d.count("SELECT count(*) FROM print_jobs WHERE kind = 'reprint'"), 0);

    // Nothing a refunded order had queued comes out meanwhile.
    d.wait_queue_idle().await;
    assert_eq!(d.prints().len(), printed);

    let (ok, out) = d.cli(&["reprint", &order, "--force"]);
    assert!(ok && out.contains("refunded"), "{out}");
    d.wait_queue_idle().await;
    assert!(
        d.log().contains("reprint of a REFUNDED order"),
        "the forced reprint is not logged:\n{}",
        d.log()
    );
    assert_eq!(d.prints().len(), printed + 1, "{}", d.log());

    // The order's history names the cancel reason in words.
    let (ok, out) = d.cli(&["order", &order]);
    assert!(ok && out.contains("refund (5)") && !out.contains("Some(5)"), "{out}");
    assert!(out.contains("forced past the refund"), "{out}");
}
