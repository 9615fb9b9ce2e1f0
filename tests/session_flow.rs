//! The kiosk session flow through its HTTP API against the real daemon (sim camera, sim GPIO,
//! file printer): the whole paid path, invalid inputs, the button, timeouts, restarts, and a
//! printer that cannot print. The same flow in a real browser is in kiosk_e2e.rs.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const FAST: &str = "[camera]\ncountdown_s = 0\nshots = 3\nwidth = 800\nheight = 600\n\
                    [session]\nmax_retakes = 1\nreview_timeout_s = 30\ncopies_timeout_s = 30\ndone_timeout_s = 2\nerror_timeout_s = 2\n";

async fn session(d: &Daemon) -> Value {
    d.session_view().await
}

async fn wait_stage(d: &Daemon, stage: &str) -> Value {
    d.wait_stage(stage).await
}

/// Starts a session and waits for its photos on the review screen.
async fn start_to_review(d: &Daemon) {
    act(d, "start").await;
    wait_stage(d, "review").await;
}

async fn act(d: &Daemon, action: &str) -> (u16, Value) {
    d.session_act(action).await
}

async fn pay(d: &Daemon, order_id: &str, amount: i64) {
    d.pay(order_id, amount).await;
}

#[tokio::test]
async fn a_whole_paid_session_prints_the_composed_layout() {
    let d = Daemon::start_with(FAST).await;
    let idle = session(&d).await;
    assert_eq!(
        (idle["stage"].clone(), idle["accepting_orders"].clone()),
        (json!("idle"), json!(true))
    );
    // Only inputs valid in the current stage act.
    for action in ["accept", "retake", "dismiss"] {
        assert_eq!(act(&d, action).await.0, 409, "{action} while idle");
    }
    let (status, v) = act(&d, "start").await;
    assert_eq!(status, 200, "{v}");
    let session_id = v["session_id"].as_i64().unwrap();
    // A second start mid-session does nothing.
    assert_eq!(act(&d, "start").await.0, 409);

    let review = wait_stage(&d, "review").await;
    assert_eq!(review["photos"].as_array().unwrap().len(), 3);
    assert_eq!(review["retakes_left"], 1);
    // The preview of the composed page is served.
    let preview = photoboothd::client::request(d.kiosk, "GET", review["preview"].as_str().unwrap(), &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(
        (preview.status, preview.content_type.as_deref()),
        (200, Some("image/jpeg"))
    );

    // One retake, then none left.
    assert_eq!(act(&d, "retake").await.0, 200);
    let review = wait_stage(&d, "review").await;
    assert_eq!(review["retakes_left"], 0);
    assert_eq!(act(&d, "retake").await.1["reason"], "no_retakes_left");

    assert_eq!(act(&d, "accept").await.0, 200);
    wait_stage(&d, "choose_copies").await;
    let (status, order) = d.kiosk("POST", "/api/generate-qr", r#"{"copies": 2}"#).await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["session_id"], session_id);
    let order_id = order["order_id"].as_i64().unwrap().to_string();
    let waiting = wait_stage(&d, "awaiting_payment").await;
    assert_eq!(waiting["order"]["order_id"], order["order_id"]);

    pay(&d, &order_id, order["amount_tiyin"].as_i64().unwrap()).await;
    let done = wait_stage(&d, "done").await;
    assert_eq!(done["order"]["status"], "printed");
    wait_stage(&d, "idle").await;

    // The prints are the composed 2x6 strip layout, two-up on a 4x6 page, not the receipt.
    let page = d.first_print(2).to_rgb8();
    assert_eq!(page.dimensions(), (1200, 1800));
    let left = image::imageops::crop_imm(&page, 0, 0, 600, 1800).to_image();
    let right = image::imageops::crop_imm(&page, 600, 0, 600, 1800).to_image();
    assert!(left == right, "the two strips of a -div2 page must be identical");

    // The log tells the session's story with its ids.
    let log = d.log();
    assert_contains_all(
        "log",
        &log,
        &[
            "session started",
            "session stage",
            "photo taken",
            "order created",
            "printed",
            "session ended",
        ],
    );
    assert!(log.contains(&format!("session_id={session_id}")));
}

#[tokio::test]
async fn the_button_drives_the_session_and_a_hold_is_the_service_action() {
    let d = Daemon::start_with(FAST).await;
    let press = |event: &'static str| {
        let d = &d;
        async move {
            d.kiosk("POST", "/api/dev/button", &json!({ "event": event }).to_string())
                .await
        }
    };
    assert_eq!(press("press").await.0, 200);
    wait_stage(&d, "review").await;
    // In review the button accepts.
    press("press").await;
    wait_stage(&d, "choose_copies").await;
    // A hold never disturbs the session.
    assert_eq!(press("hold").await.0, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(session(&d).await["stage"], "choose_copies");
    assert!(d.log().contains("service: printer resumed"), "{}", d.log());
    let (status, v) = d.kiosk("POST", "/api/dev/button", r#"{"event": "twist"}"#).await;
    assert_eq!(status, 400, "{v}");
}

#[tokio::test]
async fn cancel_and_timeouts_return_to_idle_and_a_late_payment_still_prints() {
    let d = Daemon::start_with(&FAST.replace("copies_timeout_s = 30", "copies_timeout_s = 2")).await;
    start_to_review(&d).await;
    act(&d, "cancel").await;
    wait_stage(&d, "idle").await;

    // An abandoned copies screen times out.
    start_to_review(&d).await;
    act(&d, "accept").await;
    wait_stage(&d, "choose_copies").await;
    wait_stage(&d, "idle").await;

    // Cancel on the payment screen cancels the order.
    start_to_review(&d).await;
    act(&d, "accept").await;
    let (_, order) = d.kiosk("POST", "/api/generate-qr", r#"{"copies": 1}"#).await;
    let cancelled_id = order["order_id"].as_i64().unwrap().to_string();
    assert_eq!(act(&d, "cancel").await.0, 200);
    wait_stage(&d, "idle").await;
    assert_eq!(d.order(&cancelled_id).await["status"], "cancelled");
    let v = d
        .rpc(
            "CheckPerformTransaction",
            json!({ "amount": order["amount_tiyin"], "account": account(&cancelled_id) }),
        )
        .await;
    assert_eq!(error_code(&v), -31052);

    // Payme already holds the order: the customer cannot cancel it from the screen, and if they
    // walk away the payment that completes later still prints, marked as such.
    start_to_review(&d).await;
    act(&d, "accept").await;
    let (_, order) = d.kiosk("POST", "/api/generate-qr", r#"{"copies": 1}"#).await;
    let order_id = order["order_id"].as_i64().unwrap().to_string();
    let id = payme_id(77);
    let amount = order["amount_tiyin"].as_i64().unwrap();
    d.create_tx(&id, &order_id, amount).await;
    assert_eq!(act(&d, "cancel").await.1["reason"], "payment_in_progress");
    d.kill_session_via_restart().await;
    d.rpc("PerformTransaction", json!({ "id": id })).await;
    let printed = d.wait_for_status(&order_id, "printed").await;
    assert_eq!(printed["session_id"], order["session_id"]);
}

impl Daemon {
    /// Restarts the daemon while a session waits for payment; the session resumes after it.
    async fn kill_session_via_restart(&self) {
        // Ends the customer's visit from the outside: dismiss is refused while paying, so use the
        // session table the way a technician's reset would.
        let db = rusqlite::Connection::open(self.data_dir().join(photoboothd::store::DB_FILE)).unwrap();
        db.busy_timeout(Duration::from_secs(5)).unwrap();
        db.execute(
            "UPDATE sessions SET ended_at = ?1, end_reason = 'test' WHERE ended_at IS NULL",
            [now_ms()],
        )
        .unwrap();
    }
}

#[tokio::test]
async fn a_restart_resumes_a_session_waiting_for_payment() {
    let mut d = Daemon::start_with(FAST).await;
    start_to_review(&d).await;
    act(&d, "accept").await;
    let (_, order) = d.kiosk("POST", "/api/generate-qr", r#"{"copies": 1}"#).await;
    let order_id = order["order_id"].as_i64().unwrap().to_string();
    wait_stage(&d, "awaiting_payment").await;
    d.restart().await;
    let resumed = wait_stage(&d, "awaiting_payment").await;
    assert_eq!(resumed["order"]["order_id"], order["order_id"]);
    pay(&d, &order_id, order["amount_tiyin"].as_i64().unwrap()).await;
    wait_stage(&d, "done").await;
    wait_stage(&d, "idle").await;

    // A session caught mid-review by a restart ends cleanly instead.
    start_to_review(&d).await;
    d.restart().await;
    assert_eq!(session(&d).await["stage"], "idle");
    assert!(d.log().contains("interrupted by a restart"));
}

#[tokio::test]
async fn a_camera_failure_is_an_error_screen_and_no_order() {
    let mut d = Daemon::start_with(FAST).await;
    // The rpicam backend with no rpicam-still on PATH: the capture fails, the customer is told.
    d.extra = FAST.replace("[camera]\n", "[camera]\nbackend = \"rpicam\"\n");
    d.env.push(("PATH".into(), "/nonexistent".into()));
    d.restart().await;
    act(&d, "start").await;
    let error = wait_stage(&d, "error").await;
    assert_eq!(error["error"]["code"], "camera_failed", "{error}");
    assert_eq!(d.count("SELECT count(*) FROM orders"), 0);
    let (_, status) = d.kiosk("GET", "/api/status", "").await;
    assert_eq!(status["camera"]["ready"], false, "{status}");
    assert!(status["camera"]["last_error"].is_string());
    wait_stage(&d, "idle").await;
}

#[tokio::test]
async fn a_printer_that_cannot_print_refuses_sessions_and_orders() {
    let d0 = tempfile::tempdir().unwrap();
    let blocked = d0.path().join("not-a-dir");
    std::fs::write(&blocked, b"a file where the prints folder should be").unwrap();
    let printer_dir = blocked.join("prints");
    let mut d = Daemon::start_with(FAST).await;
    d.printer_extra = format!("dir = {:?}", printer_dir.display().to_string());
    d.restart().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let (_, status) = d.kiosk("GET", "/api/status", "").await;
        if status["accepting_orders"] == false {
            break status;
        }
        assert!(Instant::now() < deadline, "printer never reported offline: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status["printer"]["state"], "offline", "{status}");
    assert_eq!(status["blocker"]["reason"], "printer_offline");
    let (code, v) = act(&d, "start").await;
    assert_eq!((code, v["reason"].clone()), (503, json!("printer_offline")));
    let (code, v) = d.kiosk("POST", "/api/generate-qr", r#"{"copies": 1}"#).await;
    assert_eq!((code, v["reason"].clone()), (503, json!("printer_offline")), "{v}");
    assert_eq!(d.count("SELECT count(*) FROM orders"), 0);
    assert_eq!(session(&d).await["blocker"]["reason"], "printer_offline");
}

/// Payme pays and refunds the order between two of the screen's looks at it (it looks twice a
/// second), and the customer then taps cancel on the payment screen: the order was refunded and
/// must stay so (a refund is final; "cancelled" would hide it from the refund figures and make
/// `reprint --force` queue a job that never prints). Repeated until the tap lands in that window
/// at least once (the tap is refused when the screen has already seen the payment).
#[tokio::test]
async fn a_cancel_tap_after_a_refund_leaves_the_order_refunded() {
    let d = Daemon::start_with(FAST).await;
    let mut raced = 0;
    for attempt in 0..5u64 {
        start_to_review(&d).await;
        act(&d, "accept").await;
        let (_, order) = d.kiosk("POST", "/api/generate-qr", r#"{"copies": 1}"#).await;
        let order_id = order["order_id"].as_i64().unwrap().to_string();
        wait_stage(&d, "awaiting_payment").await;
        let id = payme_id(900 + attempt);
        d.create_tx(&id, &order_id, order["amount_tiyin"].as_i64().unwrap())
            .await;
        d.perform_tx(&id).await;
        let refund = d.rpc("CancelTransaction", json!({ "id": id, "reason": 5 })).await;
        assert_eq!(refund["result"]["state"], -2, "{refund}");
        if act(&d, "cancel").await.0 == 200 {
            raced += 1;
        }
        assert_eq!(d.order(&order_id).await["status"], "refunded", "attempt {attempt}");
        let status: String = d
            .db()
            .query_row("SELECT status FROM orders WHERE id = ?1", [&order_id], |r| r.get(0))
            .unwrap();
        assert_eq!(status, "refunded", "attempt {attempt}");
        wait_stage(&d, "idle").await;
        if raced > 0 {
            assert!(d.log().contains("the order had already ended"), "{}", d.log());
            break;
        }
    }
}
