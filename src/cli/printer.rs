//! `photoboothd printer test` and `photoboothd printer resume`: what a technician runs over SSH
//! after installing or refilling a printer. Both talk to the printer directly (and to the store
//! for resume), so they work whether or not the daemon is running.

use crate::booth::service;
use crate::clock;
use crate::config::Config;
use crate::hw::camera::{Camera, SimCamera};
use crate::hw::printer::{self, PrintRequest, Printer};
use crate::layout::{compose, fit};
use crate::store::{Store, DB_FILE};

/// Prints the configured layout filled with generated sample shots, and says what the printer
/// reported before and after.
pub fn test(config: &Config) -> Result<(), String> {
    let printer = printer::from_config(config)?;
    report("before", printer.as_ref());
    let page_size = printer.page_size();
    let template = fit::load_for(&config.printer.layout, page_size).map_err(|e| e.to_string())?;
    let dir = tempdir()?;
    // Sample shots at the configured camera size, so the test also exercises the real compose path.
    let camera = SimCamera::new(&config.camera);
    let photos: Vec<_> = (1..=config.camera.shots)
        .map(|n| {
            let path = dir.join(format!("sample-{n}.jpg"));
            camera
                .capture(&path, n)
                .map(|()| path)
                .map_err(|e| format!("cannot make a sample shot: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let ctx = compose::Context {
        booth_name: &config.booth.name,
        time_ms: config.local_time_ms(clock::now_ms()),
    };
    let page = compose::compose(&template, &photos, &ctx).map_err(|e| e.to_string());
    let _ = std::fs::remove_dir_all(&dir);
    let page = page?;
    println!(
        "printing a test page: layout {} ({}x{} px, {}) on the {} printer",
        config.printer.layout,
        page.width(),
        page.height(),
        match page_size {
            Some(_) => "the driver's page size",
            None => "the layout's own size",
        },
        printer.backend()
    );
    printer
        .print(&PrintRequest {
            job_id: 0,
            order_id: 0,
            copies: 1,
            page: &page,
        })
        .map_err(|e| {
            format!(
                "the printer refused the test page: {e}{}",
                if e.may_have_printed {
                    " (part of it may have printed)"
                } else {
                    ""
                }
            )
        })?;
    report("after", printer.as_ref());
    println!("test page sent");
    Ok(())
}

/// Resumes the printer queue, requeues failed print jobs and, with `refill`, resets the media
/// counter to `printer.capacity`.
pub fn resume(config: &Config, refill: bool) -> Result<(), String> {
    let printer = printer::from_config(config)?;
    let db = config.data_dir().join(DB_FILE);
    if !db.exists() {
        return Err(format!(
            "no database at {}: is this the daemon's configuration?",
            db.display()
        ));
    }
    let store = Store::open(&db).map_err(|e| e.to_string())?;
    let capacity = refill.then_some(config.printer.capacity);
    let resumed = service::resume(&store, printer.as_ref(), capacity).map_err(|e| e.to_string())?;
    match resumed.printer_error {
        Some(e) => println!("printer: resume failed: {e}"),
        None => println!("printer: resumed"),
    }
    for note in &resumed.printer_notes {
        println!("printer: {note}");
    }
    println!("print jobs requeued: {}", resumed.requeued);
    match (refill, resumed.media_left) {
        (true, Some(left)) => println!("media counter: {left} prints"),
        (true, None) => println!("media counter: not counted (printer.capacity = 0)"),
        _ => {}
    }
    report("now", printer.as_ref());
    Ok(())
}

/// For `check-config`: the printer's page and where it comes from. Builds the printer, so a media
/// the CUPS queue does not offer is an error here too.
pub fn page_line(config: &Config) -> Result<String, String> {
    let printer = printer::from_config(config)?;
    let template = fit::load_for(&config.printer.layout, printer.page_size()).map_err(|e| e.to_string())?;
    let source = match printer.page_size() {
        Some(page) => format!("the driver's page, {page}"),
        None => "the layout's own size".to_string(),
    };
    Ok(format!(
        "layout {} composed at {}x{} px ({source})",
        config.printer.layout,
        template.width(),
        template.height()
    ))
}

fn report(when: &str, printer: &dyn Printer) {
    let status = printer.status();
    let reasons = if status.reasons.is_empty() {
        String::new()
    } else {
        format!(" ({})", status.reasons.join(", "))
    };
    println!("printer {when}: {:?}{reasons}", status.state);
}

fn tempdir() -> Result<std::path::PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("photoboothd-printer-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}
