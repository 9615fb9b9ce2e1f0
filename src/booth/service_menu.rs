//! The owner's service menu on the touch screen: who may open it (a PIN compared in constant time,
//! five wrong PINs lock it for five minutes, a token that lapses ten minutes after its last use)
//! and what it does (the day's figures, refill, test print, resume, reprint, events). Every action
//! is logged with `service = true`. The HTTP side is `http/service.rs`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use subtle::ConstantTimeEq;

use super::event::{self, EventInfo, StartEvent};
use super::health::{Blocker, CameraView, PrinterView};
use super::{load_order_view, service, Booth, OrderView};
use crate::config::{pin_sha256, Config};
use crate::digital::gallery::{self, GalleryLink};
use crate::hw::printer::Printer;
use crate::store::summary::{self, Period};
use crate::store::{events, jobs, media, orders, Store, StoreError};
use crate::{clock, date};

/// Wrong PINs in a row that lock the menu.
pub const MAX_FAILURES: u32 = 5;
pub const LOCKOUT: Duration = Duration::from_secs(5 * 60);
/// A token lapses this long after it was last used.
pub const TOKEN_IDLE: Duration = Duration::from_secs(10 * 60);
/// Open tokens kept at most (one screen, perhaps a phone); the oldest goes first.
const MAX_TOKENS: usize = 4;
/// Orders the summary lists.
const LAST_ORDERS: u32 = 10;
const DAY_MS: i64 = 86_400_000;

/// A random hex token (128 bits): service tokens and event gallery links.
pub fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[derive(Debug, PartialEq, Eq)]
pub enum UnlockError {
    WrongPin {
        tries_left: u32,
    },
    /// Too many wrong PINs: refused, even the right one, for this long.
    LockedOut {
        retry_after_s: u64,
    },
    NoRandomness,
}

/// Who holds the menu open: failures, lockout and live tokens, on the monotonic clock.
#[derive(Default)]
struct Access {
    failures: u32,
    locked_until: Option<Instant>,
    /// Token and its last use.
    tokens: Vec<(String, Instant)>,
}

/// The PIN gate. Separate from the actions so its rules can be tested without a booth.
pub struct Gate {
    pin_hash: [u8; 32],
    access: Mutex<Access>,
}

impl Gate {
    pub fn new(pin_hash: [u8; 32]) -> Gate {
        Gate {
            pin_hash,
            access: Mutex::new(Access::default()),
        }
    }

    fn access(&self) -> std::sync::MutexGuard<'_, Access> {
        self.access.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new token for the right PIN. Returns it with its expiry (UTC ms).
    pub fn unlock(&self, pin: &str, now: Instant) -> Result<(String, i64), UnlockError> {
        let mut a = self.access();
        if let Some(until) = a.locked_until {
            if now < until {
                return Err(UnlockError::LockedOut {
                    retry_after_s: (until - now).as_secs().max(1),
                });
            }
            a.locked_until = None;
            a.failures = 0;
        }
        // Hash first, then compare the digests in constant time: the time taken says nothing
        // about how much of the PIN was right.
        let right: bool = pin_sha256(pin).ct_eq(&self.pin_hash).into();
        if !right {
            a.failures += 1;
            if a.failures >= MAX_FAILURES {
                a.locked_until = Some(now + LOCKOUT);
                tracing::warn!(
                    service = true,
                    "service menu locked for 5 minutes after {MAX_FAILURES} wrong PINs"
                );
                return Err(UnlockError::LockedOut {
                    retry_after_s: LOCKOUT.as_secs(),
                });
            }
            tracing::warn!(service = true, failures = a.failures, "service menu: wrong PIN");
            return Err(UnlockError::WrongPin {
                tries_left: MAX_FAILURES - a.failures,
            });
        }
        a.failures = 0;
        let token = random_token().map_err(|_| UnlockError::NoRandomness)?;
        a.tokens.retain(|(_, used)| now.duration_since(*used) < TOKEN_IDLE);
        if a.tokens.len() >= MAX_TOKENS {
            a.tokens.remove(0);
        }
        a.tokens.push((token.clone(), now));
        tracing::info!(service = true, "service menu unlocked");
        Ok((token, expiry_ms(now, now)))
    }

    /// Whether `token` is live; a live token's idle time starts again. Returns its new expiry.
    pub fn touch(&self, token: &str, now: Instant) -> Option<i64> {
        let mut a = self.access();
        a.tokens.retain(|(_, used)| now.duration_since(*used) < TOKEN_IDLE);
        // Every live token is compared, in constant time each.
        let mut found = None;
        for (i, (t, _)) in a.tokens.iter().enumerate() {
            if bool::from(t.as_bytes().ct_eq(token.as_bytes())) {
                found = Some(i);
            }
        }
        let i = found?;
        a.tokens[i].1 = now;
        Some(expiry_ms(now, now))
    }

    /// Ends `token` (the "lock" button).
    pub fn lock(&self, token: &str) {
        let mut a = self.access();
        a.tokens
            .retain(|(t, _)| !bool::from(t.as_bytes().ct_eq(token.as_bytes())));
        tracing::info!(service = true, "service menu locked");
    }
}

