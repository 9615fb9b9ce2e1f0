//! Prometheus metrics for `GET /metrics` (the kiosk listener, and `[http] metrics_listen` when
//! set): what an owner runs the business on (money, the session funnel, media, printer, blockers,
//! opening hours) and how the Payme webhook behaves.
//!
//! Counters come from SQLite at scrape time (the store is the record, so they survive restarts and
//! only go up; see `store::counters`); `render` is blocking and runs on a blocking thread. Webhook
//! latency and error replies are kept in memory (`histogram.rs`) so the webhook path never waits
//! for them. The text format is simple enough that a client crate would add more code than it saves.

mod histogram;
mod text;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::booth::health::{BlockReason, Health};
use crate::clock;
use crate::config::Config;
use crate::payme::methods;
use crate::store::counters::{self, Totals};
use crate::store::sessions::Outcome;
use crate::store::{media, Store, StoreError};
use histogram::{ErrorCounts, Histogram};
pub use text::escape;
use text::Exposition;

/// Label for requests that never reached a method (bad auth, bad JSON, unknown method).
const NO_METHOD: &str = "none";

pub struct Metrics {
    store: Arc<Store>,
    health: Arc<Health>,
    config: Arc<Config>,
    webhook: Vec<(&'static str, Histogram)>,
    webhook_errors: ErrorCounts,
}

/// Everything a scrape reads from SQLite, in one read.
struct FromStore {
    totals: Totals,
    sessions: Vec<(String, i64)>,
    orders: Vec<(String, i64)>,
    payments: Vec<(String, i64)>,
    jobs: Vec<(String, i64)>,
    copies_printed: i64,
    media: Option<media::Media>,
}

impl Metrics {
    pub fn new(store: Arc<Store>, health: Arc<Health>, config: Arc<Config>) -> Metrics {
        Metrics {
            store,
            health,
            config,
            webhook: methods::names()
                .chain([NO_METHOD])
                .map(|name| (name, Histogram::default()))
                .collect(),
            webhook_errors: ErrorCounts::default(),
        }
    }

    /// One webhook request: its handling time by method, and its JSON-RPC error code if it failed.
    pub fn observe_webhook(&self, method: Option<&str>, error_code: Option<i64>, elapsed: Duration) {
        let name = method.unwrap_or(NO_METHOD);
        if let Some((_, h)) = self.webhook.iter().find(|(n, _)| *n == name) {
            h.observe(elapsed);
        }
        if let Some(code) = error_code {
            self.webhook_errors.count(code);
        }
    }

    /// The exposition text. Blocking (SQLite): call from `spawn_blocking`.
    pub fn render(&self) -> Result<String, StoreError> {
        let s = self.store.read(read_store)?;
        let mut out = Exposition::new();
        self.owner_metrics(&mut out, &s);
        self.booth_state(&mut out, &s);
        record_counts(&mut out, &s);
        self.webhook_metrics(&mut out);
        Ok(out.0)
    }

    /// Money, the funnel, the build: what the fleet's dashboards and alerts start from.
    fn owner_metrics(&self, out: &mut Exposition, s: &FromStore) {
        out.family(
            "photoboothd_build_info",
            "gauge",
            "Always 1; the labels say which photoboothd runs on which booth.",
        );
        out.sample(
            "photoboothd_build_info",
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                ("booth", &self.config.booth.name),
            ],
            1,
        );
        out.labelled(
            "photoboothd_paid_tiyin_total",
            "counter",
            "Tiyin paid through Payme by order kind, refunds included (revenue = paid - refunded); simulated payments never count.",
            "kind",
            s.totals.paid_tiyin.iter().map(|(kind, tiyin)| (kind.as_str(), tiyin)),
        );
        out.single(
            "photoboothd_refunded_tiyin_total",
            "counter",
            "Tiyin refunded after payment (Payme CancelTransaction of a performed transaction).",
            s.totals.refunded_tiyin,
        );
        out.single(
            "photoboothd_event_prints_total",
            "counter",
            "Copies printed for event (prepaid) orders.",
            s.totals.event_prints,
        );
        out.single(
            "photoboothd_last_payment_timestamp_seconds",
            "gauge",
            "When the last counted payment was performed (Unix seconds); 0 before the first.",
            s.totals.last_payment_at / 1000,
        );
        let ended = |outcome: Outcome| {
            s.sessions
                .iter()
                .find(|(l, _)| l == outcome.as_str())
                .map_or(0, |(_, n)| *n)
        };
        out.labelled(
            "photoboothd_sessions_total",
            "counter",
            "Kiosk sessions by how they ended: the funnel from photo to print.",
            "outcome",
            Outcome::ALL.map(|outcome| (outcome.as_str(), ended(outcome))),
        );
    }

