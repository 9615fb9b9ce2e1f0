//! The technician's read-mostly commands over SSH: `status`, `orders`, `order ID`, `reprint ID`,
//! `stats` (`--csv` output is `export.rs`). They read the daemon's SQLite file directly (WAL lets
//! them run beside the daemon) and ask the running daemon only for what lives in its memory (the
//! printer's and camera's state).

use std::path::Path;

use serde_json::Value;

use crate::booth::{load_order_view, OrderView};
use crate::clock;
use crate::config::Config;
use crate::daemon::RuntimeInfo;
use crate::layout::receipt::{format_sum, format_utc};
use crate::store::{jobs, media, reports, sessions, transactions, OrderStatus, Store, DB_FILE};

fn open_store(config: &Config) -> Result<Store, String> {
    let db = config.data_dir().join(DB_FILE);
    if !db.exists() {
        return Err(format!(
            "no database at {}: the daemon has never run with this configuration (check --config and booth.data_dir)",
            db.display()
        ));
    }
    Store::open(&db).map_err(|e| format!("cannot open {}: {e}", db.display()))
}

/// The running daemon's runtime file, if its process is alive.
fn running_daemon(data_dir: &Path) -> Option<RuntimeInfo> {
    let info = RuntimeInfo::read(data_dir)?;
    Path::new(&format!("/proc/{}", info.pid)).exists().then_some(info)
}

pub(super) fn local(config: &Config, ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    let text = format_utc(config.local_time_ms(ms));
    text.trim_end_matches(" UTC").to_string()
}

pub async fn status(config: &Config) -> Result<(), String> {
    let data_dir = config.data_dir();
    match running_daemon(&data_dir) {
        Some(info) => {
            println!(
                "daemon       running (pid {}, since {})",
                info.pid,
                local(config, info.started_at)
            );
            println!(
                "kiosk        http://{}   webhook http://{}/payme",
                info.kiosk, info.webhook
            );
            match crate::client::request(info.kiosk, "GET", "/api/status", &[], Vec::new())
                .await
                .map(|r| r.json())
            {
                Ok(Ok(s)) => print_live_status(&s),
                _ => println!("status       the daemon does not answer on its kiosk listener"),
            }
        }
        None => println!("daemon       NOT RUNNING (start it: systemctl start photoboothd)"),
    }
    let store = open_store(config)?;
    let (media, counts, payments) = store
        .read(|c| Ok((media::get(c)?, jobs::counts(c)?, reports::last_payments(c, 5)?)))
        .map_err(|e| e.to_string())?;
    match media {
        Some(m) => println!("media        {} of {} prints left", m.remaining, m.capacity),
        None => println!("media        not counted (printer.capacity = 0)"),
    }
    println!(
        "print queue  {} queued, {} printing, {} failed",
        counts.queued, counts.printing, counts.failed
    );
    if payments.is_empty() {
        println!("payments     none yet");
    }
    for (i, (order, amount, at)) in payments.iter().enumerate() {
        let label = if i == 0 { "payments" } else { "" };
        println!(
            "{label:<12} {}  order {order}  {} sum",
            local(config, *at),
            format_sum(*amount)
        );
    }
    Ok(())
}

