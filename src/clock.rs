//! Wall-clock time as Payme and the store use it: UTC milliseconds in an `i64`.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> i64 {
    // A clock before 1970 only happens on a Pi with no RTC before NTP sync; 0 keeps ordering sane
    // and never panics.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
