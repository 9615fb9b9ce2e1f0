//! The owner's service menu (`/api/service/*`) against the real daemon: it does not exist without a
//! PIN; unlock, a wrong PIN, the lockout; every action refused without a token and done with one
//! (Bearer or the cookie); each logged with `service=true`.

mod common;

use common::*;
use serde_json::json;

const PIN: &str = "0123";
const WITH_PIN: &str = "[service]\npin = \"0123\"\n[camera]\nwidth = 640\nheight = 480\n";

/// Every service route with a body that would be valid.
const ACTIONS: &[(&str, &str, &str)] = &[
    ("GET", "/api/service/summary", ""),
    ("POST", "/api/service/refill", ""),
    ("POST", "/api/service/test-print", ""),
    ("POST", "/api/service/resume", ""),
    ("POST", "/api/service/reprint", r#"{"order_id": 1}"#),
    ("POST", "/api/service/event/start", r#"{"max_prints": 5}"#),
    ("POST", "/api/service/event/stop", ""),
    ("POST", "/api/service/lock", ""),
];

async fn with_pin() -> Daemon {
    Daemon::start_with_config(|data_dir| config_text_full(data_dir, WITH_PIN, "capacity = 50")).await
}

async fn paid_order(d: &Daemon, copies: u32) -> (String, String) {
    let (order_id, amount) = d.new_order(copies).await;
    let id = payme_id(order_id.parse::<u64>().unwrap() + 7);
    d.create_tx(&id, &order_id, amount).await;
    d.perform_tx(&id).await;
    (order_id, id)
}

#[tokio::test]
async fn without_a_pin_every_service_route_is_404() {
    let d = Daemon::start().await;
    for (method, path, body) in ACTIONS
        .iter()
        .chain(&[("POST", "/api/service/unlock", r#"{"pin": "0123"}"#)])
    {
        let (status, v) = d.service(method, path, None, body).await;
        assert_eq!(status, 404, "{method} {path}: {v}");
    }
}

#[tokio::test]
async fn every_action_needs_a_token_and_works_with_one() {
    let d = with_pin().await;
    // No token, a made-up token: 401 for every route.
    for (method, path, body) in ACTIONS {
        assert_eq!(d.service(method, path, None, body).await.0, 401, "{method} {path}");
        assert_eq!(
            d.service(method, path, Some("0123456789abcdef0123456789abcdef"), body)
                .await
                .0,
            401,
            "{method} {path}"
        );
    }
    // A wrong PIN is 403 and says how many tries are left.
    let (status, v) = d
        .service("POST", "/api/service/unlock", None, r#"{"pin": "9999"}"#)
        .await;
    assert_eq!(
        (status, v["reason"].as_str(), v["tries_left"].as_i64()),
        (403, Some("wrong_pin"), Some(4))
    );
    assert_eq!(d.service("POST", "/api/service/unlock", None, "nonsense").await.0, 400);

    let (status, v, cookie) = d
        .kiosk_with("POST", "/api/service/unlock", &[], &json!({ "pin": PIN }).to_string())
        .await;
    assert_eq!(status, 200, "{v}");
    let token = v["token"].as_str().unwrap().to_string();
    assert!(v["expires_at"].as_i64().unwrap() > now_ms() + 9 * 60 * 1000, "{v}");
    let cookie = cookie.expect("a cookie");
    assert!(cookie.starts_with(&format!("photobooth_service={token}")), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");

    // The cookie alone opens the summary, as the kiosk page sends it.
    let (status, summary, _) = d
        .kiosk_with(
            "GET",
            "/api/service/summary",
            &[("cookie", &format!("lang=uz; photobooth_service={token}"))],
            "",
        )
        .await;
    assert_eq!(status, 200, "{summary}");
    for key in ["today", "month", "printer", "camera", "print_queue", "last_orders"] {
        assert!(!summary[key].is_null(), "summary lacks {key}: {summary}");
    }
    assert_eq!(summary["printer"]["media_left"], 50);

    // Takings show up in today's figures and the last orders.
    let (order_id, payme) = paid_order(&d, 2).await;
    d.wait_for_status(&order_id, "printed").await;
    let (_, summary) = d.service("GET", "/api/service/summary", Some(&token), "").await;
    assert_eq!(summary["today"]["paid_orders"], 1, "{summary}");
    assert_eq!(summary["today"]["revenue_tiyin"], 2 * PRICE_TIYIN);
    assert_eq!(summary["today"]["prints"], 2);
    assert_eq!(summary["month"]["paid_orders"], 1);
    assert_eq!(summary["last_orders"][0]["order_id"].to_string(), order_id);
    assert_eq!(summary["printer"]["media_left"], 48);

    let (status, v) = d.service("POST", "/api/service/refill", Some(&token), "").await;
    assert_eq!((status, v["media_left"].as_i64()), (200, Some(50)), "{v}");

    let before = d.prints().len();
    let (status, v) = d.service("POST", "/api/service/test-print", Some(&token), "").await;
    assert_eq!(status, 202, "{v}");
    wait_until(&d, || d.prints().len() == before + 1).await;

    let (status, v) = d.service("POST", "/api/service/resume", Some(&token), "").await;
    assert_eq!((status, v["requeued"].as_i64()), (200, Some(0)), "{v}");

    let body = json!({ "order_id": order_id.parse::<i64>().unwrap() }).to_string();
    let (status, v) = d.service("POST", "/api/service/reprint", Some(&token), &body).await;
    assert_eq!(status, 200, "{v}");
    let reprints = "SELECT count(*) FROM print_jobs WHERE kind = 'reprint' AND status = 'printed'";
    wait_until(&d, || d.count(reprints) == 1).await;
    assert_eq!(
        d.service("POST", "/api/service/reprint", Some(&token), r#"{"order_id": 999}"#)
            .await
            .0,
        404
    );
    assert_eq!(
        d.service("POST", "/api/service/reprint", Some(&token), r#"{"order": 1}"#)
            .await
            .0,
        400
    );
    // An unpaid order and a refunded one are refused.
    let (open_order, _) = d.new_order(1).await;
    let body = json!({ "order_id": open_order.parse::<i64>().unwrap() }).to_string();
    d.service("POST", "/api/service/reprint", Some(&token), &body)
        .await
        .refused(409, "not_paid");
    let refund = d.rpc("CancelTransaction", json!({ "id": payme, "reason": 5 })).await;
    assert_eq!(refund["result"]["state"], -2, "{refund}");
    let body = json!({ "order_id": order_id.parse::<i64>().unwrap() }).to_string();
    d.service("POST", "/api/service/reprint", Some(&token), &body)
        .await
        .refused(409, "refunded");
    let (_, summary) = d.service("GET", "/api/service/summary", Some(&token), "").await;
    assert_eq!(
        (
            summary["today"]["refunds"].as_i64(),
            summary["today"]["revenue_tiyin"].as_i64()
        ),
        (Some(1), Some(0))
    );

    let (status, v) = d
        .service(
            "POST",
            "/api/service/event/start",
            Some(&token),
            r#"{"max_prints": 5, "title": "A & B"}"#,
        )
        .await;
    assert_eq!((status, v["prints_left"].as_i64()), (200, Some(5)), "{v}");
    assert_eq!(
        d.service(
            "POST",
            "/api/service/event/start",
            Some(&token),
            r#"{"max_prints": -1}"#
        )
        .await
        .0,
        400
    );
    let (status, v) = d.service("POST", "/api/service/event/stop", Some(&token), "").await;
    assert_eq!((status, v["ended_event_id"].is_i64()), (200, true), "{v}");

    // Lock ends the token.
    assert_eq!(d.service("POST", "/api/service/lock", Some(&token), "").await.0, 200);
    assert_eq!(d.service("GET", "/api/service/summary", Some(&token), "").await.0, 401);

    let log = d.log();
    for action in ["refill", "test_print", "resume", "reprint", "event_start", "event_stop"] {
        assert!(
            log.lines().any(|l| l.contains("service=true") && l.contains(action)),
            "no service=true log line for {action}:\n{log}"
        );
    }
    assert!(!log.contains("pin="), "the PIN must not be logged");
}

#[tokio::test]
async fn five_wrong_pins_lock_the_menu_even_for_the_right_pin() {
    let d = with_pin().await;
    for n in 1..=4 {
        let (status, v) = d
            .service("POST", "/api/service/unlock", None, r#"{"pin": "1111"}"#)
            .await;
        assert_eq!((status, v["tries_left"].as_i64()), (403, Some(5 - n)), "{v}");
    }
    d.service("POST", "/api/service/unlock", None, r#"{"pin": "1111"}"#)
        .await
        .refused(429, "locked_out");
    let (status, v) = d
        .service("POST", "/api/service/unlock", None, &json!({ "pin": PIN }).to_string())
        .await;
    assert_eq!(status, 429, "the right PIN is refused during the lockout: {v}");
    assert!(v["retry_after_s"].as_u64().is_some_and(|s| s > 0 && s <= 300), "{v}");
}

#[tokio::test]
async fn the_pin_may_be_given_as_its_hash() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_photoboothd"))
        .args(["service-pin", "0123"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(hash.len(), 64, "{hash}");
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_photoboothd"))
        .args(["service-pin", "12a4"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let extra = format!("[service]\npin_sha256 = \"{hash}\"\n");
    let d = Daemon::start_with(&extra).await;
    assert_eq!(
        d.service("POST", "/api/service/unlock", None, r#"{"pin": "123"}"#)
            .await
            .0,
        403
    );
    let token = d.service_token(PIN).await;
    assert_eq!(d.service("GET", "/api/service/summary", Some(&token), "").await.0, 200);
}

async fn wait_until(d: &Daemon, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out\n{}", d.log());
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// `photoboothd pay` is a sandbox simulation, not money: like `stats` and the metrics, the service
/// menu's figures leave its payments and refunds out (docs/payme.md, "Transactions of `photoboothd
/// pay`").
#[tokio::test]
async fn the_summary_leaves_simulated_payments_out() {
    let d = with_pin().await;
    let token = d.service_token(PIN).await;
    let (real, _) = paid_order(&d, 1).await;
    for copies in [1, 2] {
        let (simulated, _) = d.new_order(copies).await;
        let (ok, out) = d.cli(&["pay", &simulated]);
        assert!(ok, "{out}");
        d.wait_for_status(&simulated, "printed").await;
    }
    d.wait_for_status(&real, "printed").await;
    let refunded: String = d
        .db()
        .query_row(
            "SELECT payme_id FROM payme_transactions WHERE simulated = 1 ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let refund = d.rpc("CancelTransaction", json!({ "id": refunded, "reason": 5 })).await;
    assert_eq!(refund["result"]["state"], -2, "{refund}");

    let (status, summary) = d.service("GET", "/api/service/summary", Some(&token), "").await;
    assert_eq!(status, 200, "{summary}");
    for period in ["today", "month"] {
        let p = &summary[period];
        assert_eq!(
            (
                p["paid_orders"].as_i64(),
                p["revenue_tiyin"].as_i64(),
                p["refunds"].as_i64()
            ),
            (Some(1), Some(PRICE_TIYIN), Some(0)),
            "{period}: {summary}"
        );
    }
}

/// A digital-only order paid for no print: the menu shows it no Reprint button, and the API
/// refuses one too (a free print otherwise).
#[tokio::test]
async fn a_digital_only_order_is_not_reprinted() {
    let d = Daemon::start_with_config(|data_dir| {
        config_text_full(
            data_dir,
            "[service]\npin = \"0123\"\n[camera]\ncountdown_s = 0\nshots = 1\nwidth = 640\nheight = 480\n",
            "capacity = 50\n[digital]\nprice = 10000\n",
        )
    })
    .await;
    let token = d.service_token(PIN).await;
    d.to_copies_screen().await;
    let (status, order) = d.kiosk("POST", "/api/generate-qr", r#"{"digital_only": true}"#).await;
    assert_eq!((status, order["kind"].as_str()), (200, Some("digital")), "{order}");
    let id = order["order_id"].as_i64().unwrap();
    d.pay(&id.to_string(), order["amount_tiyin"].as_i64().unwrap()).await;
    d.wait_for_status(&id.to_string(), "delivered").await;
    let body = json!({ "order_id": id }).to_string();
    d.service("POST", "/api/service/reprint", Some(&token), &body)
        .await
        .refused(409, "not_paid");
    assert_eq!(d.count("SELECT count(*) FROM print_jobs"), 0);
}
