//! Event mode (a prepaid party) against the real daemon: free prints straight from the copies
//! screen, the `max_prints` cap (2 + 1 of 3, then "event over"), nothing reaching Payme, and an
//! event started from the service menu surviving a restart.

mod common;

use common::*;
use serde_json::json;

const FAST: &str = "[camera]\ncountdown_s = 0\nshots = 1\nwidth = 640\nheight = 480\n\
                    [session]\ndone_timeout_s = 2\nerror_timeout_s = 2\n";

async fn print(d: &Daemon, copies: u32) -> (u16, serde_json::Value) {
    d.kiosk("POST", "/api/session/print", &json!({ "copies": copies }).to_string())
        .await
}

#[tokio::test]
async fn an_event_of_three_prints_two_then_one_then_refuses_and_never_reaches_payme() {
    let d = Daemon::start_with_config(|data_dir| {
        TestConfig {
            booth: "mode = \"event\"\n".into(),
            payme: format!("{FAST}[event]\nmax_prints = 3\ntitle = \"Aziza & Bobur\"\n"),
            ..TestConfig::new(data_dir)
        }
        .text()
    })
    .await;
    let idle = d.session_view().await;
    assert_eq!(idle["event"]["prints_left"], 3, "{idle}");
    assert_eq!(idle["event"]["title"], "Aziza & Bobur");

    let copies = d.to_copies_screen().await;
    assert_eq!(
        copies["max_copies"], 3,
        "the copies screen offers no more than are left"
    );
    // No Payme order in an event.
    d.kiosk("POST", "/api/generate-qr", r#"{"copies": 1}"#)
        .await
        .refused(409, "event_mode");
    assert_eq!(print(&d, 4).await.1["reason"], "event_prints_left");
    let (status, order) = print(&d, 2).await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(
        (order["amount_tiyin"].as_i64(), order["event_id"].is_i64()),
        (Some(0), true),
        "{order}"
    );
    let done = d.wait_stage("done").await;
    assert_eq!(done["order"]["status"], "printed", "{done}");
    d.wait_stage("idle").await;
    assert_eq!(d.prints().len(), 2);

    let copies = d.to_copies_screen().await;
    assert_eq!(copies["max_copies"], 1);
    assert_eq!(print(&d, 2).await.0, 409);
    assert_eq!(print(&d, 1).await.0, 200);
    // The cap is reached, yet the last order still prints.
    d.wait_stage("done").await;
    let idle = d.wait_stage("idle").await;
    assert_eq!(d.prints().len(), 3);
    assert_eq!(idle["blocker"]["reason"], "event_over", "{idle}");
    d.kiosk("POST", "/api/session/start", "")
        .await
        .refused(503, "event_over");

    // Stored as free event orders; Payme never saw one, and cannot pay one.
    assert_eq!(
        d.count("SELECT count(*) FROM orders WHERE status = 'event' AND amount_tiyin = 0 AND event_id IS NOT NULL"),
        2
    );
    assert_eq!(d.count("SELECT count(*) FROM orders WHERE status != 'event'"), 0);
    assert_eq!(d.count("SELECT count(*) FROM payme_transactions"), 0);
    let order_id = order["order_id"].as_i64().unwrap().to_string();
    let check = d
        .rpc(
            "CheckPerformTransaction",
            json!({ "amount": 100_000, "account": account(&order_id) }),
        )
        .await;
    assert!(check["error"].is_object(), "an event order is not payable: {check}");
    // Reports keep event prints apart: no revenue, three event prints.
    let text = photoboothd::client::request(d.kiosk, "GET", "/metrics", &[], Vec::new())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&text.body).to_string();
    assert!(text.contains("photoboothd_event_prints_total 3"), "{text}");
}

#[tokio::test]
async fn outside_an_event_printing_without_paying_is_refused() {
    let d = Daemon::start_with(FAST).await;
    d.to_copies_screen().await;
    print(&d, 1).await.refused(409, "not_event");
    assert_eq!(d.count("SELECT count(*) FROM orders"), 0);
}

#[tokio::test]
async fn an_event_started_from_the_service_menu_survives_a_restart() {
    let mut d = Daemon::start_with(&format!("{FAST}[service]\npin = \"2468\"\n")).await;
    let token = d.service_token("2468").await;
    let body = json!({ "max_prints": 5, "title": "Kamola & Jasur", "date": "12.06.2026" }).to_string();
    let (status, v) = d.service("POST", "/api/service/event/start", Some(&token), &body).await;
    assert_eq!(status, 200, "{v}");
    let event_id = v["id"].as_i64().unwrap();
    assert_eq!(d.kiosk("POST", "/api/generate-qr", r#"{"copies": 1}"#).await.0, 409);

    d.restart().await;
    let idle = d.session_view().await;
    assert_eq!(
        (
            idle["event"]["id"].as_i64(),
            idle["event"]["title"].as_str(),
            idle["event"]["prints_left"].as_i64()
        ),
        (Some(event_id), Some("Kamola & Jasur"), Some(5)),
        "{idle}"
    );
    d.to_copies_screen().await;
    assert_eq!(print(&d, 2).await.0, 200);
    d.wait_stage("done").await;
    let (_, summary) = d
        .service("GET", "/api/service/summary", Some(&d.service_token("2468").await), "")
        .await;
    assert_eq!(summary["today"]["event_prints"], 2, "{summary}");
    assert_eq!(summary["today"]["prints"], 0);
    assert_eq!(summary["event"]["prints_left"], 3);

    // Stopped: back to paid sessions.
    let token = d.service_token("2468").await;
    assert_eq!(
        d.service("POST", "/api/service/event/stop", Some(&token), "").await.0,
        200
    );
    d.wait_stage("idle").await;
    let (status, v) = d.kiosk("POST", "/api/generate-qr", r#"{"copies": 1}"#).await;
    assert_eq!(status, 200, "{v}");
}