fn print_live_status(s: &Value) {
    let p = &s["printer"];
    let reasons = p["reasons"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "));
    println!(
        "printer      {} {}{}",
        p["backend"].as_str().unwrap_or("?"),
        p["state"].as_str().unwrap_or("not checked yet"),
        reasons
            .filter(|r| !r.is_empty())
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    let c = &s["camera"];
    match c["last_error"].as_str() {
        Some(e) => println!("camera       {} FAILED: {e}", c["backend"].as_str().unwrap_or("?")),
        None => println!("camera       {} ready", c["backend"].as_str().unwrap_or("?")),
    }
    println!("gpio         {}", s["gpio"]["backend"].as_str().unwrap_or("?"));
    if s["payme_mode"] == "sandbox" {
        println!("payme        sandbox: Payme's TEST checkout, no real money (production: payme.checkout_base = \"https://checkout.paycom.uz\")");
    } else {
        println!("payme        production");
    }
    let blockers = s["blockers"].as_array().cloned().unwrap_or_default();
    if blockers.is_empty() {
        println!("sessions     accepted");
    }
    for (i, b) in blockers.iter().enumerate() {
        let label = if i == 0 { "sessions" } else { "" };
        println!(
            "{label:<12} REFUSED: {} ({})",
            b["message"].as_str().unwrap_or("?"),
            b["reason"].as_str().unwrap_or("?")
        );
    }
}

/// The first UTC ms of a local date, for `--since`.
fn since_ms(config: &Config, since: Option<&str>) -> Result<i64, String> {
    match since {
        None => Ok(0),
        Some(date) => local_day_start(config, date, "--since", 0),
    }
}

/// The first UTC ms after a local date, for `--until` (inclusive).
fn until_ms(config: &Config, until: Option<&str>) -> Result<i64, String> {
    match until {
        None => Ok(i64::MAX),
        Some(date) => local_day_start(config, date, "--until", 1),
    }
}

fn local_day_start(config: &Config, date: &str, flag: &str, plus_days: i64) -> Result<i64, String> {
    crate::date::days_from_date(date)
        .map(|d| (d + plus_days) * 86_400_000 - config.local_time_ms(0))
        .ok_or_else(|| format!("{flag} {date:?} is not a date like 2026-11-01"))
}

/// What `photoboothd orders` lists.
pub struct OrderFilter<'a> {
    pub since: Option<&'a str>,
    pub until: Option<&'a str>,
    pub status: Option<&'a str>,
    /// At most this many (newest); `None`: 50 in the table, every order in a CSV export.
    pub limit: Option<u32>,
}

/// Lists orders as a table, or as CSV with `csv = Some(separator)`.
pub fn orders(config: &Config, filter: &OrderFilter<'_>, csv: Option<char>) -> Result<(), String> {
    const STATUSES: [&str; 9] = [
        "awaiting_payment",
        "paid",
        "printing",
        "printed",
        "print_failed",
        "delivered",
        "cancelled",
        "expired",
        "refunded",
    ];
    let status = filter.status;
    if let Some(s) = status {
        if !STATUSES.contains(&s) {
            return Err(format!("--status {s:?} is not one of {}", STATUSES.join(", ")));
        }
    }
    let (from, until) = (since_ms(config, filter.since)?, until_ms(config, filter.until)?);
    let limit = match csv {
        Some(_) => filter.limit,
        None => Some(filter.limit.unwrap_or(50)),
    };
    let store = open_store(config)?;
    let now = clock::now_ms();
    let views: Vec<OrderView> = store
        .read(|c| {
            let ids = reports::order_ids_in(c, from, until, limit)?;
            let mut views = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(v) = load_order_view(c, config, id, now)? {
                    views.push(v);
                }
            }
            Ok(views)
        })
        .map_err(|e| e.to_string())?;
    let views: Vec<OrderView> = views
        .into_iter()
        .filter(|v| status.is_none_or(|s| v.status.as_str() == s))
        .collect();
    if let Some(sep) = csv {
        return super::export::orders(config, &views, sep);
    }
    println!(
        "{:>7}  {:<16}  {:>6}  {:>12}  {:<16}  note",
        "order", "created", "copies", "sum", "status"
    );
    for v in &views {
        let note = if v.paid_after_customer_left {
            "paid after the customer left"
        } else {
            ""
        };
        println!(
            "{:>7}  {:<16}  {:>6}  {:>12}  {:<16}  {note}",
            v.order_id,
            local(config, v.created_at),
            v.copies,
            format_sum(v.amount_tiyin),
            v.status.as_str()
        );
    }
    Ok(())
}

