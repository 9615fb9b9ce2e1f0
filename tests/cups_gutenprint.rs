//! The `cups` printer with the real Gutenprint driver (Debian's `printer-driver-gutenprint`) in the
//! real cupsd on this machine, as docs/printers.md describes.
//!
//! Queues use Gutenprint's DNP DS620 and Canon SELPHY CP1300 PPDs on `file:` devices, so the bytes
//! the printer would get land in a file of the test's. The tests decode them: the DS620's copy count
//! and cut command, its colour planes (a BMP per plane, the page turned a quarter), the CP1300's raw
//! planes, and check that marks drawn at known pixels of the page are at the same pixels of the
//! driver's raster (no stretch, no shift). The fault test uses the capture backend
//! (`tests/fixtures/cups/photoboothd-capture`) behind the DS620 driver, told to report
//! `media-empty-error` and fail like a dye-sub out of media.
//!
//! `.ci/cups-setup.sh` installs CUPS, Gutenprint and the backend, and enables `FileDevice`. Without
//! them the tests print `SKIPPED: <why>` (and fail when `CI` is set).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::cups::{self, must, CAPTURE_ROOT as ROOT};
use common::{account, config_text, now_ms, payme_id, Daemon};
use image::{Rgb, RgbImage};
use photoboothd::hw::printer::cups::{CupsPrinter, CupsTiming, PPD_DIR};
use photoboothd::hw::printer::{PageGeometry, PrintRequest, Printer};
use serde_json::json;

const DS620: &str = "gutenprint.5.3://dnp-ds620/expert";
const CP1300: &str = "gutenprint.5.3://canon-cp1300/expert";

/// Whether the real driver can be tested here; prints why not (and fails in CI).
fn available() -> bool {
    let models = String::from_utf8_lossy(&cups::tool("lpinfo", &["-m"]).stdout).into_owned();
    let problem = cups::scheduler_problem().or_else(|| {
        (!models.contains(DS620) || !models.contains(CP1300))
            .then_some("Gutenprint's DS620 and CP1300 drivers are not installed (printer-driver-gutenprint)")
    });
    cups::testable(problem)
}

/// A queue of the test's own with a Gutenprint driver, removed on drop.
struct Queue {
    name: String,
    dir: PathBuf,
}

impl Queue {
    /// A DS620 queue whose device fails every job as out of media, under `printer-error-policy`.
    fn out_of_media(policy: &str) -> Queue {
        let q = Queue::new(
            DS620,
            Some("photoboothd-capture"),
            &["-o", &format!("printer-error-policy={policy}")],
        );
        q.knob("stderr", "STATE: +media-empty-error\n");
        q.knob("exit", "1");
        q
    }

    /// `device`: `None` for `file:<dir>/out.prn`, else a device URI built from the folder.
    fn new(model: &str, device: Option<&str>, extra: &[&str]) -> Queue {
        let name = cups::queue_name("gp");
        let dir = Path::new(ROOT).join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let queue = Queue { name, dir };
        let uri = match device {
            None => format!("file:{}", queue.output_path().display()),
            Some(scheme) => format!("{scheme}:{}", queue.dir.display()),
        };
        let mut args = vec!["-p", &queue.name, "-E", "-v", &uri, "-m", model];
        args.extend_from_slice(extra);
        must("lpadmin", &args);
        queue
    }

    fn output_path(&self) -> PathBuf {
        self.dir.join("out.prn")
    }

    fn output(&self) -> Vec<u8> {
        std::fs::read(self.output_path()).expect("the driver wrote the device file")
    }

    fn knob(&self, name: &str, contents: &str) {
        std::fs::write(self.dir.join(name), contents).unwrap();
    }

