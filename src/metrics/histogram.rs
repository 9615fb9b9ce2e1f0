//! Webhook latency by method and error replies by code, kept in memory: they describe this
//! process's work (Prometheus handles the reset at a restart), and the webhook path records them
//! without touching SQLite.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::payme::rpc::code;

/// Upper bounds in seconds: sub-millisecond for a healthy Pi, up to a second for a disk in trouble.
pub const BUCKETS: [f64; 10] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

#[derive(Default)]
pub struct Histogram {
    /// Observations per bucket, not cumulative: one atomic add per request on the webhook path
    /// (a cumulative write touched every bucket above the value); `cumulative` sums at scrape time.
    buckets: [AtomicU64; BUCKETS.len()],
    pub count: AtomicU64,
    pub sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&bound| secs <= bound) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Each bucket's upper bound with the observations at or below it, as Prometheus counts them.
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let mut total = 0;
        self.buckets.iter().zip(BUCKETS).map(move |(bucket, bound)| {
            total += bucket.load(Ordering::Relaxed);
            (bound, total)
        })
    }
}

/// Codes exported from the start at 0, so an alert's `increase()` sees the first error: the ones
/// that mean the booth or its Payme set-up is broken, and the business replies Payme gets daily.
const KNOWN_CODES: [i64; 14] = [
    code::NOT_POST,
    code::PARSE,
    code::INVALID_REQUEST,
    code::METHOD_NOT_FOUND,
    code::UNAUTHORIZED,
    code::SYSTEM,
    code::WRONG_AMOUNT,
    code::TX_NOT_FOUND,
    code::CANNOT_CANCEL,
    code::BAD_STATE,
    code::ORDER_NOT_FOUND,
    code::ORDER_PAID,
    code::ORDER_CLOSED,
    code::ORDER_EXPIRED,
];

/// Error replies by JSON-RPC code. Codes are ours (a bounded set), never the caller's text.
pub struct ErrorCounts(Mutex<BTreeMap<i64, u64>>);

impl Default for ErrorCounts {
    fn default() -> Self {
        ErrorCounts(Mutex::new(KNOWN_CODES.iter().map(|c| (*c, 0)).collect()))
    }
}

impl ErrorCounts {
    pub fn count(&self, code: i64) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry(code).or_insert(0) += 1;
        }
    }

    pub fn snapshot(&self) -> Vec<(i64, u64)> {
        self.0
            .lock()
            .map(|m| m.iter().map(|(c, n)| (*c, *n)).collect())
            .unwrap_or_default()
    }
}
