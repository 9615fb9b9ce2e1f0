//! The money path's edges against the real daemon: no payment the booth cannot print, `pay` as a
//! sandbox-only tool whose payments no figure counts, Payme's corner cases, credentials checked
//! before the body, and key rotation that keeps no old key in clear.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use base64::Engine;
use common::fake_escpos::FakeEscpos;
use common::*;
use photoboothd::client;
use photoboothd::payme::auth::basic_header;
use serde_json::{json, Value};

const TEXT_JSON: &str = "text/json; charset=UTF-8";

/// A raw body posted with the right key; returns the reply's text exactly as sent.
async fn post_raw(d: &Daemon, body: impl Into<Vec<u8>>) -> String {
    let auth = basic_header(KEY);
    let r = client::request(
        d.webhook,
        "POST",
        "/payme",
        &[("authorization", &auth), ("content-type", TEXT_JSON)],
        body.into(),
    )
    .await
    .expect("webhook reachable");
    assert_eq!(r.status, 200);
    String::from_utf8(r.body.to_vec()).unwrap()
}

async fn check(d: &Daemon, order: &str, amount: i64) -> Value {
    d.rpc(
        "CheckPerformTransaction",
        json!({ "amount": amount, "account": account(order) }),
    )
    .await
}

// ---- No payment the booth cannot deliver --------------------------------------------------------

#[tokio::test]
async fn no_new_payment_while_the_printer_cannot_print_but_a_created_one_completes() {
    let d = Daemon::start().await;
    let (held, held_amount) = d.new_order(1).await;
    let (waiting, waiting_amount) = d.new_order(1).await;
    let (new, new_amount) = d.new_order(1).await;
    let created = payme_id(1);
    assert_eq!(
        d.create_at(&created, now_ms(), held_amount, &held).await["result"]["state"],
        1
    );
    let pending = payme_id(2);
    assert_eq!(
        d.create_at(&pending, now_ms(), waiting_amount, &waiting).await["result"]["state"],
        1
    );

    // Allowed twice while the printer works: the second answer is the remembered one
    // (`payme/recent.rs`), and the printer going away must still be asked about below.
    for _ in 0..2 {
        assert_eq!(check(&d, &new, new_amount).await["result"]["allow"], true);
    }

    // The printer goes offline (the file printer's folder becomes a plain file).
    let prints = d.data_dir().join("prints");
    let _ = std::fs::remove_dir_all(&prints);
    std::fs::write(&prints, b"offline").unwrap();
    d.wait_accepting(false).await;
    let before = d.snapshot();
    assert_eq!(error_code(&check(&d, &new, new_amount).await), -31008);
    assert_eq!(
        error_code(&d.create_at(&payme_id(3), now_ms(), new_amount, &new).await),
        -31008
    );
    assert_eq!(d.snapshot(), before, "a refused payment writes nothing");
    // A repeat of a created transaction is answered from its row, as ever.
    assert_eq!(
        d.create_at(&pending, now_ms(), waiting_amount, &waiting).await["result"]["state"],
        1
    );
    // The customer already confirmed this one in the app: Perform succeeds, the job waits.
    let v = d.rpc("PerformTransaction", json!({ "id": created })).await;
    assert_eq!(v["result"]["state"], 2, "{v}");
    assert_eq!(d.order(&held).await["status"], "paid");

    std::fs::remove_file(&prints).unwrap();
    d.wait_accepting(true).await;
    assert_eq!(check(&d, &new, new_amount).await["result"]["allow"], true);
    d.wait_for_status(&held, "printed").await;
}

/// A Check asked again is answered from the last answer only while nothing has been written
/// (`payme/recent.rs`): every write of the daemon is seen at once; a write by another process (the
/// CLI) within a second, and Create re-checks the database whatever Check said.
#[tokio::test]
async fn a_check_asked_again_sees_every_write_since() {
    let d = Daemon::start().await;
    let (order, amount) = d.new_order(1).await;
    for _ in 0..3 {
        assert_eq!(result(&check(&d, &order, amount).await), &json!({ "allow": true }));
    }
    assert_eq!(
        error_code(&check(&d, &order, amount + 100).await),
        -31001,
        "another amount"
    );
    let id = payme_id(1);
    assert_eq!(d.create_at(&id, now_ms(), amount, &order).await["result"]["state"], 1);
    assert_eq!(
        error_code(&check(&d, &order, amount).await),
        -31008,
        "held by the created transaction"
    );
    d.perform_tx(&id).await;
    // Paid: the performed transaction still holds the order, which Payme's sandbox expects first.
    assert_eq!(error_code(&check(&d, &order, amount).await), -31008, "paid");

    // Another process pays an order the daemon has just allowed.
    let (other, other_amount) = d.new_order(1).await;
    assert_eq!(
        result(&check(&d, &other, other_amount).await),
        &json!({ "allow": true })
    );
    let (ok, out) = d.cli(&["pay", &other]);
    assert!(ok, "{out}");
    let create = d.create_at(&payme_id(2), now_ms(), other_amount, &other).await;
    assert_eq!(
        error_code(&create),
        -31008,
        "Create reads the database, not the last Check"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        error_code(&check(&d, &other, other_amount).await),
        -31008,
        "seen within a second"
    );
}