    fn printer(&self, media: &str, options: &[&str]) -> CupsPrinter {
        let options: Vec<String> = options.iter().map(|o| o.to_string()).collect();
        CupsPrinter::new(&self.name, Some(media), &options)
            .unwrap()
            .with_driver_page(Path::new(PPD_DIR))
            .unwrap()
            .with_timing(CupsTiming {
                command: Duration::from_secs(10),
                poll: Duration::from_millis(200),
                job_base: Duration::from_secs(60),
                job_per_copy: Duration::from_secs(10),
                stop_grace: Duration::from_secs(30),
            })
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        let _ = cups::tool("lpadmin", &["-x", &self.name]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Calibration marks: (x, y, size) squares, placed asymmetrically so a turned or mirrored raster
/// cannot match by chance.
const MARKS: [(u32, u32, u32); 3] = [(100, 200, 40), (1000, 1500, 30), (300, 1700, 50)];

fn marked_page(page: PageGeometry) -> RgbImage {
    let mut img = RgbImage::from_pixel(page.width_px, page.height_px, Rgb([255, 255, 255]));
    for (x0, y0, size) in MARKS {
        for y in y0..y0 + size {
            for x in x0..x0 + size {
                img.put_pixel(x, y, Rgb([0, 0, 0]));
            }
        }
    }
    img
}

/// The bounding box (x0, y0, x1, y1) of the inked pixels of `ink(x, y)` near each mark.
fn found_marks(width: u32, height: u32, ink: impl Fn(u32, u32) -> bool) -> Vec<(u32, u32, u32, u32)> {
    MARKS
        .iter()
        .map(|&(mx, my, size)| {
            let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
            for y in my.saturating_sub(20)..(my + size + 20).min(height) {
                for x in mx.saturating_sub(20)..(mx + size + 20).min(width) {
                    if ink(x, y) {
                        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
                    }
                }
            }
            (x0, y0, x1, y1)
        })
        .collect()
}

/// Each mark is where it was drawn, to the pixel (±2 for the JPEG's edges and the driver's rounding
/// of page sizes to whole points).
fn assert_marks_in_place(found: &[(u32, u32, u32, u32)]) {
    for (&(x, y, size), &(x0, y0, x1, y1)) in MARKS.iter().zip(found) {
        let want = (x, y, x + size - 1, y + size - 1);
        let off = [
            x0.abs_diff(want.0),
            y0.abs_diff(want.1),
            x1.abs_diff(want.2),
            y1.abs_diff(want.3),
        ];
        assert!(
            off.iter().all(|d| *d <= 2),
            "mark drawn at {want:?} is at {:?} in the driver's raster",
            (x0, y0, x1, y1)
        );
    }
}

/// The DS620 job: `ESC P` blocks of class (6), name (16), ASCII length (8) and payload.
fn dnp_blocks(data: &[u8]) -> Vec<(String, &[u8])> {
    let mut blocks = Vec::new();
    let mut i = 0;
    while i + 32 <= data.len() && &data[i..i + 2] == b"\x1bP" {
        let name = String::from_utf8_lossy(&data[i + 2..i + 24])
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let Some(len) = std::str::from_utf8(&data[i + 24..i + 32])
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
        else {
            // CNTRL START and the like carry no length.
            blocks.push((name, &data[i + 32..i + 32]));
            break;
        };
        blocks.push((name, &data[(i + 32).min(data.len())..(i + 32 + len).min(data.len())]));
        i += 32 + len;
    }
    blocks
}

fn request(page: &RgbImage, copies: u32) -> PrintRequest<'_> {
    PrintRequest {
        job_id: 1,
        order_id: 1,
        copies,
        page,
    }
}

#[test]
fn ds620_prints_the_page_one_to_one_with_copies_and_the_div2_cut() {
    if !available() {
        return;
    }
    let q = Queue::new(DS620, None, &[]);
    let printer = q.printer("w288h432-div2", &[]);
    let page = printer.page_size().expect("the DS620 PPD gives the page");
    assert_eq!((page.width_px, page.height_px, page.dpi), (1240, 1844, 300));
    printer.print(&request(&marked_page(page), 2)).expect("printed");

    let data = q.output();
    let blocks = dnp_blocks(&data);
    let block = |name: &str| {
        blocks
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| *p)
            .unwrap_or_else(|| {
                panic!(
                    "no {name} block in {:?}",
                    blocks.iter().map(|b| &b.0).collect::<Vec<_>>()
                )
            })
    };
    assert_eq!(block("CNTRL QTY"), b"0000002\r", "two copies in one job");
    assert_eq!(
        block("CNTRL FULL_CUTTER_SET"),
        b"020020000000000\r",
        "the 2-inch cut of -div2"
    );
    // The yellow plane holds the blue channel: black marks are ink there. A bottom-up 8-bit BMP
    // 1920 wide (the head) by 1240 rows (the feed): row r, byte c is page pixel x = r, y = c − 38.
    let plane = block("IMAGE YPLANE");
    let u32_at = |o: usize| u32::from_le_bytes([plane[o], plane[o + 1], plane[o + 2], plane[o + 3]]);
    let (offset, width, rows) = (u32_at(10) as usize, u32_at(18), u32_at(22));
    assert_eq!((width, rows), (1920, 1240));
    let found = found_marks(page.width_px, page.height_px, |x, y| {
        plane[offset + x as usize * 1920 + y as usize + 38] < 128
    });
    assert_marks_in_place(&found);
}

#[test]
fn selphy_cp1300_borderless_postcard_maps_one_to_one() {
    if !available() {
        return;
    }
    let q = Queue::new(CP1300, None, &[]);
    let printer = q.printer("Postcard", &["StpBorderless=True"]);
    let page = printer.page_size().expect("the CP1300 PPD gives the page");
    assert_eq!((page.width_px, page.height_px), (1248, 1872));
    printer.print(&request(&marked_page(page), 1)).expect("printed");
    // A 32-byte header (width and height as u32 LE at 24 and 28), then C, M, Y planes of ink
    // amounts, unrotated, 0 = no ink.
    let data = q.output();
    let u32_at = |o: usize| u32::from_le_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]]);
    let (w, h) = (u32_at(24), u32_at(28));
    assert_eq!(w, 1248);
    assert!(h.abs_diff(1872) <= 2, "{h} rows");
    let cyan = &data[32..32 + (w * h) as usize];
    let found = found_marks(w, h, |x, y| cyan[(y * w + x) as usize] > 128);
    assert_marks_in_place(&found);
}

