//! The booth's business: orders the kiosk creates and the print loop that turns paid orders into
//! prints. Payme decides when an order is paid (see `payme/`); this module decides what that means
//! for the customer.

pub mod event;
pub mod health;
pub mod janitor;
pub mod live;
pub mod open_hours;
pub mod print_loop;
pub mod service;
pub mod service_menu;
pub mod session;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::clock;
use crate::config::{Config, Language};
use crate::hw::camera::Camera;
use crate::hw::gpio::Gpio;
use crate::payme::checkout::{self, Link};
use crate::store::{jobs, links, orders, sessions, transactions, Order, OrderKind, OrderStatus, Store, StoreError};
use health::{Blocker, CameraView, Health, PrinterView};

/// The booth's shared parts, built once at start-up and handed on as one value.
#[derive(Clone)]
pub struct Shared {
    pub store: Arc<Store>,
    pub config: Arc<Config>,
    pub booth: Arc<Booth>,
    pub health: Arc<Health>,
    pub gpio: Arc<dyn Gpio>,
    pub camera: Arc<dyn Camera>,
    pub data_dir: PathBuf,
}

pub struct Booth {
    store: Arc<Store>,
    config: Arc<Config>,
    health: Arc<Health>,
    gpio: Arc<dyn Gpio>,
    /// Tells the print loop to look at the queue now (event orders are queued here, not by Payme).
    print_wake: std::sync::OnceLock<tokio::sync::mpsc::Sender<i64>>,
    /// Wakes the janitor (a session ended: its photos may be due for removal).
    tidy: tokio::sync::Notify,
    /// Where download links point (`{base}/d/{token}`), set once the webhook listener is bound;
    /// unset while digital copies are off.
    download_base: std::sync::OnceLock<String>,
    /// The language the kiosk last reported with a session input, for an order it asks for
    /// without one.
    customer_language: std::sync::Mutex<Option<Language>>,
}

#[derive(Debug)]
pub enum OrderError {
    /// A prepaid event runs: prints are free, there is no Payme order to make.
    EventMode,
    /// A free print was asked for, but no event runs.
    NotEvent,
    /// The event has fewer prints left than asked for.
    EventPrintsLeft {
        left: u32,
    },
    InvalidCopies {
        max: u32,
    },
    /// The printer cannot finish a paid print now; no order is taken.
    OutOfService(Blocker),
    /// The kiosk session is not at the copies screen.
    Session(session::SessionError),
    /// Digital-only is not on sale (no `[digital] price`, digital copies off, or no photos).
    DigitalNotOffered(&'static str),
    Store(StoreError),
}

impl From<StoreError> for OrderError {
    fn from(e: StoreError) -> Self {
        OrderError::Store(e)
    }
}

/// An order as the kiosk and the CLI show it.
#[derive(Debug, Clone, Serialize)]
pub struct OrderView {
    pub order_id: i64,
    /// The kiosk session whose photos this order prints, if any.
    pub session_id: Option<i64>,
    /// The payment arrived after the customer's session had ended (it prints all the same).
    pub paid_after_customer_left: bool,
    /// Payme holds a transaction for the order and has not performed it yet: the customer is
    /// paying right now, so the order can no longer be cancelled from the screen.
    pub payment_in_progress: bool,
    pub copies: u32,
    /// Whole sum, for display.
    pub amount: i64,
    pub amount_tiyin: i64,
    pub status: OrderStatus,
    pub created_at: i64,
    pub expires_at: i64,
    pub paid_at: Option<i64>,
    /// The prepaid event a free order belongs to.
    pub event_id: Option<i64>,
    pub checkout_url: String,
    pub qr_png: String,
    pub print: Option<PrintView>,
    /// `print` or `digital` (digital copies only, delivered by the link).
    pub kind: crate::store::OrderKind,
    /// The customer's download page, once paid (null before payment, after a refund, for an
    /// order without photos, after the link expired, or while digital copies are off).
    pub download_url: Option<String>,
    /// The download link's QR code for the done screen (with `download_url`).
    pub download_qr_png: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct BoothStatus {
    /// False while the printer cannot finish a paid print; `blocker` says why.
    pub accepting_orders: bool,
    pub blocker: Option<Blocker>,
    /// Every reason at once (`blocker` is the first), each with its message in words.
    pub blockers: Vec<Blocker>,
    /// `sandbox` (Payme's test checkout, no real money) or `production`.
    pub payme_mode: &'static str,
    pub printer: PrinterView,
    pub camera: CameraView,
    pub gpio: GpioView,
    pub print_queue: jobs::JobCounts,
    /// The prepaid event that runs, if any (prints are free, no Payme orders).
    pub event: Option<event::EventInfo>,
}

#[derive(Debug, Serialize)]
pub struct GpioView {
    pub backend: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct PrintView {
    pub job_id: i64,
    pub status: &'static str,
    pub attempts: u32,
    pub last_error: Option<String>,
}

impl Booth {
    pub fn new(store: Arc<Store>, config: Arc<Config>, health: Arc<Health>, gpio: Arc<dyn Gpio>) -> Booth {
        Booth {
            store,
            config,
            health,
            gpio,
            print_wake: std::sync::OnceLock::new(),
            tidy: tokio::sync::Notify::new(),
            download_base: std::sync::OnceLock::new(),
            customer_language: std::sync::Mutex::new(None),
        }
    }