#[tokio::test]
async fn an_escpos_printer_that_goes_away_is_noticed_while_idle() {
    let printer = FakeEscpos::start(false);
    let toml = printer.printer_toml();
    let d = Daemon::start_with_config(|data| config_text(data, "").replace("backend = \"file\"\n", &toml)).await;
    let (order, amount) = d.new_order(1).await;
    d.wait_accepting(true).await;
    // No job is waiting; the printer's listener closes.
    printer.unplug();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, v) = d.kiosk("GET", "/api/status", "").await;
        if v["accepting_orders"] == false {
            assert_eq!(v["blocker"]["reason"], "printer_offline", "{v}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the printer's loss went unnoticed for 10 s: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(error_code(&check(&d, &order, amount).await), -31008);
}

// ---- photoboothd pay is a development tool ------------------------------------------------------

#[tokio::test]
async fn pay_refuses_a_production_checkout_and_the_daemon_refuses_its_transactions_there() {
    let d = Daemon::start_with("checkout_base = \"https://checkout.paycom.uz\"\n").await;
    let (order, _) = d.new_order(1).await;
    let (ok, out) = d.cli(&["pay", &order]);
    assert!(!ok && out.contains("sandbox") && out.contains("--force"), "{out}");
    assert_eq!(d.count("SELECT count(*) FROM payme_transactions"), 0);
    let (ok, out) = d.cli(&["pay", &order, "--force"]);
    assert!(!ok, "a production daemon must refuse a simulated payment: {out}");
    assert_eq!(d.count("SELECT count(*) FROM payme_transactions"), 0);
    assert_eq!(d.order(&order).await["status"], "awaiting_payment");
}

#[tokio::test]
async fn simulated_payments_are_in_no_statement_report_or_metric() {
    let d = Daemon::start().await;
    let t0 = now_ms();
    let (simulated, _) = d.new_order(1).await;
    let (ok, out) = d.cli(&["pay", &simulated]);
    assert!(ok, "{out}");
    let (real, amount) = d.new_order(1).await;
    let id = payme_id(9);
    d.create_at(&id, now_ms(), amount, &real).await;
    d.rpc("PerformTransaction", json!({ "id": id })).await;
    d.wait_for_status(&simulated, "printed").await;
    d.wait_for_status(&real, "printed").await;
    assert_eq!(
        d.count("SELECT count(*) FROM payme_transactions WHERE simulated = 1 AND payme_id LIKE 'photoboothd-pay-%'"),
        1
    );

    let v = d
        .rpc("GetStatement", json!({ "from": t0 - 60_000, "to": now_ms() + 60_000 }))
        .await;
    let txs = v["result"]["transactions"].as_array().unwrap();
    assert_eq!(txs.len(), 1, "{v}");
    assert_eq!(txs[0]["id"], id.as_str());

    let (ok, out) = d.cli(&["stats", "--days", "1"]);
    assert!(ok, "{out}");
    let today = out.lines().last().unwrap_or_default();
    assert!(today.contains("20 000") && !today.contains("40 000"), "{out}");

    let r = client::request(d.kiosk, "GET", "/metrics", &[], Vec::new())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&r.body);
    assert!(text.contains("photoboothd_payments{state=\"2\"} 1\n"), "{text}");
    assert!(text.contains("photoboothd_orders{status=\"paid\"} 1\n"), "{text}");
}

// ---- Payme's corner cases -----------------------------------------------------------------------