#[test]
fn the_page_and_media_come_from_the_queues_ppd_not_a_table() {
    // No scheduler needed: the PPD folder is the test's.
    let dir = tempfile::tempdir().unwrap();
    let ppd = include_str!("fixtures/cups/odd-area.ppd");
    std::fs::write(dir.path().join("odd.ppd"), ppd).unwrap();
    let printer = CupsPrinter::new("odd", Some("w300h450-odd"), &[])
        .unwrap()
        .with_driver_page(dir.path())
        .unwrap();
    // *ImageableArea "12.5 20 290 440" at *DefaultResolution 400dpi.
    assert_eq!(
        printer.page_size(),
        Some(PageGeometry {
            width_px: 1542,
            height_px: 2333,
            dpi: 400
        })
    );
    let err = match CupsPrinter::new("odd", Some("w288h432"), &[])
        .unwrap()
        .with_driver_page(dir.path())
    {
        Ok(_) => panic!("a media the PPD does not list was accepted"),
        Err(e) => e,
    };
    assert!(err.contains("w300h450-odd, Square-7"), "{err}");
    // The strip layout fitted to it keeps two equal strips.
    let t = photoboothd::layout::fit::load_for("strip-2x6", printer.page_size()).unwrap();
    assert_eq!((t.width(), t.height(), t.cell_width()), (1542, 2333, 771));
}

/// A configuration for `photoboothd` on `queue`. Small sample shots keep `printer test` quick in a
/// debug build.
fn booth_config(data_dir: &Path, queue: &str, media: &str) -> String {
    config_text(data_dir, "\n[camera]\nwidth = 800\nheight = 600\n").replace(
        "backend = \"file\"",
        &format!("backend = \"cups\"\nqueue = \"{queue}\"\nmedia = \"{media}\""),
    )
}

