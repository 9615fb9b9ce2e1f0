//! Orders: what the customer asked for and what it costs. Whether an order is still payable is
//! decided here from its row, its transactions and the clock, so the kiosk API and the Payme
//! methods can never disagree about it.

use rusqlite::{params, Connection};
use serde::Serialize;

use super::bad_value;
use super::jobs::JobStatus;
use super::FromRow;

row_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Order {
        pub id: i64,
        pub copies: u32,
        pub price_per_copy_tiyin: i64,
        pub amount_tiyin: i64,
        pub kind: OrderKind,
        pub status: StoredStatus,
        pub created_at: i64,
        pub expires_at: i64,
        pub paid_at: Option<i64>,
        pub closed_at: Option<i64>,
        /// The customer's language code (`uz`, `ru`, `en`) when the kiosk sent it.
        pub language: Option<String>,
        /// The prepaid event a free order belongs to (status `Event`).
        pub event_id: Option<i64>,
    }
}

text_enum! {
    /// What the `orders.status` column holds; the status shown to people is [`OrderStatus`].
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum StoredStatus in "orders.status" {
        Open = "open",
        Paid = "paid",
        Refunded = "refunded",
        Cancelled = "cancelled",
        /// A free print of a prepaid event: deliverable like `Paid`, never payable.
        Event = "event",
    }
}

text_enum! {
    /// What an order sells, and so what a paid order delivers: prints (a print job, and a free download
    /// link when the order has photos and digital copies are on), or digital copies only (the link,
    /// never a print job). Revenue metrics and exports are split by it.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
    #[serde(rename_all = "snake_case")]
    pub enum OrderKind in "orders.kind" {
        /// Paper out of the printer (a digital copy may come with it).
        #[default]
        Print = "print",
        /// A download link only, no print job.
        Digital = "digital",
    }
}

named_enum! {
    /// The status the kiosk, the CLI and the logs show.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
    #[serde(rename_all = "snake_case")]
    pub enum OrderStatus {
        AwaitingPayment = "awaiting_payment",
        Paid = "paid",
        Printing = "printing",
        Printed = "printed",
        PrintFailed = "print_failed",
        /// A paid digital-only order: its download link is the delivery.
        Delivered = "delivered",
        Cancelled = "cancelled",
        Expired = "expired",
        Refunded = "refunded",
    }
}

/// Why an order cannot take a new Payme transaction right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotPayable {
    /// Another transaction (pending or performed) holds it.
    Held,
    AlreadyPaid,
    Refunded,
    Cancelled,
    Expired,
}

impl Order {
    /// Whether a new Payme transaction may take this order. `live_tx` is whether a transaction in
    /// state 1 or 2 holds it. An open order with no live transaction stays payable until its TTL:
    /// a transaction cancelled before perform (card declined, timeout) does not end the order.
    /// A live transaction is reported first: Payme's sandbox wants -31008 for a second transaction
    /// on a held or paid one-time order, whatever else is true of it.
    pub fn payability(&self, live_tx: bool, now: i64) -> Result<(), NotPayable> {
        if live_tx {
            return Err(NotPayable::Held);
        }
        match self.status {
            // An event's print is prepaid by the host: there is nothing to pay.
            StoredStatus::Paid | StoredStatus::Event => Err(NotPayable::AlreadyPaid),
            StoredStatus::Refunded => Err(NotPayable::Refunded),
            StoredStatus::Cancelled => Err(NotPayable::Cancelled),
            StoredStatus::Open if now >= self.expires_at => Err(NotPayable::Expired),
            StoredStatus::Open => Ok(()),
        }
    }

    /// The status people see, from the stored status, the print job and the clock.
    pub fn display_status(&self, live_tx: bool, job: Option<JobStatus>, now: i64) -> OrderStatus {
        match self.status {
            StoredStatus::Refunded => OrderStatus::Refunded,
            StoredStatus::Cancelled => OrderStatus::Cancelled,
            StoredStatus::Paid if self.kind == OrderKind::Digital => OrderStatus::Delivered,
            StoredStatus::Paid | StoredStatus::Event => match job {
                Some(JobStatus::Printing) => OrderStatus::Printing,
                Some(JobStatus::Printed) => OrderStatus::Printed,
                Some(JobStatus::Failed) => OrderStatus::PrintFailed,
                Some(JobStatus::Queued | JobStatus::Cancelled) | None => OrderStatus::Paid,
            },
            StoredStatus::Open if !live_tx && now >= self.expires_at => OrderStatus::Expired,
            StoredStatus::Open => OrderStatus::AwaitingPayment,
        }
    }
}

pub fn insert(
    conn: &Connection,
    copies: u32,
    price_per_copy_tiyin: i64,
    now: i64,
    ttl_ms: i64,
) -> rusqlite::Result<Order> {
    insert_kind(conn, OrderKind::Print, copies, price_per_copy_tiyin, now, ttl_ms)
}

