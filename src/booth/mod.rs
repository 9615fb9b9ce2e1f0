//! The booth's business: orders the kiosk creates and the print loop that turns paid orders into
//! prints. Payme decides when an order is paid (see `payme/`); this module decides what that means
//! for the customer.

pub mod print_loop;

use std::sync::Arc;

use serde::Serialize;

use crate::clock;
use crate::config::Config;
use crate::payme::checkout::checkout_url;
use crate::store::{jobs, orders, transactions, Order, OrderStatus, Store, StoreError};

pub struct Booth {
    store: Arc<Store>,
    config: Arc<Config>,
}

#[derive(Debug)]
pub enum OrderError {
    InvalidCopies { max: u32 },
    Store(StoreError),
}

impl From<StoreError> for OrderError {
    fn from(e: StoreError) -> Self {
        OrderError::Store(e)
    }
}

/// An order as the kiosk and the CLI show it.
#[derive(Debug, Serialize)]
pub struct OrderView {
    pub order_id: i64,
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
pub struct PrintView {
    pub job_id: i64,
    pub status: &'static str,
    pub attempts: u32,
    pub last_error: Option<String>,
}

impl Booth {
    pub fn new(store: Arc<Store>, config: Arc<Config>) -> Booth {
        Booth { store, config }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A new order awaiting payment. Blocking (SQLite).
    pub fn create_order(&self, copies: u32) -> Result<OrderView, OrderError> {
        let max = self.config.booth.max_copies;
        if !(1..=max).contains(&copies) {
            return Err(OrderError::InvalidCopies { max });
        }
        let now = clock::now_ms();
        let ttl_ms = i64::from(self.config.booth.order_ttl_s) * 1000;
        let price = self.config.price_per_copy_tiyin();
        let order = self.store.write(|tx| orders::insert(tx, copies, price, now, ttl_ms))?;
        tracing::info!(
            order_id = order.id,
            copies,
            amount_tiyin = order.amount_tiyin,
            expires_at = order.expires_at,
            "order created, awaiting payment"
        );
        Ok(self.view(&order, false, None, now))
    }

    /// The order with its current status, or `None` if there is no such order. Blocking.
    pub fn order(&self, id: i64) -> Result<Option<OrderView>, StoreError> {
        let now = clock::now_ms();
        self.store.read(|conn| {
            let Some(order) = orders::get(conn, id)? else {
                return Ok(None);
            };
            let live = transactions::live_for_order(conn, id)?.is_some();
            let job = jobs::paid_job_for_order(conn, id)?;
            Ok(Some(self.view(&order, live, job, now)))
        })
    }

    pub fn checkout_url(&self, order_id: i64, amount_tiyin: i64) -> String {
        let p = &self.config.payme;
        checkout_url(
            &p.checkout_base,
            &p.merchant_id,
            &p.account_field,
            order_id,
            amount_tiyin,
        )
    }

    fn view(&self, order: &Order, live_tx: bool, job: Option<jobs::PrintJob>, now: i64) -> OrderView {
        OrderView {
            order_id: order.id,
            copies: order.copies,
            amount: order.amount_tiyin / 100,
            amount_tiyin: order.amount_tiyin,
            status: order.display_status(live_tx, job.as_ref().map(|j| j.status), now),
            created_at: order.created_at,
            expires_at: order.expires_at,
            paid_at: order.paid_at,
            checkout_url: self.checkout_url(order.id, order.amount_tiyin),
            qr_png: format!("/api/orders/{}/qr.png", order.id),
            print: job.map(|j| PrintView {
                job_id: j.id,
                status: j.status.as_str(),
                attempts: j.attempts,
                last_error: j.last_error,
            }),
        }
    }
}
