//! Digital copies against the real daemon (sim camera, file printer, Payme sandbox config): the
//! download link a paid session order gets, the page and files on the webhook listener, refunds,
//! expiry, and digital-only orders. The page in a phone-sized Chromium is in kiosk_e2e.rs.

mod common;

use common::*;
use serde_json::{json, Value};

const FAST: &str = "[camera]\ncountdown_s = 0\nshots = 2\nwidth = 800\nheight = 600\n\
                    [session]\ndone_timeout_s = 2\nerror_timeout_s = 2\n";

/// Takes a session to the copies screen and orders `body` (`{"copies": 1}` or digital only).
async fn session_order(d: &Daemon, body: &str) -> Value {
    d.to_copies_screen().await;
    let (status, order) = d.kiosk("POST", "/api/generate-qr", body).await;
    assert_eq!(status, 200, "{order}");
    order
}

fn id_of(order: &Value) -> String {
    order["order_id"].as_i64().unwrap().to_string()
}

/// The path part of a download URL on the webhook listener.
fn path_of(d: &Daemon, url: &Value) -> String {
    let url = url.as_str().unwrap_or_else(|| panic!("no download_url: {url}"));
    let prefix = format!("http://{}", d.webhook);
    url.strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{url} is not on the webhook listener {prefix}"))
        .to_string()
}