    /// Media, printer, camera, blockers and opening hours right now.
    fn booth_state(&self, out: &mut Exposition, s: &FromStore) {
        if let Some(media) = s.media {
            out.single(
                "photoboothd_media_remaining",
                "gauge",
                "Prints left on the loaded roll or pack (printer.capacity counts them).",
                media.remaining,
            );
            out.single(
                "photoboothd_media_capacity",
                "gauge",
                "Prints on a full roll or pack (printer.capacity).",
                media.capacity,
            );
        }
        let blocked: Vec<BlockReason> = self.health.blockers().iter().map(|b| b.reason).collect();
        let printer_up = self.health.printer_state().is_some_and(|p| p.state.can_print())
            && !blocked.iter().any(|r| r.stops_printing());
        out.single(
            "photoboothd_printer_up",
            "gauge",
            "1 when the printer can take a paid print.",
            u8::from(printer_up),
        );
        out.single(
            "photoboothd_camera_up",
            "gauge",
            "1 unless the last capture failed.",
            u8::from(self.health.camera_view().ready),
        );
        out.labelled(
            "photoboothd_blocked",
            "gauge",
            "1 for each reason the booth refuses paid sessions now, 0 for the others.",
            "reason",
            BlockReason::ALL.map(|reason| (reason.as_str(), u8::from(blocked.contains(&reason)))),
        );
        let local = self.config.local_time_ms(clock::now_ms());
        out.single(
            "photoboothd_open",
            "gauge",
            "1 inside [booth] open_hours (the booth's local time), when customers are expected.",
            u8::from(self.config.booth.open_hours.is_open(local)),
        );
    }

    fn webhook_metrics(&self, out: &mut Exposition) {
        out.labelled(
            "photoboothd_webhook_errors_total",
            "counter",
            "Payme webhook error replies by JSON-RPC code since the daemon started.",
            "code",
            self.webhook_errors
                .snapshot()
                .into_iter()
                .map(|(code, n)| (code.to_string(), n)),
        );
        out.family(
            "photoboothd_webhook_seconds",
            "histogram",
            "Payme webhook handling time by method.",
        );
        for (method, h) in &self.webhook {
            let count = h.count.load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            let name = "photoboothd_webhook_seconds_bucket";
            for (bound, n) in h.cumulative() {
                let le = bound.to_string();
                out.sample(name, &[("method", method), ("le", &le)], n);
            }
            out.sample(name, &[("method", method), ("le", "+Inf")], count);
            let sum = h.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
            out.sample("photoboothd_webhook_seconds_sum", &[("method", method)], sum);
            out.sample("photoboothd_webhook_seconds_count", &[("method", method)], count);
        }
    }
}

/// The store's rows by state, for a technician's dashboard.
fn record_counts<'a>(out: &mut Exposition, s: &'a FromStore) {
    let rows = |rows: &'a [(String, i64)]| rows.iter().map(|(k, n)| (k.as_str(), *n));
    out.labelled(
        "photoboothd_orders",
        "gauge",
        "Orders by stored status.",
        "status",
        rows(&s.orders),
    );
    out.labelled(
        "photoboothd_payments",
        "gauge",
        "Payme transactions by state (1, 2, -1, -2).",
        "state",
        rows(&s.payments),
    );
    out.labelled(
        "photoboothd_print_jobs",
        "gauge",
        "Print jobs by status.",
        "status",
        rows(&s.jobs),
    );
    out.single(
        "photoboothd_prints_total",
        "counter",
        "Copies printed (paid, event, reprints and tests).",
        s.copies_printed,
    );
    let failures = s.jobs.iter().find(|(st, _)| st == "failed").map_or(0, |(_, n)| *n);
    out.single(
        "photoboothd_print_failures",
        "gauge",
        "Print jobs waiting for a technician.",
        failures,
    );
}