fn expiry_ms(last_use: Instant, now: Instant) -> i64 {
    let left = TOKEN_IDLE.saturating_sub(now.duration_since(last_use));
    clock::now_ms() + left.as_millis() as i64
}

/// The service menu's figures.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub today: Period,
    pub month: Period,
    pub blocker: Option<Blocker>,
    pub printer: PrinterView,
    pub camera: CameraView,
    pub print_queue: jobs::JobCounts,
    pub event: Option<EventInfo>,
    /// The running event's gallery (every photo, one QR code) while digital copies are on.
    pub gallery: Option<GalleryLink>,
    pub last_orders: Vec<OrderView>,
    pub now: i64,
}

/// Why an action did nothing.
#[derive(Debug)]
pub enum ServiceError {
    /// Bad input, in words (400).
    BadRequest(String),
    /// No such order (404).
    NotFound,
    /// A refunded order is not printed again (409).
    Refunded(String),
    /// The order was never paid (409).
    NotPaid(String),
    Store(StoreError),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        ServiceError::Store(e)
    }
}

/// The actions, with what they need. All blocking (SQLite, the printer): call from
/// `spawn_blocking`.
pub struct ServiceMenu {
    pub gate: Gate,
    booth: Arc<Booth>,
    store: Arc<Store>,
    printer: Arc<dyn Printer>,
    print_wake: tokio::sync::mpsc::Sender<i64>,
    /// A test page is being composed or printed (one at a time).
    test_printing: std::sync::atomic::AtomicBool,
}

impl ServiceMenu {
    /// `None` when no PIN is configured: the menu does not exist.
    pub fn from_config(
        config: &Config,
        booth: Arc<Booth>,
        store: Arc<Store>,
        printer: Arc<dyn Printer>,
        print_wake: tokio::sync::mpsc::Sender<i64>,
    ) -> Option<ServiceMenu> {
        let gate = Gate::new(config.service_pin_hash()?);
        Some(ServiceMenu {
            gate,
            booth,
            store,
            printer,
            print_wake,
            test_printing: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn config(&self) -> &Config {
        self.booth.config()
    }

    fn wake(&self) {
        let _ = self.print_wake.try_send(0);
    }

    /// Today and this month in the booth's time zone, the hardware, the event, the last orders.
    pub fn summary(&self) -> Result<Summary, ServiceError> {
        let config = self.config();
        let now = clock::now_ms();
        let offset = config.local_time_ms(0);
        let local = now + offset;
        let today = local.div_euclid(DAY_MS) * DAY_MS - offset;
        let (year, month, _) = date::civil_from_days(local.div_euclid(DAY_MS));
        let month = date::days_from_civil(year, month, 1) * DAY_MS - offset;
        let health = self.booth.health();
        let (today, month, queue, ids) = self.store.read(|c| {
            Ok((
                summary::period(c, today, now + 1)?,
                summary::period(c, month, now + 1)?,
                jobs::counts(c)?,
                summary::last_order_ids(c, LAST_ORDERS)?,
            ))
        })?;
        let last_orders = self.store.read(|c| {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(view) = load_order_view(c, config, id, now)? {
                    out.push(view);
                }
            }
            Ok(out)
        })?;
        let gallery = match self.booth.download_base() {
            Some(base) => self.store.read(events::current)?.map(|e| gallery::link(base, &e)),
            None => None,
        };
        tracing::info!(service = true, action = "summary", "service menu: summary shown");
        Ok(Summary {
            today,
            month,
            blocker: health.blocker(),
            printer: health.printer_view(config.printer.warn_below),
            camera: health.camera_view(),
            print_queue: queue,
            event: health.event(),
            gallery,
            last_orders,
            now,
        })
    }

    /// A new roll or pack: the media counter back to `printer.capacity`.
    pub fn refill(&self) -> Result<Option<media::Media>, ServiceError> {
        let capacity = self.config().printer.capacity;
        let now = clock::now_ms();
        let m = self.store.write(|tx| media::refill(tx, capacity, now))?;
        self.booth.health().set_media(m);
        tracing::warn!(
            service = true,
            action = "refill",
            media_left = m.map(|m| m.remaining),
            "service: media refilled"
        );
        self.wake();
        Ok(m)
    }

    /// What `printer resume` does: resume the queue, requeue failed jobs.
    pub fn resume(&self) -> Result<service::Resumed, ServiceError> {
        let resumed = service::resume(&self.store, self.printer.as_ref(), None)?;
        tracing::warn!(
            service = true,
            action = "resume",
            requeued = resumed.requeued,
            "service: printer resumed"
        );
        self.wake();
        Ok(resumed)
    }

    /// Starts a test print in the background (composing 12 MP samples takes longer than a request
    /// may); false when one is already under way. Its outcome is logged.
    pub fn start_test_print(self: &Arc<Self>) -> bool {
        use std::sync::atomic::Ordering;
        if self.test_printing.swap(true, Ordering::AcqRel) {
            return false;
        }
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let _ = me.test_print();
            me.test_printing.store(false, Ordering::Release);
        });
        true
    }

