//! Digital copies at a prepaid event, against the real daemon (sim camera, file printer, the
//! sandbox config, so links use the webhook listener's own address): a guest's free order gets
//! the same download link a paid one does, and the service menu's one QR code opens the event's
//! gallery: every photo of every order, a ZIP of them all, kept `[event] keep_days` after the
//! event. Nothing of it reaches Payme.

mod common;

use std::path::Path;

use common::*;
use serde_json::{json, Value};

const PIN: &str = "2468";
const FAST: &str = "[camera]\ncountdown_s = 0\nshots = 2\nwidth = 640\nheight = 480\n\
                    [session]\ndone_timeout_s = 2\nerror_timeout_s = 2\n";

/// One guest: a session to the copies screen, one free print, back to the attract screen.
/// Returns the order as the done screen had it.
async fn guest(d: &Daemon) -> Value {
    d.to_copies_screen().await;
    let (status, order) = d.kiosk("POST", "/api/session/print", r#"{"copies": 1}"#).await;
    assert_eq!(status, 200, "{order}");
    let done = d.wait_stage("done").await;
    d.wait_stage("idle").await;
    done["order"].clone()
}

/// The path of a link on the webhook listener.
fn path_of(d: &Daemon, url: &Value) -> String {
    let url = url.as_str().unwrap_or_else(|| panic!("no link: {url}"));
    url.strip_prefix(&format!("http://{}", d.webhook))
        .unwrap_or_else(|| panic!("{url} is not on the webhook listener"))
        .to_string()
}

async fn status_of(d: &Daemon, path: &str) -> u16 {
    d.public_get(path, &[]).await.status
}

/// Restarts the daemon and waits for the janitor's start-up pass to end: a stray folder left in
/// `sessions/` is removed by it and logged when the pass is over, so every session folder has
/// been judged by then.
async fn restart_and_sweep(d: &mut Daemon) {
    let stray = d.data_dir().join("sessions").join("stray");
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::write(stray.join("x.jpg"), b"x").unwrap();
    let swept = |d: &Daemon| d.log().matches("janitor removed photos").count();
    let before = swept(d);
    d.restart().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while swept(d) == before || stray.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the janitor never swept:\n{}",
            d.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The session folder of `order_id`.
fn session_dir(d: &Daemon, order_id: i64) -> std::path::PathBuf {
    let id = d.count(&format!("SELECT id FROM sessions WHERE order_id = {order_id}"));
    d.data_dir().join("sessions").join(id.to_string())
}

/// The names in a ZIP, read from its central directory, each entry's CRC checked against its data.
fn zip_names(zip: &[u8]) -> Vec<String> {
    let u16_at = |i: usize| u16::from_le_bytes([zip[i], zip[i + 1]]) as usize;
    let u32_at = |i: usize| u32::from_le_bytes([zip[i], zip[i + 1], zip[i + 2], zip[i + 3]]) as usize;
    let end = zip.len() - 22;
    assert_eq!(&zip[end..end + 4], b"PK\x05\x06", "no end record");
    let (count, mut at) = (u16_at(end + 10), u32_at(end + 16));
    let mut names = Vec::new();
    for _ in 0..count {
        assert_eq!(&zip[at..at + 4], b"PK\x01\x02");
        let (crc, size, name_len, local) = (u32_at(at + 16), u32_at(at + 24), u16_at(at + 28), u32_at(at + 42));
        names.push(String::from_utf8(zip[at + 46..at + 46 + name_len].to_vec()).unwrap());
        let data = local + 30 + u16_at(local + 26) + u16_at(local + 28);
        assert_eq!(
            crc32fast::hash(&zip[data..data + size]) as usize,
            crc,
            "CRC of {}",
            names[names.len() - 1]
        );
        at += 46 + name_len + u16_at(at + 30) + u16_at(at + 32);
    }
    names
}

/// `unzip -t` on the archive, when the tool is installed (it is in CI).
fn unzip_test(zip: &[u8], dir: &Path) {
    let file = dir.join("photos.zip");
    std::fs::write(&file, zip).unwrap();
    match std::process::Command::new("unzip").arg("-t").arg(&file).output() {
        Ok(out) => assert!(
            out.status.success(),
            "unzip -t: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) if std::env::var_os("CI").is_some() => panic!("unzip is not installed"),
        Err(e) => println!("unzip -t not run ({e}); the archive was checked by its CRCs only"),
    }
}

#[tokio::test]
async fn guests_get_download_links_and_the_event_gallery_serves_every_photo_and_a_zip() {
    let mut d = Daemon::start_with(&format!("{FAST}[service]\npin = \"{PIN}\"\n")).await;
    let token = d.service_token(PIN).await;
    let (status, summary) = d.service("GET", "/api/service/summary", Some(&token), "").await;
    assert_eq!(
        (status, &summary["gallery"]),
        (200, &Value::Null),
        "no event, no gallery: {summary}"
    );
    let start = json!({ "max_prints": 10, "title": "Aziza & Bobur" }).to_string();
    assert_eq!(
        d.service("POST", "/api/service/event/start", Some(&token), &start)
            .await
            .0,
        200
    );

    // Two guests; each done screen carries a download link like a paid customer's.
    let first = guest(&d).await;
    let second = guest(&d).await;
    let mut ids = Vec::new();
    for order in [&first, &second] {
        assert!(order["event_id"].is_i64(), "{order}");
        let id = order["order_id"].as_i64().unwrap();
        assert_eq!(order["download_qr_png"], format!("/api/orders/{id}/download-qr.png"));
        let link = path_of(&d, &order["download_url"]);
        let page = d.public_get(&link, &[("accept-language", "en")]).await;
        assert_eq!(page.status, 200);
        let html = String::from_utf8_lossy(&page.body).to_string();
        assert!(html.contains(&format!("{link}/photo-2.jpg?download=1")), "{html}");
        let photo = d.public_get(&format!("{link}/photo-1.jpg"), &[]).await;
        assert_eq!((photo.status, photo.content_type.as_deref()), (200, Some("image/jpeg")));
        ids.push(id);
    }
    assert_eq!(d.count("SELECT count(*) FROM download_links"), 2);

    // The service menu shows the gallery's link and its QR code.
    let (_, summary) = d.service("GET", "/api/service/summary", Some(&token), "").await;
    let gallery = path_of(&d, &summary["gallery"]["url"]);
    assert!(
        summary["gallery"]["qr_png"]
            .as_str()
            .unwrap_or("")
            .starts_with("data:image/png;base64,"),
        "{summary}"
    );
    assert_eq!(summary["gallery"]["keep_days"], 30);

    // The gallery: every order's page and shots, in the phone's language, and one ZIP.
    let page = d.public_get(&gallery, &[("accept-language", "ru-RU")]).await;
    assert_eq!(page.status, 200);
    let html = String::from_utf8_lossy(&page.body).to_string();
    assert!(
        html.contains("Aziza &amp; Bobur") && html.contains("Скачать все (ZIP)"),
        "{html}"
    );
    for id in &ids {
        for file in ["page.jpg", "photo-1.jpg", "photo-2.jpg"] {
            assert!(
                html.contains(&format!("{gallery}/{id}/{file}")),
                "{file} of {id} in {html}"
            );
        }
    }
    assert!(!html.contains("<script"));
    let shot = d
        .public_get(&format!("{gallery}/{}/photo-2.jpg?full=1&download=1", ids[1]), &[])
        .await;
    assert_eq!((shot.status, shot.content_type.as_deref()), (200, Some("image/jpeg")));
    assert!(shot.header("content-disposition").unwrap().starts_with("attachment"));
    assert_eq!(status_of(&d, &format!("{gallery}/999/page.jpg")).await, 404);
    assert_eq!(status_of(&d, &format!("{gallery}/{}/photo-3.jpg", ids[0])).await, 404);

    let zip = d.public_get(&format!("{gallery}/photos-1.zip"), &[]).await;
    assert_eq!(
        (zip.status, zip.content_type.as_deref()),
        (200, Some("application/zip"))
    );
    assert_eq!(zip.header("content-length"), Some(zip.body.len().to_string().as_str()));
    let mut names = zip_names(&zip.body);
    names.sort();
    let mut want: Vec<String> = ids
        .iter()
        .flat_map(|id| ["page.png", "photo-1.jpg", "photo-2.jpg"].map(|f| format!("test-booth-{id}-{f}")))
        .collect();
    want.sort();
    assert_eq!(names, want);
    unzip_test(&zip.body, &d.data_dir());
    assert_eq!(status_of(&d, &format!("{gallery}/photos-2.zip")).await, 404);

    // A wrong token finds nothing.
    assert_eq!(status_of(&d, "/d/AAAAAAAAAAAAAAAAAAAAAA").await, 404);
    assert_eq!(status_of(&d, "/d/AAAAAAAAAAAAAAAAAAAAAA/photos-1.zip").await, 404);

    // An order's own link expires; the gallery still shows its photos (and the janitor, run
    // again by a restart, keeps them too).
    d.db_rw()
        .execute("UPDATE download_links SET expires_at = 1 WHERE order_id = ?1", [ids[0]])
        .unwrap();
    let link = path_of(&d, &first["download_url"]);
    assert_eq!(status_of(&d, &link).await, 410);
    restart_and_sweep(&mut d).await;
    assert!(
        session_dir(&d, ids[0]).join("shot-1.jpg").exists(),
        "the janitor kept the shots"
    );
    let shot = d.public_get(&format!("{gallery}/{}/photo-1.jpg", ids[0]), &[]).await;
    assert_eq!(
        shot.status, 200,
        "the gallery keeps the photos of an expired order link"
    );

    // The event ends: the gallery stays for keep_days, then answers 410 like an expired link,
    // and the janitor may remove the shots.
    let token = d.service_token(PIN).await;
    assert_eq!(
        d.service("POST", "/api/service/event/stop", Some(&token), "").await.0,
        200
    );
    assert_eq!(status_of(&d, &gallery).await, 200);
    d.db_rw().execute("UPDATE events SET ended_at = 1", []).unwrap();
    let gone = d.public_get(&gallery, &[("accept-language", "en")]).await;
    assert_eq!(gone.status, 410);
    assert!(String::from_utf8_lossy(&gone.body).contains("This link has expired"));
    assert_eq!(status_of(&d, &format!("{gallery}/photos-1.zip")).await, 410);
    assert_eq!(status_of(&d, &format!("{gallery}/{}/page.jpg", ids[1])).await, 410);

    // Once the gallery has ended, the janitor applies the usual rules: the shots of the order whose
    // link expired go, its page stays for reprints.
    restart_and_sweep(&mut d).await;
    let dir = session_dir(&d, ids[0]);
    assert!(!dir.join("shot-1.jpg").exists() && dir.join("page.png").exists());

    // Payme never heard of any of it.
    assert_eq!(d.count("SELECT count(*) FROM payme_transactions"), 0);
    assert_eq!(d.count("SELECT count(*) FROM orders WHERE status != 'event'"), 0);
}