    /// Lets event orders wake the print loop (set once by the daemon).
    pub fn set_print_wake(&self, wake: tokio::sync::mpsc::Sender<i64>) {
        let _ = self.print_wake.set(wake);
    }

    /// Rereads the running event into `Health` (after a start, a stop or an order). Blocking.
    pub fn refresh_event(&self) -> Result<Option<event::EventInfo>, StoreError> {
        let info = self.store.read(event::load)?;
        self.health.set_event(info.clone());
        Ok(info)
    }

    /// A free print of the running event for the session at the copies screen. Blocking (SQLite).
    pub fn create_event_order_for(&self, copies: u32, session_id: Option<i64>) -> Result<OrderView, OrderError> {
        let max = self.config.booth.max_copies;
        if !(1..=max).contains(&copies) {
            return Err(OrderError::InvalidCopies { max });
        }
        if let Some(blocker) = self.health.blocker() {
            tracing::warn!(
                reason = blocker.reason.as_str(),
                "event print refused: {}",
                blocker.message
            );
            return Err(OrderError::OutOfService(blocker));
        }
        let now = clock::now_ms();
        let links = Some(crate::digital::config::links(&self.config));
        let (order, job_id, info) =
            event::create_order(&self.store, copies, session_id, links, now).map_err(|e| match e {
                event::EventOrderError::NoEvent => OrderError::NotEvent,
                event::EventOrderError::NotEnoughLeft { left } => OrderError::EventPrintsLeft { left },
                event::EventOrderError::Store(e) => OrderError::Store(e),
            })?;
        self.health.set_event(Some(info.clone()));
        if let Some(wake) = self.print_wake.get() {
            let _ = wake.try_send(job_id);
        }
        tracing::info!(
            order_id = order.id,
            session_id,
            copies,
            event_id = info.id,
            prints_left = info.prints_left,
            "event order created: free print queued"
        );
        // Read back like any order, so its view carries the download link just made.
        self.order(order.id)?.ok_or(OrderError::Store(StoreError::Sqlite(
            rusqlite::Error::QueryReturnedNoRows,
        )))
    }

    /// Asks the janitor to look at the session folders now.
    pub fn tidy_soon(&self) {
        self.tidy.notify_one();
    }

    /// Resolves when someone called `tidy_soon` (the janitor's wake-up).
    pub async fn tidied(&self) {
        self.tidy.notified().await;
    }

    /// Turns digital copies on: links are `{base}/d/{token}`.
    pub fn set_download_base(&self, base: &str) {
        let _ = self.download_base.set(base.trim_end_matches('/').to_string());
    }