pub fn insert_kind(
    conn: &Connection,
    kind: OrderKind,
    copies: u32,
    price_per_copy_tiyin: i64,
    now: i64,
    ttl_ms: i64,
) -> rusqlite::Result<Order> {
    let amount = price_per_copy_tiyin
        .checked_mul(i64::from(copies))
        .ok_or_else(|| bad_value("orders.amount_tiyin", "overflow"))?;
    conn.execute(
        "INSERT INTO orders (copies, price_per_copy_tiyin, amount_tiyin, status, created_at, expires_at, kind)
         VALUES (?1, ?2, ?3, 'open', ?4, ?5, ?6)",
        params![copies, price_per_copy_tiyin, amount, now, now + ttl_ms, kind.as_str()],
    )?;
    let id = conn.last_insert_rowid();
    get(conn, id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
}

/// A free order of a prepaid event: no price, no Payme (so no `paid_at`), deliverable at once
/// (its print job is queued by the caller in the same transaction).
pub fn insert_event(conn: &Connection, copies: u32, event_id: i64, now: i64) -> rusqlite::Result<Order> {
    conn.prepare_cached(
        "INSERT INTO orders (copies, price_per_copy_tiyin, amount_tiyin, status, created_at, expires_at, event_id)
         VALUES (?1, 0, 0, 'event', ?2, ?2, ?3)",
    )?
    .execute(params![copies, now, event_id])?;
    let id = conn.last_insert_rowid();
    get(conn, id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
}

pub fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<Order>> {
    Order::one(conn, "SELECT * FROM orders WHERE id = ?1", [id])
}

pub fn mark_paid(conn: &Connection, id: i64, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE orders SET status = 'paid', paid_at = ?2 WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(())
}

/// Records the customer's language, which the checkout link carries.
pub fn set_language(conn: &Connection, id: i64, language: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE orders SET language = ?2 WHERE id = ?1")?
        .execute(params![id, language])?;
    Ok(())
}

/// Records that the order was paid by a simulated transaction (`photoboothd pay`), which revenue
/// reports and metrics leave out.
pub fn mark_simulated(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE orders SET simulated = 1 WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Ends an order for good: refunded after payment, or cancelled before it. An order that has
/// already ended stays as it ended: a customer's cancel tap arriving after a refund the screen has
/// not seen yet must not turn the refund into a cancel. Returns whether it ended now.
pub fn close(conn: &Connection, id: i64, status: StoredStatus, now: i64) -> rusqlite::Result<bool> {
    debug_assert!(matches!(status, StoredStatus::Refunded | StoredStatus::Cancelled));
    let changed = conn
        .prepare_cached("UPDATE orders SET status = ?2, closed_at = ?3 WHERE id = ?1 AND status IN ('open', 'paid')")?
        .execute(params![id, status.as_str(), now])?;
    Ok(changed > 0)
}

/// An order for unit tests that need no store: two copies at 100 tiyin, made at 0, payable
/// until 1 000.
#[cfg(test)]
pub(crate) fn sample(id: i64, status: StoredStatus) -> Order {
    Order {
        id,
        copies: 2,
        price_per_copy_tiyin: 100,
        amount_tiyin: 200,
        kind: OrderKind::Print,
        status,
        created_at: 0,
        expires_at: 1_000,
        paid_at: None,
        closed_at: None,
        language: None,
        event_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(status: StoredStatus) -> Order {
        sample(1, status)
    }

    #[test]
    fn an_open_order_is_payable_until_its_ttl_unless_held() {
        let o = order(StoredStatus::Open);
        assert_eq!(o.payability(false, 999), Ok(()));
        assert_eq!(o.payability(false, 1_000), Err(NotPayable::Expired));
        assert_eq!(o.payability(true, 10), Err(NotPayable::Held));
        assert_eq!(o.display_status(true, None, 5_000), OrderStatus::AwaitingPayment);
        assert_eq!(o.display_status(false, None, 5_000), OrderStatus::Expired);
    }

    #[test]
    fn final_orders_are_never_payable() {
        assert_eq!(
            order(StoredStatus::Paid).payability(false, 0),
            Err(NotPayable::AlreadyPaid)
        );
        assert_eq!(
            order(StoredStatus::Refunded).payability(false, 0),
            Err(NotPayable::Refunded)
        );
        assert_eq!(
            order(StoredStatus::Cancelled).payability(false, 0),
            Err(NotPayable::Cancelled)
        );
    }

    #[test]
    fn an_event_order_is_never_payable_and_shows_its_print_job() {
        let o = order(StoredStatus::Event);
        assert_eq!(o.payability(false, 0), Err(NotPayable::AlreadyPaid));
        assert_eq!(
            o.display_status(false, Some(JobStatus::Printed), 0),
            OrderStatus::Printed
        );
        assert_eq!(o.display_status(false, None, 5_000), OrderStatus::Paid);
    }

    #[test]
    fn a_paid_order_shows_its_print_job() {
        let o = order(StoredStatus::Paid);
        assert_eq!(o.display_status(true, Some(JobStatus::Queued), 0), OrderStatus::Paid);
        assert_eq!(
            o.display_status(true, Some(JobStatus::Printing), 0),
            OrderStatus::Printing
        );
        assert_eq!(
            o.display_status(true, Some(JobStatus::Printed), 0),
            OrderStatus::Printed
        );
        assert_eq!(
            o.display_status(true, Some(JobStatus::Failed), 0),
            OrderStatus::PrintFailed
        );
    }

    #[test]
    fn a_paid_digital_order_is_delivered() {
        let o = Order {
            kind: OrderKind::Digital,
            ..order(StoredStatus::Paid)
        };
        assert_eq!(o.display_status(true, None, 0), OrderStatus::Delivered);
        let refunded = Order {
            kind: OrderKind::Digital,
            ..order(StoredStatus::Refunded)
        };
        assert_eq!(refunded.display_status(false, None, 0), OrderStatus::Refunded);
    }
}