    /// The configured layout with sample shots, straight to the printer (not counted anywhere).
    pub fn test_print(&self) -> Result<(), String> {
        let page = service::test_page(self.config(), self.config().printer.page).inspect_err(|e| {
            tracing::warn!(service = true, action = "test_print", error = %e, "service: no test page");
        })?;
        let result = self.printer.print(&crate::hw::printer::PrintRequest {
            job_id: 0,
            order_id: 0,
            copies: 1,
            page: &page,
        });
        match result {
            Ok(()) => {
                tracing::info!(service = true, action = "test_print", "service: test page printed");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(service = true, action = "test_print", error = %e, "service: test page failed");
                Err(e.message)
            }
        }
    }

    /// Prints a delivered order again (paid or an event's); refunded and unpaid orders are refused.
    pub fn reprint(&self, order_id: i64) -> Result<i64, ServiceError> {
        let now = clock::now_ms();
        let queued = self.store.write(|tx| {
            let Some(order) = orders::get(tx, order_id)? else {
                return Ok(Err(ServiceError::NotFound));
            };
            match order.status {
                orders::StoredStatus::Paid | orders::StoredStatus::Event => {}
                orders::StoredStatus::Refunded => {
                    return Ok(Err(ServiceError::Refunded(format!(
                        "order {order_id} was refunded; it is not printed again"
                    ))))
                }
                orders::StoredStatus::Open | orders::StoredStatus::Cancelled => {
                    return Ok(Err(ServiceError::NotPaid(format!("order {order_id} was never paid"))))
                }
            }
            // The menu offers no Reprint for a digital-only order; the API agrees with it.
            if order.kind == orders::OrderKind::Digital {
                return Ok(Err(ServiceError::NotPaid(format!(
                    "order {order_id} was digital-only: no print was paid for"
                ))));
            }
            // Paid or event, read in this same write: the refund rule lets the job print.
            let job = jobs::queue_reprint(tx, order_id, order.copies, false, now)?;
            Ok(job
                .map(|job| (job, order.copies))
                .ok_or_else(|| ServiceError::NotPaid(format!("order {order_id} cannot be printed"))))
        })??;
        let (job_id, copies) = queued;
        tracing::warn!(
            service = true,
            action = "reprint",
            order_id,
            job_id,
            copies,
            "service: reprint queued"
        );
        self.wake();
        Ok(job_id)
    }

    /// Starts a prepaid event (ending any other); the booth stops making Payme orders.
    pub fn start_event(&self, req: &StartEvent) -> Result<EventInfo, ServiceError> {
        let info = event::start(&self.store, self.config(), req, clock::now_ms())?;
        self.booth.refresh_event()?;
        tracing::warn!(service = true, action = "event_start", event_id = info.id, max_prints = info.max_prints,
            title = %info.title, "service: event started; prints are free until it stops");
        Ok(info)
    }

    /// Ends the running event; the booth is back to paid sessions.
    pub fn stop_event(&self) -> Result<Option<i64>, ServiceError> {
        let ended = event::stop(&self.store, clock::now_ms())?;
        self.booth.refresh_event()?;
        tracing::warn!(
            service = true,
            action = "event_stop",
            event_id = ended,
            "service: event stopped; back to paid mode"
        );
        Ok(ended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_wrong_pins_lock_even_the_right_one_until_the_lockout_ends() {
        let gate = Gate::new(pin_sha256("0123"));
        let t0 = Instant::now();
        assert_eq!(gate.unlock("123", t0), Err(UnlockError::WrongPin { tries_left: 4 }));
        for _ in 0..3 {
            assert!(matches!(gate.unlock("9999", t0), Err(UnlockError::WrongPin { .. })));
        }
        assert!(matches!(gate.unlock("9999", t0), Err(UnlockError::LockedOut { .. })));
        assert!(matches!(
            gate.unlock("0123", t0 + Duration::from_secs(60)),
            Err(UnlockError::LockedOut { .. })
        ));
        assert!(gate.unlock("0123", t0 + LOCKOUT).is_ok());
    }

    #[test]
    fn a_token_lapses_after_ten_idle_minutes_and_on_lock() {
        let gate = Gate::new(pin_sha256("4321"));
        let t0 = Instant::now();
        let (token, _) = gate.unlock("4321", t0).unwrap();
        assert!(gate.touch(&token, t0 + Duration::from_secs(540)).is_some());
        // Used at 9 minutes: still live at 18.
        assert!(gate.touch(&token, t0 + Duration::from_secs(1080)).is_some());
        assert!(gate
            .touch(&token, t0 + Duration::from_secs(1080) + TOKEN_IDLE)
            .is_none());
        let (token, _) = gate.unlock("4321", t0).unwrap();
        assert!(gate.touch("not-a-token", t0).is_none());
        gate.lock(&token);
        assert!(gate.touch(&token, t0).is_none());
    }
}
