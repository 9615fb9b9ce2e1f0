//! The booth's business: orders the kiosk creates and the print loop that turns paid orders into
//! prints. Payme decides when an order is paid (see `payme/`); this module decides what that means
//! for the customer.

pub mod health;
pub mod live;
pub mod print_loop;
pub mod service;
pub mod session;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::clock;
use crate::config::{Config, Language};
use crate::hw::camera::Camera;
use crate::hw::gpio::Gpio;
use crate::payme::checkout::{self, Link};
use crate::store::{jobs, orders, sessions, transactions, Order, OrderStatus, Store, StoreError};
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
    /// The language the kiosk last reported with a session input, for an order it asks for
    /// without one.
    customer_language: std::sync::Mutex<Option<Language>>,
}

#[derive(Debug)]
pub enum OrderError {
    InvalidCopies {
        max: u32,
    },
    /// The printer cannot finish a paid print now; no order is taken.
    OutOfService(Blocker),
    /// The kiosk session is not at the copies screen.
    Session(session::SessionError),
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
    pub checkout_url: String,
    pub qr_png: String,
    pub print: Option<PrintView>,
}

#[derive(Debug, Serialize)]
pub struct BoothStatus {
    /// False while the printer cannot finish a paid print; `blocker` says why.
    pub accepting_orders: bool,
    pub blocker: Option<Blocker>,
    pub printer: PrinterView,
    pub camera: CameraView,
    pub gpio: GpioView,
    pub print_queue: jobs::JobCounts,
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
            customer_language: std::sync::Mutex::new(None),
        }
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
        let blocker = self.health.blocker();
        Ok(BoothStatus {
            accepting_orders: blocker.is_none(),
            blocker,
            printer: self.health.printer_view(self.config.printer.warn_below),
            camera: self.health.camera_view(),
            gpio: GpioView {
                backend: self.gpio.backend(),
            },
            print_queue: jobs,
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
        if let Some(blocker) = self.health.blocker() {
            tracing::warn!(reason = blocker.reason.as_str(), "order refused: {}", blocker.message);
            return Err(OrderError::OutOfService(blocker));
        }
        let now = clock::now_ms();
        let ttl_ms = i64::from(self.config.booth.order_ttl_s) * 1000;
        let price = self.config.price_per_copy_tiyin();
        let order = self.store.write(|tx| {
            let mut order = orders::insert(tx, copies, price, now, ttl_ms)?;
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
        self.store.read(|conn| load_order_view(conn, &self.config, id, now))
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
    let Some(order) = orders::get(conn, id)? else {
        return Ok(None);
    };
    let live = transactions::live_for_order(conn, id)?.is_some();
    let job = jobs::paid_job_for_order(conn, id)?;
    let session = sessions::for_order(conn, id)?.map(|s| (s.id, s.ended_at));
    Ok(Some(order_view(config, &order, live, job, session, now)))
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
        status: order.display_status(live_tx, job.as_ref().map(|j| j.status), now),
        created_at: order.created_at,
        expires_at: order.expires_at,
        paid_at: order.paid_at,
        checkout_url: checkout_link(config, order),
        qr_png: format!("/api/orders/{}/qr.png", order.id),
        print: job.map(|j| PrintView {
            job_id: j.id,
            status: j.status.as_str(),
            attempts: j.attempts,
            last_error: j.last_error,
        }),
    }
}