#[tokio::test]
async fn payme_corner_cases() {
    let d = Daemon::start().await;
    let (order, amount) = d.new_order(2).await;
    assert_eq!(amount, 4_000_000);

    // A UTF-8 byte order mark before the JSON.
    let mut body = b"\xEF\xBB\xBF".to_vec();
    body.extend(
        json!({ "method": "CheckPerformTransaction", "params": { "amount": amount, "account": account(&order) }, "id": 1 })
            .to_string()
            .into_bytes(),
    );
    let v: Value = serde_json::from_str(&post_raw(&d, body).await).unwrap();
    assert_eq!(v["result"]["allow"], true, "{v}");

    // An unknown method without params: the method is checked first.
    let v: Value = serde_json::from_str(&post_raw(&d, r#"{"method":"Refund","id":2}"#).await).unwrap();
    assert_eq!(error_code(&v), -32601, "{v}");

    // CancelTransaction of an unknown id, with and without a reason.
    for params in [json!({ "id": payme_id(5) }), json!({ "id": payme_id(5), "reason": 5 })] {
        let v = d.rpc("CancelTransaction", params.clone()).await;
        assert_eq!(error_code(&v), -31003, "{params}: {v}");
    }

    // An integer-valued float amount is that integer; a fractional one is a wrong amount.
    let float_check = |amount: &str| {
        format!(
            r#"{{"method":"CheckPerformTransaction","params":{{"amount":{amount},"account":{{"order_id":"{order}"}}}},"id":3}}"#
        )
    };
    let v: Value = serde_json::from_str(&post_raw(&d, float_check("4000000.0")).await).unwrap();
    assert_eq!(v["result"]["allow"], true, "{v}");
    let v: Value = serde_json::from_str(&post_raw(&d, float_check("4000000.5")).await).unwrap();
    assert_eq!(error_code(&v), -31001, "{v}");

    // The request id comes back exactly as sent, whatever its type or size.
    for id in [
        "123456789012345678901234567890",
        "-42",
        "1.50",
        "\"a string id\"",
        "0",
        "18446744073709551616",
    ] {
        let text = post_raw(
            &d,
            format!(
                r#"{{"method":"CheckTransaction","params":{{"id":"{}"}},"id":{id}}}"#,
                payme_id(6)
            ),
        )
        .await;
        assert!(text.contains(&format!("\"id\":{id}")), "id {id} came back as: {text}");
    }
}

fn decoded_link(view: &Value) -> String {
    let url = view["checkout_url"].as_str().unwrap();
    let tail = url.rsplit('/').next().unwrap();
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(tail).unwrap()).unwrap()
}

/// `POST /api/generate-qr` with `body`.
async fn generate_qr(d: &Daemon, body: Value) -> (u16, Value) {
    d.kiosk("POST", "/api/generate-qr", &body.to_string()).await
}

#[tokio::test]
async fn the_checkout_link_carries_the_customers_language_and_the_return_url() {
    let d = Daemon::start_with("return_url = \"https://booth.example/thanks\"\n").await;
    let (status, v) = generate_qr(&d, json!({ "copies": 1, "language": "ru" })).await;
    assert_eq!(status, 200, "{v}");
    let link = decoded_link(&v);
    assert!(link.ends_with(";l=ru;c=https://booth.example/thanks"), "{link}");
    // The order keeps the language: the link rebuilt from it later (as qr.png does) is the same.
    let id = v["order_id"].as_i64().unwrap().to_string();
    assert_eq!(decoded_link(&d.order(&id).await), link);

    // The language the kiosk reports with a session input is used when generate-qr has none.
    let _ = d
        .kiosk("POST", "/api/session/dismiss", &json!({ "language": "en" }).to_string())
        .await;
    let (_, v) = generate_qr(&d, json!({ "copies": 1 })).await;
    assert!(decoded_link(&v).contains(";l=en;"), "{}", decoded_link(&v));

    generate_qr(&d, json!({ "copies": 1, "language": "fr" }))
        .await
        .refused(400, "bad_language");
}

// ---- Credentials before work --------------------------------------------------------------------

#[tokio::test]
async fn wrong_credentials_are_refused_before_the_body_is_read() {
    let d = Daemon::start().await;
    let mut s = std::net::TcpStream::connect(d.webhook).unwrap();
    // Well under the 10 s the webhook would wait for a body it reads.
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let head = format!(
        "POST /payme HTTP/1.1\r\nHost: booth\r\nAuthorization: {}\r\nContent-Type: text/json\r\nContent-Length: 60000\r\n\r\n",
        basic_header("wrong")
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&reply).contains("-32504") {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("no reply without the body ({e}): {}", String::from_utf8_lossy(&reply)),
        }
    }
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 200") && text.contains("-32504"), "{text}");
}

#[tokio::test]
async fn the_rejected_credentials_warning_is_rate_limited() {
    let d = Daemon::start().await;
    for _ in 0..30 {
        let v = d
            .rpc_with_key("wrong", "CheckTransaction", json!({ "id": payme_id(1) }))
            .await;
        assert_eq!(error_code(&v), -32504);
    }
    let lines = d.log().lines().filter(|l| l.contains("wrong credentials")).count();
    assert_eq!(lines, 1, "{}", d.log());
}

// ---- Key rotation -------------------------------------------------------------------------------

#[tokio::test]
async fn change_password_keeps_only_a_hash_of_the_replaced_key() {
    let mut d = Daemon::start().await;
    let new_key = "New:KEY%&?@#!zYxWvUtSrQpOnMlKjIhGfE";
    let v = d.rpc("ChangePassword", json!({ "password": new_key })).await;
    assert_eq!(v["result"]["success"], true, "{v}");
    let stored: Vec<String> = {
        let db = d.db();
        let mut stmt = db.prepare("SELECT value FROM settings").unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    };
    assert!(
        stored.iter().all(|v| !v.contains(KEY)),
        "the replaced key is stored in clear: {stored:?}"
    );
    assert_eq!(
        error_code(
            &d.rpc_with_key(KEY, "CheckTransaction", json!({ "id": payme_id(1) }))
                .await
        ),
        -32504
    );
    // A restart still knows which key the rotation replaced.
    d.restart().await;
    let v = d
        .rpc_with_key(new_key, "CheckTransaction", json!({ "id": payme_id(1) }))
        .await;
    assert_eq!(error_code(&v), -31003, "{v}");
    assert!(!d.log().contains(KEY) && !d.log().contains(new_key));
}
