//! Time as Payme and the store use it: UTC milliseconds in an `i64`, kept steady while the daemon
//! runs; and the monotonic clock for liveness.
//!
//! `now_ms` is the wall clock as it read when first asked (and again at `resync`, when the clock
//! first becomes synchronised) plus the monotonic time since. So a jump of the wall clock while the
//! booth runs (a manual `date`, a late correction) moves none of its deadlines: open orders do not
//! expire in bulk, screens do not time out at once, print retries are not pushed hours away.
//! `drift_ms` says how far the wall clock has jumped from it, for a warning. `mono_ms` is for "is
//! the loop alive" questions (the watchdog), which must never see a wall-clock jump or a resync.

use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The system's wall clock in UTC ms.
pub fn wall_ms() -> i64 {
    // A clock before 1970 only happens on a Pi with no RTC before NTP sync; 0 keeps ordering sane
    // and never panics.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Milliseconds on the monotonic clock since the process first asked (never jumps).
pub fn mono_ms() -> i64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    i64::try_from(start.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// A wall clock made steady by the monotonic clock. The process has one (`now_ms`); tests make
/// their own with an injected wall clock to jump it.
pub struct SteadyClock {
    wall: Arc<dyn Fn() -> i64 + Send + Sync>,
    /// The wall reading and the monotonic instant it was taken at.
    anchor: RwLock<(i64, Instant)>,
}

impl SteadyClock {
    pub fn new(wall: Arc<dyn Fn() -> i64 + Send + Sync>) -> SteadyClock {
        let anchor = (wall(), Instant::now());
        SteadyClock {
            wall,
            anchor: RwLock::new(anchor),
        }
    }

    pub fn now_ms(&self) -> i64 {
        let (at_wall, at_mono) = *self.anchor.read().unwrap_or_else(|p| p.into_inner());
        let elapsed = i64::try_from(at_mono.elapsed().as_millis()).unwrap_or(i64::MAX);
        at_wall.saturating_add(elapsed)
    }

    /// How far the wall clock is from this clock now (the jumps since the last anchor).
    pub fn drift_ms(&self) -> i64 {
        (self.wall)().saturating_sub(self.now_ms())
    }

    /// Takes the wall clock as it is now (it was just synchronised); returns how far time moved.
    pub fn resync(&self) -> i64 {
        let before = self.now_ms();
        let anchor = ((self.wall)(), Instant::now());
        *self.anchor.write().unwrap_or_else(|p| p.into_inner()) = anchor;
        anchor.0.saturating_sub(before)
    }
}

fn process_clock() -> &'static SteadyClock {
    static CLOCK: OnceLock<SteadyClock> = OnceLock::new();
    CLOCK.get_or_init(|| SteadyClock::new(Arc::new(wall_ms)))
}

/// Now, in UTC ms, steady while the daemon runs (see the module comment).
pub fn now_ms() -> i64 {
    process_clock().now_ms()
}

/// How far the system's wall clock has jumped away from `now_ms`.
pub fn drift_ms() -> i64 {
    process_clock().drift_ms()
}

/// Adopts the wall clock (call when it has just become synchronised); returns the jump in ms.
pub fn resync() -> i64 {
    process_clock().resync()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    const H13: i64 = 13 * 3_600_000;

    fn fake_wall(start: i64) -> (Arc<AtomicI64>, SteadyClock) {
        let wall = Arc::new(AtomicI64::new(start));
        let read = wall.clone();
        (wall, SteadyClock::new(Arc::new(move || read.load(Ordering::SeqCst))))
    }

    #[test]
    fn a_wall_clock_jump_of_13_hours_either_way_moves_no_deadline() {
        use crate::store::orders::{self, Order, StoredStatus};
        for jump in [H13, -H13] {
            let start = 1_800_000_000_000;
            let (wall, clock) = fake_wall(start);
            let created = clock.now_ms();
            let order = Order {
                created_at: created,
                expires_at: created + 600_000,
                ..orders::sample(1, StoredStatus::Open)
            };
            wall.fetch_add(jump, Ordering::SeqCst);
            let now = clock.now_ms();
            // Only the monotonic time since creation passed, not 13 hours.
            assert!((created..created + 60_000).contains(&now), "jump {jump}: {now}");
            assert_eq!(order.payability(false, now), Ok(()), "jump {jump}");
            let drift = clock.drift_ms();
            assert!((jump - 60_000..=jump).contains(&drift), "jump {jump}: drift {drift}");
            // Once the clock is known to be right, the booth takes it.
            let moved = clock.resync();
            assert!((jump - 60_000..=jump).contains(&moved), "jump {jump}: moved {moved}");
            assert!(clock.now_ms() >= start + jump);
        }
    }

    #[test]
    fn the_process_clock_follows_the_wall_clock_without_jumps() {
        let (now, wall) = (now_ms(), wall_ms());
        assert!((now - wall).abs() < 60_000, "{now} vs {wall}");
        let a = mono_ms();
        assert!(mono_ms() >= a);
    }
}