    pub fn download_base(&self) -> Option<&str> {
        self.download_base.get().map(String::as_str)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    pub fn gpio(&self) -> &dyn Gpio {
        self.gpio.as_ref()
    }

    /// The customer's language as the kiosk reports it with a session input.
    pub fn note_language(&self, language: Language) {
        if let Ok(mut l) = self.customer_language.lock() {
            *l = Some(language);
        }
    }

    /// The language last reported by the kiosk, if any.
    pub fn customer_language(&self) -> Option<Language> {
        self.customer_language.lock().ok().and_then(|l| *l)
    }

    /// Everything `/api/status` shows. Blocking (SQLite).
    pub fn status(&self) -> Result<BoothStatus, StoreError> {
        let jobs = self.store.read(jobs::counts)?;
        let blockers = self.health.blockers();
        Ok(BoothStatus {
            accepting_orders: blockers.is_empty(),
            blocker: blockers.first().cloned(),
            blockers,
            payme_mode: if self.config.is_sandbox() {
                "sandbox"
            } else {
                "production"
            },
            printer: self.health.printer_view(self.config.printer.warn_below),
            camera: self.health.camera_view(),
            gpio: GpioView {
                backend: self.gpio.backend(),
            },
            print_queue: jobs,
            event: self.health.event(),
        })
    }

    /// A new order awaiting payment, not tied to a kiosk session. Blocking (SQLite).
    pub fn create_order(&self, copies: u32, language: Option<Language>) -> Result<OrderView, OrderError> {
        self.create_order_for(copies, None, language)
    }

    /// A new order awaiting payment; with a session, the order prints that session's page and the
    /// link is written in the same transaction. `language` is the customer's, which the checkout
    /// link carries (the booth's default without it). Blocking (SQLite).
    pub fn create_order_for(
        &self,
        copies: u32,
        session_id: Option<i64>,
        language: Option<Language>,
    ) -> Result<OrderView, OrderError> {
        let max = self.config.booth.max_copies;
        if !(1..=max).contains(&copies) {
            return Err(OrderError::InvalidCopies { max });
        }
        let price = self.config.price_per_copy_tiyin();
        self.insert_order(OrderKind::Print, copies, price, session_id, language)
    }

    /// "Digital only, no print" for a session's photos, at `[digital] price`. Blocking (SQLite).
    pub fn create_digital_order_for(
        &self,
        session_id: i64,
        language: Option<Language>,
    ) -> Result<OrderView, OrderError> {
        let price = self.digital_price_tiyin().ok_or(OrderError::DigitalNotOffered(
            "digital copies are not sold on their own here",
        ))?;
        self.insert_order(OrderKind::Digital, 1, price, Some(session_id), language)
    }

    /// The digital-only price in tiyin while it is on sale (a price is set and links work).
    pub fn digital_price_tiyin(&self) -> Option<i64> {
        self.download_base()?;
        self.config.digital.price_tiyin()
    }

    /// What stops a new kiosk session: while digital-only is on sale only its blockers do (the
    /// copies screen then offers only what can be delivered).
    pub fn session_blocker(&self) -> Option<Blocker> {
        match self.digital_price_tiyin() {
            Some(_) => self.health.blocker_for(OrderKind::Digital),
            None => self.health.blocker(),
        }
    }

    fn insert_order(
        &self,
        kind: OrderKind,
        copies: u32,
        price: i64,
        session_id: Option<i64>,
        language: Option<Language>,
    ) -> Result<OrderView, OrderError> {
        // At a prepaid event nothing is sold: prints are free (`create_event_order_for`).
        if self.health.event().is_some() {
            return Err(OrderError::EventMode);
        }
        if let Some(blocker) = self.health.blocker_for(kind) {
            tracing::warn!(
                reason = blocker.reason.as_str(),
                kind = kind.as_str(),
                "order refused: {}",
                blocker.message
            );
            return Err(OrderError::OutOfService(blocker));
        }
        let now = clock::now_ms();
        let ttl_ms = i64::from(self.config.booth.order_ttl_s) * 1000;
        let order = self.store.write(|tx| {
            let mut order = orders::insert_kind(tx, kind, copies, price, now, ttl_ms)?;
            if let Some(language) = language {
                orders::set_language(tx, order.id, language.code())?;
                order.language = Some(language.code().to_string());
            }
            if let Some(id) = session_id {
                tx.execute(
                    "UPDATE sessions SET order_id = ?2 WHERE id = ?1",
                    rusqlite::params![id, order.id],
                )?;
            }
            Ok(order)
        })?;
        tracing::info!(
            order_id = order.id,
            session_id,
            kind = kind.as_str(),
            copies,
            amount_tiyin = order.amount_tiyin,
            expires_at = order.expires_at,
            "order created, awaiting payment"
        );
        Ok(order_view(
            &self.config,
            &order,
            false,
            None,
            session_id.map(|id| (id, None)),
            now,
        ))
    }

    /// The order with its current status, or `None` if there is no such order. Blocking.
    pub fn order(&self, id: i64) -> Result<Option<OrderView>, StoreError> {
        let now = clock::now_ms();
        self.store
            .read(|conn| load_order_view_with(conn, &self.config, self.download_base(), id, now))
    }
}

/// The order's checkout link, rebuilt from the order (its language) and the configuration, so the
/// QR image and the order view always agree.
fn checkout_link(config: &Config, order: &Order) -> String {
    let p = &config.payme;
    let language = order
        .language
        .as_deref()
        .and_then(Language::from_code)
        .unwrap_or(config.booth.language);
    let link = Link {
        base: &p.checkout_base,
        merchant_id: &p.merchant_id,
        account_field: &p.account_field,
        language: language.code(),
        return_url: p.return_url.as_deref(),
    };
    checkout::checkout_link(&link, order.id, order.amount_tiyin)
}

/// The order as people see it (status from its transaction, job and the clock), read from `conn`.
pub fn load_order_view(
    conn: &rusqlite::Connection,
    config: &Config,
    id: i64,
    now: i64,
) -> rusqlite::Result<Option<OrderView>> {
    load_order_view_with(conn, config, config.digital.public_url.as_deref(), id, now)
}

/// The same, with download links pointing at `download_base` (none: no `download_url`).
pub fn load_order_view_with(
    conn: &rusqlite::Connection,
    config: &Config,
    download_base: Option<&str>,
    id: i64,
    now: i64,
) -> rusqlite::Result<Option<OrderView>> {
    let Some(order) = orders::get(conn, id)? else {
        return Ok(None);
    };
    let live = transactions::live_for_order(conn, id)?.is_some();
    let job = jobs::paid_job_for_order(conn, id)?;
    let session = sessions::for_order(conn, id)?.map(|s| (s.id, s.ended_at));
    let mut view = order_view(config, &order, live, job, session, now);
    // A paid order and an event's free one are delivered alike, the download link included.
    let delivered = matches!(order.status, orders::StoredStatus::Paid | orders::StoredStatus::Event);
    if let (Some(base), true) = (download_base, delivered) {
        if let Some(link) = links::for_order(conn, id)?.filter(|l| !l.expired(now)) {
            view.download_url = Some(format!("{}/d/{}", base.trim_end_matches('/'), link.token));
            view.download_qr_png = Some(format!("/api/orders/{id}/download-qr.png"));
        }
    }
    Ok(Some(view))
}

pub fn order_view(
    config: &Config,
    order: &Order,
    live_tx: bool,
    job: Option<jobs::PrintJob>,
    session: Option<(i64, Option<i64>)>,
    now: i64,
) -> OrderView {
    OrderView {
        session_id: session.map(|(id, _)| id),
        paid_after_customer_left: match (session, order.paid_at) {
            (Some((_, Some(ended))), Some(paid)) => ended < paid,
            _ => false,
        },
        payment_in_progress: live_tx && order.status == orders::StoredStatus::Open,
        order_id: order.id,
        copies: order.copies,
        amount: order.amount_tiyin / 100,
        amount_tiyin: order.amount_tiyin,
        kind: order.kind,
        status: order.display_status(live_tx, job.as_ref().map(|j| j.status), now),
        created_at: order.created_at,
        expires_at: order.expires_at,
        paid_at: order.paid_at,
        event_id: order.event_id,
        checkout_url: checkout_link(config, order),
        qr_png: format!("/api/orders/{}/qr.png", order.id),
        print: job.map(|j| PrintView {
            job_id: j.id,
            status: j.status.as_str(),
            attempts: j.attempts,
            last_error: j.last_error,
        }),
        download_url: None,
        download_qr_png: None,
    }
}