fn cli(config: &Path, args: &[&str]) -> (bool, String) {
    common::run_cli(config, args, None)
}

#[test]
fn check_config_refuses_a_typo_in_the_media_and_printer_test_prints_at_the_drivers_size() {
    if !available() {
        return;
    }
    let q = Queue::new(DS620, None, &[]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("photobooth.toml");
    std::fs::write(
        &config,
        booth_config(&dir.path().join("data"), &q.name, "w288h423-div2"),
    )
    .unwrap();
    let (ok, out) = cli(&config, &["check-config"]);
    assert!(!ok, "{out}");
    assert!(out.contains("\"w288h423-div2\" is not offered by the queue"), "{out}");
    assert!(out.contains("w288h432-div2"), "the offered media are listed: {out}");
    let (ok, out) = cli(&config, &["printer", "test"]);
    assert!(!ok && out.contains("not offered"), "{out}");
    // The daemon refuses to start on it too (before it binds anything).
    let (ok, out) = cli(&config, &["run"]);
    assert!(!ok && out.contains("not offered"), "{out}");

    std::fs::write(
        &config,
        booth_config(&dir.path().join("data"), &q.name, "w288h432-div2"),
    )
    .unwrap();
    let (ok, out) = cli(&config, &["check-config"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("composed at 1240x1844 px (the driver's page, 1240x1844 px at 300 dpi)"),
        "{out}"
    );
    let (ok, out) = cli(&config, &["printer", "test"]);
    assert!(ok, "{out}");
    assert!(out.contains("(1240x1844 px, the driver's page size)"), "{out}");
    assert!(out.contains("test page sent"), "{out}");
    let data = q.output();
    assert!(dnp_blocks(&data).iter().any(|(n, _)| n == "CNTRL FULL_CUTTER_SET"));
}

#[tokio::test]
async fn a_paid_job_on_a_printer_out_of_media_stops_sales_and_resume_recovers_without_a_wasted_print() {
    if !available() {
        return;
    }
    // Debian's default policy, explicitly: a failing backend leaves the printer idle and the job held.
    let q = Queue::out_of_media("retry-job");
    let queue = q.name.clone();
    let d = Daemon::start_with_config(|data| booth_config(data, &queue, "w288h432-div2")).await;
    assert!(
        d.log().contains("1240x1844"),
        "the daemon composes at the driver's size:\n{}",
        d.log()
    );

    let (order, amount) = d.new_order(2).await;
    let id = payme_id(order.parse().unwrap());
    let create = json!({ "id": id, "time": now_ms(), "amount": amount, "account": account(&order) });
    d.rpc("CreateTransaction", create).await;
    let paid = Instant::now();
    d.rpc("PerformTransaction", json!({ "id": id })).await;

    let status = loop {
        let (_, status) = d.kiosk("GET", "/api/status", "").await;
        if status["accepting_orders"] == false {
            break status;
        }
        assert!(
            paid.elapsed() < Duration::from_secs(40),
            "sales were not stopped within 40 s: {status}\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!(
        "sales stopped {:.1} s after the payment: {status}",
        paid.elapsed().as_secs_f32()
    );
    let reason = status["blocker"]["reason"].as_str().unwrap_or_default().to_string();
    assert!(
        ["printer_media_empty", "printer_job_stuck"].contains(&reason.as_str()),
        "{status}"
    );
    let (code, refused) = d.kiosk("POST", "/api/generate-qr", r#"{"copies": 1}"#).await;
    assert_eq!(code, 503, "{refused}");

    // The owner loads media; the printer keeps its stale media-empty-error until resumed.
    std::fs::remove_file(q.dir.join("exit")).unwrap();
    std::fs::remove_file(q.dir.join("stderr")).unwrap();
    let (ok, out) = cli(&d.config_path(), &["printer", "resume"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("media-empty-error"),
        "the resume says what it cleared: {out}"
    );

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let v = d.order(&order).await;
        let (_, status) = d.kiosk("GET", "/api/status", "").await;
        if v["status"] == "printed" && status["accepting_orders"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "not recovered: {v} {status}\n{}", d.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // One job reached the device, with both copies; the refused attempts never did.
    let captured: Vec<_> = std::fs::read_dir(&q.dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".data"))
        .collect();
    assert_eq!(captured.len(), 1, "exactly one print");
    let data = std::fs::read(captured[0].path()).unwrap();
    let blocks = dnp_blocks(&data);
    assert!(blocks.iter().any(|(n, p)| n == "CNTRL QTY" && *p == b"0000002\r"));
    let flagged = d.count("SELECT count(*) FROM print_jobs WHERE may_have_printed != 0");
    assert_eq!(flagged, 0, "a job the backend refused is not 'may have printed'");
}

/// Forwards connections on `listener` to cupsd's `localhost:631`, standing in for a scheduler that
/// has come back.
async fn forward_to_cupsd(listener: tokio::net::TcpListener) {
    while let Ok((mut client, _)) = listener.accept().await {
        tokio::spawn(async move {
            if let Ok(mut cupsd) = tokio::net::TcpStream::connect("127.0.0.1:631").await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut cupsd).await;
            }
        });
    }
}

#[tokio::test]
async fn a_scheduler_unreachable_at_start_is_a_blocker_that_clears_when_it_answers() {
    if !available() {
        return;
    }
    let q = Queue::new(DS620, None, &[]);
    let queue = q.name.clone();
    let mut d = Daemon::start_with_config(|data| booth_config(data, &queue, "w288h432-div2")).await;
    // The CUPS tools honour CUPS_SERVER: point them at a port nothing listens on yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    d.env.push(("CUPS_SERVER".into(), format!("localhost:{port}")));
    d.restart_same_config().await;
    let wait_for = |want: &'static str| {
        let d = &d;
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let (_, status) = d.kiosk("GET", "/api/status", "").await;
                let reason = status["blocker"]["reason"].as_str().unwrap_or("none").to_string();
                if reason == want {
                    return status;
                }
                assert!(Instant::now() < deadline, "never {want}: {status}\n{}", d.log());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let status = wait_for("scheduler_unreachable").await;
    assert_eq!(status["accepting_orders"], false, "{status}");
    // The scheduler answers again: the blocker clears without a restart.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(forward_to_cupsd(listener));
    let status = wait_for("none").await;
    assert_eq!(status["accepting_orders"], true, "{status}");
    assert_eq!(status["printer"]["state"], "ready", "{status}");
}

#[test]
fn with_stop_printer_a_backend_failure_is_seen_as_a_backend_stop_that_auto_resume_may_undo() {
    if !available() {
        return;
    }
    let q = Queue::out_of_media("stop-printer");
    let printer = q.printer("w288h432-div2", &[]).with_timing(CupsTiming {
        command: Duration::from_secs(10),
        poll: Duration::from_millis(200),
        job_base: Duration::from_secs(60),
        job_per_copy: Duration::from_secs(10),
        stop_grace: Duration::from_secs(3),
    });
    let page = marked_page(printer.page_size().unwrap());
    let err = printer.print(&request(&page, 1)).expect_err("the backend fails");
    assert!(err.transient, "{err}");
    // CUPS 2.4 says nothing about backend errors on the printer; the job told us.
    let status = printer.status();
    assert!(!status.state.can_print(), "{status:?}");
    assert!(
        status
            .reasons
            .iter()
            .any(|r| r == photoboothd::hw::printer::cups::STOPPED_BY_BACKEND),
        "{status:?}"
    );
    // Resumed (as the print loop's auto-resume does), the queue runs and the mark goes.
    std::fs::remove_file(q.dir.join("exit")).unwrap();
    std::fs::remove_file(q.dir.join("stderr")).unwrap();
    let notes = printer.resume().expect("resume");
    assert!(notes.iter().any(|n| n.contains("media-empty-error")), "{notes:?}");
    let status = printer.status();
    assert!(status.state.can_print(), "{status:?}");
    assert!(status.reasons.is_empty(), "{status:?}");
}