fn read_store(c: &rusqlite::Connection) -> rusqlite::Result<FromStore> {
    let grouped = |sql: &str| -> rusqlite::Result<Vec<(String, i64)>> {
        c.prepare_cached(sql)?
            .query_map([], |r| Ok((r.get::<_, rusqlite::types::Value>(0)?, r.get(1)?)))?
            .map(|row| row.map(|(k, n)| (label(k), n)))
            .collect()
    };
    Ok(FromStore {
        totals: counters::totals(c)?,
        sessions: counters::by_label(c, counters::SESSIONS)?,
        // Payments simulated by `photoboothd pay` are not money: never counted.
        orders: grouped("SELECT status, count(*) FROM orders WHERE simulated = 0 GROUP BY status")?,
        payments: grouped("SELECT state, count(*) FROM payme_transactions WHERE simulated = 0 GROUP BY state")?,
        jobs: grouped("SELECT status, count(*) FROM print_jobs GROUP BY status")?,
        copies_printed: c.query_row(
            "SELECT coalesce(sum(copies), 0) FROM print_jobs WHERE status = 'printed'",
            [],
            |r| r.get(0),
        )?,
        media: media::get(c)?,
    })
}

fn label(v: rusqlite::types::Value) -> String {
    match v {
        rusqlite::types::Value::Integer(i) => i.to_string(),
        rusqlite::types::Value::Text(t) => t,
        _ => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(dir: &std::path::Path) -> Metrics {
        let store = Arc::new(Store::open_in(dir).unwrap());
        let mut config = Config::built_in().unwrap();
        config.booth.name = "Bo\"oth".into();
        Metrics::new(store, Arc::new(Health::new("file", "sim", "sim")), Arc::new(config))
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let dir = tempfile::tempdir().unwrap();
        let m = metrics(dir.path());
        m.observe_webhook(Some("CheckPerformTransaction"), None, Duration::from_micros(300));
        m.observe_webhook(Some("CheckPerformTransaction"), Some(-31050), Duration::from_millis(3));
        m.observe_webhook(None, Some(-32504), Duration::from_millis(2));
        let text = m.render().unwrap();
        assert!(text.contains("photoboothd_webhook_seconds_bucket{method=\"CheckPerformTransaction\",le=\"0.0005\"} 1"));
        assert!(text.contains("photoboothd_webhook_seconds_bucket{method=\"CheckPerformTransaction\",le=\"0.005\"} 2"));
        assert!(text.contains("photoboothd_webhook_seconds_count{method=\"none\"} 1"));
        assert!(text.contains("photoboothd_webhook_errors_total{code=\"-32504\"} 1"));
        assert!(text.contains("photoboothd_webhook_errors_total{code=\"-32400\"} 0"));
        assert!(text.contains("photoboothd_printer_up 0"));
    }

    #[test]
    fn every_series_an_alert_needs_is_there_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let text = metrics(dir.path()).render().unwrap();
        for line in [
            "photoboothd_paid_tiyin_total{kind=\"print\"} 0",
            "photoboothd_paid_tiyin_total{kind=\"digital\"} 0",
            "photoboothd_refunded_tiyin_total 0",
            "photoboothd_event_prints_total 0",
            "photoboothd_sessions_total{outcome=\"abandoned_payment\"} 0",
            "photoboothd_blocked{reason=\"disk_low\"} 0",
            "photoboothd_blocked{reason=\"clock_unsynced\"} 0",
            "photoboothd_open 1",
            "photoboothd_last_payment_timestamp_seconds 0",
            &format!(
                "photoboothd_build_info{{version=\"{}\",booth=\"Bo\\\"oth\"}} 1",
                env!("CARGO_PKG_VERSION")
            ),
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(
            !text.contains("photoboothd_media_remaining"),
            "media is not counted by default"
        );
    }
}
