//! Prometheus metrics for `GET /metrics` on the kiosk listener: orders and payments by state,
//! webhook latency by method, prints and failures, media left, printer and camera up.
//!
//! Counts come from SQLite at scrape time (the store is the record, and a scrape a minute costs
//! nothing); only webhook latency is kept in memory, in fixed buckets of atomics so the webhook
//! path never takes a lock for it. The text format is simple enough that a client crate would
//! add more code than it saves.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::booth::health::Health;
use crate::payme::methods;
use crate::store::{Store, StoreError};

/// Upper bounds in seconds: sub-millisecond for a healthy Pi, up to a second for a disk in trouble.
const BUCKETS: [f64; 10] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];
/// Label for requests that never reached a method (bad auth, bad JSON, unknown method).
const NO_METHOD: &str = "none";

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (bucket, bound) in self.buckets.iter().zip(BUCKETS) {
            if secs <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }
}

pub struct Metrics {
    webhook: Vec<(&'static str, Histogram)>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            webhook: methods::names()
                .chain([NO_METHOD])
                .map(|name| (name, Histogram::default()))
                .collect(),
        }
    }
}

impl Metrics {
    pub fn observe_webhook(&self, method: Option<&str>, elapsed: Duration) {
        let name = method.unwrap_or(NO_METHOD);
        if let Some((_, h)) = self.webhook.iter().find(|(n, _)| *n == name) {
            h.observe(elapsed);
        }
    }

    /// The exposition text. Blocking (SQLite).
    pub fn render(&self, store: &Store, health: &Health) -> Result<String, StoreError> {
        let counts = store.read(|c| {
            let grouped = |sql: &str| -> rusqlite::Result<Vec<(String, i64)>> {
                c.prepare(sql)?
                    .query_map([], |r| Ok((r.get::<_, rusqlite::types::Value>(0)?, r.get(1)?)))?
                    .map(|row| row.map(|(k, n)| (label(k), n)))
                    .collect()
            };
            Ok((
                // Payments simulated by `photoboothd pay` are not money: never counted.
                grouped("SELECT status, count(*) FROM orders WHERE simulated = 0 GROUP BY status")?,
                grouped("SELECT state, count(*) FROM payme_transactions WHERE simulated = 0 GROUP BY state")?,
                grouped("SELECT status, count(*) FROM print_jobs GROUP BY status")?,
                c.query_row(
                    "SELECT coalesce(sum(copies), 0) FROM print_jobs WHERE status = 'printed'",
                    [],
                    |r| r.get::<_, i64>(0),
                )?,
            ))
        })?;
        let (orders, payments, jobs, copies_printed) = counts;
        let mut out = String::with_capacity(4096);
        family(&mut out, "photoboothd_orders", "gauge", "Orders by stored status.");
        for (status, n) in &orders {
            let _ = writeln!(out, "photoboothd_orders{{status=\"{status}\"}} {n}");
        }
        family(
            &mut out,
            "photoboothd_payments",
            "gauge",
            "Payme transactions by state (1, 2, -1, -2).",
        );
        for (state, n) in &payments {
            let _ = writeln!(out, "photoboothd_payments{{state=\"{state}\"}} {n}");
        }
        family(&mut out, "photoboothd_print_jobs", "gauge", "Print jobs by status.");
        for (status, n) in &jobs {
            let _ = writeln!(out, "photoboothd_print_jobs{{status=\"{status}\"}} {n}");
        }
        family(&mut out, "photoboothd_prints_total", "counter", "Copies printed.");
        let _ = writeln!(out, "photoboothd_prints_total {copies_printed}");
        let failures = jobs.iter().find(|(s, _)| s == "failed").map_or(0, |(_, n)| *n);
        family(
            &mut out,
            "photoboothd_print_failures",
            "gauge",
            "Print jobs waiting for a technician.",
        );
        let _ = writeln!(out, "photoboothd_print_failures {failures}");
        if let Some(media) = health.media() {
            family(
                &mut out,
                "photoboothd_media_left",
                "gauge",
                "Prints left on the loaded roll or pack.",
            );
            let _ = writeln!(out, "photoboothd_media_left {}", media.remaining);
        }
        let printer_up = health.printer_state().is_some_and(|s| s.state.can_print()) && health.blocker().is_none();
        family(
            &mut out,
            "photoboothd_printer_up",
            "gauge",
            "1 when the printer can take a paid print.",
        );
        let _ = writeln!(out, "photoboothd_printer_up {}", u8::from(printer_up));
        family(
            &mut out,
            "photoboothd_camera_up",
            "gauge",
            "1 unless the last capture failed.",
        );
        let _ = writeln!(out, "photoboothd_camera_up {}", u8::from(health.camera_view().ready));
        family(
            &mut out,
            "photoboothd_webhook_seconds",
            "histogram",
            "Payme webhook handling time by method.",
        );
        for (method, h) in &self.webhook {
            let count = h.count.load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            for (bucket, bound) in h.buckets.iter().zip(BUCKETS) {
                let n = bucket.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "photoboothd_webhook_seconds_bucket{{method=\"{method}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "photoboothd_webhook_seconds_bucket{{method=\"{method}\",le=\"+Inf\"}} {count}"
            );
            let sum = h.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "photoboothd_webhook_seconds_sum{{method=\"{method}\"}} {sum}");
            let _ = writeln!(out, "photoboothd_webhook_seconds_count{{method=\"{method}\"}} {count}");
        }
        Ok(out)
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn label(v: rusqlite::types::Value) -> String {
    match v {
        rusqlite::types::Value::Integer(i) => i.to_string(),
        rusqlite::types::Value::Text(t) => t.replace(['"', '\\', '\n'], "_"),
        _ => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.observe_webhook(Some("CheckPerformTransaction"), Duration::from_micros(300));
        m.observe_webhook(Some("CheckPerformTransaction"), Duration::from_millis(3));
        m.observe_webhook(None, Duration::from_millis(2));
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).unwrap();
        let text = m.render(&store, &Health::new("file", "sim", "sim")).unwrap();
        assert!(text.contains("photoboothd_webhook_seconds_bucket{method=\"CheckPerformTransaction\",le=\"0.0005\"} 1"));
        assert!(text.contains("photoboothd_webhook_seconds_bucket{method=\"CheckPerformTransaction\",le=\"0.005\"} 2"));
        assert!(text.contains("photoboothd_webhook_seconds_count{method=\"none\"} 1"));
        assert!(text.contains("photoboothd_printer_up 0"));
    }
}