pub fn order(config: &Config, id: i64) -> Result<(), String> {
    let store = open_store(config)?;
    let now = clock::now_ms();
    let (view, txs, jobs, session) = store
        .read(|c| {
            Ok((
                load_order_view(c, config, id, now)?,
                transactions::for_order(c, id)?,
                reports::jobs_for_order(c, id)?,
                sessions::for_order(c, id)?,
            ))
        })
        .map_err(|e| e.to_string())?;
    let view = view.ok_or_else(|| format!("order {id} does not exist"))?;
    println!(
        "order {id}: {} copies, {} sum, status {}",
        view.copies,
        format_sum(view.amount_tiyin),
        view.status.as_str()
    );
    let mut events: Vec<(i64, String)> = vec![(
        view.created_at,
        format!("created, payable until {}", local(config, view.expires_at)),
    )];
    if let Some(s) = &session {
        events.push((s.started_at, format!("kiosk session {} started", s.id)));
        if let (Some(ended), Some(reason)) = (s.ended_at, &s.end_reason) {
            events.push((ended, format!("kiosk session {} ended ({reason})", s.id)));
        }
    }
    for tx in &txs {
        events.push((
            tx.create_time,
            format!("Payme transaction {} created (transaction {})", tx.payme_id, tx.id),
        ));
        if tx.perform_time > 0 {
            events.push((
                tx.perform_time,
                format!("Payme transaction {} performed: paid", tx.payme_id),
            ));
        }
        if tx.cancel_time > 0 {
            let what = if tx.perform_time > 0 { "refunded" } else { "cancelled" };
            events.push((
                tx.cancel_time,
                format!(
                    "Payme transaction {} {what}, reason {}",
                    tx.payme_id,
                    reason_words(tx.reason)
                ),
            ));
        }
    }
    for (kind, job) in &jobs {
        events.push((
            job.created_at,
            format!("{kind} print job {} queued, {} copies", job.id, job.copies),
        ));
        let mut last = format!(
            "{kind} print job {} {} after {} attempt(s)",
            job.id,
            job.status.as_str(),
            job.attempts
        );
        if let Some(e) = &job.last_error {
            last.push_str(&format!(", last error: {e}"));
        }
        if job.may_have_printed {
            last.push_str(" (may have printed)");
        }
        if job.forced {
            last.push_str(" (forced past the refund with --force)");
        }
        events.push((job.updated_at, last));
    }
    events.sort_by_key(|(at, _)| *at);
    for (at, what) in events {
        println!("  {}  {what}", local(config, at));
    }
    if view.paid_after_customer_left {
        println!("note: the payment arrived after the customer's session had ended");
    }
    if view.kind == crate::store::OrderKind::Digital {
        println!("digital copies only: delivered by the download link, never printed");
    }
    if let Some(url) = &view.download_url {
        println!("download link: {url}");
    }
    Ok(())
}

/// A Payme cancel reason in words with its code, e.g. `refund (5)`; codes Payme never defined
/// are shown as they came.
fn reason_words(reason: Option<i64>) -> String {
    let words = match reason {
        None => return "none given".into(),
        Some(1) => "receiver not found or inactive",
        Some(2) => "debit failed at the processing centre",
        Some(3) => "transaction execution error",
        Some(4) => "timeout",
        Some(5) => "refund",
        Some(10) => "unknown error",
        Some(_) => "undefined by Payme",
    };
    format!("{words} ({})", reason.unwrap_or_default())
}