/// A session order paid and printed: its id, its download path and the Payme transaction id.
async fn paid_session_order(d: &Daemon) -> (String, String, String) {
    let order = session_order(d, r#"{"copies": 1}"#).await;
    let id = id_of(&order);
    assert_eq!(order["download_url"], Value::Null, "no link before payment: {order}");
    assert_eq!(d.order(&id).await["download_url"], Value::Null);
    let payme = d.pay(&id, order["amount_tiyin"].as_i64().unwrap()).await;
    let paid = d.wait_for_status(&id, "printed").await;
    (id, path_of(d, &paid["download_url"]), payme)
}

#[tokio::test]
async fn a_paid_session_order_gets_a_link_that_serves_its_photos() {
    let d = Daemon::start_with(FAST).await;
    let (id, path, _) = paid_session_order(&d).await;
    let token = path.strip_prefix("/d/").unwrap();
    assert_eq!(token.len(), 22, "128 random bits, URL-safe: {token}");
    assert!(token
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));

    // The page, in the phone's language, links the composed page and each shot; no script.
    let page = d.public_get(&path, &[("accept-language", "ru-RU,ru;q=0.9")]).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.content_type.as_deref(), Some("text/html; charset=utf-8"));
    let html = String::from_utf8_lossy(&page.body).to_string();
    assert!(html.contains("Ваши фотографии"), "{html}");
    for file in ["page.jpg", "photo-1.jpg", "photo-2.jpg"] {
        assert!(html.contains(&format!("{path}/{file}?download=1")), "{file} in {html}");
    }
    assert!(!html.contains("<script"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    let english = d.public_get(&path, &[("accept-language", "en-GB")]).await;
    assert!(String::from_utf8_lossy(&english.body).contains("Your photos"));

    // The composed page: phone-sized JPEG by default, the original PNG on request.
    let small = d.public_get(&format!("{path}/page.jpg?download=1"), &[]).await;
    assert_eq!((small.status, small.content_type.as_deref()), (200, Some("image/jpeg")));
    let disposition = small.header("content-disposition").unwrap().to_string();
    assert_eq!(
        disposition,
        format!("attachment; filename=\"test-booth-{id}-page.jpg\"")
    );
    let img = image::load_from_memory(&small.body).unwrap();
    assert!(
        img.width().max(img.height()) <= 1600,
        "{}x{}",
        img.width(),
        img.height()
    );
    let full = d.public_get(&format!("{path}/page.jpg?full=1"), &[]).await;
    assert_eq!((full.status, full.content_type.as_deref()), (200, Some("image/png")));
    assert!(full
        .header("content-disposition")
        .unwrap()
        .starts_with("inline; filename=\"test-booth-"));
    let full_img = image::load_from_memory(&full.body).unwrap();
    assert!(full_img.height() > 1600, "the full page is the print's size");
    // The phone copy is cached beside the photos and served again as is.
    let again = d.public_get(&format!("{path}/page.jpg"), &[]).await;
    assert_eq!(again.body, small.body);

    // Each shot.
    let shot = d.public_get(&format!("{path}/photo-2.jpg"), &[]).await;
    assert_eq!((shot.status, shot.content_type.as_deref()), (200, Some("image/jpeg")));
    assert_eq!(image::load_from_memory(&shot.body).unwrap().width(), 800);

    // Files a session does not have, and made-up tokens, are 404.
    for bad in [
        format!("{path}/photo-3.jpg"),
        format!("{path}/..%2Fpage.png"),
        "/d/AAAAAAAAAAAAAAAAAAAAAA".to_string(),
        "/d/AAAAAAAAAAAAAAAAAAAAAA/page.jpg".to_string(),
        "/d/not-a-token".to_string(),
    ] {
        assert_eq!(d.public_get(&bad, &[]).await.status, 404, "{bad}");
    }
    // The kiosk listener does not serve downloads; the webhook listener serves nothing else new.
    let (status, _) = d.kiosk("GET", &path, "").await;
    assert_eq!(status, 404);
    assert_eq!(d.public_get("/api/status", &[]).await.status, 404);
    // The done screen's QR of the link.
    let qr = photoboothd::client::request(
        d.kiosk,
        "GET",
        &format!("/api/orders/{id}/download-qr.png"),
        &[],
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!((qr.status, qr.content_type.as_deref()), (200, Some("image/png")));
}

#[tokio::test]
async fn orders_without_photos_and_unpaid_orders_have_no_link() {
    let d = Daemon::start_with(FAST).await;
    // A stand-alone order (the API on its own, no session): paid, printed, no link.
    let (id, amount) = d.new_order(1).await;
    assert_eq!(d.order(&id).await["download_url"], Value::Null);
    d.pay(&id, amount).await;
    let printed = d.wait_for_status(&id, "printed").await;
    assert_eq!(printed["download_url"], Value::Null, "{printed}");
    assert_eq!(d.count("SELECT count(*) FROM download_links"), 0);
}

#[tokio::test]
async fn a_refund_removes_the_link() {
    let d = Daemon::start_with(FAST).await;
    let (id, path, payme) = paid_session_order(&d).await;
    assert_eq!(d.public_get(&path, &[]).await.status, 200);
    let v = d.rpc("CancelTransaction", json!({ "id": payme, "reason": 5 })).await;
    assert_eq!(v["result"]["state"], -2, "{v}");
    let refunded = d.order(&id).await;
    assert_eq!(refunded["status"], "refunded");
    assert_eq!(refunded["download_url"], Value::Null);
    assert_eq!(d.public_get(&path, &[]).await.status, 404);
    assert_eq!(d.public_get(&format!("{path}/page.jpg"), &[]).await.status, 404);
}

#[tokio::test]
async fn an_expired_link_is_410_and_its_photos_are_deleted() {
    let d = Daemon::start_with(FAST).await;
    let (id, path, _) = paid_session_order(&d).await;
    let session_id = d.order(&id).await["session_id"].as_i64().unwrap();
    let dir = d.data_dir().join("sessions").join(session_id.to_string());
    assert!(dir.join("page.png").exists());
    // Time passes: the link's 72 hours are over.
    d.db_rw()
        .execute("UPDATE download_links SET expires_at = 1", [])
        .unwrap();
    let gone = d.public_get(&path, &[("accept-language", "en")]).await;
    assert_eq!(gone.status, 410);
    assert!(String::from_utf8_lossy(&gone.body).contains("This link has expired"));
    assert!(!dir.exists(), "the photos behind an expired link are deleted");
    assert_eq!(d.public_get(&format!("{path}/page.jpg"), &[]).await.status, 410);
    assert_eq!(d.order(&id).await["download_url"], Value::Null);
    assert_eq!(
        d.count("SELECT count(*) FROM download_links WHERE purged_at IS NOT NULL"),
        1
    );
}

#[tokio::test]
async fn without_a_public_url_digital_copies_are_off_outside_the_sandbox() {
    let d = Daemon::start_with_config(|data| {
        config_text(data, &format!("checkout_base = \"https://checkout.paycom.uz\"\n{FAST}"))
    })
    .await;
    assert!(d.log().contains("digital copies are off"), "{}", d.log());
    let order = session_order(&d, r#"{"copies": 1}"#).await;
    let id = id_of(&order);
    d.pay(&id, order["amount_tiyin"].as_i64().unwrap()).await;
    let printed = d.wait_for_status(&id, "printed").await;
    assert_eq!(printed["download_url"], Value::Null);
    assert_eq!(d.count("SELECT count(*) FROM download_links"), 0);
}

#[tokio::test]
async fn a_public_url_is_what_the_link_carries() {
    let d = Daemon::start_with_config(|data| {
        format!(
            "{}\n[digital]\npublic_url = \"https://booth-1.example.com/\"\n",
            config_text(data, FAST)
        )
    })
    .await;
    let order = session_order(&d, r#"{"copies": 1, "language": "en"}"#).await;
    let id = id_of(&order);
    d.pay(&id, order["amount_tiyin"].as_i64().unwrap()).await;
    let printed = d.wait_for_status(&id, "printed").await;
    let url = printed["download_url"].as_str().unwrap();
    let token = url.strip_prefix("https://booth-1.example.com/d/").unwrap();
    // The page speaks the order's language (the customer's at the booth), whatever the phone's.
    let page = d.public_get(&format!("/d/{token}"), &[("accept-language", "ru")]).await;
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("Your photos"));
    // qr_on_print is off by default: the print's corners stay blank.
    assert_eq!(corner_dark_pixels(&d), [0, 0]);
}

const FISCAL: &str = "[payme.fiscal]\ntitle = \"Photo print\"\nikpu = \"10499001001000000\"\n\
                      package_code = \"1501586\"\nvat_percent = 12\n\
                      digital_ikpu = \"10305008002000000\"\ndigital_title = \"Digital photos\"\n";

#[tokio::test]
async fn digital_only_sells_while_the_printer_is_out_of_paper_and_never_prints() {
    let d = Daemon::start_with_config(|data| {
        config_text_full(
            data,
            &format!("{FISCAL}{FAST}"),
            "capacity = 1\n[digital]\nprice = 10000\n",
        )
    })
    .await;
    // The one print on the roll goes to a stand-alone order: the counter is then at 0.
    let (first, amount) = d.new_order(1).await;
    d.pay(&first, amount).await;
    d.wait_for_status(&first, "printed").await;
    let (_, status) = d.kiosk("GET", "/api/status", "").await;
    assert_eq!(status["blocker"]["reason"], "media_counter_empty", "{status}");

    // The kiosk still takes a session: digital copies need no paper.
    let idle = d.session_view().await;
    assert_eq!(idle["accepting_orders"], true, "{idle}");
    assert_eq!(idle["digital_price"], 10000);
    assert_eq!(idle["print_blocker"]["reason"], "media_counter_empty");
    d.to_copies_screen().await;
    // Prints are refused, digital only is sold.
    d.kiosk("POST", "/api/generate-qr", r#"{"copies": 1}"#)
        .await
        .refused(503, "media_counter_empty");
    let (status, order) = d.kiosk("POST", "/api/generate-qr", r#"{"digital_only": true}"#).await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(
        (order["kind"].clone(), order["amount_tiyin"].clone()),
        (json!("digital"), json!(1_000_000))
    );
    let id = id_of(&order);

    // Payme's receipt line is the digital product's.
    let check = d
        .rpc(
            "CheckPerformTransaction",
            json!({ "amount": 1_000_000, "account": account(&id) }),
        )
        .await;
    let item = &check["result"]["detail"]["items"][0];
    assert_eq!(
        (item["code"].clone(), item["title"].clone()),
        (json!("10305008002000000"), json!("Digital photos")),
        "{check}"
    );

    let payme = d.pay(&id, 1_000_000).await;
    let delivered = d.wait_for_status(&id, "delivered").await;
    assert!(delivered["print"].is_null(), "{delivered}");
    let path = path_of(&d, &delivered["download_url"]);
    assert_eq!(d.public_get(&path, &[]).await.status, 200);
    assert_eq!(d.public_get(&format!("{path}/page.jpg"), &[]).await.status, 200);
    assert_eq!(
        d.count(&format!("SELECT count(*) FROM print_jobs WHERE order_id = {id}")),
        0,
        "a digital order never makes a print job"
    );
    assert_eq!(d.prints().len(), 1, "only the first order printed");
    // The session followed the order to the done screen (which may already have timed out).
    assert!(d.log().contains("to=\"done\""), "{}", d.log());

    // A refund takes the digital copies away too.
    let v = d.rpc("CancelTransaction", json!({ "id": payme, "reason": 5 })).await;
    assert_eq!(v["result"]["state"], -2, "{v}");
    assert_eq!(d.public_get(&path, &[]).await.status, 404);
}

#[tokio::test]
async fn without_a_price_digital_only_is_not_sold() {
    let d = Daemon::start_with(FAST).await;
    let idle = d.session_view().await;
    assert_eq!(idle["digital_price"], Value::Null);
    d.to_copies_screen().await;
    d.kiosk("POST", "/api/generate-qr", r#"{"digital_only": true}"#)
        .await
        .refused(409, "digital_not_offered");
    // Without a session there are no photos to sell.
    d.session_act("cancel").await;
    d.wait_stage("idle").await;
    d.kiosk("POST", "/api/generate-qr", r#"{"digital_only": true}"#)
        .await
        .refused(409, "no_session");
    assert_eq!(d.count("SELECT count(*) FROM orders"), 0);
}

#[tokio::test]
async fn with_qr_on_print_each_strip_carries_the_link() {
    let d =
        Daemon::start_with_config(|data| format!("{}\n[digital]\nqr_on_print = true\n", config_text(data, FAST))).await;
    let order = session_order(&d, r#"{"copies": 1}"#).await;
    let id = id_of(&order);
    d.pay(&id, order["amount_tiyin"].as_i64().unwrap()).await;
    d.wait_for_status(&id, "printed").await;
    for (strip, dark) in corner_dark_pixels(&d).into_iter().enumerate() {
        assert!(
            dark > 140 * 140 / 5,
            "strip {strip}: only {dark} dark pixels in the corner"
        );
    }
}

/// Dark pixels in the bottom-right corner of each 600 px strip of the one print: white paper
/// without the QR, about half dark modules with it.
fn corner_dark_pixels(d: &Daemon) -> Vec<usize> {
    let prints = d.prints();
    assert_eq!(prints.len(), 1, "{prints:?}");
    let page = image::open(d.data_dir().join("prints").join(&prints[0]))
        .unwrap()
        .to_luma8();
    assert_eq!(page.dimensions(), (1200, 1800));
    (0..2u32)
        .map(|strip| {
            let corner = image::imageops::crop_imm(&page, strip * 600 + 440, 1640, 140, 140).to_image();
            corner.pixels().filter(|p| p.0[0] < 100).count()
        })
        .collect()
}