/// Queues another print of a paid order. A refunded order is refused unless `force` (and the
/// forced reprint is logged); a cancelled or never-paid order is refused even then.
pub fn reprint(config: &Config, id: i64, copies: Option<u32>, force: bool) -> Result<(), String> {
    let store = open_store(config)?;
    let now = clock::now_ms();
    let view = store
        .read(|c| load_order_view(c, config, id, now))
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("order {id} does not exist"))?;
    if view.paid_at.is_none() && view.event_id.is_none() {
        return Err(format!(
            "order {id} was never paid (status {}); nothing to reprint, even with --force",
            view.status.as_str()
        ));
    }
    if let Some(session_id) = view.session_id {
        let page =
            crate::booth::session::session_dir(&config.data_dir(), session_id).join(crate::booth::session::PAGE_FILE);
        if !page.exists() {
            return Err(format!(
                "the photos of order {id} are no longer kept (storage.keep_pages_days = {}); nothing to reprint",
                config.storage.keep_pages_days
            ));
        }
    }
    let refunded = view.status == OrderStatus::Refunded;
    if refunded && !force {
        return Err(format!(
            "order {id} was refunded: its prints are stopped. To print it anyway, run `photoboothd reprint {id} --force` (it is logged)"
        ));
    }
    let copies = copies.unwrap_or(view.copies);
    if !(1..=config.booth.max_copies).contains(&copies) {
        return Err(format!("--copies must be from 1 to {}", config.booth.max_copies));
    }
    let job = store
        .write(|tx| jobs::queue_reprint(tx, id, copies, refunded, now))
        .map_err(|e| e.to_string())?
        // Refunded between the look above and this write (Payme's cancel arrived meanwhile).
        .ok_or_else(|| {
            format!("order {id} was refunded just now: its prints are stopped. Run `photoboothd reprint {id} --force` to print it anyway")
        })?;
    if refunded {
        tracing::warn!(
            order_id = id,
            job_id = job,
            copies,
            "reprint of a REFUNDED order forced from the command line"
        );
        println!("order {id} was refunded; printing it anyway because of --force (logged)");
    } else {
        tracing::info!(
            order_id = id,
            job_id = job,
            copies,
            "reprint queued from the command line"
        );
    }
    println!("reprint of order {id} queued as job {job} ({copies} copies)");
    match running_daemon(&config.data_dir()) {
        Some(_) => println!("the running daemon prints it within a few seconds"),
        None => println!("the daemon is not running: it prints when it starts"),
    }
    Ok(())
}

/// Per local day, as a table, or as CSV with `csv = Some(separator)`.
pub fn stats(config: &Config, days: u32, csv: Option<char>) -> Result<(), String> {
    let store = open_store(config)?;
    let offset = config.local_time_ms(0);
    let today = (clock::now_ms() + offset).div_euclid(86_400_000);
    let since = today - i64::from(days.max(1)) + 1;
    let rows = store
        .read(|c| reports::daily(c, since, offset))
        .map_err(|e| e.to_string())?;
    if let Some(sep) = csv {
        return super::export::stats(&rows, sep);
    }
    println!(
        "{:<10}  {:>8}  {:>6}  {:>8}  {:>12}  {:>6}  {:>12}  {:>14}  {:>15}",
        "day",
        "sessions",
        "paid",
        "refunded",
        "revenue sum",
        "prints",
        "event prints",
        "print failures",
        "camera failures"
    );
    for d in rows {
        let date = format_utc(d.day * 86_400_000);
        println!(
            "{:<10}  {:>8}  {:>6}  {:>8}  {:>12}  {:>6}  {:>12}  {:>14}  {:>15}",
            &date[..10],
            d.sessions,
            d.paid_orders,
            d.refunded_orders,
            format_sum(d.revenue_tiyin),
            d.prints,
            d.event_prints,
            d.print_failures,
            d.camera_failures
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::reason_words;

    #[test]
    fn cancel_reasons_are_words_with_their_code() {
        assert_eq!(reason_words(Some(5)), "refund (5)");
        assert_eq!(reason_words(Some(4)), "timeout (4)");
        assert_eq!(reason_words(Some(7)), "undefined by Payme (7)");
        assert_eq!(reason_words(None), "none given");
    }
}
